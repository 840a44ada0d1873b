"""Delivery health: which devices got a card's change, how fast, and which pushes APNs refused."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    issue_pass,
    library_id,
    purchase,
    push_token,
    settle,
)
from walletd.models import Program, Registration
from walletd.push.dispatcher import Dispatcher


def _report(client: FlaskClient, brand: BrandKeys, **query: Any) -> dict[str, Any]:
    response = client.get("/api/v1/reports/delivery", query_string=query, headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _program(report: dict[str, Any], brand: BrandKeys) -> dict[str, Any]:
    [program] = [p for p in report["programs"] if p["id"] == brand.program_id]
    return dict(program)


def _fetch(phone: WalletDevice, issued: IssuedPass, since: str | None) -> str | None:
    """What Wallet does after a push: list the changes, download them, keep lastUpdated."""
    # On Postgres a transaction elsewhere on the server can hold the poll tag back for a moment.
    settle(phone.client.application)
    listed = phone.updates(issued, since)
    if listed.status_code == 204:
        return since
    assert listed.status_code == 200
    assert phone.latest(issued).status_code == 200
    tag: str = listed.get_json()["lastUpdated"]
    return tag


def _registrations(app: Flask) -> list[Registration]:
    with services_of(app).db.transaction() as session:
        return list(session.scalars(select(Registration).order_by(Registration.id)).all())


def test_the_report_counts_a_device_that_fetches_one_that_never_does_and_one_removed(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    clock: FrozenClock,
    issued: IssuedPass,
) -> None:
    fetcher = WalletDevice(client, library_id(1), push_token(1))
    sleeper = WalletDevice(client, library_id(2), push_token(2))
    removed = WalletDevice(client, library_id(3), push_token(3))
    for device in (fetcher, sleeper, removed):
        assert device.register(issued).status_code == 201
    # Right after adding the pass, Wallet lists its passes once.
    tag = _fetch(fetcher, issued, None)
    _fetch(removed, issued, None)

    clock.advance(minutes=5)
    purchase(client, brand, issued)
    apns.respond(removed.push_token, status=410, reason="Unregistered")
    assert dispatcher.drain() == 3
    clock.advance(seconds=40)
    tag = _fetch(fetcher, issued, tag)
    settle(app)
    clock.advance(hours=2)
    # The next poll brings the tag it kept: nothing new, and nothing more is written.
    assert fetcher.updates(issued, tag).status_code == 204

    program = _program(_report(client, brand), brand)
    assert program["apple"] == {
        "installed": 2,
        "cards": 1,
        "up_to_date": 1,
        "behind": 1,
        "within_1m": 1,
        "within_10m": 1,
        "within_1h": 1,
        "share": {"within_1m": 0.5, "within_10m": 0.5, "within_1h": 0.5},
        "stopped": {
            "count": 1,
            "under_1_day": 1,
            "days_1_to_7": 0,
            "days_7_to_30": 0,
            "over_30_days": 0,
        },
    }
    assert program["apns_refused"] == {
        "total": 1,
        "gone": 1,
        "by_reason": [{"status": 410, "reason": "Unregistered", "count": 1}],
    }
    assert program["installed"] == 2
    assert program["share"] == {"within_1m": 0.5, "within_10m": 0.5, "within_1h": 0.5}


def test_a_device_that_fetches_late_counts_in_the_longer_windows_only(
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    issued: IssuedPass,
    phone: WalletDevice,
) -> None:
    assert phone.register(issued).status_code == 201
    tag = _fetch(phone, issued, None)
    clock.advance(minutes=1)
    purchase(client, brand, issued)
    clock.advance(minutes=7)
    _fetch(phone, issued, tag)

    apple = _program(_report(client, brand), brand)["apple"]
    assert (apple["within_1m"], apple["within_10m"], apple["within_1h"]) == (0, 1, 1)
    assert apple["stopped"]["count"] == 0


def test_the_list_call_records_each_version_once(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    issued: IssuedPass,
    phone: WalletDevice,
) -> None:
    assert phone.register(issued).status_code == 201
    tag = _fetch(phone, issued, None)
    [first] = _registrations(app)
    assert first.synced_tag is not None and first.synced_at == clock.now

    clock.advance(minutes=1)
    # Asked again without a tag (a reinstalled Wallet): the same version, no new write.
    _fetch(phone, issued, None)
    [again] = _registrations(app)
    assert (again.synced_tag, again.synced_at) == (first.synced_tag, first.synced_at)

    purchase(client, brand, issued)
    clock.advance(seconds=10)
    _fetch(phone, issued, tag)
    [after] = _registrations(app)
    assert after.synced_tag is not None and after.synced_tag > first.synced_tag
    assert after.synced_at == clock.now


def test_an_unregistered_device_no_longer_counts_as_installed(
    client: FlaskClient, brand: BrandKeys, issued: IssuedPass, phone: WalletDevice
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    assert _program(_report(client, brand), brand)["apple"]["installed"] == 1
    assert phone.unregister(issued).status_code == 200
    assert _program(_report(client, brand), brand)["apple"]["installed"] == 0


def test_another_brand_sees_none_of_it_and_its_ids_are_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass, phone: WalletDevice
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    rival = make_brand(app, "Rival Roasters")
    theirs = _report(client, rival)
    assert [p["id"] for p in theirs["programs"]] == [rival.program_id]
    assert theirs["programs"][0]["apple"]["installed"] == 0
    for query in ({"program_id": brand.program_id}, {"campaign_id": 1}):
        response = client.get("/api/v1/reports/delivery", query_string=query, headers=rival.admin)
        assert response.status_code == 404


def test_the_report_refuses_bad_periods_with_the_field(
    client: FlaskClient, brand: BrandKeys
) -> None:
    cases = [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "not-a-day"}, "from"),
        ({"stale_after_minutes": "0"}, "stale_after_minutes"),
    ]
    for query, field in cases:
        response = client.get("/api/v1/reports/delivery", query_string=query, headers=brand.admin)
        assert response.status_code in (400, 422), query
        assert response.get_json()["error"].get("field") == field, response.get_json()
    assert client.get("/api/v1/reports/delivery", headers=brand.cashier).status_code == 403


def test_changes_outside_the_period_are_left_out(
    client: FlaskClient, brand: BrandKeys, issued: IssuedPass, phone: WalletDevice
) -> None:
    assert phone.register(issued).status_code == 201
    report = _report(client, brand, **{"from": "2020-01-01", "to": "2020-01-31"})
    assert _program(report, brand)["apple"]["installed"] == 0
    assert _program(_report(client, brand), brand)["apple"]["installed"] == 1


def test_a_second_card_on_the_same_device_is_reported_per_card(
    client: FlaskClient, brand: BrandKeys, issued: IssuedPass, phone: WalletDevice
) -> None:
    other = issue_pass(client, brand, "Grace Hopper")
    assert phone.register(issued).status_code == 201
    assert phone.register(other).status_code == 201
    _fetch(phone, issued, None)
    apple = _program(_report(client, brand), brand)["apple"]
    assert (apple["installed"], apple["cards"], apple["up_to_date"]) == (2, 2, 2)


def _second_program(app: Flask, brand: BrandKeys) -> int:
    """A copy of the brand's program (no route creates a second program yet)."""
    with services_of(app).db.transaction() as session:
        first = session.get_one(Program, brand.program_id)
        values = {c.key: getattr(first, c.key) for c in Program.__table__.columns if c.key != "id"}
        second = Program(**{**values, "name": "Tea Club"})
        session.add(second)
        session.flush()
        return second.id


def test_a_brand_with_two_programs_gets_each_programs_figures(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass, phone: WalletDevice
) -> None:
    tea = _second_program(app, brand)
    member = client.post(
        "/api/v1/members", json={"name": "Grace", "program_id": tea}, headers=brand.admin
    )
    assert member.status_code == 201, member.get_data(as_text=True)
    other = issue_pass(client, brand, "Linus")  # the first program again
    tablet = WalletDevice(client, library_id(9), push_token(9))
    assert phone.register(issued).status_code == 201
    assert tablet.register(other).status_code == 201
    _fetch(phone, issued, None)

    report = _report(client, brand)
    by_id = {p["id"]: p for p in report["programs"]}
    assert set(by_id) == {brand.program_id, tea}
    first = by_id[brand.program_id]["apple"]
    assert (first["installed"], first["up_to_date"]) == (2, 1)
    assert by_id[tea]["apple"]["installed"] == 0
    only_tea = _report(client, brand, program_id=tea)
    assert [p["id"] for p in only_tea["programs"]] == [tea]
    only_first = _report(client, brand, program_id=brand.program_id)
    assert only_first["programs"][0]["apple"]["installed"] == 2


def test_a_push_apns_refuses_for_another_reason_is_counted_and_keeps_the_device(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
    phone: WalletDevice,
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    apns.respond(phone.push_token, status=400, reason="PayloadTooLarge")
    assert dispatcher.drain() == 1
    refused = _program(_report(client, brand), brand)["apns_refused"]
    assert refused == {
        "total": 1,
        "gone": 0,
        "by_reason": [{"status": 400, "reason": "PayloadTooLarge", "count": 1}],
    }
    assert len(_registrations(app)) == 1
