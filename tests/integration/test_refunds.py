"""Refunds done right (issue 12): partial refunds, points in proportion, shortfalls, the tier at
once, the visit back on a full refund, reports net of refunds, redemption reversals,
idempotency, the cashiers' window and brand isolation."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from tests.conftest import POSTGRES_URL, SECRET, private_postgres_database
from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd import create_app
from walletd.config import Settings
from walletd.models import Coupon, LedgerEntry, Member, Offer, Program
from walletd.models.audit import AuditEntry
from walletd.offers.catalog import OfferInput, create_offer
from walletd.offers.coupons import issue_coupon
from walletd.refunds import points_due
from walletd.schema import downgrade, upgrade

KEYS = itertools.count()


def _scan(client: FlaskClient, brand: BrandKeys, barcode: str, amount: str) -> dict[str, Any]:
    response = scan(client, brand, barcode, amount, f"scan-{next(KEYS)}")
    assert response.status_code == 201, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _refund(
    client: FlaskClient,
    headers: dict[str, str],
    scan_id: int,
    amount: str | None = None,
    key: str | None = None,
) -> Any:
    extra = {} if key is None else {"Idempotency-Key": key}
    body = None if amount is None else {"amount": amount}
    return client.post(f"/api/v1/scans/{scan_id}/reversal", json=body, headers={**headers, **extra})


def _reverse_redemption(
    client: FlaskClient, headers: dict[str, str], redemption_id: int, key: str | None = None
) -> Any:
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        f"/api/v1/redemptions/{redemption_id}/reversal", headers={**headers, **extra}
    )


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _error(response: Any) -> tuple[int, str, str | None]:
    error = response.get_json()["error"]
    return response.status_code, error["code"], error.get("field")


def _member(app: Flask, member_id: int) -> Member:
    with services_of(app).db.transaction() as session:
        member = session.get_one(Member, member_id)
        session.expunge(member)
        return member


def _tier(client: FlaskClient, brand: BrandKeys, member_id: int) -> str:
    body = _ok(client.get(f"/api/v1/members/{member_id}", headers=brand.admin), 200)
    return str(body["tier"])


def _summary(client: FlaskClient, brand: BrandKeys, day: str) -> dict[str, Any]:
    return _ok(
        client.get(
            "/api/v1/reports/summary", query_string={"from": day, "to": day}, headers=brand.admin
        ),
        200,
    )


# --- points in proportion ------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    points=st.integers(min_value=0, max_value=10_000_000),
    amount=st.integers(min_value=1, max_value=10**12),
    cuts=st.lists(st.integers(min_value=1, max_value=10**12), max_size=8),
)
def test_points_due_is_cumulative_ceil_and_never_above_the_scans_points(
    points: int, amount: int, cuts: list[int]
) -> None:
    refunded = 0
    taken = 0
    for cut in [*cuts, amount]:
        step = min(cut, amount - refunded)
        if step <= 0:
            break
        due = points_due(points, amount, refunded + step) - points_due(points, amount, refunded)
        assert due >= 0
        refunded += step
        taken += due
        # In the member's disfavour by less than one point, never more.
        exact = Decimal(points) * refunded / amount
        assert exact <= taken < exact + 1
        assert taken <= points
    assert refunded == amount and taken == points


def test_partial_refunds_take_points_back_in_proportion_until_the_scan_is_refunded(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)  # 50 welcome points
    scanned = _scan(client, brand, member["card"]["barcode"], "10.00")  # 10 points
    scan_id = scanned["scan_id"]
    first = _ok(_refund(client, brand.admin, scan_id, "3.33"))
    assert (first["points_reversed"], first["balance"], first["partial"]) == (4, 56, True)
    assert (first["amount"], first["refunded_total"], first["remaining_amount"]) == (
        "3.33", "3.33", "6.67",
    )  # fmt: skip
    second = _ok(_refund(client, brand.cashier, scan_id, "3.33"))
    assert (second["points_reversed"], second["refunded_total"]) == (3, "6.66")  # ceil 6.66 = 7
    # More than is left is refused, with the field, and changes nothing.
    assert _error(_refund(client, brand.admin, scan_id, "3.35")) == (422, "validation_error",
                                                                       "amount")  # fmt: skip
    for bad in ("0", "-1", "abc", "1.001"):
        assert _error(_refund(client, brand.admin, scan_id, bad))[0] == 422
    rest = _ok(_refund(client, brand.admin, scan_id))  # no body: the rest
    assert (rest["amount"], rest["points_reversed"], rest["partial"]) == ("3.34", 3, False)
    assert rest["remaining_amount"] == "0.00" and rest["balance"] == 50
    assert _error(_refund(client, brand.admin, scan_id)) == (409, "already_reversed", None)
    assert _error(_refund(client, brand.admin, scan_id, "0.01"))[:2] == (409, "already_reversed")
    with services_of(app).db.transaction() as session:
        rows = session.execute(
            select(LedgerEntry.points, LedgerEntry.amount_minor, LedgerEntry.reverses_id)
            .where(LedgerEntry.refund_of_id == scan_id)
            .order_by(LedgerEntry.id)
        ).all()
        assert [tuple(r) for r in rows] == [(-4, -333, None), (-3, -333, None), (-3, -334, scan_id)]
        assert session.get_one(LedgerEntry, scan_id).refunded_minor == 1000
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == scan_id)
        ).all()
        assert list(actions).count("scan.refunded") == 3
    assert _member(app, member["id"]).lifetime_spend_minor == 0


def test_a_refund_takes_only_what_the_balance_holds_and_records_the_shortfall(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    scan_id = _scan(client, brand, barcode, "10.00")["scan_id"]  # 60 points
    spent = client.post("/api/v1/redemptions", json={"barcode": barcode, "points": 55},
                        headers={**brand.cashier, "Idempotency-Key": "spend-55"})  # fmt: skip
    assert spent.status_code == 201
    body = _ok(_refund(client, brand.admin, scan_id, "8.00"))
    assert (body["points_reversed"], body["shortfall"], body["balance"]) == (5, 3, 0)
    rest = _ok(_refund(client, brand.admin, scan_id))
    assert (rest["points_reversed"], rest["shortfall"], rest["balance"]) == (0, 2, 0)
    assert _member(app, member["id"]).points == 0
    with services_of(app).db.transaction() as session:
        shortfalls = session.scalars(
            select(LedgerEntry.shortfall).where(LedgerEntry.refund_of_id == scan_id)
        ).all()
        assert sorted(s or 0 for s in shortfalls) == [2, 3]


# --- tier, visit, stamps, coupons -------------------------------------------------------------


def test_a_refund_takes_the_member_out_of_gold_at_once(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    scanned = _scan(client, brand, member["card"]["barcode"], "600.00")
    assert scanned["tier"] == "Gold"
    assert _ok(_refund(client, brand.cashier, scanned["scan_id"], "50.00"))["tier"] == "Gold"
    down = _ok(_refund(client, brand.cashier, scanned["scan_id"], "60.00"))  # 490 < 500
    assert down["tier"] == "Silver" and _tier(client, brand, member["id"]) == "Silver"


def test_the_visit_is_taken_back_only_on_a_full_refund(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    first_at = clock.now
    _scan(client, brand, barcode, "5.00")
    clock.advance(hours=2)
    second = _scan(client, brand, barcode, "20.00")["scan_id"]
    _ok(_refund(client, brand.admin, second, "19.99"))
    kept = _member(app, member["id"])
    assert (kept.visits, kept.last_visit_at) == (2, clock.now)
    _ok(_refund(client, brand.admin, second))
    after = _member(app, member["id"])
    assert (after.visits, after.last_visit_at, after.first_visit_at) == (1, first_at, first_at)
    assert after.lifetime_spend_minor == 500


def test_a_full_refund_takes_back_the_stamp_and_restores_discount_coupons(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    member = enroll(client, brand)
    with svc.db.transaction() as session:
        stamps = create_offer(session, brand.brand_id, OfferInput(
            program_id=brand.program_id, name="Free coffee", kind="free_item", item="Coffee",
        ), svc.context())  # fmt: skip
        off = create_offer(session, brand.brand_id, OfferInput(
            program_id=brand.program_id, name="5 off", kind="amount_off", value="5",
        ), svc.context())  # fmt: skip
        program = session.get_one(Program, brand.program_id)
        program.stamps_enabled, program.stamps_per_reward = True, 3
        program.stamps_offer_id = stamps.id
        coupon = issue_coupon(session, session.get_one(Offer, off.id),
                              session.get_one(Member, member["id"]), source="manual",
                              occasion="test", ctx=svc.context())  # fmt: skip
        assert coupon is not None
        coupon_barcode, coupon_id = coupon.barcode, coupon.id
    scanned = _scan(client, brand, member["card"]["barcode"], "12.00")
    assert scanned["stamps"] == {"count": 1, "of": 3}
    response = scan(client, brand, member["card"]["barcode"], "20.00", "with-coupon",
                    coupons=[coupon_barcode])  # fmt: skip
    with_coupon = _ok(response)
    assert _member(app, member["id"]).stamps == 2
    _ok(_refund(client, brand.admin, with_coupon["scan_id"], "1.00"))  # partial: nothing back
    assert _member(app, member["id"]).stamps == 2
    report = f"/api/v1/offers/{off.id}/report"
    net = _ok(client.get(report, headers=brand.admin), 200)
    assert (net["redeemed"], net["revenue"]) == (1, "19.00")  # the offer's revenue is net
    _ok(_refund(client, brand.admin, with_coupon["scan_id"]))
    assert _member(app, member["id"]).stamps == 1
    gone = _ok(client.get(report, headers=brand.admin), 200)
    assert (gone["redeemed"], gone["revenue"]) == (0, "0.00")
    with svc.db.transaction() as session:
        restored = session.get_one(Coupon, coupon_id)
        assert (restored.status, restored.redeemed_scan_id) == ("active", None)


def test_referral_bonuses_go_once_the_purchase_no_longer_qualifies(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    with services_of(app).db.transaction() as session:
        program = session.get_one(Program, brand.program_id)
        program.referral_bonus_referee, program.referral_bonus_referrer = 30, 40
        program.referral_min_purchase_minor = 1000
    referrer = enroll(client, brand)
    referee = enroll(client, brand, referral_code=referrer["referral_code"])
    scan_id = _scan(client, brand, referee["card"]["barcode"], "15.00")["scan_id"]
    assert _member(app, referrer["id"]).points == 90
    _ok(_refund(client, brand.admin, scan_id, "5.00"))  # 10.00 still qualifies
    assert _member(app, referrer["id"]).points == 90
    _ok(_refund(client, brand.admin, scan_id, "0.01"))  # 9.99 no longer does
    assert _member(app, referrer["id"]).points == 50
    _ok(_refund(client, brand.admin, scan_id))  # clawed back once only
    assert _member(app, referrer["id"]).points == 50


# --- reports ------------------------------------------------------------------------------------


def test_revenue_aov_and_repeat_rate_leave_refunds_out(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    day = clock.now.date().isoformat()
    ada = enroll(client, brand)
    bob = enroll(client, brand, name="Bob")
    _scan(client, brand, ada["card"]["barcode"], "10.00")
    again = _scan(client, brand, ada["card"]["barcode"], "30.00")["scan_id"]
    bobs = _scan(client, brand, bob["card"]["barcode"], "20.00")["scan_id"]
    before = _summary(client, brand, day)
    assert (before["revenue"], before["transactions"], before["repeat_customer_rate"]) == (
        "60.00", 3, 0.5,
    )  # fmt: skip
    _ok(_refund(client, brand.admin, bobs, "5.00"))
    _ok(_refund(client, brand.admin, again))
    after = _summary(client, brand, day)
    assert (after["revenue"], after["transactions"], after["active_members"]) == ("25.00", 2, 2)
    assert after["aov_new"] == "12.50"  # (10.00 + 15.00) / 2
    assert after["repeat_customer_rate"] == 0.0  # Ada's second purchase was refunded in full


# --- redemptions --------------------------------------------------------------------------------


def test_a_reward_redemption_reversal_recredits_exactly_the_points_spent(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    _scan(client, brand, barcode, "100.00")  # 150 points
    rewards = _ok(client.get("/api/v1/rewards", headers=brand.admin), 200)["rewards"]
    coffee = next(r for r in rewards if r["cost_points"] == 150)
    redeemed = _ok(client.post("/api/v1/redemptions", json={"barcode": barcode,
                   "reward_id": coffee["id"]}, headers={**brand.cashier,
                   "Idempotency-Key": "coffee"}))  # fmt: skip
    assert redeemed["balance"] == 0
    rid = redeemed["redemption_id"]
    body = _ok(_reverse_redemption(client, brand.cashier, rid, key="undo-1"))
    assert (body["points_restored"], body["balance"], body["redemption_id"]) == (150, 150, rid)
    assert _ok(_reverse_redemption(client, brand.cashier, rid, key="undo-1"), 200) == body
    assert _error(_reverse_redemption(client, brand.admin, rid))[:2] == (409, "already_reversed")
    assert _error(_reverse_redemption(client, brand.admin, rid, key="undo-2"))[:2] == (
        409, "already_reversed",
    )  # fmt: skip
    assert _member(app, member["id"]).points == 150
    # The points are a lot again: they can be spent.
    again = client.post("/api/v1/redemptions", json={"barcode": barcode, "points": 150},
                        headers={**brand.cashier, "Idempotency-Key": "coffee-2"})  # fmt: skip
    assert again.status_code == 201
    assert _error(_reverse_redemption(client, brand.admin, redeemed["member_id"]))[:2] == (
        404, "not_found",
    )  # fmt: skip


# --- idempotency, window, isolation ---------------------------------------------------------


def test_a_refund_is_idempotent_by_key(client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    scan_id = _ok(scan(client, brand, member["card"]["barcode"], "10.00", "till-1"))["scan_id"]
    first = _ok(_refund(client, brand.admin, scan_id, "2.00", key="r-1"))
    assert _ok(_refund(client, brand.admin, scan_id, "2.00", key="r-1"), 200) == first
    assert _error(_refund(client, brand.admin, scan_id, "3.00", key="r-1"))[:2] == (
        409, "idempotency_key_reused",
    )  # fmt: skip
    # A scan's key is not a refund's.
    assert _error(_refund(client, brand.admin, scan_id, "2.00", key="till-1"))[:2] == (
        409, "idempotency_key_reused",
    )  # fmt: skip
    full = _ok(_refund(client, brand.admin, scan_id, key="r-2"))
    assert full["amount"] == "8.00" and not full["partial"]
    assert _ok(_refund(client, brand.admin, scan_id, key="r-2"), 200) == full
    assert _ok(_refund(client, brand.admin, scan_id, "2.00", key="r-1"), 200) == first


def test_cashiers_refund_only_within_the_window(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    scan_id = _scan(client, brand, barcode, "10.00")["scan_id"]
    spent = _ok(client.post("/api/v1/redemptions", json={"barcode": barcode, "points": 5},
                            headers={**brand.cashier, "Idempotency-Key": "w-1"}))  # fmt: skip
    _ok(_refund(client, brand.cashier, scan_id, "1.00"))
    clock.advance(days=31)  # the default window is 30 days
    assert _error(_refund(client, brand.cashier, scan_id, "1.00"))[:2] == (403, "forbidden")
    assert _error(_reverse_redemption(client, brand.cashier, spent["redemption_id"]))[:2] == (
        403, "forbidden",
    )  # fmt: skip
    _ok(_refund(client, brand.admin, scan_id, "1.00"))
    _ok(_reverse_redemption(client, brand.admin, spent["redemption_id"]))


def test_another_brands_scans_and_redemptions_are_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other")
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    scan_id = _scan(client, brand, barcode, "10.00")["scan_id"]
    spent = _ok(client.post("/api/v1/redemptions", json={"barcode": barcode, "points": 5},
                            headers={**brand.cashier, "Idempotency-Key": "i-1"}))  # fmt: skip
    assert _error(_refund(client, other.admin, scan_id, "1.00"))[:2] == (404, "not_found")
    assert _error(_refund(client, other.cashier, scan_id))[:2] == (404, "not_found")
    assert _error(_reverse_redemption(client, other.admin, spent["redemption_id"]))[:2] == (
        404, "not_found",
    )  # fmt: skip
    assert _error(_refund(client, brand.admin, spent["redemption_id"]))[:2] == (404, "not_found")
    assert _error(_reverse_redemption(client, brand.admin, scan_id))[:2] == (404, "not_found")
    assert client.post(f"/api/v1/scans/{scan_id}/reversal").status_code == 401
    assert _member(app, member["id"]).points == 55


# --- migration 0016 -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A private database of its own: this test migrates it down and up again."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'refunds.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("WALLETD_TEST_DATABASE_URL is not set: Postgres tests need a server")
    with private_postgres_database(POSTGRES_URL) as url:
        yield url


def test_migration_0016_counts_reversals_made_before_it_as_full_refunds(
    fresh_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    upgrade(fresh_url)
    app = create_app(
        Settings(database_url=fresh_url, base_url="http://walletd.test", secret_key=SECRET,
                 env="test", instance_path=tmp_path / "instance"),
        clock=clock,
    )  # fmt: skip
    try:
        client = app.test_client()
        brand = make_brand(app)
        member = enroll(client, brand)
        kept = _scan(client, brand, member["card"]["barcode"], "7.00")["scan_id"]
        scan_id = _scan(client, brand, member["card"]["barcode"], "10.00")["scan_id"]
        reversal = _ok(_refund(client, brand.admin, scan_id))["reversal_id"]
    finally:
        services_of(app).close()
    downgrade(fresh_url, "0015")  # the columns go; a reversal names its scan in reverses_id only
    upgrade(fresh_url, "0016")
    engine = create_engine(fresh_url)
    try:
        with engine.begin() as connection:
            rows = connection.execute(
                text("SELECT id, refund_of_id, refunded_minor FROM ledger_entries"
                     " WHERE id IN (:a, :b, :c) ORDER BY id"),
                {"a": kept, "b": scan_id, "c": reversal},
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (kept, None, None), (scan_id, None, 1000), (reversal, scan_id, None),
    ]  # fmt: skip
