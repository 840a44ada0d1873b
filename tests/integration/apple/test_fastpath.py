"""The fast path (walletd/fastpath/apple.py) answers exactly as the Flask views it stands in for.

Every request is sent twice, once with the fast path on and once with it off, and the two
answers must be equal: status, body and headers (but the request id). The device-conversation
and never-miss tests run through the fast path on Postgres too; these pin what it takes over.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select, update
from werkzeug.test import TestResponse

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.integration.apple.conftest import IssuedPass, WalletDevice, issue_pass, purchase
from walletd import create_app
from walletd.config import Settings
from walletd.fastpath.apple import ApplePaths
from walletd.models import Card, Device, Member, OutboxMessage, PassPackage, Registration
from walletd.web.limits import rate_limits

Request = Callable[[], TestResponse]


def _fast(app: Flask) -> ApplePaths:
    fast = app.extensions["walletd_fastpath"]
    assert isinstance(fast, ApplePaths)
    return fast


def _answer(response: TestResponse) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("X-Request-Id", "Date")}
    body = response.get_data()
    if response.mimetype == "application/json" and b"lastUpdated" in body:
        # The poll tag is the cluster's oldest running transaction: it moves between two calls.
        listed = json.loads(body)
        assert listed["lastUpdated"].isdigit()
        body = json.dumps({**listed, "lastUpdated": "<tag>"}).encode()
        headers.pop("Content-Length")
    return response.status_code, body, headers


def _served(route: str, status: str) -> float:
    sample = REGISTRY.get_sample_value(
        "walletd_request_duration_seconds_count",
        {"route": route, "method": "GET", "status": status},
    )
    return sample or 0.0


def _stored_hits() -> float:
    return REGISTRY.get_sample_value("walletd_pass_cache_total", {"result": "stored"}) or 0.0


def _fastpath(result: str) -> float:
    return REGISTRY.get_sample_value("walletd_fastpath_total", {"result": result}) or 0.0


def _settled_poll(app: Flask, phone: WalletDevice, issued: IssuedPass) -> dict[str, Any]:
    """A poll whose lastUpdated is past the card's last change. The poll tag is the oldest
    transaction running anywhere in the cluster (another test worker's, say): while one older
    than the change runs, the device is told about the card again (never miss), so a poll with
    that tag is not yet the "nothing changed since" this test needs. Such transactions end."""
    with services_of(app).db.transaction() as session:
        changed = session.scalar(select(Card.update_tag).where(Card.serial_number == issued.serial))
    assert changed is not None
    deadline = time.monotonic() + 30
    while True:
        listed: dict[str, Any] = phone.updates(issued).get_json()
        if int(listed["lastUpdated"]) > changed or time.monotonic() > deadline:
            return listed
        time.sleep(0.05)


def _both(
    app: Flask, request: Request, *, answered: bool | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """The fast path's answer, checked equal to the app's; `answered`: by the fast path itself."""
    fast = _fast(app)
    fast.enabled = False
    try:
        slow = _answer(request())
    finally:
        fast.enabled = True
    before = _fastpath("answered")
    quick = request()
    if answered is not None:
        assert _fastpath("answered") == before + (1 if answered else 0)
    assert quick.headers.get("X-Request-Id")
    status, body, headers = _answer(quick)
    assert (status, body) == slow[:2]
    assert sorted(headers.items()) == sorted(slow[2].items())
    return slow


@pytest.fixture
def postgres_only(app: Flask) -> Iterator[None]:
    if not services_of(app).db.is_postgres:
        pytest.skip("the fast path runs on Postgres only (SQLite requests go to Flask)")
    assert _fast(app).enabled
    errors = _fastpath("error")
    yield
    assert _fastpath("error") == errors  # no request made the fast path give up


@pytest.mark.usefixtures("postgres_only")
def test_304_full_pass_and_list_answer_as_the_app_does(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    first = phone.latest(issued)  # signs and stores the pass (the app's path)
    assert first.status_code == 200
    modified = first.headers["Last-Modified"]
    route = "/passes/v1/passes/<token:pass_type_id>/<token:serial>"
    before = _served(route, "3xx")
    status, body, _ = _both(
        app, lambda: phone.latest(issued, if_modified_since=modified), answered=True
    )
    assert (status, body) == (304, b"")
    assert _served(route, "3xx") == before + 2  # both answers are counted under the same route
    stored = _stored_hits()
    status, body, headers = _both(app, lambda: phone.latest(issued), answered=True)
    assert status == 200 and body == first.data
    # The app served it from its memory, the fast path from the store.
    assert _stored_hits() == stored + 1
    assert headers["Content-Type"] == "application/vnd.apple.pkpass"
    status, body, _ = _both(app, lambda: phone.updates(issued), answered=True)
    assert status == 200 and issued.serial in body.decode()
    tag = first.headers["Last-Modified"]
    assert tag
    listed = _settled_poll(app, phone, issued)
    status, body, _ = _both(
        app, lambda: phone.updates(issued, since=listed["lastUpdated"]), answered=True
    )
    assert status == 204
    purchase(client, brand, issued)
    status, body, _ = _both(
        app, lambda: phone.updates(issued, since=listed["lastUpdated"]), answered=True
    )
    assert status == 200 and issued.serial in body.decode()
    # The changed pass is not signed yet: the app signs it, the fast path then serves it.
    changed = phone.latest(issued, if_modified_since=modified)
    assert changed.status_code == 200 and changed.data != first.data
    assert (
        _both(app, lambda: phone.latest(issued, if_modified_since=modified), answered=True)[1]
        == changed.data
    )


@pytest.mark.usefixtures("postgres_only")
def test_refusals_and_odd_requests_get_the_apps_answer(
    app: Flask, client: FlaskClient, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    modified = phone.latest(issued).headers["Last-Modified"]
    url = phone.url(issued, f"passes/{issued.pass_type_id}/{issued.serial}")
    other_ptid = phone.url(issued, f"passes/pass.other.type/{issued.serial}")
    unknown = phone.url(issued, f"passes/{issued.pass_type_id}/NOSUCHSERIAL")
    auth = WalletDevice.auth(issued)
    cases: list[Request] = [
        lambda: client.get(url),  # no token
        lambda: client.get(url, headers={"Authorization": "ApplePass wrong"}),
        lambda: client.get(url, headers={"Authorization": f"Bearer {issued.auth_token}"}),
        lambda: client.get(other_ptid, headers=auth),
        lambda: client.get(unknown, headers=auth),
        lambda: client.get(url, headers={**auth, "If-Modified-Since": "yesterday"}),
        lambda: client.get(url, headers={**auth, "If-Modified-Since": modified + "x"}),
        lambda: client.get(
            url, headers={**auth, "If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"}
        ),
        lambda: client.head(url, headers=auth),
        lambda: phone.updates(issued, since="abc"),
        lambda: phone.updates(issued, since="99999999999999999999"),
        lambda: phone.updates(issued, since="9223372036854775808"),
        lambda: phone.updates(issued, pass_type_id="pass.other.type"),
        lambda: client.get(phone.url(issued, "devices/unknown-device/registrations/x.y")),
        lambda: client.get(
            phone.url(issued, f"devices/{phone.library_id}/registrations/{issued.pass_type_id}")
            + "?passesUpdatedSince=1&extra=2"
        ),
        lambda: client.get(phone.url(issued, "passes/a/b/c"), headers=auth),
    ]
    for case in cases:
        _both(app, case)
    # A token, a serial and a pass type that are right but for one: always the app's answer.
    for case in cases[:5]:
        _both(app, case, answered=False)


@pytest.mark.usefixtures("postgres_only")
def test_an_erased_members_pass_goes_to_the_app(
    app: Flask, client: FlaskClient, phone: WalletDevice, issued: IssuedPass
) -> None:
    assert phone.register(issued).status_code == 201
    assert phone.latest(issued).status_code == 200
    with services_of(app).db.transaction() as session:
        session.execute(update(Member).values(erased_at=services_of(app).clock()))
    _both(app, lambda: phone.latest(issued))  # still registered: the app serves it
    with services_of(app).db.transaction() as session:
        session.execute(delete(Registration))
    status, _, _ = _both(app, lambda: phone.latest(issued))
    assert status == 401


@pytest.mark.usefixtures("postgres_only")
def test_an_unsigned_tag_is_signed_by_the_app_and_then_served_by_the_fast_path(
    app: Flask, phone: WalletDevice, issued: IssuedPass
) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(delete(PassPackage))
    fast = _fast(app)
    first = phone.latest(issued)  # nothing stored: the fast path hands it to the app
    assert first.status_code == 200
    fast.enabled = False
    try:
        # The app serves it from memory now; the fast path must read the stored bytes.
        slow = phone.latest(issued)
    finally:
        fast.enabled = True
    assert phone.latest(issued).data == slow.data == first.data


# --- registrations ------------------------------------------------------------------------------


def _register(
    client: FlaskClient, issued: IssuedPass, device: str, *, body: bytes | None = None, **kw: Any
) -> TestResponse:
    phone = WalletDevice(client, device, "ab" * 32)
    if body is None:
        return phone.register(issued, **kw)
    return phone.register(issued, body=body, **kw)


def _fast_app(settings: Settings, clock: FrozenClock, **changes: Any) -> Iterator[Flask]:
    app = create_app(settings.with_changes(**changes), clock=clock)
    try:
        yield app
    finally:
        services_of(app).close()


@pytest.mark.usefixtures("postgres_only")
def test_a_registration_answers_as_the_app_does_new_and_again(
    app: Flask, client: FlaskClient, issued: IssuedPass
) -> None:
    fast = _fast(app)
    fast.enabled = False
    try:
        slow_new = _answer(_register(client, issued, "device-slow"))
        slow_again = _answer(_register(client, issued, "device-slow"))
    finally:
        fast.enabled = True
    before = _fastpath("answered")
    quick_new = _answer(_register(client, issued, "device-fast"))
    quick_again = _answer(_register(client, issued, "device-fast", token="cd" * 32))
    assert _fastpath("answered") == before + 2
    assert quick_new[0] == slow_new[0] == 201
    assert quick_again[0] == slow_again[0] == 200
    assert sorted(quick_new[2].items()) == sorted(slow_new[2].items())
    assert sorted(quick_again[2].items()) == sorted(slow_again[2].items())
    with services_of(app).db.transaction() as session:
        rows = session.execute(
            select(Device.library_id, Registration.push_token, Registration.pass_type_id)
            .join(Registration, Registration.device_id == Device.id)
            .order_by(Device.library_id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("device-fast", "cd" * 32, issued.pass_type_id),
        ("device-slow", "ab" * 32, issued.pass_type_id),
    ]
    # The re-registration refreshed the token: the device answers to its new one.
    assert WalletDevice(client, "device-fast", "cd" * 32).updates(issued).status_code == 200


@pytest.mark.usefixtures("postgres_only")
def test_registrations_the_fast_path_does_not_take_get_the_apps_answer(
    app: Flask, client: FlaskClient, issued: IssuedPass
) -> None:
    url = WalletDevice(client, "dev-x", "ab" * 32).registration_url(issued)
    auth = WalletDevice.auth(issued)
    cases: list[Request] = [
        lambda: _register(client, issued, "dev-a", headers={}),
        lambda: _register(client, issued, "dev-b", headers={"Authorization": "ApplePass nope"}),
        lambda: _register(client, issued, "dev-c", body=b"{not json"),
        lambda: _register(client, issued, "dev-d", body=b'{"pushToken": "zz"}'),
        lambda: _register(client, issued, "dev-e", body=b'{"pushToken": 7}'),
        lambda: _register(client, issued, "dev-f", body=b"[" * 600 + b"]" * 600),
        lambda: _register(client, issued, "dev-g", body=b'{"pushToken": "' + b"a" * 2000 + b'"}'),
        lambda: _register(client, issued, "dev-h", pass_type_id="pass.other.type"),
        lambda: client.post(url + "x", data=b'{"pushToken": "abab"}', headers=auth),
    ]
    for case in cases:
        status, _, _ = _both(app, case, answered=False)
        assert status in (400, 401, 413, 422), status
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Registration)) == 0


@pytest.mark.usefixtures("postgres_only")
def test_a_brand_with_a_webhook_endpoint_registers_through_the_app_and_gets_its_event(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass
) -> None:
    created = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/in", "events": ["pass.installed"]},
        headers=brand.admin,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    before = _fastpath("answered")
    assert _register(client, issued, "dev-hooked").status_code == 201
    assert _fastpath("answered") == before
    with services_of(app).db.transaction() as session:
        kinds = session.scalars(select(OutboxMessage.kind)).all()
    assert "webhook" in kinds


@pytest.mark.usefixtures("postgres_only")
def test_past_the_device_cap_the_oldest_go_and_the_rate_limit_is_shared_with_the_app(
    settings: Settings, clock: FrozenClock
) -> None:
    for app in _fast_app(
        settings, clock, max_devices_per_card=2, ratelimit_apple_register="4 per minute"
    ):
        client = app.test_client()
        issued = issue_pass(client, make_brand(app))
        answered = _fastpath("answered")
        statuses = []
        for i in range(3):
            statuses.append(_register(client, issued, f"dev-{i}").status_code)
            clock.advance(seconds=1)
        assert statuses == [201, 201, 201]
        assert _fastpath("answered") == answered + 3
        with services_of(app).db.transaction() as session:
            left = session.scalars(select(Device.library_id).order_by(Device.library_id)).all()
            assert session.scalar(select(func.count()).select_from(Registration)) == 2
        assert left == ["dev-1", "dev-2"]  # the least recently confirmed went, with its device
        # One bucket for both paths: three counted above, a wrong token by the app, then 429.
        wrong = _register(client, issued, "dev-9", headers={"Authorization": "ApplePass no"})
        assert wrong.status_code == 401
        limited = _register(client, issued, "dev-10")
        assert limited.status_code == 429
        assert limited.get_json()["error"]["code"] == "rate_limited"


# Header values as a server hands them over: latin-1, no line breaks.
_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40)


@pytest.mark.usefixtures("postgres_only")
@given(
    authorization=st.one_of(
        st.none(), _TEXT, st.just("ApplePass "), _TEXT.map("ApplePass ".__add__)
    ),
    modified_since=st.one_of(
        st.none(), _TEXT, st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    ),
    since=st.one_of(st.none(), _TEXT, st.integers(-5, 2**64).map(str)),
    body=st.one_of(
        st.binary(max_size=80),
        st.text(max_size=80).map(lambda t: json.dumps({"pushToken": t}).encode()),
    ),
)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzzed_headers_query_strings_and_bodies_get_the_apps_answer(
    app: Flask,
    client: FlaskClient,
    phone: WalletDevice,
    issued: IssuedPass,
    authorization: str | None,
    modified_since: str | None,
    since: str | None,
    body: bytes,
) -> None:
    # Each example registers four devices: the default limit (60 a minute) is not under test here
    # (test_past_the_device_cap_…), and a 429's Retry-After moves with the wall clock.
    rate_limits(app).limiter.reset()
    headers = {} if authorization is None else {"Authorization": authorization}
    if modified_since is not None:
        headers["If-Modified-Since"] = modified_since
    url = phone.url(issued, f"passes/{issued.pass_type_id}/{issued.serial}")
    _both(app, lambda: client.get(url, headers=headers))
    authorized = {**headers, **WalletDevice.auth(issued)}
    _both(app, lambda: client.get(url, headers=authorized))
    _both(app, lambda: phone.updates(issued, since=since))
    # Registrations with a fuzzed body, by the pass's token and by the fuzzed headers; a device
    # of its own for each answer, so both paths start from the same rows.
    for sent in (authorized, headers):
        devices = iter((f"fuzz-{uuid.uuid4().hex}", f"fuzz-{uuid.uuid4().hex}"))
        _both(
            app,
            lambda sent=sent, devices=devices: _register(  # type: ignore[misc]
                client, issued, next(devices), body=body, headers=sent
            ),
        )


@pytest.mark.usefixtures("postgres_only")
def test_an_evicted_device_that_holds_another_card_stays(
    settings: Settings, clock: FrozenClock
) -> None:
    for app in _fast_app(settings, clock, max_devices_per_card=1):
        client = app.test_client()
        brand = make_brand(app)
        first, second = issue_pass(client, brand), issue_pass(client, brand, name="Grace")
        assert _register(client, first, "shared-phone").status_code == 201
        assert _register(client, second, "shared-phone").status_code == 201
        clock.advance(seconds=1)
        assert _register(client, first, "new-phone").status_code == 201
        with services_of(app).db.transaction() as session:
            rows = session.execute(
                select(Device.library_id, Registration.card_id)
                .join(Registration, Registration.device_id == Device.id)
                .order_by(Device.library_id)
            ).all()
            devices = session.scalars(select(Device.library_id).order_by(Device.library_id)).all()
        assert len(rows) == 2  # new-phone on the first card, shared-phone on the second
        assert devices == ["new-phone", "shared-phone"]
