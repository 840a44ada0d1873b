"""Pooled Postgres connections: pinged only after sitting idle, replaced when found dead."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text

import walletd.db
from walletd.db import Database


def test_a_connection_killed_while_idle_is_replaced_before_use(
    postgres_migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walletd.db, "IDLE_PING_SECONDS", 0.0)
    db = Database(postgres_migrated, pool_size=1, max_overflow=0)
    admin = create_engine(postgres_migrated, isolation_level="AUTOCOMMIT")
    try:
        with db.transaction() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with db.transaction() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        db.dispose()
        admin.dispose()


def test_a_busy_connection_is_not_pinged(postgres_migrated: str) -> None:
    db = Database(postgres_migrated, pool_size=1, max_overflow=0)
    statements: list[str] = []
    try:
        with db.transaction() as session:
            session.execute(text("SELECT 1"))
        event.listen(db.engine, "before_cursor_execute", lambda c, cur, s, *a: statements.append(s))
        with db.transaction() as session:
            session.execute(text("SELECT 2"))
        assert statements == ["SELECT 2"]
    finally:
        db.dispose()
