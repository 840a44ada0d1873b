"""Ledger use cases run by jobs and staff: expiry, birthdays, tier re-evaluation, checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd.errors import InsufficientPointsError, NotFoundError, ValidationError
from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member, tier_name
from walletd.models import LedgerEntry, Member


def _ctx(app: Flask, clock: FrozenClock) -> Context:
    return Context(now=clock(), secret_key=services_of(app).settings.secret_key)


def _enroll(
    app: Flask, clock: FrozenClock, brand: BrandKeys, birthday: date | None = None
) -> tuple[int, str]:
    """Enroll a member through the service; returns its id and barcode."""
    with services_of(app).db.transaction() as session:
        member, card = enroll_member(
            session, brand.brand_id, Enrollment(name="Ada", birthday=birthday), _ctx(app, clock)
        )
        return member.id, card.barcode


def _scan(
    app: Flask, clock: FrozenClock, brand: BrandKeys, barcode: str, amount: str, key: str
) -> dict[str, Any]:
    with services_of(app).db.transaction() as session:
        outcome = ledger.credit_scan(
            session,
            ledger.Actor(brand.brand_id),
            barcode=barcode,
            amount=amount,
            currency=None,
            location_id=None,
            idempotency_key=key,
            ctx=_ctx(app, clock),
        )
    return outcome.body


def _redeem(
    app: Flask, clock: FrozenClock, brand: BrandKeys, barcode: str, points: int, key: str
) -> None:
    with services_of(app).db.transaction() as session:
        ledger.redeem(
            session,
            ledger.Actor(brand.brand_id),
            barcode=barcode,
            points=points,
            reward_id=None,
            idempotency_key=key,
            ctx=_ctx(app, clock),
        )


def _points(app: Flask, member_id: int) -> int:
    with services_of(app).db.transaction() as session:
        return session.get_one(Member, member_id).points


def _tier(app: Flask, member_id: int) -> str | None:
    with services_of(app).db.transaction() as session:
        return tier_name(session, session.get_one(Member, member_id))


def _entries(app: Flask, member_id: int, kind: str) -> list[tuple[int, str | None]]:
    with services_of(app).db.transaction() as session:
        rows = session.execute(
            select(LedgerEntry.points, LedgerEntry.reason)
            .where(LedgerEntry.member_id == member_id, LedgerEntry.kind == kind)
            .order_by(LedgerEntry.id)
        ).all()
    return [(points, reason) for points, reason in rows]


def _expire(app: Flask, clock: FrozenClock) -> int:
    with services_of(app).db.transaction() as session:
        return ledger.expire_due_lots(session, _ctx(app, clock))


def _birthdays(app: Flask, clock: FrozenClock) -> int:
    with services_of(app).db.transaction() as session:
        return ledger.grant_birthday_bonuses(session, _ctx(app, clock))


def _reevaluate(app: Flask, clock: FrozenClock, brand: BrandKeys) -> int:
    with services_of(app).db.transaction() as session:
        return ledger.reevaluate_tiers(session, _ctx(app, clock), program_id=brand.program_id)


def _verify(app: Flask) -> list[ledger.Mismatch]:
    with services_of(app).db.transaction() as session:
        return ledger.verify_ledger(session)


def _adjust(
    app: Flask, clock: FrozenClock, brand: BrandKeys, member_id: int, points: Any, reason: Any
) -> dict[str, Any]:
    with services_of(app).db.transaction() as session:
        outcome = ledger.adjust_points(
            session, ledger.Actor(brand.brand_id), member_id, points, reason, _ctx(app, clock)
        )
    return outcome.body


def test_due_lots_expire_by_their_unspent_remainder(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, barcode = _enroll(app, clock, brand)  # 50-point welcome lot
    _redeem(app, clock, brand, barcode, 20, "r1")  # 30 of the welcome lot remain
    clock.advance(days=180)
    _scan(app, clock, brand, barcode, "100.00", "s1")  # a 100-point lot, due 6 months later
    assert _points(app, member_id) == 130

    clock.advance(days=216)  # 13 months after enrollment
    assert _expire(app, clock) == 1
    assert _points(app, member_id) == 100
    assert _entries(app, member_id, "expire") == [(-30, "points expired")]
    assert _verify(app) == []


def test_expiry_is_idempotent(app: Flask, brand: BrandKeys, clock: FrozenClock) -> None:
    member_id, _ = _enroll(app, clock, brand)
    clock.advance(days=396)
    assert _expire(app, clock) == 1
    assert _expire(app, clock) == 0
    assert _points(app, member_id) == 0
    assert _entries(app, member_id, "expire") == [(-50, "points expired")]
    assert _verify(app) == []


def test_lots_expire_exactly_at_their_expiry_time(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, _ = _enroll(app, clock, brand)
    enrolled = clock()
    clock.now = enrolled.replace(year=enrolled.year + 1) - timedelta(seconds=1)
    assert _expire(app, clock) == 0
    assert _points(app, member_id) == 50
    clock.now = enrolled.replace(year=enrolled.year + 1)
    assert _expire(app, clock) == 1
    assert _points(app, member_id) == 0


def test_lot_earned_on_29_february_expires_on_28_february(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    clock.now = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    member_id, _ = _enroll(app, clock, brand)
    with services_of(app).db.transaction() as session:
        lot = session.scalars(select(LedgerEntry).where(LedgerEntry.member_id == member_id)).one()
        assert lot.expires_at == datetime(2029, 2, 28, 12, 0, tzinfo=UTC)


def test_expiry_only_touches_members_with_due_lots(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    old_id, _ = _enroll(app, clock, brand)
    clock.advance(days=200)
    new_id, _ = _enroll(app, clock, brand)
    clock.advance(days=200)
    assert _expire(app, clock) == 1
    assert (_points(app, old_id), _points(app, new_id)) == (0, 50)


def test_birthday_bonus_is_given_once_a_year(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    today = clock().date()
    birthday_id, _ = _enroll(app, clock, brand, birthday=today.replace(year=1990))
    tomorrow_id, _ = _enroll(app, clock, brand, birthday=date(1990, 3, 11))
    no_birthday_id, _ = _enroll(app, clock, brand)

    assert _birthdays(app, clock) == 1
    assert _points(app, birthday_id) == 150
    assert _birthdays(app, clock) == 0
    clock.advance(hours=6)
    assert _birthdays(app, clock) == 0
    assert _points(app, birthday_id) == 150
    assert (_points(app, tomorrow_id), _points(app, no_birthday_id)) == (50, 50)

    clock.advance(days=365)  # the same date next year
    assert clock().date() == today.replace(year=today.year + 1)
    assert _birthdays(app, clock) == 1
    assert _points(app, birthday_id) == 250
    assert _entries(app, birthday_id, "bonus") == [
        (50, "welcome"),
        (100, "birthday"),
        (100, "birthday"),
    ]
    assert _verify(app) == []


def test_29_february_birthday_is_celebrated_on_28_february_in_other_years(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    clock.now = datetime(2027, 2, 28, 9, 0, tzinfo=UTC)
    leapling_id, _ = _enroll(app, clock, brand, birthday=date(2000, 2, 29))
    feb_28_id, _ = _enroll(app, clock, brand, birthday=date(1999, 2, 28))

    assert _birthdays(app, clock) == 2
    assert (_points(app, leapling_id), _points(app, feb_28_id)) == (150, 150)
    clock.now = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert _birthdays(app, clock) == 0
    assert _points(app, leapling_id) == 150


def test_29_february_birthday_waits_for_29_february_in_leap_years(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    clock.now = datetime(2028, 2, 28, 9, 0, tzinfo=UTC)
    leapling_id, _ = _enroll(app, clock, brand, birthday=date(2000, 2, 29))
    assert _birthdays(app, clock) == 0
    clock.now = datetime(2028, 2, 29, 9, 0, tzinfo=UTC)
    assert _birthdays(app, clock) == 1
    assert _points(app, leapling_id) == 150
    assert _birthdays(app, clock) == 0


def test_scans_never_downgrade_but_reevaluation_does(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, barcode = _enroll(app, clock, brand)
    bystander_id, _ = _enroll(app, clock, brand)
    assert _scan(app, clock, brand, barcode, "600.00", "s1")["tier"] == "Gold"
    assert _reevaluate(app, clock, brand) == 0
    assert _tier(app, member_id) == "Gold"

    clock.advance(days=366)  # the 600.00 leaves the 12-month window
    body = _scan(app, clock, brand, barcode, "10.00", "s2")
    assert (body["tier"], body["points_earned"]) == ("Gold", 12)

    assert _reevaluate(app, clock, brand) == 1
    assert _tier(app, member_id) == "Silver"
    assert _tier(app, bystander_id) == "Silver"
    assert _reevaluate(app, clock, brand) == 0
    assert _scan(app, clock, brand, barcode, "10.00", "s3")["points_earned"] == 10


def test_reevaluation_keeps_spend_inside_the_window(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, barcode = _enroll(app, clock, brand)
    _scan(app, clock, brand, barcode, "600.00", "s1")
    clock.advance(days=364)
    assert _reevaluate(app, clock, brand) == 0
    assert _tier(app, member_id) == "Gold"


def test_reversed_spend_downgrades_at_once(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    # Issue 12: a refund re-evaluates the tier at once (it used to wait for the nightly job).
    member_id, barcode = _enroll(app, clock, brand)
    scan_id = _scan(app, clock, brand, barcode, "600.00", "s1")["scan_id"]
    assert _tier(app, member_id) == "Gold"
    with services_of(app).db.transaction() as session:
        ledger.reverse_scan(session, ledger.Actor(brand.brand_id), scan_id, _ctx(app, clock))
    assert _tier(app, member_id) == "Silver"
    assert _reevaluate(app, clock, brand) == 0


def test_verify_ledger_finds_a_corrupted_balance(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, barcode = _enroll(app, clock, brand)
    other_id, _ = _enroll(app, clock, brand)
    _scan(app, clock, brand, barcode, "25.00", "s1")
    assert _verify(app) == []

    with services_of(app).db.transaction() as session:
        session.execute(
            text("UPDATE members SET points = points + 7 WHERE id = :id"), {"id": member_id}
        )
    assert _verify(app) == [ledger.Mismatch(member_id=member_id, cached=82, ledger=75)]
    assert other_id not in [m.member_id for m in _verify(app)]


def test_verify_ledger_finds_a_balance_without_entries(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, _ = _enroll(app, clock, brand)
    with services_of(app).db.transaction() as session:
        session.execute(text("DELETE FROM ledger_entries WHERE member_id = :id"), {"id": member_id})
    assert _verify(app) == [ledger.Mismatch(member_id=member_id, cached=50, ledger=0)]


def test_adjust_points_adds_and_removes_with_a_reason(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, _ = _enroll(app, clock, brand)
    body = _adjust(app, clock, brand, member_id, 25, "  goodwill  ")
    assert (body["member_id"], body["balance"]) == (member_id, 75)
    assert _adjust(app, clock, brand, member_id, -75, "typo at the till")["balance"] == 0
    assert _entries(app, member_id, "adjust") == [(25, "goodwill"), (-75, "typo at the till")]
    assert _verify(app) == []


def test_adjust_points_may_not_go_below_zero(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, _ = _enroll(app, clock, brand)
    with pytest.raises(InsufficientPointsError):
        _adjust(app, clock, brand, member_id, -51, "too much")
    assert _points(app, member_id) == 50
    assert _entries(app, member_id, "adjust") == []


INVALID_ADJUSTMENTS: list[tuple[Any, Any, str]] = [
    (0, "zero", "points"),
    (True, "bool", "points"),
    ("5", "text", "points"),
    (1.5, "float", "points"),
    (10_000_001, "huge", "points"),
    (-10_000_001, "huge", "points"),
    (5, "", "reason"),
    (5, "   ", "reason"),
    (5, None, "reason"),
    (5, 42, "reason"),
    (5, "x" * 201, "reason"),
]


def test_adjust_points_refuses_invalid_input(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member_id, _ = _enroll(app, clock, brand)
    for points, reason, field in INVALID_ADJUSTMENTS:
        with pytest.raises(ValidationError) as caught:
            _adjust(app, clock, brand, member_id, points, reason)
        assert caught.value.field == field, (points, reason)
    assert _points(app, member_id) == 50
    assert _entries(app, member_id, "adjust") == []


def test_adjust_points_of_another_brand_is_not_found(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    other = make_brand(app, "Other Brand")
    member_id, _ = _enroll(app, clock, brand)
    for target in (member_id, 999_999):
        with pytest.raises(NotFoundError):
            _adjust(app, clock, other, target, 10, "not yours")
    assert _points(app, member_id) == 50
