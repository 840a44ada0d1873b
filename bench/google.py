"""Google object updates per second through the dispatcher and GoogleChannel, against the fake.

Usage: python bench/google.py [--seconds 10] [--fast-rate 100] [--overload]
The Google Wallet fake runs in its own process (so it does not share our GIL), with Google's
documented per-issuer limit switched on where a run says so; it answers 429 above that limit.

Each run enrolls cards (one GOOGLE_OBJECT row each), drains them (class + object inserts), then
credits every card once and drains again (one PATCH per card): "updates/s" is the second drain.
Runs: the client at 20/s against a fake limited to 20/s; a higher configured rate against a fake
limited to that rate; no client limit against an unlimited fake (the path's own ceiling); and with
--overload, the higher rate against a fake limited to 20/s (429s expected: why the limiter exists).
Needs nothing but the venv; BENCH_DATABASE_URL=postgresql+psycopg://… runs on Postgres instead of
a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select

# Run as a script, this file's folder comes first on sys.path, and this file is named like the
# google namespace package that google-auth lives in: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.common import SECRET, machine, private_database  # noqa: E402
from walletd.config import Settings  # noqa: E402
from walletd.db import Database, utcnow  # noqa: E402
from walletd.loyalty import ledger  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
from walletd.models import OutboxMessage  # noqa: E402
from walletd.push.dispatcher import Dispatcher  # noqa: E402
from walletd.push.google_channel import google_channel  # noqa: E402
from walletd.schema import upgrade  # noqa: E402
from walletd.services import Services  # noqa: E402


def serve_fake(limit: float | None) -> None:
    """Child process: run the fake, print where it is, answer `stats`/`mark` lines on stdin."""
    from tests.fakes.google_wallet import GoogleWalletFake

    with GoogleWalletFake(rate_limit_per_second=limit) as fake:
        where = {
            "issuer_id": fake.issuer_id,
            "api_url": fake.api_url,
            "credentials": str(fake.credentials_path),
        }
        print(json.dumps(where), flush=True)
        mark, throttled = 0, 0
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                # Everything since the last "mark": the phase being measured.
                requests = fake.api_requests()[mark:]
                statuses: dict[str, int] = {}
                for r in requests:
                    statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
                stats = {
                    "requests": len(requests),
                    "throttled": fake.throttled - throttled,
                    "peak_1s": _peak(sorted(r.at for r in requests)),
                    "statuses": statuses,
                    "crashes": len(fake.crashes),
                }
                print(json.dumps(stats), flush=True)
            elif command == "mark":
                mark, throttled = len(fake.api_requests()), fake.throttled
                print("{}", flush=True)
            elif command == "quit":
                break


def _peak(arrivals: list[float]) -> int:
    """The most requests that arrived within any one second."""
    best, start = 0, 0
    for end, at in enumerate(arrivals):
        while at - arrivals[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


class FakeProcess:
    """The fake in a child process, driven over its stdin/stdout."""

    def __init__(self, limit: float | None) -> None:
        command = [sys.executable, __file__, "--serve-fake"]
        if limit is not None:
            command += ["--limit", str(limit)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.where: dict[str, str] = json.loads(self._stdout().readline())

    def _stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command line and read the JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._stdout().readline())
        return answer

    def close(self) -> None:
        """Ask the child to stop and wait for it."""
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self._stdout().close()


@contextmanager
def database() -> Iterator[str]:
    """BENCH_DATABASE_URL's server (a private database on it), else a temporary SQLite file."""
    base = os.environ.get("BENCH_DATABASE_URL")
    if base:
        with private_database(base) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="walletd-bench-google-") as folder:
        yield f"sqlite:///{folder}/walletd.db"


def pending(db: Database) -> int:
    """Rows not finished yet."""
    with db.transaction() as session:
        query = select(func.count()).where(OutboxMessage.status == "pending")
        return int(session.scalar(query) or 0)


def deliver_all(dispatcher: Dispatcher, db: Database) -> float:
    """Run the dispatcher until the outbox is empty (waiting out pauses); return the seconds."""
    started = time.perf_counter()
    while True:
        if dispatcher.run_once() == 0:
            if pending(db) == 0:
                return time.perf_counter() - started
            time.sleep(0.05)


def run(*, client_rate: float, fake_limit: float | None, cards: int, url: str) -> dict[str, object]:
    """One configuration: enroll, insert objects, update them; report rates and 429s."""
    fake = FakeProcess(fake_limit)
    try:
        upgrade(url)
        settings = Settings(
            database_url=url,
            base_url="https://walletd.example",
            secret_key=SECRET,
            env="test",
            google_issuer_id=fake.where["issuer_id"],
            google_credentials=fake.where["credentials"],
            google_api_url=fake.where["api_url"],
            google_rate_per_second=client_rate,
        )
        svc = Services(settings=settings, db=Database(url), clock=utcnow)
        ctx = Context(now=utcnow(), secret_key=SECRET, google_enabled=True)
        with svc.db.transaction() as session:
            creds = create_brand(session, f"Bench {client_rate:g}", now=ctx.now)
            members = [
                enroll_member(session, creds.brand_id, Enrollment(name=f"M{i}"), ctx)[0].id
                for i in range(cards)
            ]
        channel = svc.adapter("google_channel", lambda: google_channel(svc))
        dispatcher = Dispatcher(svc.db, [channel], clock=svc.clock)
        inserts = deliver_all(dispatcher, svc.db)
        inserted = fake.ask("stats")
        fake.ask("mark")
        time.sleep(1.1)  # a fresh rate-limit window for the update phase
        later = Context(now=utcnow(), secret_key=SECRET, google_enabled=True)
        with svc.db.transaction() as session:
            for member_id in members:
                member = ledger.lock_member(session, member_id)
                ledger.grant_bonus(
                    session, member, 5, reason="bench", idempotency_key=f"b{member_id}", ctx=later
                )
        updates = deliver_all(dispatcher, svc.db)
        updated = fake.ask("stats")
        svc.close()
    finally:
        fake.close()
    return {
        "client_rate": client_rate or "unlimited",
        "fake_limit": fake_limit or "none",
        "cards": cards,
        "inserts_per_s": round((cards + 1) / inserts, 1),
        "updates_per_s": round(cards / updates, 1),
        "update_requests": updated["requests"],
        "peak_requests_in_1s": updated["peak_1s"],
        "http_429": inserted["throttled"] + updated["throttled"],
        "statuses": updated["statuses"],
        "fake_crashes": updated["crashes"],
    }


def main() -> None:
    """Run the configurations and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="target length of a phase")
    parser.add_argument("--fast-rate", type=float, default=100.0, help="the higher client rate")
    parser.add_argument("--ceiling-cards", type=int, default=1000)
    parser.add_argument("--overload", action="store_true", help="also run the 429 control")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.limit)
        return
    print(f"machine: {machine()}")
    print(f"command: python bench/google.py {' '.join(sys.argv[1:])}".rstrip())
    runs: list[tuple[float, float | None, int]] = [
        (20.0, 20.0, int(20 * args.seconds)),
        (args.fast_rate, args.fast_rate, int(args.fast_rate * args.seconds)),
        (0.0, None, args.ceiling_cards),
    ]
    if args.overload:
        runs.append((args.fast_rate, 20.0, int(20 * args.seconds)))
    for client_rate, fake_limit, cards in runs:
        with database() as url:
            result = run(client_rate=client_rate, fake_limit=fake_limit, cards=cards, url=url)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
