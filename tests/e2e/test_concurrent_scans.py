"""Parallel requests against a real server process: no lost update, no double credit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
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


@pytest.mark.parametrize(
    ("path", "change", "kind", "delta"),
    [
        ("/api/v1/scans", {"amount": "10.00"}, "earn", 10),
        ("/api/v1/redemptions", {"points": 5}, "redeem", -5),
    ],
    ids=["scan", "redemption"],
)
def test_parallel_replays_of_one_key_count_once(
    live_server: LiveServer,
    brand: BrandKeys,
    app: Flask,
    path: str,
    change: dict[str, Any],
    kind: str,
    delta: int,
) -> None:
    member = _enroll(live_server, brand)
    body = {"barcode": member["card"]["barcode"], **change}

    def send(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            headers = {**brand.cashier, "Idempotency-Key": "same-key"}
            return http.post(f"{live_server.url}{path}", json=body, headers=headers)

    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(send, range(PARALLEL)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (PARALLEL - 1) + [201], [r.text for r in responses]
    bodies = {r.text for r in responses}
    assert len({str(sorted(r.json().items())) for r in responses}) == 1, bodies
    with services_of(app).db.transaction() as session:
        entries = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.member_id == member["id"], LedgerEntry.kind == kind)
        )
        assert entries == 1
        assert session.get_one(Member, member["id"]).points == member["points"] + delta
