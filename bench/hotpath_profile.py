"""Server CPU and SQL statements per request on the hot paths, in process (no HTTP, no load).

    python bench/hotpath_profile.py [--requests 300] [--profile SCENARIO]

Runs the app against a private Postgres database and calls it through the WSGI interface (Flask's
test client), so the figures are the application's own cost per request: what a WSGI server adds
is measured by bench/webservice.py. CPU time is the process's (time.process_time), so a busy
machine inflates it less than wall time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

# The bench folder holds a google.py: put the project root first, not this folder.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import SECRET, private_database  # noqa: E402
from bench.scan import issue_coupons  # noqa: E402
from walletd import create_app  # noqa: E402
from walletd.config import Settings  # noqa: E402
from walletd.db import LazyDescriptionCursor  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
from walletd.passes.certs import write_dev_certs  # noqa: E402
from walletd.schema import upgrade  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", default="")
    parser.add_argument("--show-sql", default="", help="print the statements of one request")
    parser.add_argument("--only", default="", help="run these scenarios (comma-separated)")
    args = parser.parse_args()
    with private_database() as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        certs = write_dev_certs(Path(tmp) / "certs")
        settings = Settings(
            database_url=url, base_url="http://bench.test", secret_key=SECRET, env="development",
            instance_path=Path(tmp) / "instance", apple_cert=certs.cert_path,
            apple_key=certs.key_path, apple_wwdr=certs.wwdr_path,
            ratelimit_api="1000000 per second", ratelimit_apple_register="1000000 per second",
        )  # fmt: skip
        app = create_app(settings)
        svc = app.extensions["walletd"]
        with svc.db.transaction() as session:
            creds = create_brand(session, "Bench", now=svc.clock())
        client = app.test_client()
        admin = {"Authorization": f"Bearer {creds.admin_key}"}
        cashier = {"Authorization": f"Bearer {creds.cashier_key}"}
        cards = []
        for i in range(50):
            member = client.post(
                "/api/v1/members", json={"name": f"M{i}"}, headers=admin
            ).get_json()
            pk = client.get(member["card"]["apple_pass_url"].replace("http://bench.test", ""))
            doc = json.loads(zipfile.ZipFile(io.BytesIO(pk.data)).read("pass.json"))
            device = "seed" + secrets.token_hex(8)
            auth = {"Authorization": f"ApplePass {doc['authenticationToken']}"}
            base = f"/passes/v1/devices/{device}/registrations/{doc['passTypeIdentifier']}"
            r = client.post(
                f"{base}/{doc['serialNumber']}", json={"pushToken": "ab" * 32}, headers=auth
            )
            assert r.status_code == 201, r.status_code
            cards.append(
                (doc, device, auth, member["card"]["barcode"], pk.headers["Last-Modified"])
            )
        statements = [0]
        show = [False]
        width = int(os.environ.get("SQL_WIDTH", "300"))  # characters of each statement shown

        # Counted in psycopg's cursor, not by SQLAlchemy's events: walletd/fastpath runs its
        # statements on the pooled connection's own cursor, below SQLAlchemy.
        class CountingCursor(LazyDescriptionCursor):
            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                statements[0] += 1
                if show[0]:
                    print("   ", " ".join(str(query).split())[:width])
                return super().execute(query, params, **kw)

            def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
                statements[0] += 1
                return super().executemany(query, params_seq, **kw)

        @event.listens_for(svc.db.engine, "connect")
        def counting(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.cursor_factory = CountingCursor

        svc.db.engine.dispose()  # every connection from now on counts

        def pick(i: int) -> tuple[Any, ...]:
            return cards[i % len(cards)]

        def list_(i: int) -> int:
            doc, device, *_ = pick(i)
            return client.get(
                f"/passes/v1/devices/{device}/registrations/{doc['passTypeIdentifier']}"
            ).status_code

        def not_modified(i: int) -> int:
            doc, _, auth, _, modified = pick(i)
            url = f"/passes/v1/passes/{doc['passTypeIdentifier']}/{doc['serialNumber']}"
            return client.get(url, headers={**auth, "If-Modified-Since": modified}).status_code

        def full(i: int) -> int:
            doc, _, auth, *_ = pick(i)
            return client.get(
                f"/passes/v1/passes/{doc['passTypeIdentifier']}/{doc['serialNumber']}", headers=auth
            ).status_code

        def register(i: int) -> int:
            doc, _, auth, *_ = pick(i)
            ptid, serial = doc["passTypeIdentifier"], doc["serialNumber"]
            url = f"/passes/v1/devices/{secrets.token_hex(16)}/registrations/{ptid}/{serial}"
            return client.post(
                url, json={"pushToken": secrets.token_hex(32)}, headers=auth
            ).status_code

        def scan(i: int) -> int:
            *_, barcode, _ = pick(i)
            headers = {**cashier, "Idempotency-Key": secrets.token_hex(12)}
            return client.post(
                "/api/v1/scans", json={"barcode": barcode, "amount": "12.50"}, headers=headers
            ).status_code

        def redemption(i: int) -> int:  # one point: each member holds the welcome points
            *_, barcode, _ = pick(i)
            headers = {**cashier, "Idempotency-Key": secrets.token_hex(12)}
            return client.post(
                "/api/v1/redemptions", json={"barcode": barcode, "points": 1}, headers=headers
            ).status_code

        # Coupons redeemed at the till, each once, issued before the clock starts; in a brand of
        # their own, so the cards above keep the versions their devices hold.
        with svc.db.transaction() as session:
            shop = create_brand(session, "Coupons", now=svc.clock())
            enroll_member(session, shop.brand_id, Enrollment(name="Holder"), svc.context())
            coupons = issue_coupons(
                session, shop.brand_id, shop.program_id, 20 + args.requests + 1, svc.context()
            )
        till = {"Authorization": f"Bearer {shop.cashier_key}"}

        def coupon(i: int) -> int:
            headers = {**till, "Idempotency-Key": secrets.token_hex(12)}
            return client.post(
                "/api/v1/coupons/redemptions",
                json={"barcode": coupons.pop(), "amount": "12.50"},
                headers=headers,
            ).status_code

        def healthz(i: int) -> int:
            return client.get("/healthz").status_code

        scenarios: dict[str, tuple[Callable[[int], int], int]] = {
            "healthz": (healthz, 200), "list": (list_, 200), "not_modified": (not_modified, 304),
            "full": (full, 200), "register": (register, 201), "scan": (scan, 201),
            "redemption": (redemption, 201), "coupon": (coupon, 201),
        }  # fmt: skip
        for name, (call, expect) in scenarios.items():
            if args.only and name not in args.only.split(","):
                continue
            for i in range(20):
                call(i)  # warm up (first pass signs, caches fill)
            if name == args.show_sql:
                show[0] = True
                call(1000)
                show[0] = False
            statements[0] = 0
            profiler = cProfile.Profile() if name == args.profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            took = []
            for i in range(args.requests):
                started = time.perf_counter()
                status = call(i)
                took.append(time.perf_counter() - started)
                assert status == expect, (name, status)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            n = args.requests
            took.sort()
            print(
                f"{name:14s} cpu {cpu / n * 1000:6.3f} ms  wall {wall / n * 1000:6.3f} ms  "
                f"sql {statements[0] / n:4.1f}/req  wall p99 {took[n * 99 // 100] * 1000:6.2f} ms"
                f"  max {took[-1] * 1000:6.1f} ms"
            )
            if profiler:
                pstats.Stats(profiler).sort_stats(
                    os.environ.get("PROFILE_SORT", "cumulative")
                ).print_stats(45)
                if os.environ.get("PROFILE_CALLERS"):
                    pstats.Stats(profiler).print_callers(os.environ["PROFILE_CALLERS"])
        svc.close()


if __name__ == "__main__":
    main()
