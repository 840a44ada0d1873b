"""Campaign-style e-mails sent by a real worker process to the SMTP relay fake on loopback.

Usage: python bench/emails.py [--messages 100000] [--rate 10000]
(Not bench/email.py: a script's folder comes first on sys.path, and that name would hide the
standard library's email package from every benchmark here.)

Creates a brand on a private Postgres database and queues --messages e-mails the way a campaign
does (one `emails` row and one outbox row each, with List-Unsubscribe headers and a ~2 KB HTML
part; `queue_emails`, 1,000 per transaction), then starts `flask --app walletd worker
--no-scheduler` pointed at the aiosmtpd relay of tests/fakes/smtp_server.py (in this process,
counting messages only, no TLS or AUTH) with WALLETD_SMTP_RATE=--rate, and waits until every
e-mail is sent. Reports the queueing rate, messages/s delivered (from the first to the last
accepted message), the worker's peak RSS (VmHWM) and CPU per 1,000 messages, and checks that
every row ended `sent`.
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The repository instead of bench/ itself, whose email.py would shadow the email package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import text  # noqa: E402

from bench.campaign import cpu_seconds, peak_rss_mb  # noqa: E402
from bench.common import DEFAULT_PG, ROOT, machine, private_database, worker_env  # noqa: E402
from tests.fakes.smtp_server import running_relay  # noqa: E402
from walletd.db import Database  # noqa: E402
from walletd.email import EmailContent, Recipient, queue_emails  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

CHUNK = 1000


def campaign_content(n: int) -> EmailContent:
    """A campaign message as the fallback sends it: text, HTML and one-click unsubscribe."""
    link = f"https://walletd.bench/unsubscribe?m={n}&sig={n:032x}"
    paragraph = "<p>Double points all weekend at every Acme Coffee store. 週末雙倍點數！</p>"
    return EmailContent(
        subject="Acme Coffee: double points this weekend / 週末雙倍點數",
        text="Double points all weekend at every Acme Coffee store.\n\nUnsubscribe: " + link,
        html="<!doctype html><html><body>" + paragraph * 20 + f'<a href="{link}">Unsubscribe</a>'
        "</body></html>",
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },  # fmt: skip
    )


def queue(url: str, brand_id: int, messages: int) -> float:
    """Queue the e-mails in transactions of CHUNK; returns the seconds it took."""
    db = Database(url)
    started = time.perf_counter()
    now = datetime.now(UTC)
    for first in range(0, messages, CHUNK):
        with db.transaction() as session:
            recipients = [
                Recipient(f"member{n}@example.com", campaign_content(n))
                for n in range(first, min(first + CHUNK, messages))
            ]
            queue_emails(session, brand_id=brand_id, kind="campaign", recipients=recipients,
                         now=now)  # fmt: skip
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed


def run(messages: int, rate: float) -> dict[str, Any]:
    """Queue, deliver through one worker, and measure."""
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    with private_database(base) as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        upgrade(url)
        db = Database(url)
        with db.transaction() as session:
            brand_id = create_brand(session, "Acme Coffee", now=datetime.now(UTC)).brand_id
        queue_seconds = queue(url, brand_id, messages)
        with running_relay() as relay:
            relay.relay.count_only = True
            env = worker_env(
                url,
                workdir,
                WALLETD_SMTP_URL=relay.url + "?starttls=never",
                WALLETD_EMAIL_FROM="Acme Coffee <hello@acme.bench>",
                WALLETD_SMTP_RATE=str(rate),
            )
            log = (workdir / "worker.log").open("wb")
            started = time.perf_counter()
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "walletd", "worker", "--no-scheduler"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            first: float | None = None
            try:
                while relay.relay.count < messages:
                    time.sleep(0.2)
                    if worker.poll() is not None:
                        raise RuntimeError(f"the worker exited with {worker.returncode}")
                    if first is None and relay.relay.count:
                        first = time.perf_counter()
                last = time.perf_counter()
                time.sleep(1.0)  # the last batch's outcome is recorded after the relay's 250
                rss = peak_rss_mb(worker.pid)
                cpu = cpu_seconds(worker.pid)
            finally:
                worker.terminate()
                worker.wait(timeout=60)
        with db.transaction() as session:
            rows = session.execute(text("SELECT status, count(*) FROM emails GROUP BY status"))
            statuses = {str(status): int(count) for status, count in rows}
        db.dispose()
    sending = last - (first or started)
    return {
        "machine": machine(),
        "messages": messages,
        "rate_setting": rate,
        "queue_seconds": round(queue_seconds, 1),
        "queued_per_second": round(messages / queue_seconds),
        "send_seconds": round(sending, 1),
        "sent_per_second": round(messages / sending) if sending else None,
        "total_seconds": round(last - started, 1),
        "worker_peak_rss_mb": round(rss, 1),
        "worker_cpu_ms_per_1000": round(cpu * 1_000_000 / messages, 1),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.rate), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
