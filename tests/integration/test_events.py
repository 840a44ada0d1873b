"""Events from the brand's systems and the automations they trigger, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.factories import BrandKeys, FrozenClock, make_brand
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.campaigns import conftest as campaign_fixtures
from tests.integration.campaigns.conftest import Shop, push_token, with_apns
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.audit import list_entries
from walletd.config import Settings
from walletd.errors import ValidationError
from walletd.events.properties import check_properties, dump_properties, load_properties
from walletd.events.templates import check_event_template, render_event_message
from walletd.jobs import INTERVAL_JOBS, fire_event_automations
from walletd.models import Card, Member, MessageLog, OutboxMessage
from walletd.models.event import Event, EventAutomationRun

# The campaign tests' fixtures: dev certificates, the APNs fake and the shop.
dev_cert_template = campaign_fixtures.dev_cert_template
dev_certs = campaign_fixtures.dev_certs
apns = campaign_fixtures.apns
shop = campaign_fixtures.shop

CART_MESSAGE = "{name}, your {event.items.0.name} is still in your cart!"


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Deliveries go to the APNs fake."""
    return with_apns(settings, apns)


def create_automation(client: FlaskClient, brand: BrandKeys, **body: Any) -> dict[str, Any]:
    """POST an event automation (201 asserted)."""
    payload = {"name": "Abandoned cart", "trigger_event": "cart_abandoned", "delay_minutes": 120,
               "cancel_events": ["order_placed"], "message": CART_MESSAGE, **body}  # fmt: skip
    response = client.post("/api/v1/event-automations", json=payload, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def send(
    client: FlaskClient, brand: BrandKeys, member_id: int, type_: str, **body: Any
) -> dict[str, Any]:
    """POST an event for a member (201 asserted)."""
    payload = {"member_id": member_id, "type": type_, **body}
    response = client.post("/api/v1/events", json=payload, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def runs(shop: Shop) -> dict[int, tuple[str, str | None]]:
    """Each member's latest run: status and reason."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(
                EventAutomationRun.member_id, EventAutomationRun.status, EventAutomationRun.reason
            ).order_by(EventAutomationRun.id)
        ).all()
    return {int(m): (str(s), r) for m, s, r in rows}


def card_message(shop: Shop, member_id: int) -> str | None:
    """The message on a member's loyalty card."""
    with shop.svc.db.transaction() as session:
        return session.scalar(
            select(Card.message).where(Card.member_id == member_id, Card.kind == "loyalty")
        )


def test_an_abandoned_cart_reminds_only_members_who_did_not_order_or_buy(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock, apns: ApnsFakeServer
) -> None:
    create_automation(client, brand)
    tokens = [push_token(1), push_token(2), push_token(3)]
    ann, bob, cat = shop.enroll_many(["Ann Lee", "Bob", "Cat"], tokens=tokens)
    dan = shop.enroll("Dan", consent=False)
    cart = {"items": [{"name": "Oolong tea", "price": Decimal("12.50")}, {"name": "Cup"}]}
    for member in (ann, bob, cat, dan):
        answer = send(client, brand, member, "cart_abandoned", properties=cart)
        assert [run["due_at"] for run in answer["scheduled"]] == [
            (clock() + timedelta(hours=2)).isoformat()
        ]
    clock.advance(minutes=30)
    shop.visit(cat, "8", at=clock())
    clock.advance(minutes=30)
    ordered = send(client, brand, bob, "order_placed")
    assert [(r["reason"]) for r in ordered["cancelled"]] == ["cancel_event"]
    clock.advance(minutes=59)
    fire_event_automations(shop.svc)
    assert runs(shop)[ann] == ("scheduled", None)  # not due yet
    clock.advance(minutes=1)
    assert fire_event_automations(shop.svc) == 1
    assert runs(shop) == {
        ann: ("sent", None),
        bob: ("cancelled", "cancel_event"),
        cat: ("cancelled", "purchase"),
        dan: ("skipped", "no_consent"),
    }
    assert card_message(shop, ann) == "Ann, your Oolong tea is still in your cart!"
    assert card_message(shop, bob) is None and card_message(shop, dan) is None
    fired = (OutboxMessage.kind == "apns", OutboxMessage.created_at == clock())
    assert shop.count(OutboxMessage, *fired) == 1  # Cat's scan pushed her balance earlier
    assert shop.count(MessageLog, MessageLog.source == "event") == 1
    shop.deliver()
    assert len(apns.requests_for(push_token(1))) == 1
    assert apns.requests_for(push_token(2)) == []
    assert fire_event_automations(shop.svc) == 0  # decided runs never fire again
    assert "fire_event_automations" in {job.name for job in INTERVAL_JOBS}


def test_an_event_id_replays_the_first_answer_and_refuses_another_body(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    create_automation(client, brand)
    ann = shop.enroll("Ann")
    cart = {"items": [{"name": "Oolong tea"}], "total": Decimal("12.50")}
    body = {"member_id": ann, "type": "cart_abandoned", "id": "evt-1", "properties": cart}
    first = client.post("/api/v1/events", json=body, headers=brand.admin)
    assert first.status_code == 201
    clock.advance(minutes=1)
    again = client.post("/api/v1/events", json=body, headers=brand.admin)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    other = client.post(
        "/api/v1/events", json={**body, "properties": {"total": 13}}, headers=brand.admin
    )
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    keyed = {**brand.admin, "Idempotency-Key": "evt-2"}
    plain = {"member_id": ann, "type": "newsletter.signup"}
    assert client.post("/api/v1/events", json=plain, headers=keyed).status_code == 201
    assert client.post("/api/v1/events", json=plain, headers=keyed).status_code == 200
    both = client.post("/api/v1/events", json={**plain, "id": "evt-3"}, headers=keyed)
    assert both.status_code == 422 and both.get_json()["error"]["field"] == "id"
    assert shop.count(Event) == 2
    assert shop.count(EventAutomationRun) == 1


def test_events_are_validated_field_by_field_and_change_nothing(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    ann = shop.enroll("Ann")
    now = clock()
    deep: dict[str, Any] = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"member_id": ann, "external_id": "x1", "type": "t"}, "member_id"),
        ({"type": "t"}, "member_id"),
        ({"member_id": ann, "type": "Cart Abandoned"}, "type"),
        ({"member_id": ann, "type": "x" * 65}, "type"),
        ({"member_id": ann, "type": "t", "properties": {"blob": ["y" * 400] * 30}}, "properties"),
        ({"member_id": ann, "type": "t", "properties": deep}, "properties"),
        ({"member_id": ann, "type": "t", "properties": {"note": "z" * 501}}, "properties"),
        ({"member_id": ann, "type": "t", "properties": ["not", "an", "object"]}, "properties"),
        ({"member_id": ann, "type": "t", "occurred_at": (now + timedelta(minutes=6)).isoformat()},
         "occurred_at"),
        ({"member_id": ann, "type": "t", "occurred_at": (now - timedelta(days=31)).isoformat()},
         "occurred_at"),
        ({"member_id": ann, "type": "t", "occurred_at": "2026-03-10T12:00:00"}, "occurred_at"),
        ({"member_id": ann, "type": "t", "occurred_at": 1773144000}, "occurred_at"),
        ({"member_id": ann, "type": "t", "id": ""}, "id"),
        ({"member_id": ann, "type": "t", "id": "i" * 101}, "id"),
    ]  # fmt: skip
    for body, field in cases:
        response = client.post("/api/v1/events", json=body, headers=brand.admin)
        assert response.status_code == 422, (body, response.get_data(as_text=True))
        assert response.get_json()["error"]["field"] == field, body
    ok = {"member_id": ann, "type": "t", "occurred_at": (now - timedelta(days=29)).isoformat(),
          "properties": {"a": {"b": {"c": {"d": {"e": 1}}}}}}  # fmt: skip
    assert client.post("/api/v1/events", json=ok, headers=brand.admin).status_code == 201
    assert shop.count(Event) == 1


def test_another_brands_member_and_unknown_ids_are_not_found(
    app: Any, client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    rival = make_brand(app, "Rival Roasters")
    theirs = Shop(shop.app, rival, shop.clock).enroll("Eve")
    ours = shop.enroll("Ann")
    with shop.svc.db.transaction() as session:
        session.execute(update(Member).where(Member.id == theirs).values(external_id="crm-7"))
        session.execute(update(Member).where(Member.id == ours).values(external_id="crm-1"))
    for body in ({"member_id": theirs}, {"external_id": "crm-7"}, {"member_id": 2**31 - 1},
                 {"external_id": "nobody"}):  # fmt: skip
        response = client.post("/api/v1/events", json={**body, "type": "t"}, headers=brand.admin)
        assert response.status_code == 404, body
    by_external = send_external(client, brand, "crm-1")
    assert by_external["member_id"] == ours
    assert shop.count(Event) == 1


def send_external(client: FlaskClient, brand: BrandKeys, external_id: str) -> dict[str, Any]:
    """POST an event naming the member by external id (201 asserted)."""
    response = client.post(
        "/api/v1/events", json={"external_id": external_id, "type": "t"}, headers=brand.admin
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def test_cashier_keys_can_neither_send_events_nor_manage_event_automations(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    ann = shop.enroll("Ann")
    automation = create_automation(client, brand)
    calls = [
        client.post("/api/v1/events", json={"member_id": ann, "type": "t"}, headers=brand.cashier),
        client.get("/api/v1/event-automations", headers=brand.cashier),
        client.post("/api/v1/event-automations", json={}, headers=brand.cashier),
        client.patch(f"/api/v1/event-automations/{automation['id']}", json={"enabled": False},
                     headers=brand.cashier),
        client.delete(f"/api/v1/event-automations/{automation['id']}", headers=brand.cashier),
    ]  # fmt: skip
    assert [r.status_code for r in calls] == [403] * 5
    assert shop.count(Event) == 0


def test_a_run_due_in_quiet_hours_waits_for_their_end(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    create_automation(client, brand)
    ann = shop.enroll("Ann")
    clock.now = datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    send(client, brand, ann, "cart_abandoned", properties={"items": [{"name": "Oolong tea"}]})
    clock.now = datetime(2026, 3, 10, 22, 1, tzinfo=UTC)  # quiet hours 21:00-09:00 UTC
    assert fire_event_automations(shop.svc) == 0
    assert runs(shop)[ann] == ("scheduled", None)
    clock.now = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    assert fire_event_automations(shop.svc) == 1
    assert "Oolong tea" in (card_message(shop, ann) or "")


def test_the_weekly_cap_holds_marketing_runs_but_not_service_ones(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    shop.set_program(messages_per_week_cap=1)
    create_automation(client, brand, name="Signed up", trigger_event="newsletter.signup",
                      delay_minutes=1, message="Welcome to the newsletter, {name}!",
                      cancel_events=[])  # fmt: skip
    create_automation(client, brand, name="Browsed", trigger_event="product.viewed",
                      delay_minutes=2, message="Still thinking about {event.product}?",
                      cancel_events=[])  # fmt: skip
    create_automation(client, brand, name="Receipt", trigger_event="order_placed",
                      delay_minutes=3, message="Order {event.order} is on its way",
                      cancel_events=[], cancel_on_purchase=False, marketing=False)  # fmt: skip
    ann = shop.enroll("Ann")
    send(client, brand, ann, "newsletter.signup")
    send(client, brand, ann, "product.viewed", properties={"product": "Oolong tea"})
    send(client, brand, ann, "order_placed", properties={"order": 1042})
    clock.advance(minutes=1)
    assert fire_event_automations(shop.svc) == 1
    clock.advance(minutes=2)
    assert fire_event_automations(shop.svc) == 1  # the receipt; the nudge is over the cap
    with shop.svc.db.transaction() as session:
        decided = session.execute(
            select(EventAutomationRun.status, EventAutomationRun.reason).order_by(
                EventAutomationRun.id
            )
        ).all()
    assert [tuple(row) for row in decided] == [
        ("sent", None),
        ("skipped", "frequency_cap"),
        ("sent", None),
    ]
    assert card_message(shop, ann) == "Order 1042 is on its way"


def test_a_later_trigger_replaces_the_pending_run_and_an_earlier_one_is_ignored(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    create_automation(client, brand)
    ann = shop.enroll("Ann")
    first = send(client, brand, ann, "cart_abandoned", properties={"items": [{"name": "Tea"}]})
    clock.advance(minutes=30)
    second = send(client, brand, ann, "cart_abandoned", properties={"items": [{"name": "Cup"}]})
    assert second["cancelled"] == [
        {"id": first["scheduled"][0]["id"], "automation_id": first["scheduled"][0]["automation_id"],
         "due_at": None, "reason": "replaced"}
    ]  # fmt: skip
    stale = (clock() - timedelta(minutes=20)).isoformat()
    late = send(client, brand, ann, "cart_abandoned", occurred_at=stale)
    assert late["scheduled"] == [] and late["cancelled"] == []
    # An order placed after the cart, reported before it (arrival order does not matter).
    clock.advance(minutes=150)
    assert fire_event_automations(shop.svc) == 1
    assert card_message(shop, ann) == "Ann, your Cup is still in your cart!"


def test_an_order_reported_before_its_cart_still_cancels_at_fire_time(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    create_automation(client, brand)
    ann = shop.enroll("Ann")
    send(
        client, brand, ann, "order_placed", occurred_at=(clock() + timedelta(minutes=1)).isoformat()
    )
    send(client, brand, ann, "cart_abandoned")
    clock.advance(hours=3)
    assert fire_event_automations(shop.svc) == 0
    assert runs(shop)[ann] == ("cancelled", "cancel_event")


def test_event_automations_are_created_listed_changed_and_deleted_with_audit(
    app: Any, client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    created = create_automation(client, brand)
    assert created["cancel_on_purchase"] is True and created["marketing"] is True
    assert created["runs"] == {"scheduled": 0, "sent": 0, "cancelled": 0, "skipped": 0}
    url = f"/api/v1/event-automations/{created['id']}"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"delay_minutes": 0}, "delay_minutes"),
        ({"delay_minutes": 43_201}, "delay_minutes"),
        ({"message": "Hi {name:>300000000}"}, "message"),
        ({"message": "Hi {bogus}"}, "message"),
        ({"offer_id": 999}, "offer_id"),
        ({"cancel_events": ["cart_abandoned"]}, "cancel_events"),
        ({"trigger_event": "Bad Type"}, "trigger_event"),
        ({"name": None}, "name"),
    ]
    for body, field in bad:
        response = client.patch(url, json=body, headers=brand.admin)
        assert response.status_code == 422, (body, response.get_data(as_text=True))
        assert response.get_json()["error"]["field"] == field, body
    changed = client.patch(url, json={"enabled": False, "delay_minutes": 30}, headers=brand.admin)
    assert changed.status_code == 200
    assert changed.get_json()["enabled"] is False and changed.get_json()["delay_minutes"] == 30
    listed = client.get("/api/v1/event-automations", headers=brand.admin).get_json()
    assert [a["id"] for a in listed["event_automations"]] == [created["id"]]
    rival = make_brand(app, "Rival Roasters")
    assert client.patch(url, json={"enabled": True}, headers=rival.admin).status_code == 404
    assert client.delete(url, headers=rival.admin).status_code == 404
    assert client.get("/api/v1/event-automations", headers=rival.admin).get_json() == {
        "event_automations": []
    }
    assert client.delete(url, headers=brand.admin).status_code == 204
    assert client.delete(url, headers=brand.admin).status_code == 404
    with shop.svc.db.transaction() as session:
        actions = [e.action for e in list_entries(session, brand.brand_id)]
    assert actions == [
        "event_automation.deleted",
        "event_automation.updated",
        "event_automation.created",
    ]


# --- the renderer and the properties, without a database ----------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    template=st.text(alphabet=st.sampled_from("{}.event itms0nam\x00é"), max_size=80)
    | st.text(max_size=600),
    properties=JSON_VALUES,
    name=st.text(max_size=300),
)
def test_the_event_renderer_never_raises_and_never_passes_the_cap(
    template: str, properties: object, name: str
) -> None:
    text = render_event_message(template, {"name": name, "points": "1", "tier": ""}, properties)
    assert len(text) <= 500


def test_event_placeholders_follow_paths_and_render_missing_values_empty() -> None:
    props = {"items": [{"name": "Oolong tea", "qty": 2}], "total": Decimal("12.50"),
             "gift": True, "nested": {"a": [1]}}  # fmt: skip
    values = {"name": "Ann", "points": "1,250", "tier": "Gold"}
    template = check_event_template(
        "{name} ({tier}, {points}): {event.items.0.name} x{event.items.0.qty}, {event.total}, "
        "{event.gift}, [{event.items.1.name}] [{event.nested}] [{event.missing.deep}] {{ok}}"
    )
    assert render_event_message(template, values, props) == (
        "Ann (Gold, 1,250): Oolong tea x2, 12.50, true, [] [] [] {ok}"
    )
    for bad in ("{event}", "{event.}", "{event.a.b.c.d.e.f}", "{name:>9}", "{event.a b}", "{"):
        with pytest.raises(ValidationError):
            check_event_template(f"Hi {bad}")


@hypothesis_settings(max_examples=200, deadline=None)
@given(properties=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5))
def test_properties_are_stored_exactly_or_refused_with_the_field(
    properties: dict[str, Any],
) -> None:
    try:
        checked = check_properties(properties)
    except ValidationError as exc:
        assert exc.field == "properties"
        return
    assert load_properties(dump_properties(checked)) == checked


def test_the_dashboard_lists_creates_switches_and_deletes_event_automations(
    app: Any, client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    token = csrf_of(client, "/dashboard/event-automations")
    form = {"csrf_token": token, "name": "Abandoned cart", "trigger_event": "cart_abandoned",
            "delay_minutes": "0", "cancel_events": "order_placed, refund.done",
            "cancel_on_purchase": "yes", "message": CART_MESSAGE, "marketing": "yes"}  # fmt: skip
    refused = client.post("/dashboard/event-automations", data=form)
    assert refused.status_code == 422
    assert "delay_minutes must be 1 to 43200" in refused.get_data(as_text=True)
    saved = client.post("/dashboard/event-automations", data={**form, "delay_minutes": "120"})
    assert saved.status_code == 303
    listed = client.get("/api/v1/event-automations", headers=brand.admin).get_json()
    [automation] = listed["event_automations"]
    assert automation["cancel_events"] == ["order_placed", "refund.done"]
    assert automation["delay_minutes"] == 120 and automation["enabled"] is True
    page = client.get("/dashboard/event-automations").get_data(as_text=True)
    assert "Abandoned cart" in page and "cart_abandoned → after 120 min" in page
    base = f"/dashboard/event-automations/{automation['id']}"
    assert client.post(f"{base}/toggle", data={"csrf_token": token}).status_code == 303
    listed = client.get("/api/v1/event-automations", headers=brand.admin).get_json()
    assert listed["event_automations"][0]["enabled"] is False
    missing = "/dashboard/event-automations/999999/toggle"
    assert client.post(missing, data={"csrf_token": token}).status_code == 404
    assert client.post(f"{base}/delete", data={"csrf_token": token}).status_code == 303
    assert client.get("/api/v1/event-automations", headers=brand.admin).get_json() == {
        "event_automations": []
    }
    client.set_cookie("walletd_lang", "zh-Hant")
    assert "事件自動訊息" in client.get("/dashboard/event-automations").get_data(as_text=True)
