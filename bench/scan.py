"""Checkout scans (or redemptions, or coupons redeemed) per second on Postgres, beside the bare
health endpoint.

Usage: python bench/scan.py [--seconds 10] [--connections 16] [--sweep]
                            [--kind scan|redemption|coupon]
                            [--ceiling]
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL) and wrk; --ceiling needs pgbench.

--ceiling also runs the scan's own statements (bench/scan_transaction.sql) on the same database
without walletd: with pgbench (what the database alone can do for a scan on this machine, with
a client that costs next to nothing),
from Python with bare psycopg in as many processes and threads as the server (what any
Python scan making these round trips can reach before HTTP, Flask, the ORM and the rules),
and over HTTP from bench/scan_ceiling_app.py, a Flask app doing nothing but those statements,
under the same server and the same wrk script (what any Flask scan can reach).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: its google.py shadows google


from bench.common import DEFAULT_PG, SECRET, gunicorn, machine, private_database, wrk  # noqa: E402
from walletd.db import Database, utcnow  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
from walletd.models import Member  # noqa: E402
from walletd.offers.catalog import OfferInput, create_offer  # noqa: E402
from walletd.offers.coupons import issue_coupon  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

SCAN_SCRIPT = """
local barcodes = {%(barcodes)s}
local counter = 0
local thread_count = 0
-- `tid` is a global set per thread by setup(); a `local tid` here would hide it and both wrk
-- threads would send the same Idempotency-Keys (replays, not scans).
setup = function(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end
request = function()
  counter = counter + 1
  local barcode = %(pick)s
  local body = '{"barcode": "' .. barcode .. '", %(payload)s}'
  return wrk.format("POST", "%(path)s", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(key)s",
    ["Idempotency-Key"] = "%(run)s-" .. tid .. "-" .. counter,
  }, body)
end
"""


# What each request does: a checkout scan of 12.50, a redemption of one point (every member
# starts with the welcome points, far more than one run takes from any of them), or a coupon
# (10 % off) redeemed at the till with a purchase of 12.50, each coupon once.
KINDS = {
    "scan": ("/api/v1/scans", '"amount": "12.50"'),
    "redemption": ("/api/v1/redemptions", '"points": 1'),
    "coupon": ("/api/v1/coupons/redemptions", '"amount": "12.50"'),
}
# A card at random, or for coupons the next unused one: wrk's two threads take turns (tid 1, 2).
RANDOM_CARD = "barcodes[math.random(#barcodes)]"
NEXT_COUPON = "barcodes[((counter - 1) * 2 + tid - 1) % #barcodes + 1]"


TRANSACTION = Path(__file__).with_name("scan_transaction.sql")


def seed(url: str, members: int, coupons: int = 0) -> tuple[str, list[str]]:
    """A brand with members; returns the cashier key and the cards' barcodes, or with `coupons`
    the barcodes of that many coupons of a 10 %-off offer, spread over the members."""
    upgrade(url)
    db = Database(url)
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.transaction() as session:
        creds = create_brand(session, "Bench Coffee", now=ctx.now)
        barcodes = []
        for i in range(members):
            _, card = enroll_member(session, creds.brand_id, Enrollment(name=f"Member {i}"), ctx)
            barcodes.append(card.barcode)
        if coupons:
            barcodes = issue_coupons(session, creds.brand_id, creds.program_id, coupons, ctx)
    db.dispose()
    return creds.cashier_key, barcodes


def issue_coupons(
    session: Session, brand_id: int, program_id: int, count: int, ctx: Context
) -> list[str]:
    """`count` coupons of a new 10 %-off offer, round robin over the brand's members."""
    offer = create_offer(
        session, brand_id,
        OfferInput(program_id=program_id, name="Ten off", kind="percent_off", value="10"), ctx,
    )  # fmt: skip
    members = session.scalars(select(Member).where(Member.brand_id == brand_id)).all()
    barcodes = []
    for i in range(count):
        coupon = issue_coupon(
            session, offer, members[i % len(members)], source="manual", occasion=f"bench:{i}",
            ctx=ctx,
        )  # fmt: skip
        assert coupon is not None
        barcodes.append(coupon.barcode)
    return barcodes


def run_config(
    url: str, key: str, barcodes: list[str], *, workers: int, threads: int, args: argparse.Namespace
) -> dict[str, object]:
    """Measure the bare endpoint and scans under one gunicorn configuration."""
    with gunicorn(url, workers=workers, threads=threads, server=args.server) as base:
        wrk(f"{base}/healthz", connections=args.connections, seconds=2)  # warm-up
        bare = wrk(f"{base}/healthz", connections=args.connections, seconds=args.seconds)
        path, payload = KINDS[args.kind]
        script = SCAN_SCRIPT % {
            "barcodes": ", ".join(f'"{b}"' for b in barcodes),
            "key": key,
            "run": os.urandom(4).hex(),
            "path": path,
            "payload": payload,
            "pick": NEXT_COUPON if args.kind == "coupon" else RANDOM_CARD,
        }
        scans = wrk(f"{base}/", connections=args.connections, seconds=args.seconds, script=script)
    return {
        "kind": args.kind,
        "server": args.server,
        "workers": workers,
        "threads": threads,
        "bare_rps": round(bare["rps"], 1),
        "bare_p50_ms": bare["p50_ms"],
        "bare_p99_ms": bare["p99_ms"],
        "scan_rps": round(scans["rps"], 1),
        "scan_p50_ms": scans["p50_ms"],
        "scan_p99_ms": scans["p99_ms"],
        "scan_non_2xx": scans["non_2xx"],
        "scan_requests": scans["requests"],
        "ratio": round(scans["rps"] / bare["rps"], 3),
    }


def http_ceiling(
    url: str,
    key: str,
    barcodes: list[str],
    *,
    workers: int,
    threads: int,
    args: argparse.Namespace,
    round_trips: int = 4,
) -> dict[str, Any]:
    """The same wrk scans against bench/scan_ceiling_app.py (Flask and the scan's statements
    with bare psycopg, nothing else) under the same server and process model; `round_trips` 2:
    BEGIN and COMMIT pipelined with the read and the writes (4: as walletd sends them)."""
    fixed = _variables(url, key)
    env = {"BENCH_CEILING_FIXED": json.dumps(fixed), "BENCH_CEILING_ROUND_TRIPS": str(round_trips)}
    with gunicorn(url, workers=workers, threads=threads, server=args.server, env=env,
                  app="bench.scan_ceiling_app:app") as base:  # fmt: skip
        wrk(f"{base}/healthz", connections=args.connections, seconds=2)  # warm-up
        script = SCAN_SCRIPT % {
            "barcodes": ", ".join(f'"{b}"' for b in barcodes), "key": key,
            "run": os.urandom(4).hex(), "path": KINDS["scan"][0], "payload": KINDS["scan"][1],
            "pick": RANDOM_CARD,
        }  # fmt: skip
        result = wrk(f"{base}/", connections=args.connections, seconds=args.seconds, script=script)
    if result["non_2xx"] or result["socket_errors"]:
        raise SystemExit(f"the ceiling app failed: {result}")
    return {"rps": round(result["rps"], 1), "p99_ms": result["p99_ms"]}


def _variables(url: str, key: str) -> dict[str, Any]:
    """The script's fixed variables, read from the seeded database."""
    keyhash = hashlib.sha256(key.encode()).hexdigest()
    db = Database(url)
    with db.transaction() as session:
        row = session.execute(text("SELECT min(id), max(id), min(brand_id) FROM cards")).one()
        api_key = session.scalar(
            text("SELECT id FROM api_keys WHERE key_hash = :h"), {"h": keyhash}
        )
    db.dispose()
    return {"keyhash": keyhash, "first_card": row[0], "last_card": row[1], "brand": row[2],
            "api_key": api_key}  # fmt: skip


def _python_client(dsn: str, fixed: dict[str, Any], seconds: float, done: list[int]) -> None:
    """One connection running the script's statements for `seconds` (psycopg prepares them after
    five uses, as it does under walletd); appends the number of scans to `done`."""
    statements = []
    for line in TRANSACTION.read_text().splitlines():
        if line and not line.startswith(("--", "\\set")):
            sql = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", line.removesuffix("\\aset").strip())
            sql = sql.rstrip(";")
            statements.append((sql, re.findall(r"%\((\w+)\)s", sql), line.endswith("\\aset")))
    count = 0
    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            values = dict(fixed)
            values["cid"] = random.randint(fixed["first_card"], fixed["last_card"])
            values["ik"] = random.randint(1, 10**12)
            for sql, names, keep in statements:
                cursor.execute(sql, {name: values[name] for name in names} if names else None)
                if keep:  # pgbench's \aset: the last row's columns become variables
                    rows = cursor.fetchall()
                    assert cursor.description is not None
                    values.update(zip([c.name for c in cursor.description], rows[-1], strict=True))
            count += 1
    done.append(count)


def _python_process(
    dsn: str, fixed: dict[str, Any], seconds: float, threads: int, out: Any
) -> None:
    done: list[int] = []
    running = [
        threading.Thread(target=_python_client, args=(dsn, fixed, seconds, done))
        for _ in range(threads)
    ]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    out.put(sum(done))


def python_ceiling(url: str, key: str, processes: int, threads: int, seconds: int) -> float:
    """Scans per second from Python with bare psycopg, `processes` x `threads` connections."""
    fixed = _variables(url, key)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out: Any = multiprocessing.Queue()
    running = [
        multiprocessing.Process(target=_python_process, args=(dsn, fixed, seconds, threads, out))
        for _ in range(processes)
    ]
    for process in running:
        process.start()
    total = sum(out.get() for _ in running)
    for process in running:
        process.join()
    return float(total / seconds)


def database_ceiling(url: str, key: str, clients: int, seconds: int) -> dict[str, float]:
    """Scans per second that pgbench gets from the database with the scan's own statements."""
    if shutil.which("pgbench") is None:
        raise SystemExit("--ceiling needs pgbench (Debian: postgresql-client)")
    fixed = _variables(url, key)
    target = make_url(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as handle:
        handle.write(TRANSACTION.read_text())
        handle.flush()
        output = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
             "-T", str(seconds), "-h", target.host or "127.0.0.1",
             "-p", str(target.port or 5432), "-U", target.username or "postgres",
             *(arg for name, value in fixed.items() for arg in ("-D", f"{name}={value}")),
             "-f", handle.name, target.database or ""],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    if "failed transactions: 0 " not in output:
        raise SystemExit(f"pgbench reported failures:\n{output}")
    tps = re.search(r"^tps = ([0-9.]+)", output, re.M)
    assert tps is not None, output
    return {"as_sent": float(tps.group(1))}


def main() -> None:
    """Seed, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sweep", action="store_true", help="try several process models")
    parser.add_argument("--kind", choices=sorted(KINDS), default="scan")
    parser.add_argument(
        "--ceiling", action="store_true", help="also the database's own rate for the scan"
    )
    parser.add_argument(
        "--server", nargs="+", default=["gunicorn"], choices=["gunicorn", "granian"]
    )
    args = parser.parse_args()
    servers = args.server
    configs = [(args.workers, args.threads)]
    if args.sweep:
        configs = [(2, 1), (2, 2), (2, 4), (4, 1), (4, 4), (8, 2)]
    print(f"machine: {machine()}")
    print(f"command: python bench/scan.py {' '.join(sys.argv[1:])}")
    with private_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)) as url:
        # Coupons are redeemed once each: enough for 600 a second, a fresh slice per run.
        runs = len(servers) * len(configs)
        coupons = args.seconds * 600 * runs if args.kind == "coupon" else 0
        key, barcodes = seed(url, args.members, coupons)
        for server in servers:
            args.server = server
            for workers, threads in configs:
                result = run_config(url, key, barcodes, workers=workers, threads=threads, args=args)
                if args.kind == "coupon":
                    barcodes = barcodes[int(str(result["scan_requests"])) :]
                if args.ceiling and args.kind == "scan":
                    # As many clients as the server runs transactions at once, and as wrk's.
                    for clients in sorted({workers * threads, args.connections}):
                        ceiling = database_ceiling(url, key, clients, args.seconds)
                        for name, tps in ceiling.items():
                            result[f"db_{name}_c{clients}_tps"] = round(tps, 1)
                            scan_rps = result["scan_rps"]
                            assert isinstance(scan_rps, float)
                            result[f"scan_of_db_{name}_c{clients}"] = round(scan_rps / tps, 3)
                    http = http_ceiling(url, key, barcodes, workers=workers, threads=threads,
                                        args=args)  # fmt: skip
                    bare_rps, scan_rps = result["bare_rps"], result["scan_rps"]
                    assert isinstance(bare_rps, float) and isinstance(scan_rps, float)
                    result["flask_psycopg_rps"] = http["rps"]
                    result["flask_psycopg_p99_ms"] = http["p99_ms"]
                    result["flask_psycopg_of_bare"] = round(http["rps"] / bare_rps, 3)
                    result["scan_of_flask_psycopg"] = round(scan_rps / http["rps"], 3)
                    fewer = http_ceiling(url, key, barcodes, workers=workers, threads=threads,
                                         args=args, round_trips=2)  # fmt: skip
                    result["flask_psycopg_2rt_rps"] = fewer["rps"]
                    result["flask_psycopg_2rt_p99_ms"] = fewer["p99_ms"]
                    result["flask_psycopg_2rt_of_bare"] = round(fewer["rps"] / bare_rps, 3)
                    raw = python_ceiling(url, key, workers, threads, args.seconds)
                    result["python_psycopg_rps"] = round(raw, 1)
                    result["python_psycopg_of_bare"] = round(raw / bare_rps, 3)
                print(json.dumps(result))


if __name__ == "__main__":
    main()
