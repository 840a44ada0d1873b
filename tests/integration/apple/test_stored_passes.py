"""Signed passes are stored by (card, tag): signed once for the site, before the push if we can."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.factories import BrandKeys, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import IssuedPass, WalletDevice, issue_pass, purchase
from walletd import create_app
from walletd.config import Settings
from walletd.models import Card, PassPackage
from walletd.passes import serving
from walletd.push.dispatcher import Dispatcher
from walletd.wiring import apple_passes


def _signed() -> float:
    return REGISTRY.get_sample_value("walletd_passes_signed_total") or 0.0


def _stored(app: Flask, serial: str) -> tuple[int, int] | None:
    with services_of(app).db.transaction() as session:
        row = session.execute(
            select(PassPackage.update_tag, Card.update_tag)
            .join(Card, Card.id == PassPackage.card_id)
            .where(Card.serial_number == serial)
        ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def test_a_fetch_signs_once_and_another_process_serves_the_stored_bytes(
    app: Flask, client: FlaskClient, settings: Settings, phone: WalletDevice, issued: IssuedPass
) -> None:
    first = phone.latest(issued)
    assert first.status_code == 200
    stored = _stored(app, issued.serial)
    assert stored is not None and stored[0] == stored[1]
    # A second web process: its own empty memory cache, the same database.
    other = create_app(settings, clock=services_of(app).clock)
    try:
        before = _signed()
        again = WalletDevice(other.test_client(), phone.library_id, phone.push_token).latest(issued)
        assert again.status_code == 200
        assert again.data == first.data
        assert _signed() == before
    finally:
        services_of(other).close()


def test_the_worker_signs_a_changed_pass_before_its_push_so_the_fetch_signs_nothing(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    phone: WalletDevice,
    issued: IssuedPass,
) -> None:
    assert phone.register(issued).status_code == 201
    purchase(client, brand, issued)
    stored = _stored(app, issued.serial)
    assert stored is None or stored[0] < stored[1]  # the change is not signed yet
    assert dispatcher.drain() == 1
    assert len(apns.requests) == 1
    stored = _stored(app, issued.serial)
    assert stored is not None and stored[0] == stored[1]
    before = _signed()
    fetched = phone.latest(issued)
    assert fetched.status_code == 200
    assert _signed() == before


def test_a_stored_pass_of_an_older_tag_is_never_served(
    app: Flask, client: FlaskClient, brand: BrandKeys, phone: WalletDevice, issued: IssuedPass
) -> None:
    old = phone.latest(issued).data
    purchase(client, brand, issued)
    new = phone.latest(issued)
    assert new.status_code == 200
    assert new.data != old
    stored = _stored(app, issued.serial)
    assert stored is not None and stored[0] == stored[1]


def test_presigning_a_batch_stores_each_card_at_its_own_tag_and_never_an_older_one(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    svc = services_of(app)
    cards = [issue_pass(client, brand, name=f"Member {i}") for i in range(3)]
    for changed in cards[:2]:
        purchase(client, brand, changed)
    with svc.db.transaction() as session:
        rows = session.execute(select(Card.serial_number, Card.id)).all()
    ids = {serial: card_id for serial, card_id in rows}
    assert all(_stored(app, c.serial) is not None for c in cards)  # each download stored one
    passes = apple_passes(svc.settings)
    before = _signed()
    with svc.db.transaction() as session:
        signed = serving.presign_passes(
            session, [ids[c.serial] for c in cards], svc.context(), passes=passes,
            base_url=svc.settings.base_url, secret_key=svc.settings.secret_key,
        )  # fmt: skip
    assert signed == 2  # the third card's stored pass is current: not signed again
    assert _signed() == before + 2
    for card in cards:
        stored = _stored(app, card.serial)
        assert stored is not None and stored[0] == stored[1]
    # A late writer holding an older version (another process, before the scan) changes nothing.
    newest = {c.serial: _stored(app, c.serial) for c in cards}
    with svc.db.transaction() as session:
        serving.store_packages(
            session, [(ids[c.serial], 1, b"old bytes") for c in cards], svc.context().now
        )
        kept = session.scalars(select(PassPackage.data).where(PassPackage.update_tag == 1)).all()
    assert kept == []
    assert {c.serial: _stored(app, c.serial) for c in cards} == newest
