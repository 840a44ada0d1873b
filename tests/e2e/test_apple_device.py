"""A whole Wallet conversation against real processes: gunicorn, the worker, and an APNs fake."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.conftest import SECRET
from tests.e2e.conftest import ROOT, LiveServer
from tests.factories import BrandKeys, services_of
from tests.fakes.apns_server import ApnsFakeServer, RecordedRequest
from walletd.config import Settings
from walletd.models import OutboxMessage
from walletd.passes.certs import DevCertPaths, write_dev_certs
from walletd.passes.pkpass import PKPASS_MIME, verify_pkpass
from walletd.passes.signing import load_certificate

PUSH_TOKEN = "a1" * 32
LIBRARY_ID = "0123456789abcdef0123456789abcdef"
PUSH_DEADLINE = 10.0
REGISTRATION_RACE = 6


class WorkerProcess:
    """`flask --app walletd worker` in its own process, as in production."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "walletd", "worker"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        """What the worker logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait for the batch in flight to finish, and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.log.close()


class Stack:
    """The web server and the worker sharing one database, pushing to one APNs fake."""

    def __init__(self, server: LiveServer, worker: WorkerProcess, apns: ApnsFakeServer) -> None:
        self.server = server
        self.worker = worker
        self.apns = apns

    def pushes_to(self, token: str, *, at_least: int = 1) -> list[RecordedRequest]:
        """Wait (a few seconds at most) for the worker to push to a token."""
        deadline = time.monotonic() + PUSH_DEADLINE
        while True:
            pushes = self.apns.requests_for(token)
            if len(pushes) >= at_least:
                return pushes
            assert self.worker.process.poll() is None, self.worker.output()
            assert time.monotonic() < deadline, (
                f"no push in {PUSH_DEADLINE} s\n{self.worker.output()}"
            )
            time.sleep(0.05)


@pytest.fixture
def dev_certs(tmp_path: Path) -> DevCertPaths:
    """Development certificates where the suite's settings point."""
    return write_dev_certs(tmp_path / "certs")


@pytest.fixture
def apns(tmp_path: Path, dev_certs: DevCertPaths) -> Iterator[ApnsFakeServer]:
    """An APNs fake that accepts only the pass certificate (root and WWDR as trust anchors)."""
    bundle = tmp_path / "apns-client-ca.pem"
    bundle.write_bytes(dev_certs.ca_path.read_bytes() + dev_certs.wwdr_path.read_bytes())
    with ApnsFakeServer(tmp_path / "apns", require_client_cert_ca=bundle) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def stack(
    settings: Settings, tmp_path: Path, dev_certs: DevCertPaths, apns: ApnsFakeServer
) -> Iterator[Stack]:
    """gunicorn plus a worker process, both configured through WALLETD_* like production."""
    apple_env = {
        "WALLETD_APPLE_CERT": str(dev_certs.cert_path),
        "WALLETD_APPLE_KEY": str(dev_certs.key_path),
        "WALLETD_APPLE_WWDR": str(dev_certs.wwdr_path),
        "WALLETD_APNS_URL": apns.url,
        "WALLETD_APNS_CA_FILE": str(apns.ca_file),
    }
    server = LiveServer(settings, tmp_path, apple_env)
    worker_env = {
        **os.environ,
        "WALLETD_DATABASE_URL": settings.database_url,
        "WALLETD_BASE_URL": server.url,
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": str(tmp_path / "worker-instance"),
        **apple_env,
    }
    worker = WorkerProcess(worker_env, tmp_path / "worker.log")
    try:
        yield Stack(server, worker, apns)
    finally:
        status = worker.stop()
        server.stop()
    assert status == 0, worker.output()


def _pass_json(package: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        document: dict[str, Any] = json.loads(archive.read("pass.json"))
    return document


def _outbox_rows(app: Flask) -> int:
    with services_of(app).db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_a_phone_installs_a_pass_hears_of_a_purchase_and_fetches_the_new_points(
    stack: Stack, brand: BrandKeys, app: Flask, dev_certs: DevCertPaths
) -> None:
    base = stack.server.url
    with httpx.Client(timeout=10) as http:
        # The brand enrolls a member; the member taps "Add to Apple Wallet".
        member = http.post(f"{base}/api/v1/members", json={"name": "Ada"}, headers=brand.admin)
        assert member.status_code == 201, member.text
        card = member.json()["card"]
        download = http.get(card["apple_pass_url"])
        assert download.status_code == 200
        assert download.headers["content-type"] == PKPASS_MIME
        assert verify_pkpass(download.content) == []
        installed = _pass_json(download.content)
        assert installed["webServiceURL"] == f"{base}/passes/"
        ptid, serial = installed["passTypeIdentifier"], installed["serialNumber"]
        auth = {"Authorization": f"ApplePass {installed['authenticationToken']}"}
        service = f"{installed['webServiceURL']}v1"
        registration = f"{service}/devices/{LIBRARY_ID}/registrations/{ptid}/{serial}"
        updates = f"{service}/devices/{LIBRARY_ID}/registrations/{ptid}"

        # Wallet registers the pass (its retries racing each other) and asks what it has.
        with ThreadPoolExecutor(REGISTRATION_RACE) as pool:
            statuses = sorted(
                pool.map(
                    lambda _: (
                        http.post(
                            registration, json={"pushToken": PUSH_TOKEN}, headers=auth
                        ).status_code
                    ),
                    range(REGISTRATION_RACE),
                )
            )
        assert statuses == [200] * (REGISTRATION_RACE - 1) + [201]
        first = http.get(updates)
        assert first.status_code == 200
        assert first.json()["serialNumbers"] == [serial]
        tag = first.json()["lastUpdated"]

        # A purchase at the till: the worker pushes to the phone.
        scan = http.post(
            f"{base}/api/v1/scans",
            json={"barcode": card["barcode"], "amount": "10.00"},
            headers={**brand.cashier, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert scan.status_code == 201, scan.text
        [push] = stack.pushes_to(PUSH_TOKEN)
        assert push.headers["apns-topic"] == ptid
        assert push.body == b"{}"
        assert push.client_subject == load_certificate(dev_certs.cert_path).subject.rfc4514_string()

        # Wallet asks what changed since its tag, then fetches the pass.
        changed = http.get(updates, params={"passesUpdatedSince": tag})
        assert changed.status_code == 200
        assert changed.json()["serialNumbers"] == [serial]
        assert isinstance(changed.json()["lastUpdated"], str)
        latest = http.get(f"{service}/passes/{ptid}/{serial}", headers=auth)
        assert latest.status_code == 200
        assert verify_pkpass(latest.content) == []
        document = _pass_json(latest.content)
        points = document["storeCard"]["primaryFields"][0]["value"]
        assert points == installed["storeCard"]["primaryFields"][0]["value"] + 10
        assert points == scan.json()["balance"]
        for key in ("serialNumber", "passTypeIdentifier", "authenticationToken", "webServiceURL"):
            assert document[key] == installed[key]

        # A pull-to-refresh with nothing new is a 304.
        again = http.get(
            f"{service}/passes/{ptid}/{serial}",
            headers={**auth, "If-Modified-Since": latest.headers["Last-Modified"]},
        )
        assert again.status_code == 304
        assert again.content == b""

        # The member deletes the pass: no more pushes are queued for that phone.
        assert http.delete(registration, headers=auth).status_code == 200
        rows = _outbox_rows(app)
        later = http.post(
            f"{base}/api/v1/scans",
            json={"barcode": card["barcode"], "amount": "5.00"},
            headers={**brand.cashier, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert later.status_code == 201
        assert _outbox_rows(app) == rows
    assert len(stack.apns.requests) == 1
