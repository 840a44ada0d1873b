"""The scan's HTTP ceiling: a Flask app that answers POST /api/v1/scans with nothing but the
scan's own statements (bench/scan_transaction.sql) sent with bare psycopg, the API key looked up
once per process as walletd's KeyCache does.

bench/scan.py --ceiling serves it with the same server, processes and threads as walletd and
drives it with the same wrk script (same barcodes, key, body and Idempotency-Keys). No ORM, no
validation models, no rules, no limiter, no logging or metrics: what any Flask scan that makes
these round trips can reach on this machine, against the same bare endpoint (walletd's
/healthz). It is a measuring stick, not a scan: the points are those of a 12.50 scan whatever
the body says.

Settings come from the environment: WALLETD_DATABASE_URL (a SQLAlchemy URL of Postgres) and
BENCH_CEILING_FIXED (JSON of the script's fixed variables: brand, ...), BENCH_CEILING_ROUND_TRIPS.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask, Response, abort, jsonify, request

TRANSACTION = Path(__file__).with_name("scan_transaction.sql")


def _statements() -> list[tuple[str, list[str], bool]]:
    """The script's statements as psycopg queries: (sql, parameter names, keeps its row), the
    card picked by barcode as walletd picks it (the script picks it by id)."""
    statements = []
    for line in TRANSACTION.read_text().splitlines():
        if not line or line.startswith(("--", "\\set")) or line in ("BEGIN;", "END;"):
            continue
        sql = line.replace("cards.id = :cid", "cards.barcode = :barcode")
        sql = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql.removesuffix("\\aset").strip())
        statements.append((sql.rstrip(";"), re.findall(r"%\((\w+)\)s", sql), "\\aset" in line))
    return statements


STATEMENTS = _statements()
DSN = re.sub(r"^postgresql\+\w+://", "postgresql://", os.environ["WALLETD_DATABASE_URL"])
FIXED: dict[str, Any] = json.loads(os.environ.get("BENCH_CEILING_FIXED", "{}"))
_local = threading.local()
app = Flask(__name__)


def _connection() -> psycopg.Connection[Any]:
    """This thread's connection (psycopg prepares a statement after its fifth use, as under
    walletd)."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = psycopg.connect(DSN, autocommit=True)
    return connection


@app.get("/healthz")
def healthz() -> Response:
    """Up (bench.common.gunicorn waits for it)."""
    return jsonify({"status": "ok"})


# Keys this process has seen, as walletd's KeyCache keeps them: key hash -> key id (the locked
# read re-checks that the key is live).
_known_keys: dict[str, int] = {}
KEY_BY_HASH = "SELECT api_keys.id FROM api_keys WHERE api_keys.key_hash = %(keyhash)s"
# BENCH_CEILING_ROUND_TRIPS=2: BEGIN goes in one pipeline with the locked read and COMMIT in one
# with the writes (else four round trips: BEGIN, read, writes, COMMIT, as walletd sends them).
TWO_ROUND_TRIPS = os.environ.get("BENCH_CEILING_ROUND_TRIPS") == "2"


def _key_id(connection: psycopg.Connection[Any], keyhash: str) -> int | None:
    if keyhash not in _known_keys:
        row = connection.execute(KEY_BY_HASH, {"keyhash": keyhash}).fetchone()
        if row is None:
            return None
        _known_keys[keyhash] = row[0]
    return _known_keys[keyhash]


def _params(statement: tuple[str, list[str], bool], values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in statement[1]}


def _read(cursor: Any, values: dict[str, Any]) -> bool:
    """Take the locked read's row into `values`; False for an unknown card or a revoked key."""
    row = cursor.fetchone()
    assert cursor.description is not None
    if row is None:
        return False
    values.update(zip([c.name for c in cursor.description], row, strict=True))
    return bool(values["anon_5"])  # the key is live


def _four_round_trips(connection: psycopg.Connection[Any], values: dict[str, Any]) -> Any:
    locked, write = STATEMENTS
    with connection.cursor() as cursor, connection.transaction():
        cursor.execute(locked[0], _params(locked, values))
        if not _read(cursor, values):
            raise _Refused
        cursor.execute(write[0], _params(write, values))
        return cursor.fetchone()


def _two_round_trips(connection: psycopg.Connection[Any], values: dict[str, Any]) -> Any:
    locked, write = STATEMENTS
    with connection.pipeline() as pipeline, connection.cursor() as cursor:
        connection.execute("BEGIN")
        cursor.execute(locked[0], _params(locked, values))
        pipeline.sync()
        if not _read(cursor, values):
            connection.execute("ROLLBACK")
            pipeline.sync()
            raise _Refused
        cursor.execute(write[0], _params(write, values))
        connection.execute("COMMIT")
        pipeline.sync()
        return cursor.fetchone()


class _Refused(Exception):
    """An unknown card or a revoked key."""


@app.post("/api/v1/scans")
def scan() -> tuple[Response, int]:
    """The scan's round trips: the locked read (which re-checks the key) and the writes in one
    transaction; the key itself is read once per process."""
    body = request.get_json()
    barcode, amount = body["barcode"], Decimal(body["amount"])
    if amount <= 0:
        abort(422)
    connection = _connection()
    key_id = _key_id(
        connection, hashlib.sha256(request.headers["Authorization"][7:].encode()).hexdigest()
    )
    if key_id is None:
        abort(401)
    values = {
        **FIXED, "barcode": barcode, "ik": request.headers["Idempotency-Key"], "api_key": key_id
    }  # fmt: skip
    try:
        written = (_two_round_trips if TWO_ROUND_TRIPS else _four_round_trips)(connection, values)
    except _Refused:
        abort(404)
    return jsonify({"entry": written[0], "points": 12, "tag": written[1]}), 201
