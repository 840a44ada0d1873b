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
from sqlalchemy import Engine, create_engine, make_url, text

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


_TRUNCATORS: dict[str, Engine] = {}

# The tables a test left something in: rows, or a sequence it advanced (ids restart at 1).
_USED_SEQUENCES = """
SELECT DISTINCT owner.relname FROM pg_class AS seq
JOIN pg_depend AS dep ON dep.objid = seq.oid AND dep.deptype IN ('a', 'i')
JOIN pg_class AS owner ON owner.oid = dep.refobjid
JOIN pg_sequences AS used ON used.sequencename = seq.relname
 AND used.schemaname = current_schema() AND used.last_value IS NOT NULL
WHERE seq.relkind = 'S'
"""
_ADVANCED_SEQUENCES = """
SELECT sequencename FROM pg_sequences
WHERE schemaname = current_schema() AND last_value IS NOT NULL
"""


def truncate_postgres(url: str) -> None:
    """Empty every table a test used and restart every sequence, keeping the migrated schema.

    TRUNCATE costs per table and follows every foreign key (CASCADE): about 0.2 s after a test
    that enrolled and scanned, most of a small test's setup. One query finds the tables with
    rows or an advanced sequence; as a superuser (the test server's `postgres`) their rows are
    deleted with foreign-key triggers off and the sequences restarted (about 0.03 s: every table
    that refers to a deleted row has rows, so it is emptied too). Otherwise TRUNCATE them."""
    engine = _TRUNCATORS.get(url)
    if engine is None:
        engine = _TRUNCATORS[url] = create_engine(url)
    names = [t.name for t in Base.metadata.sorted_tables]
    with_rows = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in names
    )
    with engine.begin() as connection:
        used = set(connection.execute(text(f"{with_rows} UNION {_USED_SEQUENCES}")).scalars())
        tables = [name for name in names if name in used]
        if not tables:
            return
        if connection.execute(text("SELECT current_setting('is_superuser')")).scalar() != "on":
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
            return
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for name in reversed(tables):
            connection.execute(text(f'DELETE FROM "{name}"'))
        for sequence in connection.execute(text(_ADVANCED_SEQUENCES)).scalars().all():
            connection.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))


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
        engine = _TRUNCATORS.pop(url, None)
        if engine is not None:
            engine.dispose()


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
