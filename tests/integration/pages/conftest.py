"""Fixtures for the page tests: staff accounts, logged-in clients and CSRF tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, services_of
from walletd.loyalty.staff import create_staff

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Staff:
    """A staff account made for a test."""

    email: str
    password: str
    brand_id: int


def make_staff(app: Flask, brand_id: int, email: str, role: str = "admin") -> Staff:
    """Create a staff account through the service."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        create_staff(session, brand_id, email, PASSWORD, role, now=svc.clock())
    return Staff(email, PASSWORD, brand_id)


@pytest.fixture
def admin(app: Flask, brand: BrandKeys) -> Staff:
    """An admin staff account of the test brand."""
    return make_staff(app, brand.brand_id, "owner@acme.example")


def csrf_of(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token the page at `path` carries for this client's session."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def log_in(client: FlaskClient, staff: Staff, area: str = "dashboard") -> None:
    """Log a client in through the login form."""
    token = csrf_of(client, f"/{area}/login")
    response = client.post(
        f"/{area}/login",
        data={"csrf_token": token, "email": staff.email, "password": staff.password},
    )
    assert response.status_code == 303, response.get_data(as_text=True)


@pytest.fixture
def dashboard(client: FlaskClient, admin: Staff) -> FlaskClient:
    """A client logged in to the dashboard as the brand's admin."""
    log_in(client, admin)
    return client
