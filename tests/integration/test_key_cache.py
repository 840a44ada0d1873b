"""Till keys kept in the process (walletd/web/auth.py, KeyCache) for scans and redemptions: the
ledger's locked read re-checks the key, so a revoked key is refused at once and writes nothing,
and a failing request of a revoked key is told 401 rather than what it would have been told."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from tests.factories import BrandKeys, FrozenClock, enroll, issue_coupon, scan, services_of
from walletd.loyalty.brands import Principal, revoke_api_key
from walletd.models import ApiKey, LedgerEntry
from walletd.web.auth import KeyCache


def _entries(app: Flask) -> int:
    with services_of(app).db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def _revoke_cashier_key(app: Flask, brand: BrandKeys, clock: FrozenClock) -> None:
    with services_of(app).db.transaction() as session:
        assert revoke_api_key(session, brand.brand_id, brand.creds.cashier_key, now=clock()) == 1


@pytest.fixture
def key_lookups(app: Flask) -> Iterator[list[str]]:
    """The statements that look an API key up by its hash, as they are sent."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_keys.key_hash" in statement:
            seen.append(statement)

    engine = services_of(app).db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _last_used(app: Flask, brand: BrandKeys) -> datetime | None:
    with services_of(app).db.sessions() as session:
        return session.scalar(
            select(ApiKey.last_used_at).where(
                ApiKey.brand_id == brand.brand_id, ApiKey.role == "cashier"
            )
        )


def test_a_till_key_is_looked_up_once_a_minute_and_its_last_use_still_recorded(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock, key_lookups: list[str]
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    key_lookups.clear()  # the admin key's, for the enrollment
    assert scan(client, brand, barcode, "10", "k1").status_code == 201
    assert len(key_lookups) == 1
    first_use = _last_used(app, brand)
    assert first_use is not None
    clock.advance(seconds=30)
    assert scan(client, brand, barcode, "10", "k2").status_code == 201
    redeemed = client.post(
        "/api/v1/redemptions",
        json={"barcode": barcode, "points": 1},
        headers={**brand.cashier, "Idempotency-Key": "r1"},
    )
    assert redeemed.status_code == 201
    assert len(key_lookups) == 1  # both answered from the cache
    assert _last_used(app, brand) == first_use
    clock.advance(seconds=31)  # a minute after the database's word
    assert scan(client, brand, barcode, "10", "k3").status_code == 201
    assert len(key_lookups) == 2
    later_use = _last_used(app, brand)
    assert later_use is not None and later_use > first_use


def test_an_unknown_key_is_looked_up_every_time(
    client: FlaskClient, brand: BrandKeys, key_lookups: list[str]
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    key_lookups.clear()
    wrong = {"Authorization": "Bearer wd_c_" + "x" * 43}
    for n in range(3):
        response = client.post(
            "/api/v1/scans",
            json={"barcode": barcode, "amount": "10"},
            headers={**wrong, "Idempotency-Key": f"w{n}"},
        )
        assert response.status_code == 401
    assert len(key_lookups) == 3


def test_a_cached_key_revoked_elsewhere_is_refused_at_once_and_credits_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    barcode = enroll(client, brand)["card"]["barcode"]
    assert scan(client, brand, barcode, "10", "first").status_code == 201
    before = _entries(app)
    _revoke_cashier_key(app, brand, clock)  # as another process would: the cache still holds it

    refused = [
        scan(client, brand, barcode, "10", "second"),  # a new scan
        scan(client, brand, barcode, "10", "first"),  # a replay of one made before
        scan(client, brand, barcode, "-5", "third"),  # an invalid amount
        scan(client, brand, "WD1.NOTACARD.FORGED", "10", "fourth"),  # a forged barcode
        client.post(
            "/api/v1/redemptions",
            json={"barcode": barcode, "points": 1},
            headers={**brand.cashier, "Idempotency-Key": "r1"},
        ),
    ]
    for response in refused:
        assert response.status_code == 401, response.get_json()
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert _entries(app) == before
    # The admin key of the same brand still scans.
    admin_scan = client.post(
        "/api/v1/scans",
        json={"barcode": barcode, "amount": "10"},
        headers={**brand.admin, "Idempotency-Key": "admin-1"},
    )
    assert admin_scan.status_code == 201


def _now() -> datetime:
    return FrozenClock()()


def test_the_cache_holds_at_most_its_limit_and_drops_the_longest_unchecked() -> None:
    cache, now = KeyCache(), _now()
    principal = Principal(1, 1, "cashier")
    for i in range(KeyCache.LIMIT + 1):
        cache.put(f"k{i}", principal, now)
    assert cache.get("k0", now) is None
    assert cache.get(f"k{KeyCache.LIMIT}", now) == principal
    assert cache.get("k1", now) == principal
    assert cache.get("k1", now + timedelta(minutes=1)) is None  # a minute: ask the database
    assert cache.get("k1", now - timedelta(seconds=1)) is None  # a clock moved back: ask too
    cache.forget("k1")
    assert cache.get("k1", now) is None


def _redeem(client: FlaskClient, brand: BrandKeys, barcode: str, key: str) -> Any:
    return client.post(
        "/api/v1/coupons/redemptions",
        json={"barcode": barcode, "amount": "20"},
        headers={**brand.cashier, "Idempotency-Key": key},
    )


def test_coupons_at_the_till_use_the_cache_and_a_revoked_key_redeems_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock, key_lookups: list[str]
) -> None:
    member = enroll(client, brand)
    first, second = (issue_coupon(client, brand, member["id"])["barcode"] for _ in range(2))
    key_lookups.clear()
    assert _redeem(client, brand, first, "c1").status_code == 201
    assert _redeem(client, brand, first, "c1").status_code == 200  # a replay
    assert len(key_lookups) == 1
    _revoke_cashier_key(app, brand, clock)
    for barcode, key in ((second, "c2"), (first, "c1"), ("NOTACOUPON", "c3")):
        refused = _redeem(client, brand, barcode, key)
        assert refused.status_code == 401, refused.get_json()
    coupons = client.get(f"/api/v1/members/{member['id']}/coupons", headers=brand.admin)
    statuses = {c["barcode"]: c["status"] for c in coupons.get_json()["coupons"]}
    assert statuses == {first: "redeemed", second: "active"}
