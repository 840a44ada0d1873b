"""Fixtures: a database built by the migrations (SQLite always, Postgres when configured)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, text

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd import create_app
from walletd.config import Settings
from walletd.db import Base
from walletd.schema import upgrade

POSTGRES_URL = os.environ.get("WALLETD_TEST_DATABASE_URL", "")
SECRET = "test-secret-key-that-is-long-enough-0123456789"


@contextmanager
def private_postgres_database(url: str) -> Iterator[str]:
    """A database of this test run's own on the server of `url`, dropped afterwards.

    Runs in parallel (CI beside a developer, two terminals) never see each other's rows.
    """
    base = make_url(url)
    name = f"walletd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_postgres(url: str) -> None:
    """Empty every table and restart ids, keeping the migrated schema."""
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "walletd.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[str]:
    """A private Postgres database for this run, built by the migrations once."""
    if not POSTGRES_URL:
        pytest.skip("WALLETD_TEST_DATABASE_URL is not set: Postgres tests need a server")
    with private_postgres_database(POSTGRES_URL) as url:
        upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A freshly emptied database built by the migrations, on SQLite and on Postgres."""
    if request.param == "sqlite":
        path = tmp_path / "walletd.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_migrated")
    truncate_postgres(url)
    return url


@pytest.fixture
def clock() -> FrozenClock:
    """The app's clock, moved by tests."""
    return FrozenClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings built directly, pointing at the test database and a temporary instance folder."""
    return Settings(
        database_url=database_url,
        base_url="http://walletd.test",
        secret_key=SECRET,
        env="test",
        instance_path=tmp_path / "instance",
        apple_cert=tmp_path / "certs" / "pass.pem",
        apple_key=tmp_path / "certs" / "pass.key",
        apple_wwdr=tmp_path / "certs" / "wwdr.pem",
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    """A fresh app per test."""
    application = create_app(settings, clock=clock)
    yield application
    services_of(application).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def brand(app: Flask) -> BrandKeys:
    """A brand with the default program and its admin and cashier keys."""
    return make_brand(app)
