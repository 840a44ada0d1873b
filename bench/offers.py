"""An offer issued to every member of a big brand, fanned out by a real worker process.

Usage: python bench/offers.py [--members 100000]

Seeds --members members (each with a loyalty card) on a private Postgres database, creates a
10%-off offer and an issue of it to the segment "all", starts `flask --app walletd worker` and
polls the issue until it is done. Reports coupons issued per second (from the first committed
chunk to the last), the time to finish, the worker's peak RSS (VmHWM) and CPU per coupon, and
checks that every member holds exactly one coupon of the issue. No wallet is registered and
Google is off, so the figure is the database work of an issue: each coupon is a coupons row, a
cards row (its Apple pass) and the member's loyalty card touched.
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# The repository instead of bench/ itself, whose google.py would shadow the google package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import text  # noqa: E402

from bench.campaign import cpu_seconds, peak_rss_mb  # noqa: E402
from bench.common import DEFAULT_PG, ROOT, SECRET, machine, private_database, worker_env  # noqa: E402
from walletd.db import Database  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.models import Offer  # noqa: E402
from walletd.offers.issues import create_issue  # noqa: E402
from walletd.schema import upgrade  # noqa: E402


def seed_brand(url: str, members: int) -> tuple[int, int]:
    """A brand with `members` members, each with a loyalty card; returns (brand, offer) ids."""
    db = Database(url)
    now = datetime.now(UTC)
    with db.transaction() as session:
        creds = create_brand(session, "Offer Coffee", now=now)
        params = {"brand": creds.brand_id, "program": creds.program_id, "n": members, "now": now}
        for statement in (
            """INSERT INTO members (brand_id, program_id, name, marketing_consent, referral_code,
                   points, lifetime_spend_minor, visits, created_at)
               SELECT :brand, :program, 'Member ' || g, true, 'O' || lpad(g::text, 15, '0'),
                   50, 0, 0, :now
               FROM generate_series(1, :n) AS g""",
            """INSERT INTO cards (brand_id, member_id, kind, serial_number, auth_token, barcode,
                   update_tag, updated_at, created_at)
               SELECT brand_id, id, 'loyalty', 'S' || id, md5(id::text), 'B' || id, 0, :now, :now
               FROM members WHERE brand_id = :brand""",
        ):
            session.execute(text(statement), params)
        offer = Offer(
            brand_id=creds.brand_id, program_id=creds.program_id, name="Ten percent off",
            kind="percent_off", value=Decimal("10"), valid_days=30, status="active",
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(offer)
        session.flush()
        offer_id = offer.id
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    db.dispose()
    return creds.brand_id, offer_id


def run_issue(
    url: str, brand_id: int, offer_id: int, members: int, workdir: Path
) -> dict[str, Any]:
    """Queue the issue, start one worker, wait until the issue is done."""
    db = Database(url)
    ctx = Context(now=datetime.now(UTC), secret_key=SECRET)
    with db.transaction() as session:
        issue_id = create_issue(session, brand_id, offer_id, {"preset": "all"}, ctx).id
    env = worker_env(url, workdir)
    log = (workdir / "worker.log").open("wb")
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "walletd", "worker"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    samples: list[tuple[float, int]] = []
    first: float | None = None
    query = text("SELECT status, issued + skipped FROM offer_issues WHERE id = :i")
    try:
        while True:
            time.sleep(0.5)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see {log.name}")
            with db.transaction() as session:
                status, done = session.execute(query, {"i": issue_id}).one()
            now = time.perf_counter()
            samples.append((now, int(done)))
            if done and first is None:
                first = now
            if status in ("done", "cancelled"):
                break
        finished = time.perf_counter()
        peak = peak_rss_mb(worker.pid)
        worker_cpu = cpu_seconds(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
    with db.transaction() as session:
        issued, skipped = session.execute(
            text("SELECT issued, skipped FROM offer_issues WHERE id = :i"), {"i": issue_id}
        ).one()
        once = session.scalar(
            text("SELECT count(DISTINCT member_id) = count(*) FROM coupons WHERE occasion = :o"),
            {"o": f"issue:{issue_id}"},
        )
    db.dispose()
    assert first is not None and status == "done", status
    seconds = samples[-1][0] - first
    window = [
        (b[1] - a[1]) / (b[0] - a[0])
        for a, b in zip(samples, samples[10:], strict=False)
        if b[0] - a[0] > 0
    ]
    return {
        "members": members,
        "issued": int(issued),
        "skipped": int(skipped),
        "one_coupon_per_member": bool(once),
        "time_to_finish_s": round(finished - started, 1),
        "issued_per_s": round(int(issued) / max(seconds, 1e-9), 1),
        "best_5s_issued_per_s": round(max(window), 1) if window else None,
        "worker_peak_rss_mb": round(peak, 1),
        "worker_cpu_ms_per_coupon": round(worker_cpu / max(int(issued), 1) * 1000, 3),
    }


def main() -> None:
    """Seed, issue, print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    print(f"command: python bench/offers.py {' '.join(sys.argv[1:])}", flush=True)
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    with tempfile.TemporaryDirectory(prefix="walletd-offers-bench-") as tmp:
        with private_database(base) as url:
            upgrade(url)
            started = time.perf_counter()
            brand_id, offer_id = seed_brand(url, args.members)
            print(json.dumps({"seeded_members": args.members,
                              "seconds": round(time.perf_counter() - started, 1)}),
                  flush=True)  # fmt: skip
            result = run_issue(url, brand_id, offer_id, args.members, Path(tmp))
            print(json.dumps({"offer_issue": result}), flush=True)


if __name__ == "__main__":
    main()
