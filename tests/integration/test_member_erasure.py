"""DELETE /api/v1/members/{id}: the person is erased end to end, the brand's numbers stay."""

from __future__ import annotations

import json
from datetime import date

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, make_brand, scan, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import (  # noqa: F401  (fixtures)
    IssuedPass,
    WalletDevice,
    apns,
    count,
    dev_cert_template,
    dev_certs,
    dispatcher,
    issue_pass,
    local,
    pass_json_of,
    phone,
    settings,
)
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.audit import list_entries
from walletd.campaigns.segments import Segment, count_segment
from walletd.models import Card, Event, Member, Registration
from walletd.models.card_message import CardMessage
from walletd.models.member import ConsentChange
from walletd.passes.cards import card_view
from walletd.passes.google import build_loyalty_object, points_patch
from walletd.passes.view import CLOSED_MESSAGE
from walletd.privacy.consent import with_manage_link
from walletd.privacy.erasure import DEVICE_GRACE, forget_erased_devices
from walletd.push.dispatcher import Dispatcher
from walletd.web.links import link_signature

PERSONAL = ("Grace Hopper", "grace@navy.example", "+886912345678", "1906-12-09", "GH-1906")
SUMMARY = "/api/v1/reports/summary?from=2026-03-01&to=2026-03-31"


def _person(app: Flask, client: FlaskClient, brand: BrandKeys) -> IssuedPass:
    """A member with every personal field, a purchase, a message and an event."""
    issued = issue_pass(client, brand, name="Grace Hopper")
    svc = services_of(app)
    with svc.db.transaction() as session:
        member = session.get_one(Member, issued.member_id)
        member.email, member.phone = "grace@navy.example", "+886912345678"
        member.birthday, member.external_id = date(1906, 12, 9), "GH-1906"
        member.marketing_consent = True
    response = scan(client, brand, issued.barcode, "12.50", "erasure-1")
    assert response.status_code == 201, response.get_data(as_text=True)
    sent = client.post(
        f"/api/v1/members/{issued.member_id}/message",
        json={"message": "Hi Grace Hopper, see you soon"},
        headers=brand.admin,
    )
    assert sent.status_code in (200, 201, 202), sent.get_data(as_text=True)
    event = client.post(
        "/api/v1/events",
        json={
            "type": "cart.abandoned",
            "member_id": issued.member_id,
            "id": "evt-1",
            "properties": {"email": "grace@navy.example"},
        },
        headers=brand.admin,
    )
    assert event.status_code in (200, 201, 202), event.get_data(as_text=True)
    return issued


def _personal_in(text: str) -> list[str]:
    return [value for value in PERSONAL if value in text]


def test_erasure_scrubs_the_person_keeps_the_totals_and_voids_the_pass(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,  # noqa: F811
    dispatcher: Dispatcher,  # noqa: F811
    phone: WalletDevice,  # noqa: F811
) -> None:
    issued = _person(app, client, brand)
    assert phone.register(issued).status_code == 201
    dispatcher.drain()
    pushed_before = len(apns.requests)
    summary = client.get(SUMMARY, headers=brand.admin).get_json()
    page_sig = link_signature("page", issued.serial, services_of(app).settings.secret_key)
    card_page = f"/card/{issued.serial}?sig={page_sig}"
    assert client.get(card_page).status_code == 200
    # The back of the pass links the card page's promotional-messages switch.
    back = {f["key"]: f for f in issued.pass_json["storeCard"]["backFields"]}
    assert back["manage"]["value"] == f"http://walletd.test{card_page}#messages"
    assert back["manage"]["label"] == "manage_label"
    member_url = f"/api/v1/members/{issued.member_id}"

    # Roles and brands first: nothing changes.
    assert client.delete(member_url, headers=brand.cashier).status_code == 403
    other = make_brand(app, "Other Coffee")
    assert client.delete(member_url, headers=other.admin).status_code == 404
    assert client.get(member_url, headers=brand.admin).status_code == 200

    response = client.delete(member_url, headers=brand.admin)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert response.data == b""
    assert client.delete(member_url, headers=brand.admin).status_code == 404

    # 404 everywhere; the old barcode is an unknown card.
    for path in (member_url, f"{member_url}/ledger", f"{member_url}/export",
                 f"{member_url}/coupons", "/api/v1/members/ext:GH-1906"):  # fmt: skip
        got = client.get(path, headers=brand.admin)
        assert got.status_code == 404, (path, got.status_code)
        assert not _personal_in(got.get_data(as_text=True))
    again = scan(client, brand, issued.barcode, "1.00", "erasure-2")
    assert again.status_code == 404
    assert again.get_json()["error"]["code"] == "unknown_card"
    assert client.get(card_page).status_code == 404
    consent = client.post(f"/card/{issued.serial}/consent?sig={page_sig}", data={"consent": "on"})
    assert consent.status_code in (400, 404)
    members = client.get("/api/v1/members", headers=brand.admin)
    if members.status_code == 200:  # the list route of issue 12's members part
        assert not _personal_in(members.get_data(as_text=True))

    # No segment holds the member any more, so no campaign counts or reaches them.
    with services_of(app).db.transaction() as session:
        everyone = count_segment(session, brand.brand_id, Segment({"preset": "all"}), clock.now)
    assert everyone == 0

    # The brand's totals did not move.
    assert client.get(SUMMARY, headers=brand.admin).get_json() == summary

    svc = services_of(app)
    with svc.db.transaction() as session:
        member = session.get_one(Member, issued.member_id)
        assert member.erased_at == clock.now
        assert (member.name, member.email, member.phone) == ("", None, None)
        assert (member.birthday, member.external_id, member.marketing_consent) == (
            None,
            None,
            False,
        )
        assert member.points > 0 and member.visits == 1  # the ledger's numbers stay
        card = session.scalars(select(Card).where(Card.member_id == member.id)).one()
        assert card.message is None and card.barcode != issued.barcode
        assert (
            session.scalar(select(CardMessage.id).where(CardMessage.member_id == member.id)) is None
        )
        events = session.scalars(select(Event).where(Event.member_id == member.id)).all()
        assert events and all(e.properties is None for e in events)
        log = session.scalars(select(ConsentChange).where(ConsentChange.member_id == member.id))
        assert [(c.consent, c.source) for c in log] == [(False, "erasure")]
        [audited] = list_entries(session, brand.brand_id, target_type="member",
                                 target_id=member.id)  # fmt: skip
        assert audited.action == "member.erased"
        assert not _personal_in(json.dumps(audited.changes))
        # Google: the object is finished, with nothing of the person on it.
        view = with_manage_link(
            card_view(session, card, now=clock.now), card, base_url="https://x", secret_key="k"
        )
        assert view.manage_url is None  # a closed card links nowhere
        body = build_loyalty_object(view, issuer_id="3388000000012345678", class_id="3388.x")
        patch = points_patch(view, notify=False)
        assert body["state"] == patch["state"] == "INACTIVE"
        assert patch["accountName"] == "" and patch["messages"] == []
        assert not _personal_in(json.dumps(body) + json.dumps(patch))

    # Apple: the push went to the device's token, then the device fetches the voided pass.
    assert dispatcher.drain() >= 1
    assert phone.push_token in [r.token for r in apns.requests[pushed_before:]]
    changed = phone.updates(issued)
    assert changed.status_code == 200 and issued.serial in changed.get_json()["serialNumbers"]
    fetched = phone.latest(issued)
    assert fetched.status_code == 200
    document = pass_json_of(fetched.data)
    assert document["voided"] is True
    voided_back = {f["key"]: f["value"] for f in document["storeCard"]["backFields"]}
    assert voided_back["message"] == CLOSED_MESSAGE and "manage" not in voided_back
    assert not _personal_in(json.dumps(document, ensure_ascii=False))
    assert phone.register(issued).status_code == 401  # a closed card takes no new device

    # After the grace window the registrations and the device are gone, and the pass is 401.
    clock.advance(seconds=DEVICE_GRACE.total_seconds() + 60)
    with svc.db.transaction() as session:
        assert forget_erased_devices(session, now=clock.now) == 1
    assert count(app, Registration) == 0
    assert phone.latest(issued).status_code == 401


def test_erasure_needs_an_existing_member_of_the_brand(
    client: FlaskClient, brand: BrandKeys
) -> None:
    for member_id in (1, 999999, 2**31 - 1):
        assert client.delete(f"/api/v1/members/{member_id}", headers=brand.admin).status_code == 404
    assert client.delete("/api/v1/members/1").status_code == 401


def test_the_google_object_of_a_live_card_links_the_messages_switch(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    issued = issue_pass(client, brand)
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == issued.member_id)).one()
        view = with_manage_link(
            card_view(session, card, now=clock.now),
            card,
            base_url="http://walletd.test",
            secret_key=svc.settings.secret_key,
        )
    body = build_loyalty_object(view, issuer_id="3388000000012345678", class_id="3388.x")
    assert body["state"] == "ACTIVE"
    [link] = body["linksModuleData"]["uris"]
    sig = link_signature("page", issued.serial, svc.settings.secret_key)
    assert link["uri"] == f"http://walletd.test/card/{issued.serial}?sig={sig}#messages"
    assert client.get(link["uri"].removeprefix("http://walletd.test")).status_code == 200


def test_an_admin_erases_a_member_from_the_dashboard_after_confirming(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = issue_pass(client, brand, name="Grace Hopper")
    other = make_brand(app, "Other Coffee")
    stranger = issue_pass(client, other, name="Alan Turing")
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    page = f"/dashboard/members/{member.member_id}"
    assert 'id="erase-link"' in client.get(page).get_data(as_text=True)
    form = f"{page}/erase"
    shown = client.get(form)
    assert shown.status_code == 200 and "Grace Hopper" in shown.get_data(as_text=True)
    assert client.get(f"/dashboard/members/{stranger.member_id}/erase").status_code == 404
    token = csrf_of(client, form)

    unticked = client.post(form, data={"csrf_token": token})
    assert unticked.status_code == 422 and 'id="erase-error"' in unticked.get_data(as_text=True)
    assert client.post(form, data={"confirm": "yes"}).status_code == 400  # no CSRF token
    foreign = f"/dashboard/members/{stranger.member_id}/erase"
    assert client.post(foreign, data={"csrf_token": token, "confirm": "yes"}).status_code == 404

    done = client.post(form, data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/dashboard/members")
    listed = client.get("/dashboard/members").get_data(as_text=True)
    assert "Grace Hopper" not in listed and "The member was erased." in listed
    assert client.get(page).status_code == 404
    assert client.get(form).status_code == 404
    with services_of(app).db.transaction() as session:
        [entry] = list_entries(session, brand.brand_id, target_type="member")
        assert (entry.action, entry.actor_label) == ("member.erased", "owner@acme.example")


def test_erasure_leaves_no_corrected_value_in_the_audit_log(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    created = client.post(
        "/api/v1/members",
        json={"name": "Ada Lovelace", "email": "ada@example.com"},
        headers=brand.admin,
    )
    member_id = created.get_json()["id"]
    changed = client.patch(
        f"/api/v1/members/{member_id}", json={"email": "ada@new.example"}, headers=brand.admin
    )
    assert changed.status_code == 200
    assert client.delete(f"/api/v1/members/{member_id}", headers=brand.admin).status_code == 204
    with services_of(app).db.sessions() as session:
        rows = list_entries(session, brand.brand_id, target_type="member", target_id=member_id)
        stored = json.dumps([row.changes for row in rows])
    assert {row.action for row in rows} >= {"member.updated", "member.erased"}
    assert "ada@" not in stored and "Lovelace" not in stored
