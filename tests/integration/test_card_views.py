"""Card views built for many cards at once are the views built card by card."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.factories import BrandKeys, FrozenClock, enroll, scan, services_of
from tests.integration.test_feedback import answer, link
from walletd.models import Card
from walletd.passes.serving import render_card_view, render_card_views


def _ok(response: Any, status: int = 201) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _issue(client: FlaskClient, brand: BrandKeys, member_id: int, name: str) -> None:
    offer = _ok(
        client.post(
            "/api/v1/offers",
            json={"name": name, "kind": "percent_off", "value": "10"},
            headers=brand.admin,
        )
    )
    _ok(
        client.post(
            f"/api/v1/offers/{offer['id']}/issue",
            json={"member_id": member_id},
            headers=brand.admin,
        )
    )


def _rate(app: Flask, client: FlaskClient, scan_id: int) -> None:
    assert answer(client, link(app, scan_id), rating="5").status_code == 303


def test_a_batch_of_card_views_equals_each_card_built_alone(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    _ok(
        client.post(
            "/api/v1/locations",
            json={"name": "North", "latitude": 25.0330, "longitude": 121.5654},
            headers=brand.admin,
        )
    )
    _ok(
        client.post(
            "/api/v1/promotions",
            json={"name": "Gold day", "multiplier": "2", "tiers": ["Gold"]},
            headers=brand.admin,
        )
    )
    plain, gold, rated, erased = (enroll(client, brand) for _ in range(4))
    _ok(scan(client, brand, gold["card"]["barcode"], "600", "gold-1"))  # Gold from 500
    for i in range(12):  # more than the ten a card lists
        _issue(client, brand, gold["id"], f"Offer {i}")
    _ok(
        client.post(
            f"/api/v1/members/{plain['id']}/message", json={"message": "Hi"}, headers=brand.admin
        ),
        202,
    )
    _rate(
        app, client, _ok(scan(client, brand, rated["card"]["barcode"], "5", "rated-1"))["scan_id"]
    )
    _ok(client.delete(f"/api/v1/members/{erased['id']}", headers=brand.admin), 204)
    clock.advance(minutes=5)

    svc = services_of(app)
    base_url, secret = svc.settings.base_url, svc.settings.secret_key
    with svc.db.transaction() as session:
        ctx = svc.context()
        cards = list(session.scalars(select(Card).order_by(Card.id)).all())
        alone = {
            card.id: render_card_view(session, card, ctx, base_url=base_url, secret_key=secret)
            for card in cards
        }
        sent: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            sent.append(statement)

        event.listen(svc.db.engine, "before_cursor_execute", record)
        try:
            batch = render_card_views(session, cards, ctx, base_url=base_url, secret_key=secret)
        finally:
            event.remove(svc.db.engine, "before_cursor_execute", record)
    assert batch == alone
    # The cards above show every part of a view, so each was compared.
    views = list(batch.values())
    assert len(views) == 4 + 12 and sum(v.kind == "coupon" for v in views) == 12
    assert any(v.voided for v in views) and any(v.messages for v in views)
    assert any(v.promotion == "Gold day" for v in views)
    assert any(len(v.coupons) == 10 for v in views) and any(v.stores for v in views)
    assert sum(v.feedback_url is not None for v in views) == 1  # gold's visit; rated's is rated
    # A fixed number of queries for the loyalty cards, plus one per coupon card.
    assert len(sent) <= 10 + 12, sent
