"""The delivery report per campaign: which recipients' phones got the campaign's version."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.campaigns.conftest import (
    PASS_TYPE_ID,
    Shop,
    create_campaign,
    push_token,
    with_apns,
)
from walletd.config import Settings
from walletd.loyalty.cards import current_poll_tag
from walletd.models import Card


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Pushes go to the APNs fake."""
    return with_apns(settings, apns)


def _settle(shop: Shop) -> None:
    """Wait until the poll tag is past every change (a transaction elsewhere on the shared
    Postgres server can hold it back for a moment; at once on SQLite)."""
    deadline = time.monotonic() + 10
    while True:
        with shop.svc.db.transaction() as session:
            newest = session.scalar(select(func.max(Card.update_tag))) or 0
            if current_poll_tag(session) > newest:
                return
        assert time.monotonic() < deadline, "an old transaction kept the poll tag back"
        time.sleep(0.01)


def _poll(client: FlaskClient, shop: Shop, token: str, since: str | None = None) -> str | None:
    """The device registered by Shop for `token` lists its changes; returns lastUpdated."""
    _settle(shop)
    query = {} if since is None else {"passesUpdatedSince": since}
    response = client.get(
        f"/passes/v1/devices/lib-{token[-16:]}/registrations/{PASS_TYPE_ID}", query_string=query
    )
    assert response.status_code in (200, 204)
    return str(response.get_json()["lastUpdated"]) if response.status_code == 200 else since


def _campaign(client: FlaskClient, shop: Shop, campaign_id: int) -> dict[str, Any]:
    response = client.get(
        "/api/v1/reports/delivery",
        query_string={"campaign_id": campaign_id},
        headers=shop.brand.admin,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    [campaign] = response.get_json()["campaigns"]
    assert campaign["id"] == campaign_id
    return dict(campaign)


def test_a_campaigns_report_follows_the_cards_whose_version_it_made(
    client: FlaskClient, shop: Shop, apns: ApnsFakeServer, other_shop: Shop
) -> None:
    tokens = [push_token(1), push_token(2), push_token(3)]
    ada, _, _ = shop.enroll_many(["Ada", "Grace", "Linus"], tokens=tokens)
    seen = {token: _poll(client, shop, token) for token in tokens}
    created = create_campaign(client, shop.brand)
    assert shop.fan_out() == 1
    apns.respond(tokens[2], status=410, reason="Unregistered")
    assert shop.deliver() == 3
    shop.clock.advance(seconds=30)
    _poll(client, shop, tokens[0], seen[tokens[0]])
    shop.clock.advance(hours=3)

    campaign = _campaign(client, shop, created["id"])
    assert campaign["name"] == "Spring promo"
    apple = campaign["apple"]
    assert (apple["installed"], apple["up_to_date"], apple["within_1m"]) == (2, 1, 1)
    assert apple["stopped"]["count"] == 1
    assert campaign["apns_refused"]["gone"] == 1
    assert campaign["share"]["within_1m"] == 0.5

    # Another brand cannot look at this campaign.
    response = client.get(
        "/api/v1/reports/delivery",
        query_string={"campaign_id": created["id"]},
        headers=other_shop.brand.admin,
    )
    assert response.status_code == 404

    # A later purchase makes Ada's card's version the shop's, no longer the campaign's.
    shop.visit(ada, "5.00", at=shop.clock())
    apple = _campaign(client, shop, created["id"])["apple"]
    assert (apple["installed"], apple["up_to_date"]) == (1, 0)
