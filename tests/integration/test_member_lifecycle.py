"""Finding members (filters, keyset pages), correcting them, and refusing duplicate contacts."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.errors import ValidationError
from walletd.loyalty.context import Context
from walletd.members.changes import validate_changes
from walletd.models import (
    AuditEntry,
    Card,
    Device,
    LedgerEntry,
    Member,
    OutboxMessage,
    Registration,
    Tier,
    WebhookDelivery,
)
from walletd.models.member import ConsentChange

# --- helpers -------------------------------------------------------------------------------------


def _list(client: FlaskClient, brand: BrandKeys, **query: Any) -> Any:
    return client.get("/api/v1/members", query_string=query, headers=brand.admin)


def _walk(client: FlaskClient, brand: BrandKeys, **query: Any) -> list[int]:
    """Every member id of every page, following the next links."""
    response = _list(client, brand, **query)
    seen: list[int] = []
    while True:
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        seen += [m["id"] for m in body["members"]]
        if body["next"] is None:
            return seen
        assert body["next"].startswith("/api/v1/members?")
        response = client.get(body["next"], headers=brand.admin)


def _error(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error: dict[str, Any] = response.get_json()["error"]
    assert error["code"] == code
    if field is not None:
        assert error.get("field") == field
    return error


def _patch(client: FlaskClient, brand: BrandKeys, member_id: int, **body: Any) -> Any:
    return client.patch(f"/api/v1/members/{member_id}", json=body, headers=brand.admin)


# --- a population of members, built once per test through the service layer ---------------------

NAMES = ["Ada Lovelace", "Chen Mei 陳美", "Zoë Ortiz", "Bob 100% Smith", "li_wei", "Ann"]
TIERS = ["Silver", "Gold", "VIP", None]


@dataclass(frozen=True)
class Row:
    """What the oracle knows of one member."""

    id: int
    name: str
    email: str | None
    phone: str | None
    tier: str | None
    external_id: str | None


def _populate(app: Flask, brand: BrandKeys, count: int, seed: int) -> list[Row]:
    """`count` members with overlapping names, some without e-mail or phone, in random tiers."""
    rng = random.Random(seed)
    svc = services_of(app)
    rows: list[Row] = []
    with svc.db.transaction() as session:
        tiers = {
            t.name: t.id
            for t in session.scalars(select(Tier).where(Tier.program_id == brand.program_id))
        }
        for i in range(count):
            name = rng.choice(NAMES)
            email = f"user{seed}-{i}@example.com" if rng.random() < 0.7 else None
            phone = f"+8869{seed % 10}{i:07d}" if rng.random() < 0.6 else None
            tier = rng.choice(TIERS)
            external = f"crm-{i}" if rng.random() < 0.5 else None
            member = Member(
                brand_id=brand.brand_id, program_id=brand.program_id, name=name, email=email,
                phone=phone, external_id=external, referral_code=f"R{seed}X{i:06d}",
                tier_id=tiers[tier] if tier else None, points=0,
            )  # fmt: skip
            session.add(member)
            session.flush()
            session.add(
                Card(brand_id=brand.brand_id, member_id=member.id, serial_number=f"S{seed}-{i}",
                     auth_token="t" * 32, barcode=f"B{seed}-{i}")
            )  # fmt: skip
            rows.append(Row(member.id, name, email, phone, tier, external))
    return rows


def _expected(rows: list[Row], **query: str) -> list[int]:
    def keep(r: Row) -> bool:
        if "email" in query and r.email != query["email"].strip().lower():
            return False
        if "phone" in query:
            e164 = phonenumbers.format_number(
                phonenumbers.parse(query["phone"], "TW"), phonenumbers.PhoneNumberFormat.E164
            )
            if r.phone != e164:
                return False
        if "tier" in query and (r.tier or "").lower() != query["tier"].lower():
            return False
        if "q" in query:
            q = query["q"]
            if not (
                q.lower() in r.name.lower()
                or (r.email is not None and q.lower() in r.email)
                or r.external_id == q
                or str(r.id) == q
            ):
                return False
        return True

    return sorted(r.id for r in rows if keep(r))


QUERIES = st.one_of(
    st.just({}),
    st.builds(
        lambda i: {"q": ["ada", "陳", "ZOË", "100%", "li_", "_", "%", "crm-3", "n"][i]},
        st.integers(0, 8),
    ),  # fmt: skip
    st.builds(lambda t: {"tier": t}, st.sampled_from(["Silver", "gold", "VIP", "Platinum"])),
)


def test_pages_walk_every_matching_member_once_for_any_filter_and_page_size(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    rows = _populate(app, brand, 40, seed=1)
    other = make_brand(app, "Other Brand")
    # The other brand's members share names and external ids: none of them may ever appear.
    _populate(app, other, 10, seed=2)
    by_id = {r.id: r for r in rows}

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(query=QUERIES, limit=st.integers(1, 9), pick=st.integers(0, 39))
    def check(query: dict[str, str], limit: int, pick: int) -> None:
        found = _walk(client, brand, limit=limit, **query)
        assert found == _expected(rows, **query)
        # The exact filters, with a member's own values spelled otherwise.
        member = rows[pick]
        if member.email:
            assert _walk(client, brand, limit=limit, email=f" {member.email.upper()} ") == [
                r.id for r in rows if r.email == member.email
            ]
        if member.phone:
            national = "0" + member.phone[4:7] + " " + member.phone[7:10] + "-" + member.phone[10:]
            assert member.id in _walk(client, brand, limit=limit, phone=national)
        assert by_id[pick + rows[0].id] == rows[pick]

    check()
    by_number = _walk(client, brand, q=str(rows[5].id))
    assert rows[5].id in by_number and by_number == _expected(rows, q=str(rows[5].id))
    assert _walk(client, other, limit=200) != [] and set(_walk(client, other)).isdisjoint(by_id)


def test_the_list_answers_member_objects_and_a_next_link_with_the_filters(
    client: FlaskClient, brand: BrandKeys
) -> None:
    first = enroll(client, brand, name="Grace Hopper", email="grace@example.com")
    enroll(client, brand, name="Grace Kelly", email="kelly@example.com")
    enroll(client, brand, name="Alan Turing")
    page = _list(client, brand, q="grace", limit=1).get_json()
    assert page["members"] == [client.get(f"/api/v1/members/{first['id']}",
                                          headers=brand.admin).get_json()]  # fmt: skip
    assert "q=grace" in page["next"] and "limit=1" in page["next"]
    assert f"after={first['id']}" in page["next"]
    last = client.get(page["next"], headers=brand.admin).get_json()
    assert [m["name"] for m in last["members"]] == ["Grace Kelly"] and last["next"] is None
    assert _list(client, brand, after="0", limit="200").get_json()["next"] is None


def test_bad_list_queries_are_field_errors_and_another_brands_program_is_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    for query, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"after": str(2**31)}, "after"),
        ({"q": "x" * 101}, "q"),
        ({"q": "a\x01b"}, "q"),
        ({"email": "a\x00@example.com"}, "email"),
        ({"program_id": "0"}, "program_id"),
    ):
        _error(_list(client, brand, **query), 422, "validation_error", field)
    other = make_brand(app, "Other Brand")
    _error(_list(client, brand, program_id=str(other.program_id)), 404, "not_found")
    assert _list(client, brand, program_id=str(brand.program_id)).status_code == 200
    assert _list(client, brand, phone="not a number").get_json()["members"] == []


def test_cashier_keys_may_neither_list_nor_correct_members(
    client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    _error(client.get("/api/v1/members", headers=brand.cashier), 403, "forbidden")
    response = client.patch(f"/api/v1/members/{member['id']}", json={"name": "X"},
                            headers=brand.cashier)  # fmt: skip
    _error(response, 403, "forbidden")
    _error(client.get("/api/v1/members"), 401, "unauthorized")


# --- PATCH ---------------------------------------------------------------------------------------


def test_a_correction_is_validated_like_an_enrollment_and_changes_nothing_when_refused(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand, email="ada@example.com", phone="0912345678")
    tomorrow = (clock.now + timedelta(days=1)).date().isoformat()
    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"email": "not an address"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"birthday": tomorrow}, "birthday"),
        ({"birthday": "1990-02-30"}, "birthday"),
        ({"marketing_consent": None}, "marketing_consent"),
        ({"marketing_consent": "yes"}, "marketing_consent"),
        ({"external_id": "a/b"}, "external_id"),
        ({"external_id": "x" * 101}, "external_id"),
    ):
        _error(_patch(client, brand, member["id"], **body), 422, "validation_error", field)
    again = client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()
    assert again == member
    other = make_brand(app, "Other Brand")
    _error(_patch(client, other, member["id"], name="Mallory"), 404, "not_found")
    _error(_patch(client, brand, 2**31 - 1, name="Nobody"), 404, "not_found")


def test_a_correction_saves_normalised_values_audits_them_and_announces_the_fields(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    endpoint = {"url": "https://hooks.example.com/w", "events": ["member.updated"]}
    hook = client.post("/api/v1/webhooks", json=endpoint, headers=brand.admin)
    assert hook.status_code == 201, hook.get_data(as_text=True)
    member = enroll(client, brand, email="ada@example.com", phone="0912345678")
    response = _patch(client, brand, member["id"], name=" Ada King ", email="ADA@Example.org ",
                      phone="+886 912-000-111", birthday="1990-12-10", marketing_consent=True,
                      external_id=" crm-7 ")  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["name"], body["email"], body["phone"]) == (
        "Ada King", "ada@example.org", "+886912000111"
    )  # fmt: skip
    assert (body["birthday"], body["marketing_consent"]) == ("1990-12-10", True)
    assert (
        client.get("/api/v1/members/ext:crm-7", headers=brand.admin).get_json()["id"] == body["id"]
    )
    cleared = _patch(client, brand, member["id"], phone=None, birthday=None).get_json()
    assert cleared["phone"] is None and cleared["birthday"] is None
    # The same values again change nothing: no audit row, no event.
    assert _patch(client, brand, member["id"], name="Ada King").status_code == 200
    with services_of(app).db.transaction() as session:
        audits = session.scalars(
            select(AuditEntry).where(AuditEntry.target_type == "member").order_by(AuditEntry.id)
        ).all()
        events = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "member.updated")
            .order_by(WebhookDelivery.id)
        ).all()  # fmt: skip
        assert [a.action for a in audits] == ["member.updated", "member.updated"]
        assert audits[0].changes["email"] == ["ada@example.com", "ada@example.org"]
        assert audits[0].changes["birthday"] == [None, "1990-12-10"]
        assert audits[1].changes == {
            "phone": ["+886912000111", None],
            "birthday": ["1990-12-10", None],
        }
        assert audits[0].actor_api_key_id is not None
        assert len(events) == 2
        outbox = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "webhook").order_by(OutboxMessage.id)
        ).all()
        assert [o.payload["type"] for o in outbox] == ["member.updated", "member.updated"]
        assert outbox[0].payload["data"]["changed"] == sorted(
            ["name", "email", "phone", "birthday", "marketing_consent", "external_id"]
        )
        assert outbox[0].payload["data"]["member_id"] == member["id"]
        # Field names only: no personal value travels in the event.
        assert "ada@example.org" not in str(outbox[0].payload)


def test_a_contact_another_member_has_is_a_conflict_naming_that_member(
    client: FlaskClient, brand: BrandKeys
) -> None:
    ada = enroll(client, brand, email="ada@example.com", phone="0912345678")
    bob = enroll(client, brand, name="Bob", email="bob@example.com")
    error = _error(_patch(client, brand, bob["id"], email=" ADA@example.com"), 409,
                   "member_exists", "email")  # fmt: skip
    assert error["existing_member_id"] == ada["id"]
    error = _error(_patch(client, brand, bob["id"], phone="+886-912-345-678"), 409,
                   "member_exists", "phone")  # fmt: skip
    assert error["existing_member_id"] == ada["id"]
    assert _patch(client, brand, ada["id"], email="ada@example.com").status_code == 200
    _patch(client, brand, ada["id"], external_id="crm-1")
    _error(_patch(client, brand, bob["id"], external_id="crm-1"), 409, "conflict", "external_id")
    assert client.get(f"/api/v1/members/{bob['id']}", headers=brand.admin).get_json() == bob


def test_enrolling_a_known_email_or_phone_again_is_refused_with_the_members_id(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    ada = enroll(client, brand, email="ada@example.com", phone="0912345678")
    for body, field in (
        ({"email": " Ada@Example.COM "}, "email"),
        ({"phone": "+886 912 345 678"}, "phone"),
        ({"email": "new@example.com", "phone": "(09) 1234-5678"}, "phone"),
    ):
        response = client.post("/api/v1/members", json={"name": "Ada Again", **body},
                               headers=brand.admin)  # fmt: skip
        error = _error(response, 409, "member_exists", field)
        assert error["existing_member_id"] == ada["id"]
    assert len(_walk(client, brand)) == 1
    # Another brand's program is another program: the same person may join it.
    other = make_brand(app, "Other Brand")
    assert enroll(client, other, email="ada@example.com")["id"] != ada["id"]


def test_a_name_change_updates_the_cards_and_queues_their_pushes(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == member["id"])).one()
        device = Device(library_id="lib-1")
        session.add(device)
        session.flush()
        session.add(Registration(device_id=device.id, card_id=card.id, pass_type_id="pass.test",
                                 push_token="ab" * 32))  # fmt: skip
        before = (card.update_tag, card.updated_at)
    clock.advance(minutes=5)
    assert _patch(client, brand, member["id"], email="ada@example.com").status_code == 200
    with svc.db.transaction() as session:
        card = session.get_one(Card, card.id)
        assert (card.update_tag, card.updated_at) == before  # nothing on the card changed
        assert (
            session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "apns")).all() == []
        )
    assert _patch(client, brand, member["id"], name="Ada King").status_code == 200
    with svc.db.transaction() as session:
        card = session.get_one(Card, card.id)
        assert card.update_tag > before[0] and card.updated_at > before[1]
        pushes = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "apns")).all()
        assert [p.payload["token"] for p in pushes] == ["ab" * 32]


# --- the ledger ----------------------------------------------------------------------------------


def test_the_ledger_pages_past_200_entries_without_loss_even_within_one_instant(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    svc = services_of(app)
    with svc.db.transaction() as session:
        # 240 entries, many sharing a timestamp, ids not in time order.
        for i in range(240):
            session.add(
                LedgerEntry(brand_id=brand.brand_id, member_id=member["id"], kind="adjust",
                            points=1, reason=f"r{i}",
                            created_at=clock.now + timedelta(seconds=(i * 7) % 13))
            )  # fmt: skip
    path = f"/api/v1/members/{member['id']}/ledger"
    first = client.get(path, headers=brand.admin).get_json()
    assert len(first["entries"]) == 200 and first["next"] is not None
    ids: list[int] = []
    response = client.get(path, query_string={"limit": 37}, headers=brand.admin)
    keys: list[tuple[str, int]] = []
    while True:
        body = response.get_json()
        ids += [e["id"] for e in body["entries"]]
        keys += [(e["created_at"], e["id"]) for e in body["entries"]]
        assert "actor" in body["entries"][0]
        if body["next"] is None:
            break
        response = client.get(body["next"], headers=brand.admin)
    assert len(ids) == len(set(ids)) == 241  # and the welcome bonus
    assert keys == sorted(keys, reverse=True)
    _error(client.get(path, query_string={"limit": 201}, headers=brand.admin), 422,
           "validation_error", "limit")  # fmt: skip
    stranger = enroll(client, brand, name="Stranger")
    their = client.get(f"/api/v1/members/{stranger['id']}/ledger", headers=brand.admin)
    foreign_after = their.get_json()["entries"]
    if foreign_after:
        response = client.get(path, query_string={"after": foreign_after[0]["id"]},
                              headers=brand.admin)  # fmt: skip
        _error(response, 422, "validation_error", "after")
    _error(client.get(path, query_string={"after": "999999"}, headers=brand.admin), 422,
           "validation_error", "after")  # fmt: skip


@settings(max_examples=200, deadline=None, database=None)
@given(
    field=st.sampled_from(["name", "email", "phone", "external_id"]),
    text=st.text(max_size=120),
)
def test_any_text_in_a_correction_is_either_a_field_error_or_a_clean_value(
    field: str, text: str
) -> None:
    ctx = Context(now=datetime(2026, 3, 10, tzinfo=UTC), secret_key="k" * 32)
    try:
        values = validate_changes({field: text}, ctx)
    except ValidationError as exc:
        assert exc.field == field
        return
    value = values[field]
    assert set(values) == {field}
    if value is not None:
        assert value == value.strip() and not any(ord(ch) < 32 for ch in value)
        assert len(value) <= {"name": 200, "email": 320, "phone": 16, "external_id": 100}[field]
    if field == "email" and value is not None:
        assert value == value.lower()
    if field == "phone" and value is not None:
        assert value.startswith("+") and value[1:].isdigit()


# --- pages ---------------------------------------------------------------------------------------


@pytest.fixture
def dashboard(app: Flask, brand: BrandKeys) -> FlaskClient:
    """A client logged in to the dashboard as an admin staff account of the brand."""
    client = app.test_client()
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    return client


def test_the_dashboard_corrects_a_member_and_names_who_has_a_taken_email(
    app: Flask, client: FlaskClient, dashboard: FlaskClient, brand: BrandKeys
) -> None:
    ada = enroll(client, brand, email="ada@example.com", phone="0912345678")
    bob = enroll(client, brand, name="Bob", email="bob@example.com", marketing_consent=True)
    path = f"/dashboard/members/{bob['id']}"
    html = dashboard.get(path).get_data(as_text=True)
    assert 'id="edit-member"' in html and 'value="bob@example.com"' in html
    token = csrf_of(dashboard, path)
    form = {"csrf_token": token, "name": "Bob Marley", "email": "ADA@example.com", "phone": "",
            "birthday": "1980-05-06"}  # fmt: skip
    response = dashboard.post(f"{path}/edit", data=form)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Another member already has this e-mail or phone." in html
    assert f'href="/dashboard/members/{ada["id"]}"' in html and 'value="Bob Marley"' in html
    response = dashboard.post(
        f"{path}/edit", data={**form, "email": "b@x.io", "birthday": "1980-13-01"}
    )
    assert response.status_code == 422 and "birthday must be a date" in response.get_data(
        as_text=True
    )
    response = dashboard.post(f"{path}/edit", data={**form, "email": "bob@marley.example"})
    assert response.status_code == 303 and response.headers["Location"] == path
    after = client.get(f"/api/v1/members/{bob['id']}", headers=brand.admin).get_json()
    assert (after["name"], after["email"], after["birthday"]) == (
        "Bob Marley", "bob@marley.example", "1980-05-06"
    )  # fmt: skip
    assert after["marketing_consent"] is False  # the box was not ticked
    with services_of(app).db.transaction() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.target_id == bob["id"])).one()
        assert audit.actor_staff_id is not None and audit.actor_label == "owner@acme.example"
        assert audit.changes["marketing_consent"] == [True, False]
        log = session.scalars(select(ConsentChange).where(ConsentChange.member_id == bob["id"]))
        assert [(c.consent, c.source) for c in log] == [(False, "dashboard")]
    assert dashboard.post(f"{path}/edit", data={**form, "csrf_token": ""}).status_code == 400
    other = make_brand(app, "Other Brand")
    stranger = enroll(client, other, name="Stranger")
    response = dashboard.post(f"/dashboard/members/{stranger['id']}/edit", data=form)
    assert response.status_code == 404


def test_the_members_page_and_the_member_page_go_on_in_pages(
    app: Flask, dashboard: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    rows = _populate(app, brand, 55, seed=3)
    seen: list[int] = []
    path: str | None = "/dashboard/members"
    while path:
        html = dashboard.get(path).get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'href="/dashboard/members/([0-9]+)"', html)]
        more = re.search(r'id="more-members" rel="next" href="([^"]+)"', html)
        path = more.group(1).replace("&amp;", "&") if more else None
    assert seen == sorted((r.id for r in rows), reverse=True)
    # The search box finds a phone however it is spelled.
    with_phone = next(r for r in rows if r.phone)
    assert with_phone.phone is not None
    national = "0" + with_phone.phone[4:7] + "-" + with_phone.phone[7:]
    found = dashboard.get("/dashboard/members", query_string={"q": national})
    assert f'href="/dashboard/members/{with_phone.id}"' in found.get_data(as_text=True)
    member = rows[0].id
    with services_of(app).db.transaction() as session:
        for i in range(205):
            entry = LedgerEntry(brand_id=brand.brand_id, member_id=member, kind="adjust",
                                points=1, reason=f"entry {i}", created_at=clock.now)  # fmt: skip
            session.add(entry)
    html = dashboard.get(f"/dashboard/members/{member}").get_data(as_text=True)
    assert html.count("entry ") == 200
    older = re.search(r'id="older-entries" rel="next" href="([^"]+)"', html)
    assert older is not None
    html = dashboard.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert html.count("entry ") == 5 and 'id="older-entries"' not in html
    assert dashboard.get(f"/dashboard/members/{member}?after=abc").status_code == 200


def test_joining_again_with_a_known_email_or_phone_leads_to_recovery_not_a_second_card(
    client: FlaskClient, brand: BrandKeys
) -> None:
    enroll(client, brand, email="ada@example.com", phone="0912345678")
    for contact in ({"email": "ADA@example.com"}, {"phone": "+886 912 345 678"}):
        token = csrf_of(client, f"/join/{brand.program_id}")
        response = client.post(f"/join/{brand.program_id}",
                               data={"csrf_token": token, "name": "Ada", **contact})  # fmt: skip
        assert response.status_code == 409
        html = response.get_data(as_text=True)
        assert 'id="known-member"' in html
        assert f'href="/join/{brand.program_id}/recover"' in html
    assert len(_walk(client, brand)) == 1
    zh = client.post(f"/join/{brand.program_id}", headers={"Accept-Language": "zh-TW"},
                     data={"csrf_token": csrf_of(client, f"/join/{brand.program_id}"),
                           "name": "Ada", "email": "ada@example.com"})  # fmt: skip
    assert "您已經有會員卡了" in zh.get_data(as_text=True)


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
