"""A real worker process killed mid-campaign, then replaced: every member is reached once.

What is asserted, and why not more: fan-out is exactly once (a chunk's recipients, log rows and
outbox rows commit together with the cursor), while delivery is at least once. A push that the
killed worker had already sent to APNs but not yet recorded is sent again by its successor, so a
token may be pushed twice, but only a token whose outbox row was in flight ("sending") when the
worker died; every other token is pushed exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text, update

from tests.conftest import SECRET, truncate_postgres
from tests.factories import BrandKeys, services_of
from tests.fakes.apns_server import ApnsFakeServer
from walletd.campaigns.service import create_campaign
from walletd.loyalty.context import Context
from walletd.models import Campaign, CampaignRecipient, MessageLog, OutboxMessage, Program
from walletd.passes.certs import DevCertPaths, write_dev_certs

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 2000
CHUNK = 100  # 20 chunks: the kill lands between two of them
# The worker run with a smaller fan-out chunk: CHUNK is a constant, not logic under test.
WORKER = (
    "import sys, walletd.campaigns.service as s; s.CHUNK = int(sys.argv.pop(1)); "
    "from flask.cli import main; main()"
)


@pytest.fixture
def database_url(postgres_migrated: str) -> str:
    """Postgres only: several processes share the database, as in production."""
    truncate_postgres(postgres_migrated)
    return postgres_migrated


@pytest.fixture
def dev_certs(tmp_path: Path) -> DevCertPaths:
    """Development certificates where the `settings` fixture expects them."""
    return write_dev_certs(tmp_path / "certs")


@pytest.fixture
def apns(tmp_path: Path, dev_certs: DevCertPaths) -> Iterator[ApnsFakeServer]:
    """The APNs fake, answering after 0.25 s so that pushes are in flight when the kill comes."""
    bundle = tmp_path / "apns-client-ca.pem"
    bundle.write_bytes(dev_certs.ca_path.read_bytes() + dev_certs.wwdr_path.read_bytes())
    with ApnsFakeServer(
        tmp_path / "apns", require_client_cert_ca=bundle, response_delay=0.25
    ) as fake:
        yield fake
        assert fake.errors == []


def seed(app: Flask, brand: BrandKeys, pass_type_id: str) -> None:
    """MEMBERS consenting members, each with a card registered on a device of its own."""
    now = datetime.now(UTC)
    params = {"brand": brand.brand_id, "program": brand.program_id, "n": MEMBERS, "now": now,
              "ptid": pass_type_id}  # fmt: skip
    with services_of(app).db.transaction() as session:
        for statement in (
            """INSERT INTO members (brand_id, program_id, name, marketing_consent, referral_code,
                   points, lifetime_spend_minor, visits, created_at)
               SELECT :brand, :program, 'Member ' || g, true, 'E2E' || lpad(g::text, 12, '0'),
                   0, 0, 0, :now
               FROM generate_series(1, :n) AS g""",
            """INSERT INTO cards (brand_id, member_id, serial_number, auth_token, barcode,
                   update_tag, updated_at, created_at)
               SELECT brand_id, id, 'S' || id, md5(id::text), 'B' || id, 0, :now, :now
               FROM members WHERE brand_id = :brand""",
            """INSERT INTO devices (library_id, created_at, updated_at)
               SELECT 'lib' || id, :now, :now
               FROM members WHERE brand_id = :brand""",
            """INSERT INTO registrations (device_id, card_id, pass_type_id, push_token,
                   created_at, updated_at)
               SELECT d.id, c.id, :ptid, lpad(to_hex(c.member_id), 64, '0'), :now, :now
               FROM cards c JOIN devices d ON d.library_id = 'lib' || c.member_id
               WHERE c.brand_id = :brand""",
        ):
            session.execute(text(statement), params)
        # Quiet hours follow the wall clock here; switch them off so the test runs at any hour.
        session.execute(
            update(Program)
            .where(Program.id == brand.program_id)
            .values(quiet_start_minute=None, quiet_end_minute=None)
        )


class WorkerProcess:
    """`flask --app walletd worker` in its own process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(CHUNK), "--app", "walletd", "worker"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> int:
        self.process.terminate()
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.log.close()
        return code


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_worker_killed_mid_campaign_is_replaced_and_nobody_is_messaged_twice(
    app: Flask,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dev_certs: DevCertPaths,
    database_url: str,
    tmp_path: Path,
) -> None:
    svc = services_of(app)
    seed(app, brand, dev_certs.pass_type_id)
    ctx = Context(now=datetime.now(UTC), secret_key=SECRET)
    with svc.db.transaction() as session:
        campaign_id = create_campaign(
            session, brand.brand_id,
            {"name": "Flash sale", "message": "Half price today", "segment": {"preset": "all"}},
            ctx,
        ).id  # fmt: skip

    def scalar(query: object) -> int:
        with svc.db.transaction() as session:
            return int(session.scalar(query) or 0)  # type: ignore[call-overload]

    recipients = select(func.count()).where(CampaignRecipient.campaign_id == campaign_id)
    env = {
        **os.environ,
        "WALLETD_DATABASE_URL": database_url,
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "WALLETD_APNS_URL": apns.url,
        "WALLETD_APNS_CA_FILE": str(apns.ca_file),
        "WALLETD_APPLE_CERT": str(dev_certs.cert_path),
        "WALLETD_APPLE_KEY": str(dev_certs.key_path),
        "WALLETD_APPLE_WWDR": str(dev_certs.wwdr_path),
    }
    first = WorkerProcess(env, tmp_path / "worker-1.log")
    wait_for(lambda: len(apns.requests) > 0, 60, "the first pushes")
    first.kill()

    fanned_out = scalar(recipients)
    with svc.db.transaction() as session:
        in_flight = session.scalars(
            select(OutboxMessage.payload).where(
                OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == "sending"
            )
        ).all()
        in_flight_tokens = {str(p["token"]) for p in in_flight}
        # The dead worker's leases would run out by themselves (5 min for the campaign, 2 min
        # for outbox rows); move them into the past instead of waiting.
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(Campaign).values(claimed_until=past))
        session.execute(
            update(OutboxMessage).where(OutboxMessage.status == "sending").values(locked_until=past)
        )
    assert 0 < fanned_out < MEMBERS, "the kill should land mid-campaign"
    assert in_flight_tokens, "the kill should land while pushes are in flight"
    pushed_before_restart = len(apns.requests)

    second = WorkerProcess(env, tmp_path / "worker-2.log")
    unfinished = select(func.count()).where(
        OutboxMessage.campaign_id == campaign_id, OutboxMessage.status != "sent"
    )
    sent = select(func.count()).where(Campaign.id == campaign_id, Campaign.status == "sent")
    wait_for(lambda: scalar(sent) == 1 and scalar(unfinished) == 0, 120, "the campaign")
    assert second.stop() == 0

    with svc.db.transaction() as session:
        per_member = Counter(
            session.scalars(
                select(CampaignRecipient.member_id).where(
                    CampaignRecipient.campaign_id == campaign_id
                )
            ).all()
        )
        logged = session.scalar(
            select(func.count(func.distinct(MessageLog.member_id))).where(
                MessageLog.source_id == campaign_id
            )
        )
    assert len(per_member) == MEMBERS and set(per_member.values()) == {1}
    assert logged == MEMBERS
    pushes = Counter(r.token for r in apns.requests)
    assert len(pushes) == MEMBERS
    twice = {token for token, n in pushes.items() if n > 1}
    assert max(pushes.values()) <= 2
    assert twice <= in_flight_tokens
    assert len(apns.requests) > pushed_before_restart
