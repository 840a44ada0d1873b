"""Ledger hardening: client keys apart from walletd's own, referral qualification and clawback,
64-bit balances with bounds, and nothing but domain errors for any JSON value."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from tests.conftest import POSTGRES_URL, private_postgres_database
from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd.errors import (
    AlreadyReversedError,
    IdempotencyConflictError,
    ValidationError,
    WalletdError,
)
from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.money import format_minor
from walletd.loyalty.programs import ProgramChanges, referral_min_purchase_text, update_program
from walletd.models import LedgerEntry, Member, Program
from walletd.schema import downgrade, upgrade

T = TypeVar("T")
# The largest balance walletd keeps: every JSON client reads it exactly (2**53 - 1).
MAX_BALANCE = 2**53 - 1

# Function-scoped fixtures (one app and database per test) are shared by a test's examples on
# purpose: every example makes its own brand, so examples never see each other's members.
GENERATED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every shape of key walletd derives itself; `{id}` is the member the bonus is for.
INTERNAL_KEY_SHAPES = (
    "welcome:{id}",
    "birthday:{id}:{year}",
    "referral:referee:{id}",
    "referral:referrer:{id}",
)
VISIBLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
# JSON values as the web layer hands them over (numbers of any size, Decimals for fractions),
# plus the floats, NaNs and nested containers a careless caller could pass.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.floats()
    | st.text(max_size=300),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@dataclass(frozen=True)
class Enrolled:
    """A member made by a test: id, card barcode and referral code."""

    id: int
    barcode: str
    referral_code: str


def _ctx(app: Flask, clock: FrozenClock) -> Context:
    return Context(now=clock(), secret_key=services_of(app).settings.secret_key)


def _run(app: Flask, work: Callable[[Session], T]) -> T:
    with services_of(app).db.transaction() as session:
        return work(session)


def _brand(app: Flask, **program: Any) -> BrandKeys:
    """A brand of its own (default program: welcome 50, birthday 100, referral 100/50)."""
    brand = make_brand(app, f"Brand {uuid.uuid4().hex[:8]}")

    def change(session: Session) -> None:
        row = session.get_one(Program, brand.program_id)
        for name, value in program.items():
            setattr(row, name, value)

    _run(app, change)
    return brand


def _enroll(
    app: Flask,
    clock: FrozenClock,
    brand: BrandKeys,
    *,
    referral_code: str | None = None,
    birthday: date | None = None,
) -> Enrolled:
    def work(session: Session) -> Enrolled:
        enrollment = Enrollment(name="Ada", birthday=birthday, referral_code=referral_code)
        member, card = enroll_member(session, brand.brand_id, enrollment, _ctx(app, clock))
        return Enrolled(member.id, card.barcode, member.referral_code)

    return _run(app, work)


def _scan(
    app: Flask, clock: FrozenClock, brand: BrandKeys, barcode: str, amount: object, key: object
) -> ledger.Outcome:
    return _run(
        app,
        lambda s: ledger.credit_scan(
            s,
            ledger.Actor(brand.brand_id),
            barcode=barcode,
            amount=amount,
            currency=None,
            location_id=None,
            idempotency_key=key,
            ctx=_ctx(app, clock),
        ),
    )


def _redeem(
    app: Flask, clock: FrozenClock, brand: BrandKeys, barcode: str, points: int
) -> ledger.Outcome:
    return _run(
        app,
        lambda s: ledger.redeem(
            s,
            ledger.Actor(brand.brand_id),
            barcode=barcode,
            points=points,
            reward_id=None,
            idempotency_key=f"redeem-{uuid.uuid4().hex}",
            ctx=_ctx(app, clock),
        ),
    )


def _reverse(app: Flask, clock: FrozenClock, brand: BrandKeys, scan_id: object) -> ledger.Outcome:
    return _run(
        app,
        lambda s: ledger.reverse_scan(
            s,
            ledger.Actor(brand.brand_id),
            scan_id,
            _ctx(app, clock),
        ),
    )


def _balance(app: Flask, member_id: int) -> int:
    return _run(app, lambda s: s.get_one(Member, member_id).points)


def _bonuses(app: Flask, member_id: int, reason: str) -> list[int]:
    rows = _run(
        app,
        lambda s: s.scalars(
            select(LedgerEntry.points)
            .where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.kind == "bonus",
                LedgerEntry.reason == reason,
            )
            .order_by(LedgerEntry.id)
        ).all(),
    )
    return list(rows)


def _assert_books_balance(app: Flask) -> None:
    """Every cached balance is its ledger's sum; unspent lots hold exactly the positive part."""

    def check(session: Session) -> None:
        assert ledger.verify_ledger(session) == []
        lots: dict[int, int | None] = dict(
            session.execute(
                select(LedgerEntry.member_id, func.sum(LedgerEntry.remaining)).group_by(
                    LedgerEntry.member_id
                )
            )
            .tuples()
            .all()
        )
        for member_id, points in session.execute(select(Member.id, Member.points)).all():
            assert int(lots.get(member_id) or 0) == max(points, 0), member_id

    _run(app, check)


# --- 1. client Idempotency-Keys never meet walletd's own keys ----------------------------------


@GENERATED
@given(data=st.data())
def test_no_client_key_blocks_or_replays_a_welcome_birthday_or_referral_bonus(
    app: Flask, clock: FrozenClock, data: st.DataObject
) -> None:
    brand = _brand(app, referral_min_purchase_minor=0)
    referrer = _enroll(app, clock, brand)
    payer = _enroll(app, clock, brand)
    referee_id = payer.id + 1  # the member enrolled next, whose bonuses the key aims at
    shapes = st.sampled_from(INTERNAL_KEY_SHAPES).map(
        lambda shape: shape.format(id=referee_id, year=clock().year)
    )
    referrer_shapes = st.sampled_from(INTERNAL_KEY_SHAPES).map(
        lambda shape: shape.format(id=referrer.id, year=clock().year)
    )
    key = data.draw(
        shapes | referrer_shapes | st.text(VISIBLE_ASCII, min_size=1, max_size=200), label="key"
    )
    first = _scan(app, clock, brand, payer.barcode, "1.00", key)

    referee = _enroll(
        app, clock, brand, referral_code=referrer.referral_code, birthday=clock().date()
    )
    assert referee.id == referee_id
    own_key = f"own-{uuid.uuid4().hex}"
    _scan(app, clock, brand, referee.barcode, "10.00", own_key)
    _run(app, lambda s: ledger.grant_birthday_bonuses(s, _ctx(app, clock)))

    assert _bonuses(app, referee.id, "welcome") == [50]
    assert _bonuses(app, referee.id, "birthday") == [100]
    assert _bonuses(app, referee.id, "referral") == [50]
    assert _bonuses(app, referrer.id, "referral") == [100]

    replay = _scan(app, clock, brand, payer.barcode, "1.00", key)
    assert replay.replayed and replay.body == first.body
    with pytest.raises(IdempotencyConflictError):
        _scan(app, clock, brand, payer.barcode, "2.00", key)

    # A key naming bonuses that exist now is a fresh key: neither a replay nor a conflict.
    late = data.draw(shapes | referrer_shapes, label="late key")
    if late != key:
        fresh = _scan(app, clock, brand, payer.barcode, "3.00", late)
        assert not fresh.replayed and fresh.body["points_earned"] == 3
    _assert_books_balance(app)


@GENERATED
@given(key=st.text(max_size=260) | st.text(VISIBLE_ASCII, min_size=190, max_size=210))
def test_a_client_key_is_1_to_200_visible_ascii_characters_or_a_422_naming_the_header(
    app: Flask, clock: FrozenClock, key: str
) -> None:
    brand = _brand(app)
    member = _enroll(app, clock, brand)
    stripped = key.strip()
    valid = 1 <= len(stripped) <= 200 and all(" " <= ch <= "~" for ch in stripped)
    if valid:
        assert _scan(app, clock, brand, member.barcode, "1.00", key).body["points_earned"] == 1
    else:
        with pytest.raises(ValidationError) as caught:
            _scan(app, clock, brand, member.barcode, "1.00", key)
        assert caught.value.field == "Idempotency-Key"
        assert _balance(app, member.id) == 50


# --- 2. referral: a minimum qualifying purchase, and a clawback on refund ----------------------


@GENERATED
@given(
    minimum=st.integers(min_value=0, max_value=5_000),
    amounts=st.lists(st.integers(min_value=1, max_value=6_000), min_size=1, max_size=4),
)
def test_referral_pays_once_on_the_first_purchase_at_or_above_the_minimum(
    app: Flask, clock: FrozenClock, minimum: int, amounts: list[int]
) -> None:
    brand = _brand(app, referral_min_purchase_minor=minimum)
    referrer = _enroll(app, clock, brand)
    referee = _enroll(app, clock, brand, referral_code=referrer.referral_code)
    scan_ids = [
        _scan(app, clock, brand, referee.barcode, format_minor(amount, "USD"), f"s{i}").body[
            "scan_id"
        ]
        for i, amount in enumerate(amounts)
    ]
    qualifying = next((i for i, amount in enumerate(amounts) if amount >= minimum), None)
    paid = qualifying is not None
    assert _bonuses(app, referee.id, "referral") == ([50] if paid else [])
    assert _bonuses(app, referrer.id, "referral") == ([100] if paid else [])
    if qualifying is not None:
        earned_by = _run(
            app,
            lambda s: set(
                s.scalars(
                    select(LedgerEntry.earned_by_id).where(
                        LedgerEntry.reason == "referral",
                        LedgerEntry.member_id.in_((referrer.id, referee.id)),
                    )
                ).all()
            ),
        )
        assert earned_by == {scan_ids[qualifying]}
    _assert_books_balance(app)


@GENERATED
@given(
    referrer_spends=st.integers(min_value=0, max_value=150),
    referee_spends=st.integers(min_value=0, max_value=115),
    refund_small_first=st.booleans(),
)
def test_reversing_the_qualifying_purchase_claws_both_bonuses_back_exactly_once(
    app: Flask,
    clock: FrozenClock,
    referrer_spends: int,
    referee_spends: int,
    refund_small_first: bool,
) -> None:
    brand = _brand(app, referral_min_purchase_minor=1_000)
    referrer = _enroll(app, clock, brand)  # 50
    referee = _enroll(app, clock, brand, referral_code=referrer.referral_code)  # 50
    small = _scan(app, clock, brand, referee.barcode, "5.00", "small").body["scan_id"]  # 55
    assert _bonuses(app, referee.id, "referral") == []
    qualifying = _scan(app, clock, brand, referee.barcode, "10.00", "big").body["scan_id"]
    assert (_balance(app, referee.id), _balance(app, referrer.id)) == (115, 150)
    if referrer_spends:
        _redeem(app, clock, brand, referrer.barcode, referrer_spends)
    if referee_spends:
        _redeem(app, clock, brand, referee.barcode, referee_spends)
    referee_balance = 115 - referee_spends
    if refund_small_first:
        _reverse(app, clock, brand, small)
        referee_balance -= min(5, referee_balance)
        assert _balance(app, referrer.id) == 150 - referrer_spends

    body = _reverse(app, clock, brand, qualifying).body
    # The purchase's own points come back as far as the balance allows; the bonuses in full.
    referee_balance -= min(10, referee_balance) + 50
    assert body["balance"] == _balance(app, referee.id) == referee_balance
    assert _balance(app, referrer.id) == 150 - referrer_spends - 100

    clawbacks = _run(
        app,
        lambda s: s.execute(
            select(LedgerEntry.member_id, LedgerEntry.points, LedgerEntry.reverses_id)
            .where(LedgerEntry.earned_by_id == qualifying, LedgerEntry.kind == "reversal")
            .order_by(LedgerEntry.member_id)
        ).all(),
    )
    bonus_ids = _run(
        app,
        lambda s: dict(
            s.execute(
                select(LedgerEntry.member_id, LedgerEntry.id).where(
                    LedgerEntry.earned_by_id == qualifying, LedgerEntry.kind == "bonus"
                )
            )
            .tuples()
            .all()
        ),
    )
    assert sorted((m, p, r) for m, p, r in clawbacks) == sorted(
        [(referrer.id, -100, bonus_ids[referrer.id]), (referee.id, -50, bonus_ids[referee.id])]
    )

    before = (_balance(app, referee.id), _balance(app, referrer.id))
    with pytest.raises(AlreadyReversedError):
        _reverse(app, clock, brand, qualifying)
    assert (_balance(app, referee.id), _balance(app, referrer.id)) == before

    # The referral is spent: a later qualifying purchase pays no second bonus, and whatever a
    # member owes is repaid from new points before they become spendable lots.
    _scan(app, clock, brand, referee.barcode, "20.00", "again")
    assert _bonuses(app, referee.id, "referral") == [50]
    assert _bonuses(app, referrer.id, "referral") == [100]
    assert _balance(app, referee.id) == before[0] + 20
    _scan(app, clock, brand, referrer.barcode, "70.00", "referrer-buys")
    assert _balance(app, referrer.id) == before[1] + 70
    _assert_books_balance(app)


def test_a_member_in_debt_cannot_redeem_and_repays_before_spending(
    app: Flask, clock: FrozenClock
) -> None:
    brand = _brand(app, referral_min_purchase_minor=0)
    referrer = _enroll(app, clock, brand)
    referee = _enroll(app, clock, brand, referral_code=referrer.referral_code)
    scan_id = _scan(app, clock, brand, referee.barcode, "1.00", "s1").body["scan_id"]
    _redeem(app, clock, brand, referrer.barcode, 150)
    _reverse(app, clock, brand, scan_id)
    assert _balance(app, referrer.id) == -100
    with pytest.raises(WalletdError) as caught:
        _redeem(app, clock, brand, referrer.barcode, 1)
    assert caught.value.code == "insufficient_points"
    _scan(app, clock, brand, referrer.barcode, "130.00", "s2")
    assert _balance(app, referrer.id) == 30
    _redeem(app, clock, brand, referrer.barcode, 30)
    clock.advance(days=800)  # every lot expired: nothing is left to expire
    _run(app, lambda s: ledger.expire_due_lots(s, _ctx(app, clock)))
    assert _balance(app, referrer.id) == 0
    _assert_books_balance(app)


def _program_form(minimum: str | None) -> ProgramChanges:
    return ProgramChanges(
        name="Acme Club", points_per_unit="1", rounding="floor", welcome_bonus="50",
        birthday_bonus="100", referral_bonus_referrer="100", referral_bonus_referee="50",
        points_expiry_months="12", tier_basis="spend", background_color="#000000",
        foreground_color="#FFFFFF", label_color="#CCCCCC", template="default",
        referral_min_purchase=minimum,
    )  # fmt: skip


@GENERATED
@given(minimum=st.text(max_size=20) | st.decimals(0, 10**10, places=3).map(str))
def test_the_referral_minimum_is_set_in_major_units_or_refused_as_its_field(
    app: Flask, clock: FrozenClock, minimum: str
) -> None:
    brand = _brand(app, referral_min_purchase_minor=123)

    def update(session: Session) -> int:
        update_program(session, brand.brand_id, brand.program_id, _program_form(minimum),
                       _ctx(app, clock), templates=["default"])  # fmt: skip
        return session.get_one(Program, brand.program_id).referral_min_purchase_minor

    try:
        stored = _run(app, update)
    except ValidationError as exc:
        assert exc.field == "referral_min_purchase"
        return
    if not minimum.strip():
        assert stored == 123
    else:
        assert stored == Decimal(minimum.strip()) * 100
        assert 0 <= stored <= 10**11


def test_a_new_brand_pays_referrals_from_5_units_and_a_form_without_the_field_keeps_it(
    app: Flask, clock: FrozenClock
) -> None:
    brand = _brand(app)
    _run(app, lambda s: update_program(s, brand.brand_id, brand.program_id, _program_form(None),
                                       _ctx(app, clock), templates=["default"]))  # fmt: skip
    program = _run(app, lambda s: s.get_one(Program, brand.program_id))
    assert program.referral_min_purchase_minor == 500
    assert referral_min_purchase_text(program) == "5.00"


# --- 3. 64-bit balances, bounded by what every client can read --------------------------------


@GENERATED
@given(
    rate=st.just(Decimal(1000)) | st.decimals(min_value=0, max_value=1000, places=4),
    amounts=st.lists(
        st.integers(min_value=10**12, max_value=10**16 - 1)
        | st.integers(min_value=1, max_value=10**20)
        | st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**16), places=2),
        min_size=1,
        max_size=4,
    ),
    adjustments=st.lists(st.integers(min_value=-(10**30), max_value=10**30), max_size=3),
)
def test_huge_purchases_and_adjustments_are_credited_exactly_or_refused_as_field_errors(
    app: Flask, clock: FrozenClock, rate: Decimal, amounts: list[Any], adjustments: list[int]
) -> None:
    brand = _brand(app, points_per_unit=rate, max_amount_minor=2**63 - 1)
    member = _enroll(app, clock, brand)
    expected = 50
    for index, amount in enumerate(amounts):
        try:
            body = _scan(app, clock, brand, member.barcode, amount, f"s{index}").body
        except ValidationError as exc:
            assert exc.field == "amount"
            continue
        expected += body["points_earned"]
        assert body["balance"] == expected <= MAX_BALANCE
    for points in adjustments:

        def adjust(session: Session, points: int = points) -> ledger.Outcome:
            actor = ledger.Actor(brand.brand_id)
            return ledger.adjust_points(session, actor, member.id, points, "fix", _ctx(app, clock))

        try:
            _run(app, adjust)
        except WalletdError as exc:
            assert exc.field == "points" or exc.code == "insufficient_points"
            continue
        expected += points
    assert _balance(app, member.id) == expected
    _assert_books_balance(app)


def test_a_balance_stops_at_2_53_points(app: Flask, clock: FrozenClock) -> None:
    brand = _brand(app, points_per_unit=Decimal(1000), max_amount_minor=2**63 - 1)
    member = _enroll(app, clock, brand)
    top = MAX_BALANCE - 50
    amount = format_minor(top // 1000 * 100, "USD")  # 1000 points per unit
    assert _scan(app, clock, brand, member.barcode, amount, "s1").body["balance"] > 2**31
    with pytest.raises(ValidationError) as caught:
        _scan(app, clock, brand, member.barcode, "1000.00", "s2")
    assert caught.value.field == "amount"
    assert _balance(app, member.id) == 50 + top // 1000 * 1000
    _assert_books_balance(app)


# --- 4. any JSON value reaching a ledger use case is a domain error at worst ------------------


def _either(valid: object) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), JSON_VALUES)


@FUZZ
@given(data=st.data())
def test_ledger_use_cases_raise_only_domain_errors_for_any_json_values(
    app: Flask, clock: FrozenClock, data: st.DataObject
) -> None:
    brand = _brand(app)
    member = _enroll(app, clock, brand)
    scan_id = _scan(app, clock, brand, member.barcode, "10.00", "seed").body["scan_id"]
    location_id, reward_id = _run(
        app,
        lambda s: (
            s.scalar(
                text("SELECT min(id) FROM locations WHERE brand_id = :b"), {"b": brand.brand_id}
            ),
            s.scalar(
                text("SELECT min(id) FROM rewards WHERE program_id = :p"), {"p": brand.program_id}
            ),
        ),
    )
    actor = ledger.Actor(brand.brand_id)
    ctx = _ctx(app, clock)
    key = _either(f"k-{uuid.uuid4().hex}")
    calls: dict[str, Callable[[Session], object]] = {
        "credit_scan": lambda s: ledger.credit_scan(
            s,
            actor,
            barcode=data.draw(_either(member.barcode), label="barcode"),
            amount=data.draw(_either("12.50"), label="amount"),
            currency=data.draw(_either("USD"), label="currency"),
            location_id=data.draw(_either(location_id), label="location_id"),
            idempotency_key=data.draw(key, label="key"),
            ctx=ctx,
        ),
        "redeem": lambda s: ledger.redeem(
            s,
            actor,
            barcode=data.draw(_either(member.barcode), label="barcode"),
            points=data.draw(_either(5), label="points"),
            reward_id=data.draw(_either(reward_id), label="reward_id"),
            idempotency_key=data.draw(key, label="key"),
            ctx=ctx,
        ),
        "reverse_scan": lambda s: ledger.reverse_scan(
            s, actor, data.draw(_either(scan_id), label="scan_id"), ctx
        ),
        "adjust_points": lambda s: ledger.adjust_points(
            s,
            actor,
            data.draw(_either(member.id), label="member_id"),
            data.draw(_either(7), label="points"),
            data.draw(_either("goodwill"), label="reason"),
            ctx,
        ),
    }
    name = data.draw(st.sampled_from(sorted(calls)), label="use case")
    try:
        _run(app, calls[name])
    except WalletdError:
        pass
    _assert_books_balance(app)


# --- the migration: models agree, and existing rows survive both ways -------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("WALLETD_TEST_DATABASE_URL is not set: Postgres tests need a server")
    with private_postgres_database(POSTGRES_URL) as url:
        yield url


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql))
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def test_migration_0004_keeps_every_row_and_moves_bonus_keys_apart(empty_database: str) -> None:
    url = empty_database
    upgrade(url, "0003")
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO brands (id, name, created_at) VALUES (1, 'B', '2026-01-01')"))
        c.execute(
            text(
                "INSERT INTO programs (id, brand_id, name, currency, points_per_unit, rounding,"
                " max_amount_minor, welcome_bonus, birthday_bonus, referral_bonus_referrer,"
                " referral_bonus_referee, tier_basis, template, background_color,"
                " foreground_color, label_color, timezone, messages_per_week_cap,"
                " quiet_hours_start, quiet_hours_end, created_at, updated_at) VALUES (1, 1, 'P',"
                " 'USD', '1', 'floor', 1000, 50, 0, 0, 0, 'spend', 'default', '#000000',"
                " '#FFFFFF', '#FFFFFF', 'UTC', 3, 21, 9, '2026-01-01', '2026-01-01')"
            )
        )
        for member_id, referred_by in ((1, "NULL"), (2, "1")):
            c.execute(
                text(
                    "INSERT INTO members (id, brand_id, program_id, name, marketing_consent,"
                    " referral_code, referred_by_id, points, lifetime_spend_minor, visits,"
                    f" created_at) VALUES ({member_id}, 1, 1, 'M', false, 'R{member_id}',"
                    f" {referred_by}, 60, 1000, 1, '2026-01-01')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO cards (id, brand_id, member_id, serial_number, auth_token,"
                    " barcode, update_tag, updated_at, created_at) VALUES"
                    f" ({member_id}, 1, {member_id}, 'S{member_id}', 't', 'B{member_id}', 0,"
                    " '2026-01-01', '2026-01-01')"
                )
            )
        entries = (
            # id, member, kind, points, key, hash, reverses
            (1, 1, "bonus", 50, "'welcome:1'", "NULL", "NULL"),
            (2, 1, "earn", 20, "'welcome:2'", "'h1'", "NULL"),
            (3, 1, "reversal", -10, "NULL", "NULL", "2"),
            (4, 2, "bonus", 100, "'birthday:2:2026'", "NULL", "NULL"),
            (5, 2, "earn", 10, "'till-1'", "'h2'", "NULL"),
        )
        for entry_id, member_id, kind, points, key, digest, reverses in entries:
            c.execute(
                text(
                    "INSERT INTO ledger_entries (id, brand_id, member_id, kind, points,"
                    " idempotency_key, request_hash, reverses_id, remaining, created_at) VALUES"
                    f" ({entry_id}, 1, {member_id}, '{kind}', {points}, {key}, {digest},"
                    f" {reverses}, 0, '2026-01-01')"
                )
            )
    engine.dispose()
    everything = (
        "SELECT id, member_id, kind, points, reverses_id FROM ledger_entries ORDER BY id",
        "SELECT id, member_id FROM cards ORDER BY id",
        "SELECT id, referred_by_id, points FROM members ORDER BY id",
    )
    before = [_rows(url, sql) for sql in everything]

    upgrade(url, "0004")
    assert [_rows(url, sql) for sql in everything] == before
    assert _rows(
        url, "SELECT id, idempotency_key, internal_key FROM ledger_entries ORDER BY id"
    ) == [
        (1, None, "welcome:1"),
        (2, "welcome:2", None),
        (3, None, None),
        (4, None, "birthday:2:2026"),
        (5, "till-1", None),
    ]
    assert _rows(url, "SELECT referral_min_purchase_minor FROM programs") == [(0,)]
    big = 2**53 - 1
    _rows(url, f"UPDATE members SET points = {big} WHERE id = 2")
    assert _rows(url, "SELECT points FROM members WHERE id = 2") == [(big,)]
    _rows(url, "UPDATE members SET points = 60 WHERE id = 2")
    # Since 0004 a client may use a key equal to an internal one.
    _rows(
        url,
        "INSERT INTO ledger_entries (id, brand_id, member_id, kind, points, idempotency_key,"
        " request_hash, remaining, created_at) VALUES (6, 1, 2, 'earn', 0, 'birthday:2:2026',"
        " 'h3', 0, '2026-01-02')",
    )

    downgrade(url, "0003")
    assert [_rows(url, sql)[:5] for sql in everything[:1]] == before[:1]
    assert [_rows(url, sql) for sql in everything[1:]] == before[1:]
    assert _rows(url, "SELECT id, idempotency_key FROM ledger_entries ORDER BY id") == [
        (1, "welcome:1"),
        (2, "welcome:2"),
        (3, None),
        (4, None),  # the client's key keeps its place; the bonus it guarded is paid
        (5, "till-1"),
        (6, "birthday:2:2026"),
    ]
    upgrade(url)


def test_models_and_migrations_agree_on_the_ledger_tables(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from walletd.db import Base

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    ours = {"members", "ledger_entries", "programs"}
    assert [d for d in diffs if ours & set(map(str, _flatten(d)))] == []


def _flatten(diff: Any) -> Iterator[Any]:
    if isinstance(diff, list | tuple):
        for part in diff:
            yield from _flatten(part)
    else:
        yield getattr(diff, "name", diff)
