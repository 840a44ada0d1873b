"""Program settings through GET/PATCH /api/v1/programs/{id}, the rewards list, and what the
settings steer: quiet hours and caps in campaigns, the cashiers' refund window, card updates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.campaigns import policy
from walletd.errors import ValidationError
from walletd.jobs import campaign_step
from walletd.loyalty.program_settings import parse_quiet_hours
from walletd.models import AuditEntry, Card, Member, OutboxMessage, Program
from walletd.push.registrations import register_device
from walletd.web.pages.customer import card_page_url
from walletd.web.pages.i18n import COOKIE

PASS_TYPE_ID = "pass.dev.walletd.loyalty"

EVERY_FIELD: dict[str, Any] = {
    "name": "Tea Club",
    "timezone": "Asia/Taipei",
    "quiet_hours": {"start": "22:30", "end": "08:15"},
    "weekly_message_cap": 5,
    "points_per_unit": "2.5",
    "rounding": "half_up",
    "max_points_per_scan": 500,
    "tier_basis": "points",
    "welcome_bonus": 10,
    "birthday_bonus": 20,
    "referral_bonus_referrer": 30,
    "referral_bonus_referee": 40,
    "referral_min_purchase": "5.50",
    "points_expiry_months": 24,
    "tiers": [
        {"name": "Green", "threshold": "0", "multiplier": "1"},
        {
            "name": "Gold",
            "threshold": "1000",
            "multiplier": "1.5",
            "member_discount_percent": "10",
            "benefits": "Free refills",
        },
    ],
    "rewards": [{"name": "Free tea", "cost_points": 100, "active": True}],
    "refund_window_days": 7,
    "default_language": "zh-Hant",
    "background_color": "#112233",
    "foreground_color": "#EEEEEE",
    "label_color": "#AABBCC",
}


def _url(brand: BrandKeys) -> str:
    return f"/api/v1/programs/{brand.program_id}"


def _get(client: FlaskClient, brand: BrandKeys) -> dict[str, Any]:
    response = client.get(_url(brand), headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _patch(client: FlaskClient, brand: BrandKeys, body: Any) -> Any:
    return client.patch(_url(brand), json=body, headers=brand.admin)


def _audit_rows(app: Flask) -> list[AuditEntry]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        session.expunge_all()
        return list(rows)


def _installed_member(app: Flask, client: FlaskClient, brand: BrandKeys, token: str) -> int:
    """A consenting member whose card is in Apple Wallet (so card updates write outbox rows)."""
    member = enroll(client, brand, name="Mei", marketing_consent=True)
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == member["id"])).one()
        register_device(session, library_id=f"lib-{token[:8]}", pass_type_id=PASS_TYPE_ID,
                        card=card, push_token=token, now=svc.clock())  # fmt: skip
    return int(member["id"])


def _pending_pushes(app: Flask) -> int:
    with services_of(app).db.transaction() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            )
            or 0
        )


def _clear_outbox(app: Flask) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(delete(OutboxMessage))


def test_get_answers_the_programs_settings(client: FlaskClient, brand: BrandKeys) -> None:
    body = _get(client, brand)
    assert body["id"] == brand.program_id
    assert (body["timezone"], body["quiet_hours"]) == ("UTC", {"start": "21:00", "end": "09:00"})
    assert (body["weekly_message_cap"], body["refund_window_days"]) == (3, 30)
    assert body["default_language"] is None  # the browser decides
    assert body["currency"] == "USD" and body["stamps"]["enabled"] is False


def test_every_field_round_trips_and_one_audit_row_records_the_changes(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    response = _patch(client, brand, EVERY_FIELD)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = _get(client, brand)
    assert body == response.get_json()
    for key, value in EVERY_FIELD.items():
        if key not in ("tiers", "rewards"):
            assert body[key] == value, key
    assert [(t["name"], t["threshold"], t["multiplier"], t["member_discount_percent"],
             t["benefits"]) for t in body["tiers"]] == [
        ("Green", "0", "1", "0", None), ("Gold", "1000", "1.5", "10", "Free refills")
    ]  # fmt: skip
    assert ("Free tea", 100, True) in [(r["name"], r["cost_points"], r["active"])
                                        for r in body["rewards"]]  # fmt: skip
    [row] = _audit_rows(app)
    assert (row.action, row.target_type, row.target_id) == (
        "program.updated",
        "program",
        brand.program_id,
    )
    assert row.actor_api_key_id is not None
    assert row.changes["timezone"] == ["UTC", "Asia/Taipei"]
    assert row.changes["quiet_hours"] == [
        {"start": "21:00", "end": "09:00"},
        {"start": "22:30", "end": "08:15"},
    ]
    assert set(row.changes) == set(EVERY_FIELD)


def test_patch_is_partial_and_null_means_none(client: FlaskClient, brand: BrandKeys) -> None:
    assert _patch(client, brand, EVERY_FIELD).status_code == 200
    before = _get(client, brand)
    body = {"quiet_hours": None, "max_points_per_scan": None, "points_expiry_months": None}
    response = _patch(client, brand, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    after = response.get_json()
    assert {k: after[k] for k in body} == body
    assert {k: v for k, v in after.items() if k not in {*body, "updated_at"}} == {
        k: v for k, v in before.items() if k not in {*body, "updated_at"}
    }
    # Nothing sent, nothing changed: no audit row, the same answer.
    assert _patch(client, brand, {}).get_json() == after


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": None}, "timezone"),
    ({"quiet_hours": {"start": "21:00", "end": "21:00"}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "24:00", "end": "09:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "21:00"}}, "quiet_hours.end"),
    ({"weekly_message_cap": -1}, "weekly_message_cap"),
    ({"weekly_message_cap": 51}, "weekly_message_cap"),
    ({"weekly_message_cap": "3"}, "weekly_message_cap"),
    ({"points_per_unit": "lots"}, "points_per_unit"),
    ({"points_per_unit": "1001"}, "points_per_unit"),
    ({"rounding": "up"}, "rounding"),
    ({"max_points_per_scan": 0}, "max_points_per_scan"),
    ({"welcome_bonus": -5}, "welcome_bonus"),
    ({"referral_min_purchase": "1.005"}, "referral_min_purchase"),
    ({"points_expiry_months": 0}, "points_expiry_months"),
    ({"refund_window_days": 366}, "refund_window_days"),
    ({"default_language": "fr"}, "default_language"),
    ({"background_color": "red"}, "background_color"),
    ({"template": "no-such-design"}, "template"),
    ({"favourite_colour": "blue"}, "favourite_colour"),
    ({"tiers": [{"name": "A", "threshold": "0", "multiplier": "11"}]}, "tiers.0.multiplier"),
    (
        {
            "tiers": [
                {"name": "A", "threshold": "0", "multiplier": "1"},
                {"name": "a", "threshold": "5", "multiplier": "1"},
            ]
        },
        "tiers.0.name",
    ),
    (
        {"tiers": [{"id": 999_999, "name": "A", "threshold": "0", "multiplier": "1"}]},
        "tiers.0.name",
    ),
    ({"tiers": [{"name": "   ", "threshold": "0", "multiplier": "1"}]}, "tiers.0.name"),
    (
        {"tiers": [{"name": "A", "threshold": "0", "multiplier": "1", "colour": "x"}]},
        "tiers.0.colour",
    ),
    ({"rewards": [{"name": "Tea", "cost_points": 0}]}, "rewards.0.cost_points"),
    ({"rewards": [{"id": 999_999, "name": "Tea", "cost_points": 5}]}, "rewards.0.name"),
]


def test_invalid_values_are_422_with_the_field_and_change_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    assert _patch(client, brand, {"tiers": EVERY_FIELD["tiers"]}).status_code == 200
    audited = len(_audit_rows(app))
    before = _get(client, brand)
    for body, field in BAD_BODIES:
        # A valid change travels with each bad one: it must not be saved either.
        response = _patch(client, brand, {"welcome_bonus": 77, **body})
        assert response.status_code == 422, (body, response.get_data(as_text=True))
        error = response.get_json()["error"]
        fields = [e["field"] for e in error.get("errors", [])] or [error.get("field")]
        assert field in fields, (body, error)
    # The tier basis cannot change without tiers whose thresholds are in the new basis.
    response = _patch(client, brand, {"tier_basis": "points"})
    assert (response.status_code, response.get_json()["error"]["field"]) == (422, "tier_basis")
    assert _get(client, brand) == before
    assert len(_audit_rows(app)) == audited


def test_cashier_keys_may_not_read_or_change_settings_and_other_brands_are_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Rival Roasters")
    before = _get(client, brand)
    assert client.get(_url(brand), headers=brand.cashier).status_code == 403
    cashier = client.patch(_url(brand), json={"welcome_bonus": 1}, headers=brand.cashier)
    assert cashier.status_code == 403
    assert client.get(_url(brand), headers=other.admin).status_code == 404
    foreign = client.patch(_url(brand), json={"welcome_bonus": 1}, headers=other.admin)
    assert foreign.status_code == 404
    assert client.patch(_url(brand), json={"welcome_bonus": 1}).status_code == 401
    assert _get(client, brand) == before
    assert _audit_rows(app) == []


def test_rewards_are_listed_for_tills_and_switched_off_never_deleted(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Rival Roasters")
    rewards = [{"name": "Cake", "cost_points": 300}, {"name": "Tea", "cost_points": 100}]
    added = _patch(client, brand, {"rewards": rewards}).get_json()["rewards"]
    tea = next(r for r in added if r["name"] == "Tea")
    off = {"id": tea["id"], "name": "Tea", "cost_points": 100, "active": False}
    assert _patch(client, brand, {"rewards": [off]}).status_code == 200
    for headers in (brand.cashier, brand.admin):
        listed = client.get("/api/v1/rewards", headers=headers)
        assert listed.status_code == 200
        rows = [(r["name"], r["cost_points"], r["active"], r["program_id"])
                for r in listed.get_json()["rewards"]]  # fmt: skip
        assert rows[0] == ("Tea", 100, False, brand.program_id)
        assert ("Cake", 300, True, brand.program_id) in rows
    mine = f"/api/v1/rewards?program_id={brand.program_id}"
    assert len(client.get(mine, headers=brand.cashier).get_json()["rewards"]) == len(rows)
    assert client.get(mine, headers=other.cashier).status_code == 404
    theirs = client.get("/api/v1/rewards", headers=other.cashier).get_json()["rewards"]
    assert {r["program_id"] for r in theirs} == {other.program_id}
    assert client.get("/api/v1/rewards?program_id=x", headers=brand.cashier).status_code == 422


def test_a_tier_change_pushes_the_cards_but_quiet_hours_and_caps_do_not(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    _installed_member(app, client, brand, "ab" * 32)
    _clear_outbox(app)
    quiet = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "weekly_message_cap": 1,
             "refund_window_days": 3}  # fmt: skip
    assert _patch(client, brand, quiet).status_code == 200
    assert _pending_pushes(app) == 0
    tiers = [{"name": "Silver", "threshold": "0", "multiplier": "1"}]
    assert _patch(client, brand, {"tiers": tiers}).status_code == 200
    assert _pending_pushes(app) == 1
    _clear_outbox(app)
    # The same tiers again change nothing: no push, no audit row.
    audited = len(_audit_rows(app))
    same = [{**tiers[0], "id": _get(client, brand)["tiers"][0]["id"]}]
    assert _patch(client, brand, {"tiers": same}).status_code == 200
    assert (_pending_pushes(app), len(_audit_rows(app))) == (0, audited)


def test_removing_a_tier_members_hold_takes_it_from_them(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    tiers = [{"name": "Silver", "threshold": "0", "multiplier": "1"}]
    assert _patch(client, brand, {"tiers": tiers}).status_code == 200
    member = enroll(client, brand)
    scan(client, brand, member["card"]["barcode"], "5.00", "t-1")
    assert (
        client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()["tier"]
        == "Silver"
    )
    assert _patch(client, brand, {"tiers": []}).get_json()["tiers"] == []
    with services_of(app).db.transaction() as session:
        assert session.get_one(Member, member["id"]).tier_id is None


def _campaign(client: FlaskClient, brand: BrandKeys) -> dict[str, Any]:
    payload = {"name": "Spring", "message": "Double points!", "segment": {"preset": "all"}}
    response = client.post("/api/v1/campaigns", json=payload, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def _fan_out(app: Flask, client: FlaskClient, brand: BrandKeys, campaign_id: int) -> Any:
    held: set[int] = set()
    for _ in range(50):
        if campaign_step(services_of(app), "worker-a", held) == 0 and not held:
            break
    response = client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin)
    return response.get_json()


def test_quiet_hours_in_taipei_defer_a_campaign_to_nine_taipei_time(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    _installed_member(app, client, brand, "cd" * 32)
    settings_body = {"timezone": "Asia/Taipei", "quiet_hours": {"start": "21:00", "end": "09:00"}}
    assert _patch(client, brand, settings_body).status_code == 200
    clock.now = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)  # 21:30 in Taipei
    deferred = _fan_out(app, client, brand, _campaign(client, brand)["id"])
    assert (deferred["status"], deferred["deferred_reason"]) == ("scheduled", "quiet_hours")
    assert deferred["send_at"] == "2026-03-11T01:00:00+00:00"  # 09:00 in Taipei


def test_no_quiet_hours_never_defer_and_a_zero_cap_sends_no_marketing(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    _installed_member(app, client, brand, "ef" * 32)
    assert _patch(client, brand, {"quiet_hours": None}).status_code == 200
    clock.now = datetime(2026, 3, 10, 23, 59, tzinfo=UTC)  # inside the default 21:00-09:00
    sent = _fan_out(app, client, brand, _campaign(client, brand)["id"])
    assert sent["deferred_reason"] is None and sent["recipients"] == 1
    assert _patch(client, brand, {"weekly_message_cap": 0}).status_code == 200
    capped = _fan_out(app, client, brand, _campaign(client, brand)["id"])
    assert (capped["recipients"], capped["skipped_by_reason"]) == (0, {"frequency_cap": 1})


def test_quiet_hours_keep_minutes_and_may_wrap_midnight() -> None:
    program = Program(timezone="Asia/Taipei", quiet_start_minute=22 * 60 + 30,
                      quiet_end_minute=8 * 60 + 15)  # fmt: skip
    taipei = {"22:29": False, "22:30": True, "03:00": True, "08:14": True, "08:15": False}
    for local, quiet in taipei.items():
        hour, minute = map(int, local.split(":"))
        now = datetime(2026, 3, 10, (hour - 8) % 24, minute, tzinfo=UTC)
        assert policy.in_quiet_hours(program, now) is quiet, local
    assert policy.quiet_hours_end(program, datetime(2026, 3, 10, 15, 0, tzinfo=UTC)) == datetime(
        2026, 3, 11, 0, 15, tzinfo=UTC
    )
    daytime = Program(timezone="UTC", quiet_start_minute=12 * 60, quiet_end_minute=13 * 60)
    assert policy.in_quiet_hours(daytime, datetime(2026, 3, 10, 12, 59, tzinfo=UTC))
    assert not policy.in_quiet_hours(daytime, datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    never = Program(timezone="UTC", quiet_start_minute=None, quiet_end_minute=None)
    assert not policy.in_quiet_hours(never, datetime(2026, 3, 10, 0, 0, tzinfo=UTC))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(start=st.text(max_size=6), end=st.text(max_size=6))
def test_quiet_hours_parse_only_distinct_clock_times(start: str, end: str) -> None:
    try:
        window = parse_quiet_hours({"start": start, "end": end})
    except ValidationError as exc:
        assert exc.field in ("quiet_hours.start", "quiet_hours.end")
        return
    assert window is not None
    assert window[0] != window[1] and all(0 <= m < 24 * 60 for m in window)
    assert (f"{window[0] // 60:02d}:{window[0] % 60:02d}", f"{window[1] // 60:02d}:"
            f"{window[1] % 60:02d}") == (start, end)  # fmt: skip


def _reverse(client: FlaskClient, headers: dict[str, str], scan_id: int) -> Any:
    return client.post(f"/api/v1/scans/{scan_id}/reversal", headers=headers)


def test_a_cashier_may_reverse_a_scan_inside_the_refund_window_only(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    assert _patch(client, brand, {"refund_window_days": 2}).status_code == 200
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    recent = scan(client, brand, barcode, "10.00", "r-1").get_json()["scan_id"]
    clock.advance(days=2)
    assert _reverse(client, brand.cashier, recent).status_code == 201
    old = scan(client, brand, barcode, "10.00", "r-2").get_json()["scan_id"]
    clock.advance(days=2, seconds=1)
    refused = _reverse(client, brand.cashier, old)
    assert refused.status_code == 403
    assert "refund window" in refused.get_json()["error"]["message"]
    assert _reverse(client, brand.admin, old).status_code == 201
    # A window of 0 days: cashiers may reverse nothing older than this very moment.
    assert _patch(client, brand, {"refund_window_days": 0}).status_code == 200
    third = scan(client, brand, barcode, "10.00", "r-3").get_json()["scan_id"]
    clock.advance(seconds=1)
    assert _reverse(client, brand.cashier, third).status_code == 403


def test_the_programs_default_language_beats_the_browser_but_not_the_switch(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    join = f"/join/{brand.program_id}"
    english = {"Accept-Language": "en-US,en;q=0.9"}
    assert "Get my card" in client.get(join, headers=english).get_data(as_text=True)
    assert _patch(client, brand, {"default_language": "zh-Hant"}).status_code == 200
    assert "領取會員卡" in client.get(join, headers=english).get_data(as_text=True)
    member = enroll(client, brand)
    with app.test_request_context():
        card_path = card_page_url(member["card"]["serial_number"])
    card_html = client.get(card_path, headers=english).get_data(as_text=True)
    assert 'lang="zh-Hant-TW"' in card_html
    client.set_cookie(COOKIE, "en")
    assert "Get my card" in client.get(join, headers=english).get_data(as_text=True)
    assert 'lang="en"' in client.get(card_path, headers=english).get_data(as_text=True)
