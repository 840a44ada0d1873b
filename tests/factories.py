"""Builders for test data and a clock that tests move by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from walletd.loyalty.brands import BrandCredentials, create_brand
from walletd.services import Services


class FrozenClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class BrandKeys:
    """A brand created for a test, with ready-made Authorization headers."""

    creds: BrandCredentials

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.admin_key}"}

    @property
    def cashier(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.cashier_key}"}

    @property
    def brand_id(self) -> int:
        return self.creds.brand_id

    @property
    def program_id(self) -> int:
        return self.creds.program_id


def services_of(app: Flask) -> Services:
    """The walletd services of an app."""
    return app.extensions["walletd"]  # type: ignore[no-any-return]


def set_timezone(app: Flask, brand: BrandKeys, zone: str) -> None:
    """Put the brand's program in an IANA time zone (its days, quiet hours and pages follow)."""
    from walletd.models import Program

    with services_of(app).db.transaction() as session:
        session.get_one(Program, brand.program_id).timezone = zone


def make_brand(app: Flask, name: str = "Acme Coffee", currency: str = "USD") -> BrandKeys:
    """Create a brand through the service layer, as `create-brand` does."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        creds = create_brand(session, name, now=svc.clock(), currency=currency)
    return BrandKeys(creds)


def enroll(client: FlaskClient, brand: BrandKeys, **fields: Any) -> dict[str, Any]:
    """Enroll a member through the API and return the member body."""
    body = {"name": "Ada Lovelace", **fields}
    response = client.post("/api/v1/members", json=body, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def issue_coupon(
    client: FlaskClient, brand: BrandKeys, member_id: int, **offer: Any
) -> dict[str, Any]:
    """Create an offer through the API (10 % off unless `offer` says otherwise), issue it to a
    member and return the coupon body."""
    body = {"name": "Ten off", "kind": "percent_off", "value": "10", **offer}
    created = client.post("/api/v1/offers", json=body, headers=brand.admin)
    assert created.status_code == 201, created.get_data(as_text=True)
    issued = client.post(
        f"/api/v1/offers/{created.get_json()['id']}/issue",
        json={"member_id": member_id},
        headers=brand.admin,
    )
    assert issued.status_code == 201, issued.get_data(as_text=True)
    return issued.get_json()["coupon"]  # type: ignore[no-any-return]


def scan(
    client: FlaskClient, brand: BrandKeys, barcode: object, amount: Any, key: str, **extra: Any
) -> Any:
    """Post a scan with an idempotency key; returns the response."""
    headers = {**brand.cashier, "Idempotency-Key": key}
    return client.post(
        "/api/v1/scans", json={"barcode": barcode, "amount": amount, **extra}, headers=headers
    )


def raw_post(client: FlaskClient, path: str, data: bytes | str, headers: dict[str, str]) -> Any:
    """POST an arbitrary body, for malformed-input tests."""
    return client.post(path, data=data, headers=headers)


def dumps(value: Any) -> str:
    """JSON text of a value."""
    return json.dumps(value)


def sql_statements(app: Flask, action: Callable[[], object]) -> list[str]:
    """The SQL statements the app's engine sends while `action` runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = services_of(app).db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen
