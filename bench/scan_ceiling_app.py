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
