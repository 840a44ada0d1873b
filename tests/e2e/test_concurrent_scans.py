"""Parallel requests against a real server process: no lost update, no double credit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from flask import Flask
from sqlalchemy import func, select

from tests.e2e.conftest import LiveServer
from tests.factories import BrandKeys, services_of
from walletd.models import LedgerEntry, Member

PARALLEL = 16


def _enroll(server: LiveServer, brand: BrandKeys) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/api/v1/members", json={"name": "Grace Hopper"}, headers=brand.admin
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _scan(server: LiveServer, brand: BrandKeys, barcode: str, key: str) -> httpx.Response:
    with httpx.Client(timeout=30) as http:
        return http.post(
            f"{server.url}/api/v1/scans",
            json={"barcode": barcode, "amount": "10.00"},
            headers={**brand.cashier, "Idempotency-Key": key},
        )


def test_parallel_scans_of_one_card_all_count(
    live_server: LiveServer, brand: BrandKeys, app: Flask
) -> None:
    member = _enroll(live_server, brand)
    barcode = member["card"]["barcode"]
    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(
            pool.map(lambda i: _scan(live_server, brand, barcode, f"till-{i}"), range(PARALLEL))
        )
    assert [r.status_code for r in responses] == [201] * PARALLEL
    balances = sorted(r.json()["balance"] for r in responses)
    welcome = member["points"]
    assert balances == [welcome + 10 * (i + 1) for i in range(PARALLEL)]
    with services_of(app).db.transaction() as session:
        stored = session.get_one(Member, member["id"])
        total = session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.member_id == member["id"])
        )
        assert stored.points == total == welcome + 10 * PARALLEL
        assert stored.visits == PARALLEL


def test_parallel_replays_of_one_key_credit_once(
    live_server: LiveServer, brand: BrandKeys, app: Flask
) -> None:
    member = _enroll(live_server, brand)
    barcode = member["card"]["barcode"]
    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(
            pool.map(lambda _: _scan(live_server, brand, barcode, "same-key"), range(PARALLEL))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (PARALLEL - 1) + [201]
    bodies = {r.text for r in responses}
    assert len({str(sorted(r.json().items())) for r in responses}) == 1, bodies
    with services_of(app).db.transaction() as session:
        earns = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.member_id == member["id"], LedgerEntry.kind == "earn")
        )
        assert earns == 1
        assert session.get_one(Member, member["id"]).points == member["points"] + 10
