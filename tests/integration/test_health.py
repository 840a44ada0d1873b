"""/livez, /readyz: the database, the schema at the newest migration, a live worker."""

from __future__ import annotations

import socket

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.factories import FrozenClock, services_of
from walletd.models.ops import WorkerHeartbeat


def _beat(app: Flask, clock: FrozenClock) -> None:
    with services_of(app).db.transaction() as session:
        now = clock()
        session.merge(
            WorkerHeartbeat(
                worker_id="w1", hostname=socket.gethostname(), pid=1, started_at=now, seen_at=now
            )
        )


def test_livez_answers_without_the_database(client: FlaskClient) -> None:
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ok_with_a_fresh_heartbeat(
    app: Flask, client: FlaskClient, clock: FrozenClock
) -> None:
    _beat(app, clock)
    clock.advance(seconds=30)
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()


def test_readyz_names_a_stale_or_missing_worker(
    app: Flask, client: FlaskClient, clock: FrozenClock
) -> None:
    missing = client.get("/readyz")
    assert missing.status_code == 503
    assert set(missing.get_json()["failing"]) == {"worker"}
    _beat(app, clock)
    clock.advance(seconds=61)
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert set(stale.get_json()["failing"]) == {"worker"}


def test_readyz_names_a_schema_behind(app: Flask, client: FlaskClient, clock: FrozenClock) -> None:
    _beat(app, clock)
    engine = services_of(app).db.engine
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert set(response.get_json()["failing"]) == {"schema"}
    finally:
        # The Postgres database is shared by the tests of this worker: later migration tests
        # read the recorded revision.
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
