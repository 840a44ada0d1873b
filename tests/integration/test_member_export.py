"""GET /api/v1/members/{id}/export and the card page's promotional-messages switch."""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from tests.integration.pages.conftest import csrf_of
from walletd.audit import list_entries
from walletd.models import Card, Device, Member, Registration
from walletd.models.member import ConsentChange
from walletd.web.links import link_signature


def _member(client: FlaskClient, brand: BrandKeys) -> dict[str, object]:
    return enroll(
        client,
        brand,
        name="Ada Lovelace",
        email="ada@example.com",
        phone="+886912345678",
        birthday="1990-01-03",
        marketing_consent=True,
    )


def _card_page(app: Flask, serial: str) -> str:
    sig = link_signature("page", serial, services_of(app).settings.secret_key)
    return f"/card/{serial}?sig={sig}"


def test_the_export_holds_the_whole_record_and_no_secret(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = _member(client, brand)
    card = member["card"]
    assert isinstance(card, dict)
    assert scan(client, brand, card["barcode"], "20.00", "export-1").status_code == 201
    event = client.post(
        "/api/v1/events",
        json={"type": "page.viewed", "member_id": member["id"], "id": "e-1",
              "properties": {"page": "/menu"}},
        headers=brand.admin,
    )  # fmt: skip
    assert event.status_code in (200, 201, 202), event.get_data(as_text=True)
    svc = services_of(app)
    with svc.db.transaction() as session:
        stored = session.scalars(select(Card).where(Card.member_id == member["id"])).one()
        auth_token = stored.auth_token
        session.add(
            Registration(device_id=_device(session), card_id=stored.id, pass_type_id="pass.x",
                         push_token="ab" * 32, created_at=clock.now, updated_at=clock.now)
        )  # fmt: skip
    sent = client.post(f"/api/v1/members/{member['id']}/message",
                       json={"message": "See you soon, Ada"}, headers=brand.admin)  # fmt: skip
    assert sent.status_code in (200, 201, 202), sent.get_data(as_text=True)
    page = _card_page(app, str(card["serial_number"]))
    token = csrf_of(client, page)
    switched = client.post(
        page.replace("?", "/consent?"), data={"csrf_token": token, "consent": "off"}
    )
    assert switched.status_code == 303

    url = f"/api/v1/members/{member['id']}/export"
    assert client.get(url, headers=brand.cashier).status_code == 403
    assert client.get(url, headers=make_brand(app, "Other").admin).status_code == 404
    assert client.get(url).status_code == 401
    response = client.get(url, headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    person = document["member"]
    assert (person["name"], person["email"], person["phone"], person["birthday"]) == (
        "Ada Lovelace", "ada@example.com", "+886912345678", "1990-01-03",
    )  # fmt: skip
    assert person["marketing_consent"] is False
    assert [c["serial_number"] for c in document["cards"]] == [card["serial_number"]]
    assert document["wallets"] == {"apple_devices": 1, "google_saved_cards": 0}
    kinds = [e["kind"] for e in document["ledger"]]
    assert "earn" in kinds
    assert [e["properties"] for e in document["events"]] == [{"page": "/menu"}]
    assert document["import_origin"]["imported"] is False
    assert [(c["marketing_consent"], c["source"]) for c in document["consent_history"]] == [
        (False, "card_page")
    ]
    assert document["coupons"] == [] and isinstance(document["messages"], list)
    assert [m["text"] for m in document["card_messages"]] == ["See you soon, Ada"]
    assert document["feedback"] == []
    text = response.get_data(as_text=True)
    for secret in (auth_token, "ab" * 32, str(card["barcode"])):
        assert secret not in text
    with svc.db.transaction() as session:
        actions = [e.action for e in list_entries(session, brand.brand_id, target_type="member")]
    assert actions == ["member.exported"]


def _device(session: Session) -> int:
    device = Device(library_id="d" * 32)
    session.add(device)
    session.flush()
    return device.id


def test_the_card_page_switch_turns_promotional_messages_off_and_on(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = _member(client, brand)
    card = member["card"]
    assert isinstance(card, dict)
    serial = str(card["serial_number"])
    page = _card_page(app, serial)
    html = client.get(page).get_data(as_text=True)
    assert 'id="messages"' in html and 'data-consent="on"' in html
    consent_url = page.replace("?", "/consent?")
    token = csrf_of(client, page)

    # Refused: no CSRF token, a forged signature, a value that is neither on nor off.
    assert client.post(consent_url, data={"consent": "off"}).status_code == 400
    forged = f"/card/{serial}/consent?sig={'0' * 32}"
    assert client.post(forged, data={"csrf_token": token, "consent": "off"}).status_code == 404
    bad = client.post(consent_url, data={"csrf_token": token, "consent": "maybe"})
    assert bad.status_code == 400

    off = client.post(consent_url, data={"csrf_token": token, "consent": "off"})
    assert off.status_code == 303 and off.headers["Location"].endswith("&saved=1#messages")
    shown = client.get(off.headers["Location"]).get_data(as_text=True)
    assert 'data-consent="off"' in shown and 'id="consent-saved"' in shown
    # The same choice again changes nothing and logs nothing.
    client.post(consent_url, data={"csrf_token": token, "consent": "off"})
    client.post(consent_url, data={"csrf_token": token, "consent": "on"})
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert session.get_one(Member, member["id"]).marketing_consent is True
        log = session.scalars(select(ConsentChange).order_by(ConsentChange.id)).all()
        assert [(c.consent, c.source) for c in log] == [(False, "card_page"), (True, "card_page")]
    # The API shows what the member chose.
    shown_api = client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()
    assert shown_api["marketing_consent"] is True
    assert re.search(r'action="[^"]*/consent\?sig=[0-9a-f]{32}"', shown)


@given(choice=st.text(max_size=20), serial=st.text(max_size=70))
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_consent_value_or_serial_is_refused_cleanly_and_changes_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, choice: str, serial: str
) -> None:
    member = _member(client, brand) if not _members(app) else None
    card_serial = _members(app)[0]
    page = _card_page(app, card_serial)
    token = csrf_of(client, page)
    # Any other value of the switch, on the real card: 400, consent untouched.
    if choice not in ("on", "off"):
        got = client.post(page.replace("?", "/consent?"), data={"csrf_token": token,
                                                                  "consent": choice})  # fmt: skip
        assert got.status_code == 400
    # Any serial with a signature of another card: never found, never a 500.
    target = quote(serial, safe="") or "x"
    forged = f"/card/{target}/consent?sig={page.rsplit('=', 1)[1]}"
    got = client.post(forged, data={"csrf_token": token, "consent": "off"})
    # 308: a "/" in the serial (%2F is decoded before routing) makes an empty path segment, which
    # the router answers with a redirect to the merged path; nothing is changed either way.
    assert got.status_code in (308, 404, 405) or (target == card_serial and got.status_code == 303)
    assert member is None or member["marketing_consent"] is True
    with services_of(app).db.transaction() as session:
        log = session.scalars(select(ConsentChange)).all()
        assert all(c.source == "card_page" for c in log)


def _members(app: Flask) -> list[str]:
    with services_of(app).db.transaction() as session:
        return list(session.scalars(select(Card.serial_number).order_by(Card.id)).all())
