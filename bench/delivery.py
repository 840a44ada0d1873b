"""The delivery report ("Is my card up to date?") over a large brand on Postgres.

Usage: python bench/delivery.py [--cards 1000000] [--runs 3]

Creates a brand on a private Postgres database and bulk-generates, with INSERT … SELECT
generate_series, --cards members and cards changed over the last 30 days (one in ten by one of
five campaigns), an Apple registration for seven cards in ten (their devices up to date within
seconds, minutes, hours, or never), Google objects saved for three cards in ten (some deleted,
some updated late), APNs refusals for one card in a hundred and failed Google updates for one in
a thousand. Then runs the report of the last 30 days (all programs and campaigns) and the report
of one campaign --runs times each and prints the median and every run, in seconds.
The issue's bar: under a second for 1,000,000 cards. Needs Postgres on 127.0.0.1:5432 (or
BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The repository instead of bench/ itself, whose google.py would shadow the google package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import text  # noqa: E402

from bench.common import DEFAULT_PG, machine, private_database  # noqa: E402
from walletd.db import Database  # noqa: E402
from walletd.delivery.report import delivery_report  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
CAMPAIGNS = 5

# Every row derives from n = 1..cards; :now is the report's time, :b the brand, :p the program.
SEED = [
    """INSERT INTO campaigns (brand_id, program_id, name, message, segment, status,
           holdout_percent, lift_window_days, cursor_member_id, created_at)
       SELECT :b, :p, 'Campaign ' || c, 'Hello', '{"preset": "all"}', 'sent', 0, 14, 0, :now
       FROM generate_series(1, :campaigns) AS c""",
    """INSERT INTO members (brand_id, program_id, name, referral_code, marketing_consent, points,
           lifetime_spend_minor, visits, stamps, created_at)
       SELECT :b, :p, 'Member ' || n, 'R' || n, true, n % 500, 0, 1, 0,
              :now - interval '60 days'
       FROM generate_series(1, :cards) AS n""",
    # Changed at a moment of the last 30 days; the tag grows with the change time.
    """INSERT INTO cards (brand_id, member_id, kind, serial_number, auth_token, barcode,
           update_tag, updated_at, created_at, change_campaign_id, google_synced_at,
           google_saved_at, google_deleted_at)
       SELECT :b, m.id, 'loyalty', 'S' || m.id, 'token', 'B' || m.id,
              1000 + m.id, :now - (m.id % 2592000) * interval '1 second',
              :now - interval '60 days',
              CASE WHEN m.id % 10 = 0
                   THEN (SELECT min(id) FROM campaigns) + (m.id / 10) % :campaigns END,
              CASE WHEN m.id % 10 < 3 THEN :now - (m.id % 2592000) * interval '1 second'
                   + (m.id % 7200) * interval '1 second' END,
              CASE WHEN m.id % 10 < 3 THEN :now - interval '40 days' END,
              CASE WHEN m.id % 100 = 1 THEN :now - interval '2 days' END
       FROM members AS m WHERE m.brand_id = :b""",
    """INSERT INTO devices (library_id, created_at, updated_at)
       SELECT 'lib' || c.id, :now - interval '40 days', :now - interval '40 days'
       FROM cards AS c WHERE c.brand_id = :b AND c.id % 10 < 7""",
    # Up to date after 0-59 s, 60-599 s, 10-59 min; one in eight never fetched.
    """INSERT INTO registrations (device_id, card_id, pass_type_id, push_token, created_at,
           updated_at, synced_tag, synced_at)
       SELECT d.id, c.id, 'pass.bench', lpad(to_hex(c.id), 64, '0'),
              :now - interval '40 days', :now - interval '40 days',
              CASE WHEN c.id % 8 = 0 THEN NULL ELSE c.update_tag + 1 END,
              CASE WHEN c.id % 8 = 0 THEN NULL
                   ELSE c.updated_at + (CASE c.id % 3 WHEN 0 THEN c.id % 60
                        WHEN 1 THEN 60 + c.id % 540 ELSE 600 + c.id % 3000 END)
                        * interval '1 second' END
       FROM cards AS c JOIN devices AS d ON d.library_id = 'lib' || c.id
       WHERE c.brand_id = :b""",
    """INSERT INTO apns_refusals (brand_id, card_id, campaign_id, status, reason, refused_at)
       SELECT :b, c.id, c.change_campaign_id,
              CASE WHEN c.id % 2 = 0 THEN 410 ELSE 400 END,
              CASE WHEN c.id % 2 = 0 THEN 'Unregistered' ELSE 'BadDeviceToken' END,
              c.updated_at + interval '5 seconds'
       FROM cards AS c WHERE c.brand_id = :b AND c.id % 100 = 7""",
    """INSERT INTO outbox (kind, dedupe_key, payload, status, attempts, next_attempt_at,
           last_error, campaign_id, created_at, finished_at)
       SELECT 'google_object', 'google_object:' || c.serial_number,
              '{"card_id": ' || c.id || '}', 'failed', 1, c.updated_at, '400 invalid',
              c.change_campaign_id, c.updated_at, c.updated_at + interval '1 second'
       FROM cards AS c WHERE c.brand_id = :b AND c.id % 1000 = 3""",
    "ANALYZE",
]


def seed(url: str, cards: int) -> tuple[int, int]:
    """The brand and its data; returns (brand id, one campaign id)."""
    db = Database(url)
    with db.transaction() as session:
        creds = create_brand(session, "Delivery Coffee", now=NOW)
    params = {"b": creds.brand_id, "p": creds.program_id, "now": NOW, "cards": cards,
              "campaigns": CAMPAIGNS}  # fmt: skip
    with db.engine.connect() as connection:
        for statement in SEED:
            started = time.perf_counter()
            with connection.begin():
                connection.execute(text(statement), params)
            words = statement.split()
            what = words[2] if len(words) > 2 else statement
            print(f"  seeded in {time.perf_counter() - started:6.1f} s: {what}")
    with db.transaction() as session:
        campaign_id = int(session.execute(text("SELECT min(id) FROM campaigns")).scalar_one())
    db.dispose()
    return creds.brand_id, campaign_id


def timed(
    url: str, brand_id: int, runs: int, campaign_id: int | None
) -> tuple[list[float], dict[str, Any]]:
    """Seconds of each run of the report (a fresh transaction each), and the last answer."""
    db = Database(url)
    times: list[float] = []
    answer: dict[str, Any] = {}
    for _ in range(runs):
        with db.transaction() as session:
            started = time.perf_counter()
            answer = delivery_report(session, brand_id, now=NOW, campaign_id=campaign_id)
            times.append(time.perf_counter() - started)
    db.dispose()
    return times, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    with private_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)) as url:
        upgrade(url)
        brand_id, campaign_id = seed(url, args.cards)
        for label, only in (("whole brand, 30 days", None), ("one campaign", campaign_id)):
            times, answer = timed(url, brand_id, args.runs, only)
            program = answer["programs"][0]
            summary = {
                "report": label,
                "cards": args.cards,
                "median_s": round(statistics.median(times), 3),
                "runs_s": [round(t, 3) for t in times],
                "installed": program["installed"],
                "share": program["share"],
                "stopped": program["apple"]["stopped"]["count"],
                "campaigns": len(answer["campaigns"]),
            }
            print(json.dumps(summary))


if __name__ == "__main__":
    main()
