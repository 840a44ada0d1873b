"""Checkout scans (or redemptions) per second on Postgres, beside the bare health endpoint.

Usage: python bench/scan.py [--seconds 10] [--connections 16] [--sweep] [--kind redemption]
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL) and wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: its google.py shadows google

from bench.common import DEFAULT_PG, SECRET, gunicorn, machine, private_database, wrk  # noqa: E402
from walletd.db import Database, utcnow  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
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
  local barcode = barcodes[math.random(#barcodes)]
  local body = '{"barcode": "' .. barcode .. '", %(payload)s}'
  return wrk.format("POST", "%(path)s", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %(key)s",
    ["Idempotency-Key"] = "%(run)s-" .. tid .. "-" .. counter,
  }, body)
end
"""


# What each request does: a checkout scan of 12.50, or a redemption of one point (every member
# starts with the welcome points, far more than one run takes from any of them).
KINDS = {
    "scan": ("/api/v1/scans", '"amount": "12.50"'),
    "redemption": ("/api/v1/redemptions", '"points": 1'),
}


def seed(url: str, members: int) -> tuple[str, list[str]]:
    """A brand with members; returns the cashier key and the barcodes."""
    upgrade(url)
    db = Database(url)
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.transaction() as session:
        creds = create_brand(session, "Bench Coffee", now=ctx.now)
        barcodes = []
        for i in range(members):
            _, card = enroll_member(session, creds.brand_id, Enrollment(name=f"Member {i}"), ctx)
            barcodes.append(card.barcode)
    db.dispose()
    return creds.cashier_key, barcodes


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
        "ratio": round(scans["rps"] / bare["rps"], 3),
    }


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
        key, barcodes = seed(url, args.members)
        for server in servers:
            args.server = server
            for workers, threads in configs:
                result = run_config(url, key, barcodes, workers=workers, threads=threads, args=args)
                print(json.dumps(result))


if __name__ == "__main__":
    main()
