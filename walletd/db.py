"""Engine, session factory, declarative Base with naming conventions, and a UTC datetime type."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

import psycopg
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGresult
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraint names are stable across SQLite and Postgres."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always hands back aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite keeps text; drop the offset so lexical order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


# Connections a pool may open past its size for a moment (a burst), closed again when returned;
# none when WALLETD_DB_POOL_SIZE is set: then it is the exact cap the operator counted with.
POOL_OVERFLOW = 2


def pool_overflow(environ: Mapping[str, str] | None = None) -> int:
    """POOL_OVERFLOW, or 0 when WALLETD_DB_POOL_SIZE sets the pool explicitly."""
    env = os.environ if environ is None else environ
    return 0 if env.get("WALLETD_DB_POOL_SIZE", "").strip() else POOL_OVERFLOW


def default_pool_size(environ: Mapping[str, str] | None = None) -> int:
    """WALLETD_DB_POOL_SIZE, else the threads that can hold a connection at once: gunicorn's
    GUNICORN_THREADS (default 4); a worker uses 3 (its loop and two scheduler threads), under 4.

    Each process opens at most pool size + pool_overflow() connections to Postgres, so a site
    needs hosts x processes x pool <= max_connections (less a few for psql and migrations).
    """
    env = os.environ if environ is None else environ
    for name, default in (("WALLETD_DB_POOL_SIZE", ""), ("GUNICORN_THREADS", "4")):
        value = env.get(name, default).strip()
        if value:
            if not (value.isascii() and value.isdigit() and 0 < int(value) <= 1000):
                raise ValueError(f"{name} must be a whole number from 1 to 1000, not {value!r}")
            return int(value)
    return 4


# The result states psycopg describes (its Cursor.description): rows, or a query that said so.
_ROWS = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class _Result:
    """What psycopg's Column reads of a cursor, kept for one result (the cursor runs on)."""

    __slots__ = ("pgresult", "_encoding", "adapters")

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        assert cursor.pgresult is not None
        self.pgresult: PGresult = cursor.pgresult
        self._encoding = cursor._encoding
        self.adapters = cursor.adapters


class _Description(Sequence[psycopg.Column]):
    """A result's column descriptions, built when first read."""

    __slots__ = ("_result", "_columns")

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._result = _Result(cursor)
        self._columns: list[psycopg.Column] | None = None

    def _built(self) -> list[psycopg.Column]:
        if self._columns is None:
            self._columns = [
                psycopg.Column(self._result, i)  # type: ignore[arg-type]
                for i in range(len(self))
            ]
        return self._columns

    def __len__(self) -> int:
        return int(self._result.pgresult.nfields)

    @overload
    def __getitem__(self, index: int) -> psycopg.Column: ...
    @overload
    def __getitem__(self, index: slice) -> list[psycopg.Column]: ...
    def __getitem__(self, index: int | slice) -> psycopg.Column | list[psycopg.Column]:
        return self._built()[index]


class LazyDescriptionCursor(psycopg.Cursor[Any]):
    """psycopg's cursor, whose `description` builds its Column objects only when read.

    SQLAlchemy takes `cursor.description` after every statement but, for a statement it ran
    before (every statement of a hot path), only checks that it is not None and keeps the
    result metadata of the first run. psycopg builds one Column per column each time: 82 for
    a scan's locked read, 7 % of the scan's CPU (py-spy over bench/hotpath_profile.py).
    Hand-written because psycopg has no lazy description; the same answer, later.
    """

    @property
    def description(self) -> Sequence[psycopg.Column] | None:  # type: ignore[override]
        result = self.pgresult
        if result is None or not (result.nfields or result.status in _ROWS):
            return None
        return _Description(self)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and locked write transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_size", default_pool_size())
        kwargs.setdefault("max_overflow", pool_overflow())
        if parsed.get_driver_name() == "psycopg":
            kwargs.setdefault("connect_args", {}).setdefault(
                "cursor_factory", LazyDescriptionCursor
            )
        engine = create_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine)
        return engine
    database = parsed.database or ""
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    kwargs.setdefault("poolclass", NullPool)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
    _configure_sqlite(engine)
    return engine


# A pooled connection idle longer than this is checked before use (a round trip); busier ones
# are not. SQLAlchemy's pool_pre_ping pings on every checkout: one extra round trip per request,
# measured at ~0.3 ms of a 1.2 ms bare request (bench/hotpath_profile.py). This is the
# "custom pessimistic ping" recipe of SQLAlchemy's pooling documentation, limited to idle ones.
IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another one.
            raise DisconnectionError("pooled connection is gone") from exc


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own BEGIN handling defers the write lock, so two scans of one card could both
    # read the old balance; BEGIN IMMEDIATE takes the write lock up front (SQLAlchemy recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def transaction_memo(session: Session, key: str, factory: Callable[[], T]) -> T:
    """A value kept in `session.info` under `key` for the session's current transaction only
    (made by `factory` on first use in each transaction): facts a request read once and may
    reuse until it commits, such as "this brand has no webhook endpoints"."""
    transaction = session.get_transaction()
    held = session.info.get(key)
    if held is None or held[0] is not transaction:
        held = (transaction, factory())
        session.info[key] = held
    value: T = held[1]
    return value


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        """True on Postgres, where row locks and SKIP LOCKED are available."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reads(self) -> Iterator[Session]:
        """A session whose statements each commit by themselves on Postgres (autocommit).

        For a request's reads before its unit of work, and single-statement writes: it spares
        the BEGIN and COMMIT round trips of a transaction (bench/hotpath_profile.py counts
        them). SQLite keeps `transaction()`, whose BEGIN IMMEDIATE orders its writers.
        """
        if not self.is_postgres:
            with self.transaction() as session:
                yield session
            return
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        with connection, Session(bind=connection, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
