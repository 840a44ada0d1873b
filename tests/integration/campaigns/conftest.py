"""Campaign fixtures: dev certificates, the real APNs fake, and a shop whose history tests write."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from tests.fakes.apns_server import ApnsFakeServer
from walletd.config import Settings
from walletd.db import Base
from walletd.jobs import campaign_step
from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import Card, Location, Program
from walletd.passes.certs import DevCertPaths, dev_cert_paths, write_dev_certs
from walletd.push.registrations import register_device
from walletd.services import Services
from walletd.worker import build_dispatcher

PASS_TYPE_ID = "pass.dev.walletd.loyalty"
TEAM_ID = "WALLETDDEV"


@pytest.fixture(scope="session")
def dev_cert_template(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    """One set of development certificates per run (RSA keys are slow to make)."""
    return write_dev_certs(tmp_path_factory.mktemp("dev-certs"))


@pytest.fixture
def dev_certs(tmp_path: Path, dev_cert_template: DevCertPaths) -> DevCertPaths:
    """The development certificates where the `settings` fixture expects them."""
    directory = tmp_path / "certs"
    shutil.copytree(dev_cert_template.directory, directory)
    return dev_cert_paths(directory, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)


@pytest.fixture
def apns(tmp_path: Path, dev_certs: DevCertPaths) -> Iterator[ApnsFakeServer]:
    """The HTTP/2 APNs fake; like Apple it accepts only the pass certificate as client."""
    bundle = tmp_path / "apns-client-ca.pem"
    bundle.write_bytes(dev_certs.ca_path.read_bytes() + dev_certs.wwdr_path.read_bytes())
    with ApnsFakeServer(tmp_path / "apns", require_client_cert_ca=bundle) as fake:
        yield fake
        assert fake.errors == []


def with_apns(settings: Settings, apns: ApnsFakeServer) -> Settings:
    """Settings that push to the fake (modules that deliver override `settings` with this)."""
    return settings.with_changes(apns_url=apns.url, apns_ca_file=str(apns.ca_file))


def push_token(n: int) -> str:
    """A well-formed 64-hex-digit APNs device token."""
    return f"{n:064x}"


@dataclass
class Shop:
    """A brand whose members, visits and wallets a test writes at chosen times."""

    app: Flask
    brand: BrandKeys
    clock: FrozenClock

    @property
    def svc(self) -> Services:
        return services_of(self.app)

    def ctx(self, at: datetime | None = None) -> Context:
        """A use-case context at `at` (the clock's time by default)."""
        return Context(now=at or self.clock(), secret_key=self.svc.settings.secret_key)

    def days_ago(self, days: float) -> datetime:
        """The clock's time minus some days."""
        return self.clock() - timedelta(days=days)

    def enroll(
        self,
        name: str,
        *,
        at: datetime | None = None,
        consent: bool = True,
        birthday: date | None = None,
    ) -> int:
        """Enroll a member (welcome bonus included) at a time; returns the member id."""
        enrollment = Enrollment(name=name, marketing_consent=consent, birthday=birthday)
        with self.svc.db.transaction() as session:
            member, _ = enroll_member(session, self.brand.brand_id, enrollment, self.ctx(at))
            return member.id

    def enroll_many(
        self, names: list[str], *, tokens: list[str] | None = None, consent: bool = True
    ) -> list[int]:
        """Enroll several members in one transaction, each adding the card to Apple Wallet
        with the matching push token when `tokens` are given; returns the member ids."""
        ids: list[int] = []
        with self.svc.db.transaction() as session:
            for i, name in enumerate(names):
                enrollment = Enrollment(name=name, marketing_consent=consent)
                member, card = enroll_member(session, self.brand.brand_id, enrollment, self.ctx())
                ids.append(member.id)
                if tokens is not None:
                    register_device(
                        session, library_id=f"lib-{tokens[i][-16:]}", pass_type_id=PASS_TYPE_ID,
                        card=card, push_token=tokens[i], now=self.clock(),
                    )  # fmt: skip
        return ids

    def visit(
        self, member_id: int, amount: str, *, at: datetime, location_id: int | None = None
    ) -> None:
        """A checkout scan of the member's card at a time."""
        with self.svc.db.transaction() as session:
            barcode = session.scalar(select(Card.barcode).where(Card.member_id == member_id))
            ledger.credit_scan(
                session,
                ledger.Actor(self.brand.brand_id),
                barcode=barcode,
                amount=amount,
                currency=None,
                location_id=location_id,
                idempotency_key=uuid.uuid4().hex,
                ctx=self.ctx(at),
            )

    def install_apple(self, member_id: int, token: str, *, library: str | None = None) -> None:
        """A device registers for the member's card, as Wallet does after adding the pass."""
        with self.svc.db.transaction() as session:
            card = session.scalars(select(Card).where(Card.member_id == member_id)).one()
            register_device(
                session,
                library_id=library or f"lib-{token[-16:]}",
                pass_type_id=PASS_TYPE_ID,
                card=card,
                push_token=token,
                now=self.clock(),
            )

    def save_google(
        self, member_id: int, *, at: datetime, deleted_at: datetime | None = None
    ) -> None:
        """Record that the holder saved the card to Google Wallet (and maybe deleted it)."""
        with self.svc.db.transaction() as session:
            session.execute(
                update(Card)
                .where(Card.member_id == member_id)
                .values(google_saved_at=at, google_deleted_at=deleted_at)
            )

    def location_id(self) -> int:
        """The brand's first location."""
        with self.svc.db.transaction() as session:
            found = session.scalar(
                select(Location.id)
                .where(Location.brand_id == self.brand.brand_id)
                .order_by(Location.id)
            )
            assert found is not None
            return found

    def set_program(self, **values: Any) -> None:
        """Change program settings (time zone, caps, quiet hours) the way an admin would."""
        with self.svc.db.transaction() as session:
            session.execute(
                update(Program).where(Program.id == self.brand.program_id).values(**values)
            )

    def count(self, model: type[Base], *where: Any) -> int:
        """How many rows of a model match."""
        with self.svc.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def fan_out(self, worker_id: str = "worker-a", *, max_rounds: int = 1000) -> int:
        """Call the worker's campaign step until it has nothing to do; returns chunks written."""
        held: set[int] = set()
        total = 0
        for _ in range(max_rounds):
            chunks = campaign_step(self.svc, worker_id, held)
            total += chunks
            if chunks == 0 and not held:
                return total
        raise AssertionError("the campaign step never went idle")

    def deliver(self) -> int:
        """Deliver everything due in the outbox through the worker's dispatcher."""
        return build_dispatcher(self.svc).drain()


@pytest.fixture
def shop(app: Flask, brand: BrandKeys, clock: FrozenClock) -> Shop:
    """The test brand as a shop."""
    return Shop(app, brand, clock)


@pytest.fixture
def other_shop(app: Flask, clock: FrozenClock) -> Shop:
    """A second brand on the same server, whose data must never leak into the first's."""
    return Shop(app, make_brand(app, "Rival Roasters"), clock)


def create_campaign(client: FlaskClient, brand: BrandKeys, **body: Any) -> dict[str, Any]:
    """POST a campaign and return its body (status 201 asserted)."""
    payload = {"name": "Spring promo", "message": "Double points this week!",
               "segment": {"preset": "all"}, **body}  # fmt: skip
    response = client.post("/api/v1/campaigns", json=payload, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def show_campaign(client: FlaskClient, brand: BrandKeys, campaign_id: int) -> dict[str, Any]:
    """GET a campaign's counts (status 200 asserted)."""
    response = client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]
