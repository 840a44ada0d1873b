"""Google Wallet fixtures: the loopback Google fake, settings pointing at it, and helpers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.factories import services_of
from tests.fakes.google_wallet import GoogleWalletFake, RecordedRequest
from walletd.config import Settings
from walletd.models import Card, OutboxMessage
from walletd.passes.certs import DevCertPaths, write_dev_certs
from walletd.push.dispatcher import Dispatcher
from walletd.push.google_channel import google_channel
from walletd.worker import build_dispatcher

# In-call retries without real waiting; the rate limiter has its own tests and a benchmark.
FAST_CLIENT: dict[str, Any] = {
    "max_attempts": 2,
    "backoff_base": 0.001,
    "backoff_cap": 0.01,
    "max_retry_after": 1.0,
}


@pytest.fixture(scope="session")
def google_dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    """One set of development certificates per run; the dispatcher also builds the APNs channel."""
    return write_dev_certs(tmp_path_factory.mktemp("google-dev-certs"))


@pytest.fixture
def fake() -> Iterator[GoogleWalletFake]:
    """A strict Google Wallet fake on loopback, fresh for each test."""
    with GoogleWalletFake() as running:
        yield running
        assert running.crashes == []


@pytest.fixture
def settings(
    settings: Settings, fake: GoogleWalletFake, tmp_path: Path, google_dev_certs: DevCertPaths
) -> Settings:
    """The suite's settings with Google Wallet enabled against the fake."""
    shutil.copytree(google_dev_certs.directory, tmp_path / "certs")
    return settings.with_changes(
        google_issuer_id=fake.issuer_id,
        google_credentials=str(fake.credentials_path),
        google_api_url=fake.api_url,
        google_root_keys_url=fake.keys_url,
        google_rate_per_second=1000.0,
    )


@pytest.fixture
def dispatcher(app: Flask) -> Dispatcher:
    """The worker's dispatcher; its Google channel retries in milliseconds, not seconds."""
    svc = services_of(app)
    svc.adapter("google_channel", lambda: google_channel(svc, **FAST_CLIENT))
    return build_dispatcher(svc)


def object_id_of(fake: GoogleWalletFake, serial: str) -> str:
    """The Google object id walletd gives a card."""
    return f"{fake.issuer_id}.card-{serial}"


def class_id_of(fake: GoogleWalletFake, program_id: int) -> str:
    """The Google class id walletd gives a program."""
    return f"{fake.issuer_id}.program-{program_id}"


def calls(
    fake: GoogleWalletFake, method: str, suffix: str = "", *, status: int | None = None
) -> list[RecordedRequest]:
    """API requests with this method whose path ends with suffix (and had this status)."""
    return [
        r
        for r in fake.api_requests()
        if r.method == method and r.path.endswith(suffix) and (status is None or r.status == status)
    ]


def outbox_rows(app: Flask, kind: str | None = None) -> list[OutboxMessage]:
    """Outbox rows, oldest first."""
    with services_of(app).db.transaction() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            query = query.where(OutboxMessage.kind == kind)
        return list(session.scalars(query).all())


def card_of(app: Flask, serial: str) -> Card:
    """A card row as stored now."""
    with services_of(app).db.transaction() as session:
        card = session.scalar(select(Card).where(Card.serial_number == serial))
        assert card is not None
        return card
