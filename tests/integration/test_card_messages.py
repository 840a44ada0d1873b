"""Card messages: several on a card with dates, expiry, withdrawn reminders, clearing (both DBs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.audit import list_entries
from walletd.campaigns import automations
from walletd.config import BUNDLED_PASS_TEMPLATES
from walletd.errors import ValidationError
from walletd.jobs import INTERVAL_JOBS, expire_card_messages, expire_points
from walletd.messages.service import message_expiry
from walletd.models import Card, CardMessage, OutboxMessage
from walletd.passes.cards import card_view
from walletd.passes.google import build_loyalty_object
from walletd.passes.pkpass import load_template, render_pass_json
from walletd.passes.view import CardView
from walletd.push.outbox import GOOGLE_OBJECT

TEMPLATES = BUNDLED_PASS_TEMPLATES


def _post(client: FlaskClient, brand: BrandKeys, member_id: int, text: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/members/{member_id}/message",
        json={"message": text, **extra},
        headers=brand.admin,
    )


def _send(client: FlaskClient, brand: BrandKeys, member_id: int, text: str, **extra: Any) -> str:
    response = _post(client, brand, member_id, text, **extra)
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.get_json()["message_id"])


def _view(app: Flask, member_id: int) -> CardView:
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(
            select(Card).where(Card.member_id == member_id, Card.kind == "loyalty")
        ).one()
        return card_view(session, card)


def _card(app: Flask, member_id: int) -> tuple[str | None, int]:
    with services_of(app).db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == member_id)).one()
        return card.message, card.update_tag


def _back(view: CardView) -> dict[str, dict[str, Any]]:
    document = render_pass_json(
        view,
        pass_type_id="pass.dev.walletd.loyalty",
        team_id="WALLETDDEV",
        web_service_url="https://example.test/apple",
        template=load_template(TEMPLATES, "default"),
    )
    store_card: dict[str, Any] = document["storeCard"]  # type: ignore[assignment]
    return {field["key"]: field for field in store_card["backFields"]}


def _rows(app: Flask, member_id: int) -> list[CardMessage]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(
            select(CardMessage).where(CardMessage.member_id == member_id).order_by(CardMessage.id)
        ).all()
        session.expunge_all()
        return list(rows)


def test_a_card_keeps_its_three_newest_messages_with_dates_newest_first(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    ids = []
    for day in range(4):
        ids.append(_send(client, brand, member["id"], f"News {day}"))
        clock.advance(days=1)
    view = _view(app, member["id"])
    assert [m.text for m in view.messages] == ["News 3", "News 2", "News 1"]
    assert (view.message, view.message_id) == ("News 3", ids[3])
    back = _back(view)
    # The newest is still the field whose change the lock screen announces.
    assert back["message"]["value"] == "News 3"
    assert back["message"]["changeMessage"] == "%@"
    assert back["message_date"]["dateStyle"] == "PKDateStyleMedium"
    assert back["message_date"]["value"].startswith(view.messages[0].sent_at.date().isoformat())
    earlier = back["earlier_messages"]["value"].split("\n\n")
    assert earlier == [
        f"{view.messages[1].sent_at.date().isoformat()} · News 2",
        f"{view.messages[2].sent_at.date().isoformat()} · News 1",
    ]
    # The oldest left the card as replaced; Card.message still reads as the newest.
    assert [(r.text, r.withdrawn_reason) for r in _rows(app, member["id"])][0] == (
        "News 0",
        "replaced",
    )
    assert _card(app, member["id"])[0] == "News 3"
    # Google: the object carries the same three, newest first, with their ids.
    body = build_loyalty_object(view, issuer_id="3388000000012345678", class_id="x.y")
    assert [m["id"] for m in body["messages"]] == [ids[3], ids[2], ids[1]]


def test_a_message_with_an_expiry_leaves_the_card_when_the_job_runs(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    _send(client, brand, member["id"], "Lasting news")
    clock.advance(minutes=1)
    until = (clock() + timedelta(hours=3)).isoformat()
    _send(client, brand, member["id"], "Today only: double points", expires_at=until)
    _send(client, brand, member["id"], "This week only", expires_in_days=7)
    svc = services_of(app)
    assert expire_card_messages(svc) == 0
    clock.advance(hours=4)
    tag_before = _card(app, member["id"])[1]
    assert expire_card_messages(svc) == 1
    message, tag_after = _card(app, member["id"])
    assert message == "This week only"
    assert tag_after > tag_before  # the card was touched, so wallets fetch it again
    clock.advance(days=7)
    assert expire_card_messages(svc) == 1
    assert [m.text for m in _view(app, member["id"]).messages] == ["Lasting news"]
    reasons = {r.text: r.withdrawn_reason for r in _rows(app, member["id"])}
    assert reasons == {
        "Lasting news": None,
        "Today only: double points": "expired",
        "This week only": "expired",
    }
    assert "expire_card_messages" in {job.name for job in INTERVAL_JOBS}


def test_expiry_is_validated_and_a_refused_message_changes_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2020-01-01T00:00:00+00:00"}, "expires_at"),
        ({"expires_at": (clock() + timedelta(days=2)).replace(tzinfo=None).isoformat()},
         "expires_at"),
        ({"expires_at": (clock() + timedelta(days=400)).isoformat()}, "expires_at"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"expires_in_days": "3"}, "expires_in_days"),
        ({"expires_in_days": 3, "expires_at": (clock() + timedelta(days=2)).isoformat()},
         "expires_at"),
    ]  # fmt: skip
    for extra, field in cases:
        response = _post(client, brand, member["id"], "Hello", **extra)
        assert response.status_code == 422, (extra, response.get_data(as_text=True))
        assert field in response.get_data(as_text=True), extra
    assert _rows(app, member["id"]) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    expires_at=st.one_of(st.none(), st.text(max_size=70), st.integers(), st.datetimes()),
    days=st.one_of(st.none(), st.integers(min_value=-5, max_value=400), st.booleans()),
)
def test_message_expiry_either_answers_a_future_time_or_refuses_with_its_field(
    expires_at: object, days: object
) -> None:
    clock = FrozenClock()
    now = clock()
    try:
        when = message_expiry(expires_at, days, now)
    except ValidationError as exc:
        assert exc.field in ("expires_at", "expires_in_days")
        return
    assert when is None or now < when <= now + timedelta(days=366)


def test_clearing_takes_every_message_off_pushes_and_is_audited(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    other = make_brand(app, "Other Tea")
    _send(client, brand, member["id"], "One")
    _send(client, brand, member["id"], "Two")
    path = f"/api/v1/members/{member['id']}/message"
    assert client.delete(path, headers=brand.cashier).status_code == 403
    assert client.delete(path, headers=other.admin).status_code == 404
    assert (
        client.delete("/api/v1/members/2147483647/message", headers=brand.admin).status_code == 404
    )
    assert [m.text for m in _view(app, member["id"]).messages] == ["Two", "One"]
    tag_before = _card(app, member["id"])[1]
    response = client.delete(path, headers=brand.admin)
    assert response.status_code == 204
    assert response.get_data() == b""
    message, tag_after = _card(app, member["id"])
    assert message is None and tag_after > tag_before
    view = _view(app, member["id"])
    assert view.messages == () and view.message is None
    assert _back(view)["message"]["value"] == ""
    assert {r.withdrawn_reason for r in _rows(app, member["id"])} == {"cleared"}
    with services_of(app).db.transaction() as session:
        entries = list_entries(session, brand.brand_id, target_type="member")
        assert [e.action for e in entries if e.target_id == member["id"]] == [
            "member.messages_cleared"
        ]
    # Clearing again is harmless.
    assert client.delete(path, headers=brand.admin).status_code == 204


def test_two_automations_in_one_run_both_stay_on_the_card(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand, marketing_consent=True, birthday=clock().date().isoformat())
    for kind in ("welcome", "birthday"):
        response = client.put(
            f"/api/v1/programs/{brand.program_id}/automations/{kind}",
            json={"enabled": True},
            headers=brand.admin,
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    svc = services_of(app)
    with svc.db.transaction() as session:
        totals = automations.run_automations(session, svc.context())
    assert totals["welcome.sent"] == 1 and totals["birthday.sent"] == 1
    texts = [m.text for m in _view(app, member["id"]).messages]
    assert len(texts) == 2
    assert any(t.startswith("Welcome") for t in texts)
    assert any(t.startswith("Happy birthday") for t in texts)
    sources = {r.automation_kind for r in _rows(app, member["id"])}
    assert sources == {"welcome", "birthday"}


def test_the_reward_near_reminder_is_withdrawn_by_the_scan_that_reaches_the_reward(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand, marketing_consent=True)  # 50 welcome points
    barcode = member["card"]["barcode"]
    assert scan(client, brand, barcode, "80", "near-1").status_code == 201  # 130 of 150
    client.put(
        f"/api/v1/programs/{brand.program_id}/automations/reward_near",
        json={"enabled": True},
        headers=brand.admin,
    )
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert automations.run_automations(session, svc.context())["reward_near.sent"] == 1
    assert _card(app, member["id"])[0] == "Only 20 points to go until Free coffee!"
    [reminder] = _rows(app, member["id"])
    assert reminder.reward_points == 150
    clock.advance(minutes=5)
    assert scan(client, brand, barcode, "5", "near-2").status_code == 201  # 135: still true
    assert _card(app, member["id"])[0] == "Only 20 points to go until Free coffee!"
    tag_before = _card(app, member["id"])[1]
    assert scan(client, brand, barcode, "20", "near-3").status_code == 201  # 155: reached
    message, tag_after = _card(app, member["id"])
    assert message is None and tag_after > tag_before
    assert _view(app, member["id"]).messages == ()
    assert [r.withdrawn_reason for r in _rows(app, member["id"])] == ["no_longer_true"]


def test_the_points_expiring_reminder_is_withdrawn_once_those_points_expired(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)  # 50 welcome points, expiring in twelve months
    client.put(
        f"/api/v1/programs/{brand.program_id}/automations/points_expiring",
        json={"enabled": True},
        headers=brand.admin,
    )
    clock.advance(days=360)
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert automations.run_automations(session, svc.context())["points_expiring.sent"] == 1
    _send(client, brand, member["id"], "Spring menu is here")
    [reminder, news] = _rows(app, member["id"])
    assert reminder.expiring_until is not None and reminder.expires_at is not None
    assert _card(app, member["id"])[0] == "Spring menu is here"
    clock.advance(days=10)
    assert expire_points(svc) == 1  # the nightly job takes the points and touches the card
    assert [(r.text, r.withdrawn_reason) for r in _rows(app, member["id"])] == [
        (reminder.text, "no_longer_true"),
        ("Spring menu is here", None),
    ]
    assert [m.text for m in _view(app, member["id"]).messages] == ["Spring menu is here"]


def test_withdrawing_a_message_queues_a_google_patch_of_the_messages(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    svc = services_of(app)
    _send(client, brand, member["id"], "One")
    client.delete(f"/api/v1/members/{member['id']}/message", headers=brand.admin)
    with svc.db.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == GOOGLE_OBJECT)
        ).all()
        patches = [r.payload for r in rows if r.payload.get("messages")]
    if svc.context().google_enabled:
        assert patches == [{"card_id": member["card"]["id"], "messages": True}]
    else:
        assert patches == []


def test_a_campaign_carries_its_message_expiry(client: FlaskClient, brand: BrandKeys) -> None:
    body = {"name": "Weekend", "message": "Double points", "segment": {"preset": "all"}}
    for days in (0, 366, "7"):
        response = client.post(
            "/api/v1/campaigns",
            json={**body, "draft": True, "message_expires_in_days": days},
            headers=brand.admin,
        )
        assert response.status_code == 422, days
        assert "message_expires_in_days" in response.get_data(as_text=True)
    response = client.post(
        "/api/v1/campaigns",
        json={**body, "draft": True, "message_expires_in_days": 3},
        headers=brand.admin,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["message_expires_in_days"] == 3
