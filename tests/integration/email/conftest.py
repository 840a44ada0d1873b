"""Fixtures for e-mail: a fake relay on loopback and an app whose settings point at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.factories import FrozenClock, services_of
from tests.fakes.smtp_server import RunningRelay, running_relay
from walletd import create_app
from walletd.config import Settings
from walletd.email.sender import email_channel
from walletd.push.dispatcher import Dispatcher

SMTP_USERS = {"walletd@relay.test": "p@ss:w%rd/1 #"}


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RunningRelay]:
    """A relay offering STARTTLS and requiring AUTH over it."""
    with running_relay(users=SMTP_USERS, tls="starttls", cert_dir=tmp_path / "smtp") as running:
        yield running


@pytest.fixture
def email_settings(settings: Settings, relay: RunningRelay) -> Settings:
    """The test settings with e-mail on, through the fake relay."""
    return settings.with_changes(
        smtp_url=relay.url,
        smtp_ca_file=relay.ca_file or "",
        email_from="Acme Coffee <hello@acme.test>",
        smtp_rate=1000.0,
    )


@pytest.fixture
def app(email_settings: Settings, clock: FrozenClock) -> Iterator[Flask]:
    """An app with e-mail on."""
    application = create_app(email_settings, clock=clock)
    yield application
    services_of(application).close()


@pytest.fixture
def mail_worker(app: Flask, clock: FrozenClock) -> Dispatcher:
    """The worker's delivery loop with only the e-mail channel."""
    svc = services_of(app)
    return Dispatcher(svc.db, [email_channel(svc.settings, svc.db, clock)], clock=clock)
