"""Promotions: the CRUD API and its checks, and earning multiplied by tier x promotions."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import (
    BrandKeys,
    FrozenClock,
    enroll,
    make_brand,
    scan,
    services_of,
    set_timezone,
    sql_statements,
)
from walletd.loyalty.ledger import MAX_PROMOTIONS_PER_SCAN, ScanExtras
from walletd.models import Location, Program, Tier

GENERATED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = itertools.count()
# The test clock starts on Tuesday 10 March 2026, 12:00 UTC.
TUESDAY = date(2026, 3, 10)


def _create(client: FlaskClient, brand: BrandKeys, **fields: Any) -> Any:
    body = {"name": "Member day", "multiplier": "2", **fields}
    return client.post("/api/v1/promotions", json=body, headers=brand.admin)


def _error(response: Any) -> tuple[int, str | None]:
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    error = response.get_json()["error"]
    return response.status_code, error.get("field")


def _location(app: Flask, brand: BrandKeys) -> int:
    with services_of(app).db.transaction() as session:
        return session.scalars(select(Location.id).where(Location.brand_id == brand.brand_id)).one()


def _scan(client: FlaskClient, brand: BrandKeys, barcode: str, amount: str, **extra: Any) -> Any:
    response = scan(client, brand, barcode, amount, f"promo-{next(KEYS)}", **extra)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_promotion_crud_round_trip(client: FlaskClient, app: Flask, brand: BrandKeys) -> None:
    location = _location(app, brand)
    created = _create(
        client, brand, multiplier=1.5, starts_on="2026-03-01", ends_on="2026-03-31",
        weekdays=[2, 2, 6], tiers=["Gold"], location_ids=[location],
    )  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["multiplier"] == "1.5" and body["weekdays"] == [2, 6]
    assert body["tiers"] == ["Gold"] and body["location_ids"] == [location]
    assert body["program_id"] == brand.program_id and body["active"] is True
    listed = client.get("/api/v1/promotions", headers=brand.admin).get_json()["promotions"]
    assert listed == [body]
    patched = client.patch(
        f"/api/v1/promotions/{body['id']}",
        json={"multiplier": "3", "tiers": None, "ends_on": None, "active": False},
        headers=brand.admin,
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    changed = patched.get_json()
    assert changed["multiplier"] == "3" and changed["tiers"] == [] and changed["ends_on"] is None
    assert changed["starts_on"] == "2026-03-01" and changed["active"] is False
    assert client.delete(f"/api/v1/promotions/{body['id']}", headers=brand.admin).status_code == 204
    assert client.delete(f"/api/v1/promotions/{body['id']}", headers=brand.admin).status_code == 404
    assert client.get("/api/v1/promotions", headers=brand.admin).get_json()["promotions"] == []


def test_promotions_are_admin_only_and_per_brand(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    assert _create(client, brand, **{}).status_code == 201
    assert client.post("/api/v1/promotions", json={"name": "x", "multiplier": 2},
                       headers=brand.cashier).status_code == 403  # fmt: skip
    other = make_brand(app, "Other")
    assert client.get("/api/v1/promotions", headers=other.admin).get_json()["promotions"] == []
    promo_id = client.get("/api/v1/promotions", headers=brand.admin).get_json()["promotions"][0]
    assert client.patch(f"/api/v1/promotions/{promo_id['id']}", json={"name": "mine"},
                        headers=other.admin).status_code == 404  # fmt: skip
    assert client.delete(f"/api/v1/promotions/{promo_id['id']}",
                         headers=other.admin).status_code == 404  # fmt: skip
    other_location = _location(app, other)
    assert _error(_create(client, brand, location_ids=[other_location])) == (422, "location_ids")
    assert _error(_create(client, brand, program_id=other.program_id))[0] == 404


def test_promotion_fields_are_checked(client: FlaskClient, brand: BrandKeys) -> None:
    assert _error(_create(client, brand, starts_on="2026-03-02", ends_on="2026-03-01")) == (
        422, "starts_on",
    )  # fmt: skip
    assert _error(_create(client, brand, tiers=["Platinum"])) == (422, "tiers")
    assert _error(_create(client, brand, weekdays=[0]))[0] == 422
    assert _error(_create(client, brand, weekdays=[8]))[0] == 422
    assert _error(_create(client, brand, name=""))[0] == 422
    assert _error(_create(client, brand, name="a\x00b")) == (422, "name")
    created = _create(client, brand).get_json()
    patched = client.patch(f"/api/v1/promotions/{created['id']}",
                           json={"ends_on": "2026-01-01", "starts_on": "2026-02-01"},
                           headers=brand.admin)  # fmt: skip
    assert _error(patched) == (422, "starts_on")


@GENERATED
@given(
    multiplier=st.decimals(min_value=-20, max_value=20, places=6, allow_nan=False)
    | st.integers(-5, 15)
    | st.text(max_size=12)
    | st.booleans()
)
def test_only_multipliers_above_one_and_at_most_ten_are_accepted(
    client: FlaskClient, brand: BrandKeys, multiplier: Any
) -> None:
    value = str(multiplier) if isinstance(multiplier, Decimal) else multiplier
    response = _create(client, brand, multiplier=value)
    try:
        number = None if isinstance(multiplier, bool) else Decimal(str(multiplier).strip())
    except ArithmeticError:
        number = None
    valid = (
        number is not None
        and number.is_finite()
        and 1 < number <= 10
        and -int(number.normalize().as_tuple().exponent) <= 4
    )
    if valid:
        assert response.status_code == 201, (value, response.get_data(as_text=True))
        assert Decimal(response.get_json()["multiplier"]) == number
    else:
        assert response.status_code == 422, (value, response.get_data(as_text=True))
        assert response.get_json()["error"]["field"] == "multiplier"


def _expected(amount_minor: int, tier: Decimal, promos: list[Decimal]) -> int:
    """The documented rule: base x min(tier x promotions, max(10, tier)), floored."""
    factor = tier
    for m in promos:
        factor *= m
    if promos:
        factor = min(factor, max(Decimal(10), tier))
    raw = Decimal(amount_minor).scaleb(-2) * factor
    return int(raw.to_integral_value(rounding=ROUND_FLOOR))


PROMO = st.fixed_dictionaries(
    {
        "multiplier": st.decimals(min_value="1.01", max_value=10, places=2),
        "weekdays": st.none() | st.lists(st.integers(1, 7), max_size=3),
        "tiers": st.none() | st.lists(st.sampled_from(["Silver", "Gold", "VIP"]), max_size=2),
        "days": st.none() | st.tuples(st.integers(-3, 3), st.integers(-3, 3)),
        "here": st.none() | st.booleans(),
        "active": st.booleans(),
    }
)


@settings(GENERATED, max_examples=25)
@given(
    promos=st.lists(PROMO, max_size=4),
    amount_minor=st.integers(1, 100_000),
    at_location=st.booleans(),
    zone=st.sampled_from(["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Taipei"]),
)
def test_scan_earns_base_times_tier_times_active_promotions_capped_at_ten(
    client: FlaskClient,
    app: Flask,
    promos: list[dict[str, Any]],
    amount_minor: int,
    at_location: bool,
    zone: str,
) -> None:
    brand = make_brand(app, "Generated")
    svc = services_of(app)
    location = _location(app, brand)
    with svc.db.transaction() as session:
        session.get_one(Program, brand.program_id).timezone = zone
    # The scan's day is the day in the program's zone: Kiritimati is already Wednesday.
    from zoneinfo import ZoneInfo

    local = svc.clock().astimezone(ZoneInfo(zone)).date()
    applied: list[tuple[int, Decimal]] = []
    for promo in promos:
        fields: dict[str, Any] = {"multiplier": str(promo["multiplier"]), "active": promo["active"]}
        if promo["weekdays"] is not None:
            fields["weekdays"] = promo["weekdays"]
        if promo["tiers"] is not None:
            fields["tiers"] = promo["tiers"]
        if promo["days"] is not None:
            start, end = sorted(promo["days"])
            fields["starts_on"] = (local + timedelta(days=start)).isoformat()
            fields["ends_on"] = (local + timedelta(days=end)).isoformat()
        if promo["here"] is not None:
            fields["location_ids"] = [location] if promo["here"] else [_other_location(app, brand)]
        created = _create(client, brand, **fields)
        assert created.status_code == 201, created.get_data(as_text=True)
        runs = (
            promo["active"]
            and (not promo["weekdays"] or local.isoweekday() in promo["weekdays"])
            and (not promo["tiers"] or "Silver" in promo["tiers"])
            and (promo["days"] is None or min(promo["days"]) <= 0 <= max(promo["days"]))
            and (promo["here"] is None or (promo["here"] and at_location))
        )
        if runs:
            applied.append((created.get_json()["id"], promo["multiplier"]))
    member = enroll(client, brand)
    extra = {"location_id": location} if at_location else {}
    amount = str(Decimal(amount_minor).scaleb(-2))
    body = _scan(client, brand, member["card"]["barcode"], amount, **extra)
    # Earning uses the tier the member walked in with (Silver), even when this scan upgrades it.
    assert body["points_earned"] == _expected(amount_minor, Decimal(1), [m for _, m in applied])
    assert [(p["id"], Decimal(p["multiplier"])) for p in body["promotions"]] == applied


def _other_location(app: Flask, brand: BrandKeys) -> int:
    svc = services_of(app)
    with svc.db.transaction() as session:
        location = Location(brand_id=brand.brand_id, name="Second store", created_at=svc.clock())
        session.add(location)
        session.flush()
        return location.id


def test_promotion_stacks_with_the_tier_multiplier_and_the_cap(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        silver = session.scalars(
            select(Tier).where(Tier.program_id == brand.program_id, Tier.name == "Silver")
        ).one()
        silver.multiplier = Decimal(3)
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    assert _scan(client, brand, barcode, "10.00")["points_earned"] == 30
    _create(client, brand, multiplier="2", weekdays=[2])
    assert _scan(client, brand, barcode, "10.00")["points_earned"] == 60
    _create(client, brand, multiplier="2.5", tiers=["Silver"])
    # 3 x 2 x 2.5 = 15, capped at 10.
    body = _scan(client, brand, barcode, "10.00")
    assert body["points_earned"] == 100
    assert [p["name"] for p in body["promotions"]] == ["Member day", "Member day"]
    _create(client, brand, multiplier="2", weekdays=[3])  # a Wednesday promotion: not today
    assert len(_scan(client, brand, barcode, "10.00")["promotions"]) == 2


def test_replay_answers_the_first_body_after_the_promotion_changed(
    client: FlaskClient, app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    promo = _create(client, brand, multiplier="2").get_json()
    first = scan(client, brand, member["card"]["barcode"], "5.00", "replay-1")
    assert first.status_code == 201
    assert first.get_json()["promotions"] == [
        {"id": promo["id"], "name": "Member day", "multiplier": "2"}
    ]
    assert first.get_json()["points_earned"] == 10
    client.patch(f"/api/v1/promotions/{promo['id']}",
                 json={"multiplier": "4", "active": False, "name": "Renamed"},
                 headers=brand.admin)  # fmt: skip
    clock.advance(days=3)
    again = scan(client, brand, member["card"]["barcode"], "5.00", "replay-1")
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    plain = _scan(client, brand, member["card"]["barcode"], "5.00")
    assert plain["promotions"] == [] and plain["points_earned"] == 5


def test_promotion_days_are_counted_in_the_program_time_zone(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    set_timezone(app, brand, "Pacific/Kiritimati")
    member = enroll(client, brand)
    # 12:00 UTC on Tuesday is 02:00 on Wednesday in Kiritimati (UTC+14).
    _create(client, brand, weekdays=[2])
    assert _scan(client, brand, member["card"]["barcode"], "1.00")["promotions"] == []
    _create(client, brand, weekdays=[3], starts_on=(TUESDAY + timedelta(days=1)).isoformat())
    assert len(_scan(client, brand, member["card"]["barcode"], "1.00")["promotions"]) == 1


def test_a_plain_scan_pays_one_query_for_promotions_and_none_for_offers(
    client: FlaskClient, app: Flask, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    statements = sql_statements(app, lambda: _scan(client, brand, barcode, "3.00"))
    touching = [s for s in statements if "promotions" in s or "coupons" in s or "offers" in s]
    assert len(touching) == 1 and "FROM promotions" in touching[0], touching
    entry = client.get(f"/api/v1/members/{member['id']}/ledger", headers=brand.admin).get_json()
    assert entry["entries"][0]["reason"] is None


def test_a_plain_scan_reads_promotions_and_reminders_only_when_there_are_some(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    """The scan's locked read says whether the program has an active promotion and whether the
    member holds a live reminder; without them their own queries are not sent, with them they
    are and still apply."""
    barcode = enroll(client, brand)["card"]["barcode"]

    def reads(statements: list[str]) -> tuple[bool, bool]:
        selects = [" ".join(s.split()) for s in statements if s.lstrip().startswith("SELECT")]
        return (
            any("FROM promotions" in s and "EXISTS" not in s for s in selects),
            any("FROM card_messages" in s and "EXISTS" not in s for s in selects),
        )

    plain = sql_statements(app, lambda: scan(client, brand, barcode, "10", "plain-1"))
    assert reads(plain) == (False, False)
    created = client.post(
        "/api/v1/promotions", json={"name": "Member day", "multiplier": "2"}, headers=brand.admin
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    answers: list[Any] = []
    promoted = sql_statements(
        app, lambda: answers.append(scan(client, brand, barcode, "10", "plain-2"))
    )
    assert reads(promoted) == (True, False)
    assert [p["name"] for p in answers[0].get_json()["promotions"]] == ["Member day"]


@settings(GENERATED, max_examples=200)
@given(
    discount=st.decimals(min_value=0, max_value=100, places=4),
    promotions=st.lists(
        st.tuples(
            st.integers(1, 2**31 - 1),
            st.text(min_size=1, max_size=200),
            st.decimals(min_value="1.0001", max_value=10, places=4),
        ),
        max_size=MAX_PROMOTIONS_PER_SCAN,
    ),
    stamps=st.none() | st.tuples(st.integers(0, 49), st.integers(2, 50)),
    coupons=st.booleans(),
)
def test_a_scan_snapshot_reads_back_whole_through_json(
    discount: Decimal,
    promotions: list[tuple[int, str, Decimal]],
    stamps: tuple[int, int] | None,
    coupons: bool,
) -> None:
    extras = ScanExtras(discount, tuple(promotions), stamps, coupons)
    data = extras.encode()
    if data is None:
        assert extras == ScanExtras()
        return
    assert ScanExtras.decode(json.loads(json.dumps(data))) == extras


def test_saving_or_deleting_a_promotion_updates_the_cards_that_show_it(
    client: FlaskClient, app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    from walletd.models import Card

    member = enroll(client, brand)

    def tag() -> int:
        with services_of(app).db.sessions() as session:
            card = session.scalar(select(Card).where(Card.member_id == member["id"]))
            assert card is not None
            return int(card.update_tag)

    before = tag()
    promo = _create(client, brand, multiplier="2").get_json()
    created = tag()
    assert created > before
    clock.advance(seconds=2)
    assert client.patch(f"/api/v1/promotions/{promo['id']}", json={"name": "Double day"},
                        headers=brand.admin).status_code == 200  # fmt: skip
    renamed = tag()
    assert renamed > created
    clock.advance(seconds=2)
    assert (
        client.delete(f"/api/v1/promotions/{promo['id']}", headers=brand.admin).status_code == 204
    )
    assert tag() > renamed


def test_cards_change_in_the_first_hour_of_a_member_day_and_of_the_day_after(
    client: FlaskClient, app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    from walletd.jobs import INTERVAL_JOBS, refresh_promotion_cards
    from walletd.models import Card

    assert "refresh_promotion_cards" in {job.name for job in INTERVAL_JOBS}
    member = enroll(client, brand)
    set_timezone(app, brand, "Asia/Taipei")
    _create(client, brand, weekdays=[3])  # member day every Wednesday (Taipei time)

    def tag() -> int:
        with services_of(app).db.sessions() as session:
            card = session.scalar(select(Card).where(Card.member_id == member["id"]))
            assert card is not None
            return int(card.update_tag)

    # The clock stands on Tuesday 12:00 UTC = 20:00 in Taipei; Wednesday starts at 16:00 UTC.
    svc = services_of(app)
    clock.advance(hours=3, minutes=30)  # 15:30 UTC: still Tuesday in Taipei
    assert refresh_promotion_cards(svc) == 0
    before = tag()
    clock.advance(minutes=40)  # 16:10 UTC: the first hour of Wednesday in Taipei
    assert refresh_promotion_cards(svc) >= 1
    assert tag() > before
    clock.advance(hours=1)  # later that Wednesday: nothing changes
    assert refresh_promotion_cards(svc) == 0
    clock.advance(hours=23)  # the first hour of Thursday: the member day has ended
    assert refresh_promotion_cards(svc) >= 1
