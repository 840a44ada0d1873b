"""The scan's HTTP ceiling: a Flask app that answers POST /api/v1/scans with nothing but the
scan's own statements (bench/scan_transaction.sql) sent with bare psycopg.

bench/scan.py --ceiling serves it with the same server, processes and threads as walletd and
drives it with the same wrk script (same barcodes, key, body and Idempotency-Keys). No ORM, no
validation models, no rules, no limiter, no logging or metrics: what any Flask scan that makes
these round trips can reach on this machine, against the same bare endpoint (walletd's
/healthz). It is a measuring stick, not a scan: the points are those of a 12.50 scan whatever
the body says.

Settings come from the environment: WALLETD_DATABASE_URL (a SQLAlchemy URL of Postgres) and
BENCH_CEILING_FIXED (JSON of the script's fixed variables: keyhash, brand, api_key).
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


# The same statements in fewer round trips (BENCH_CEILING_ROUND_TRIPS=2): the key's check moves
# into the locked read (a process keeps the ids of keys it has seen; the read re-checks that the
# key is not revoked), BEGIN goes in one pipeline with the read and COMMIT in one with the writes.
TWO_ROUND_TRIPS = os.environ.get("BENCH_CEILING_ROUND_TRIPS") == "2"
LIVE_KEY = (
    "EXISTS (SELECT 1 FROM api_keys WHERE api_keys.id = %(api_key)s"
    " AND api_keys.revoked_at IS NULL) AS key_live, "
)
LOCKED_CHECKING_THE_KEY = STATEMENTS[1][0].replace(
    "cards.id AS the_card", LIVE_KEY + "cards.id AS the_card", 1
)
_known_keys: dict[str, int] = {}


def _two_round_trips(connection: psycopg.Connection[Any], values: dict[str, Any]) -> Any:
    """The scan in two network round trips; None when the key or the card is unknown."""
    _auth, locked, write = STATEMENTS
    if values["keyhash"] not in _known_keys:
        with connection.cursor() as cursor:
            cursor.execute(_auth[0], {"keyhash": values["keyhash"]})
            row = cursor.fetchone()
            if row is None:
                return None
            _known_keys[values["keyhash"]] = row[0]
    values["api_key"] = _known_keys[values["keyhash"]]
    with connection.pipeline() as pipeline, connection.cursor() as cursor:
        connection.execute("BEGIN")
        cursor.execute(LOCKED_CHECKING_THE_KEY, {n: values[n] for n in [*locked[1], "api_key"]})
        pipeline.sync()
        row = cursor.fetchone()
        assert cursor.description is not None
        if row is not None:
            values.update(zip([c.name for c in cursor.description], row, strict=True))
        if row is None or not values["key_live"]:
            connection.execute("ROLLBACK")
            pipeline.sync()
            return None
        cursor.execute(write[0], {name: values[name] for name in write[1]})
        connection.execute("COMMIT")
        pipeline.sync()
        return cursor.fetchone()


@app.post("/api/v1/scans")
def scan() -> tuple[Response, int]:
    """The scan's round trips: the key's check in autocommit, then the locked read and the
    writes in one transaction."""
    body = request.get_json()
    barcode, amount = body["barcode"], Decimal(body["amount"])
    if amount <= 0:
        abort(422)
    values = {
        **FIXED,
        "barcode": barcode,
        "ik": request.headers["Idempotency-Key"],
        "keyhash": hashlib.sha256(request.headers["Authorization"][7:].encode()).hexdigest(),
    }
    connection = _connection()
    if TWO_ROUND_TRIPS:
        written = _two_round_trips(connection, values)
        if written is None:
            abort(404)
        return jsonify({"entry": written[0], "points": 12, "tag": written[1]}), 201
    auth, locked, write = STATEMENTS
    with connection.cursor() as cursor:
        cursor.execute(auth[0], {name: values[name] for name in auth[1]})
        if cursor.fetchone() is None:
            abort(401)
        with connection.transaction():
            cursor.execute(locked[0], {name: values[name] for name in locked[1]})
            row = cursor.fetchone()
            if row is None:
                abort(404)
            assert cursor.description is not None
            values.update(zip([c.name for c in cursor.description], row, strict=True))
            cursor.execute(write[0], {name: values[name] for name in write[1]})
            entry, tag = cursor.fetchone() or (None, None)
    return jsonify({"entry": entry, "points": 12, "tag": tag}), 201
