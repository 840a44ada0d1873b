"""Members' preferred language and messages written per language, on SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.campaigns.conftest import Shop, create_campaign, push_token, with_apns
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.campaigns import automations
from walletd.config import Settings
from walletd.jobs import fire_event_automations
from walletd.models import Card, MessageLog, OutboxMessage

ZH = "{name}，本週點數加倍！"
EN = "Double points this week, {name}!"
DEFAULT = "Double points, {name}."


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Deliveries go to the APNs fake."""
    return with_apns(settings, apns)


def set_language(
    client: FlaskClient, brand: BrandKeys, member_id: int, language: Any
) -> dict[str, Any]:
    """PATCH a member's language; returns the response body."""
    response = client.patch(
        f"/api/v1/members/{member_id}", json={"language": language}, headers=brand.admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def card_messages(shop: Shop) -> dict[int, str]:
    """The message on each member's loyalty card, for members who have one."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(Card.member_id, Card.message).where(
                Card.message.is_not(None), Card.kind == "loyalty"
            )
        ).all()
    return {int(m): str(text) for m, text in rows}


def three_members(client: FlaskClient, brand: BrandKeys, shop: Shop) -> tuple[int, int, int]:
    """A zh-Hant member, an English one and one without a language, each with an Apple card."""
    zh, en, unset = shop.enroll_many(
        ["Mei Lin", "Ann Lee", "Sam Poe"], tokens=[push_token(1), push_token(2), push_token(3)]
    )
    assert set_language(client, brand, zh, "zh-Hant")["language"] == "zh-Hant"
    assert set_language(client, brand, en, "en")["language"] == "en"
    return zh, en, unset


def test_each_campaign_recipient_reads_the_text_of_their_language(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    zh, en, unset = three_members(client, brand, shop)
    campaign = create_campaign(
        client,
        brand,
        message=DEFAULT,
        messages={
            "zh-Hant": ZH,
            "en": EN,
        },
    )
    assert campaign["messages"] == {"zh-Hant": ZH, "en": EN}
    shop.fan_out()
    assert card_messages(shop) == {
        zh: "Mei，本週點數加倍！",
        en: "Double points this week, Ann!",
        unset: "Double points, Sam.",
    }
    assert shop.count(MessageLog, MessageLog.source_id == campaign["id"]) == 3
    assert shop.count(OutboxMessage, OutboxMessage.campaign_id == campaign["id"]) == 3
    shop.deliver()
    assert sorted(r.token or "" for r in apns.requests) == [push_token(n) for n in (1, 2, 3)]


def test_a_member_without_a_language_reads_the_programs_default_language_then_message(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    zh, en, unset = three_members(client, brand, shop)
    shop.set_program(default_language="zh-Hant")
    first = create_campaign(client, brand, message=DEFAULT, messages={"zh-Hant": ZH})
    shop.fan_out()
    # The English member has no English text: the program's language comes next.
    assert card_messages(shop) == {
        zh: "Mei，本週點數加倍！", en: "Ann，本週點數加倍！", unset: "Sam，本週點數加倍！",
    }  # fmt: skip
    shop.set_program(default_language=None)
    create_campaign(client, brand, name="Second", message=DEFAULT, messages={"zh-Hant": ZH})
    shop.fan_out()
    assert card_messages(shop) == {
        zh: "Mei，本週點數加倍！", en: "Double points, Ann.", unset: "Double points, Sam.",
    }  # fmt: skip
    assert first["messages"] == {"zh-Hant": ZH}


def test_per_language_texts_are_checked_like_the_message(
    client: FlaskClient, brand: BrandKeys
) -> None:
    body = {"name": "Promo", "message": DEFAULT, "segment": {"preset": "all"}}
    cases = [
        {"fr": "Bonjour"},
        {"zh-Hant": "x" * 501},
        {"zh-Hant": "{feedback_url}"},
        {"zh-Hant": "{name.__class__}"},
        {"zh-Hant": 5},
        ["zh-Hant"],
    ]
    for messages in cases:
        response = client.post(
            "/api/v1/campaigns", json={**body, "messages": messages}, headers=brand.admin
        )
        assert response.status_code == 422, (messages, response.get_data(as_text=True))
        assert "messages" in response.get_data(as_text=True)


def test_a_member_language_is_set_on_enrollment_and_by_patch_and_refused_when_unknown(
    client: FlaskClient, brand: BrandKeys
) -> None:
    created = client.post(
        "/api/v1/members", json={"name": "Mei", "email": "mei@example.com", "language": "zh-Hant"},
        headers=brand.admin,
    )  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    member = created.get_json()
    assert member["language"] == "zh-Hant"
    for bad in ("fr", "zh", 7, ""):
        response = client.patch(
            f"/api/v1/members/{member['id']}", json={"language": bad}, headers=brand.admin
        )
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["error"]["field"] == "language"
    assert set_language(client, brand, member["id"], None)["language"] is None
    assert set_language(client, brand, member["id"], "en")["language"] == "en"
    refused = client.post(
        "/api/v1/members", json={"name": "X", "email": "x@example.com", "language": "de"},
        headers=brand.admin,
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "language"


def test_joining_on_the_chinese_page_makes_a_chinese_speaking_member(
    client: FlaskClient, brand: BrandKeys
) -> None:
    client.set_cookie("walletd_lang", "zh-Hant")
    token = csrf_of(client, f"/join/{brand.program_id}")
    response = client.post(
        f"/join/{brand.program_id}",
        data={"csrf_token": token, "name": "Mei Lin", "email": "mei@example.com"},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    listed = client.get("/api/v1/members", headers=brand.admin).get_json()["members"]
    assert [m["language"] for m in listed] == ["zh-Hant"]
    export = client.get(f"/api/v1/members/{listed[0]['id']}", headers=brand.admin).get_json()
    assert export["language"] == "zh-Hant"


def test_automations_speak_each_members_language(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    response = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True, "messages": {"zh-Hant": "歡迎，{name}！"}},
        headers=brand.admin,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["messages"] == {"zh-Hant": "歡迎，{name}！"}
    zh, en, unset = three_members(client, brand, shop)
    with shop.svc.db.transaction() as session:
        automations.run_automations(session, shop.ctx())
    welcome = "Welcome, {}! Your card is ready: show it at the till to earn points."
    assert card_messages(shop) == {
        zh: "歡迎，Mei！", en: welcome.format("Ann"), unset: welcome.format("Sam"),
    }  # fmt: skip
    bad = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True, "messages": {"zh-Hant": "{expiring}"}},
        headers=brand.admin,
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "messages.zh-Hant"
    # Left out, the texts stay; null takes them off.
    kept = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True}, headers=brand.admin,
    )  # fmt: skip
    assert kept.get_json()["messages"] == {"zh-Hant": "歡迎，{name}！"}
    cleared = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True, "messages": None}, headers=brand.admin,
    )  # fmt: skip
    assert cleared.get_json()["messages"] == {}


def test_event_automations_speak_each_members_language(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    response = client.post(
        "/api/v1/event-automations",
        json={"name": "Cart", "trigger_event": "cart_abandoned", "delay_minutes": 60,
              "message": "{name}, your cart is waiting!",
              "messages": {"zh-Hant": "{name}，購物車還在等你！"}},
        headers=brand.admin,
    )  # fmt: skip
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["messages"] == {"zh-Hant": "{name}，購物車還在等你！"}
    zh, en, _ = three_members(client, brand, shop)
    for member in (zh, en):
        sent = client.post(
            "/api/v1/events", json={"member_id": member, "type": "cart_abandoned"},
            headers=brand.admin,
        )  # fmt: skip
        assert sent.status_code == 201, sent.get_data(as_text=True)
    clock.advance(minutes=60)
    assert fire_event_automations(shop.svc) == 2
    assert card_messages(shop) == {zh: "Mei，購物車還在等你！", en: "Ann, your cart is waiting!"}
    patched = client.patch(
        f"/api/v1/event-automations/{response.get_json()['id']}",
        json={"messages": {"en": "{bad"}}, headers=brand.admin,
    )  # fmt: skip
    assert patched.status_code == 422, patched.get_data(as_text=True)


def test_openapi_documents_languages_and_per_language_messages(client: FlaskClient) -> None:
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    for name in ("CampaignCreate", "AutomationUpdate", "EventAutomationCreate"):
        assert "messages" in schemas[name]["properties"], name
    for name in ("MemberCreate", "MemberUpdate", "MemberOut"):
        assert "language" in schemas[name]["properties"], name


def test_the_dashboard_forms_take_a_text_per_language_and_preview_each(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    log_in(client, make_staff(app, brand.brand_id, "boss@example.com"))
    token = csrf_of(client, "/dashboard/campaigns")
    form = {"csrf_token": token, "name": "Spring", "message": DEFAULT, "preset": "all",
            "message_zh-Hant": ZH}  # fmt: skip
    preview = client.post("/dashboard/campaigns", data={**form, "action": "preview"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html
    assert "Message in 繁體中文 (optional)" in html and 'name="message_en"' not in html
    assert "Double points, Ann." in html and "Ann，本週點數加倍！" in html
    refused = client.post(
        "/dashboard/campaigns", data={**form, "message_zh-Hant": "{oops}", "action": "create"}
    )
    assert refused.status_code == 422 and 'id="f-messages-error"' in refused.get_data(as_text=True)
    created = client.post("/dashboard/campaigns", data={**form, "action": "create"})
    assert created.status_code == 303, created.get_data(as_text=True)
    campaign_id = int(created.headers["Location"].rsplit("/", 1)[1])
    shown = client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin).get_json()
    assert shown["messages"] == {"zh-Hant": ZH}

    saved = client.post(
        "/dashboard/automations/birthday",
        data={"csrf_token": token, "enabled": "yes", "message": "Happy birthday {name}!",
              "delay_days": "0", "message_zh-Hant": "生日快樂，{name}！"},
    )  # fmt: skip
    assert saved.status_code == 303, saved.get_data(as_text=True)
    assert "生日快樂，{name}！" in client.get("/dashboard/automations").get_data(as_text=True)
    refused = client.post(
        "/dashboard/automations/birthday",
        data={"csrf_token": token, "enabled": "yes", "message_zh-Hant": "{points"},
    )
    assert refused.status_code == 422
    assert 'id="f-birthday-message-zh-Hant-error"' in refused.get_data(as_text=True)

    event_form = {"csrf_token": token, "name": "Cart", "trigger_event": "cart_abandoned",
                  "delay_minutes": "60", "message": "{name}, your cart!",
                  "message_zh-Hant": "{name}，你的購物車！"}  # fmt: skip
    assert client.post("/dashboard/event-automations", data=event_form).status_code == 303
    listed = client.get("/api/v1/event-automations", headers=brand.admin).get_json()
    assert [a["messages"] for a in listed["event_automations"]] == [
        {"zh-Hant": "{name}，你的購物車！"}
    ]

    client.set_cookie("walletd_lang", "zh-Hant")
    assert "繁體中文訊息（選填）" in client.get("/dashboard/campaigns").get_data(as_text=True)


def test_the_member_page_changes_the_members_language(
    app: Flask, client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    member = shop.enroll("Mei Lin")
    log_in(client, make_staff(app, brand.brand_id, "boss@example.com"))
    token = csrf_of(client, f"/dashboard/members/{member}")
    form = {"csrf_token": token, "name": "Mei Lin", "email": "", "phone": "", "birthday": ""}
    saved = client.post(f"/dashboard/members/{member}/edit", data={**form, "language": "zh-Hant"})
    assert saved.status_code == 303, saved.get_data(as_text=True)
    page = client.get(f"/dashboard/members/{member}").get_data(as_text=True)
    assert '<option value="zh-Hant" lang="zh-Hant" selected>' in page
    refused = client.post(f"/dashboard/members/{member}/edit", data={**form, "language": "xx"})
    assert refused.status_code == 422
    assert 'id="f-language-error"' in refused.get_data(as_text=True)
    # A form without the field (an older page) leaves the language as it was.
    assert client.post(f"/dashboard/members/{member}/edit", data=form).status_code == 303
    shown = client.get(f"/api/v1/members/{member}", headers=brand.admin).get_json()
    assert shown["language"] == "zh-Hant"
    cleared = client.post(f"/dashboard/members/{member}/edit", data={**form, "language": ""})
    assert cleared.status_code == 303
    shown = client.get(f"/api/v1/members/{member}", headers=brand.admin).get_json()
    assert shown["language"] is None
