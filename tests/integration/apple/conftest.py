"""Apple Wallet fixtures: dev certificates, a real APNs fake, and a device speaking PassKit."""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tests.factories import BrandKeys, enroll, scan, services_of
from tests.fakes.apns_server import ApnsFakeServer
from walletd.config import Settings
from walletd.db import Base
from walletd.loyalty.cards import current_poll_tag
from walletd.models import Card
from walletd.passes.certs import DevCertPaths, dev_cert_paths, write_dev_certs
from walletd.push.dispatcher import Dispatcher
from walletd.worker import build_dispatcher

DEV_PASS_TYPE_ID = "pass.dev.walletd.loyalty"
DEV_TEAM_ID = "WALLETDDEV"


@pytest.fixture(autouse=True)
def fast_path_never_fails() -> Iterator[None]:
    """No Apple web service request makes walletd/fastpath/apple.py give up on an error."""
    errors = REGISTRY.get_sample_value("walletd_fastpath_total", {"result": "error"}) or 0.0
    yield
    assert (REGISTRY.get_sample_value("walletd_fastpath_total", {"result": "error"}) or 0.0) == (
        errors
    )


@pytest.fixture(scope="session")
def dev_cert_template(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    """One set of development certificates per run (three RSA keys take ~0.2 s to make)."""
    return write_dev_certs(tmp_path_factory.mktemp("dev-certs"))


@pytest.fixture
def dev_certs(tmp_path: Path, dev_cert_template: DevCertPaths) -> DevCertPaths:
    """The development certificates where the `settings` fixture expects them."""
    directory = tmp_path / "certs"
    shutil.copytree(dev_cert_template.directory, directory)
    return dev_cert_paths(directory, pass_type_id=DEV_PASS_TYPE_ID, team_id=DEV_TEAM_ID)


def client_ca_bundle(certs: DevCertPaths, path: Path) -> Path:
    """The dev root and WWDR intermediate in one file: the client sends only its leaf."""
    path.write_bytes(certs.ca_path.read_bytes() + certs.wwdr_path.read_bytes())
    return path


@pytest.fixture
def apns(tmp_path: Path, dev_certs: DevCertPaths) -> Iterator[ApnsFakeServer]:
    """An HTTP/2 APNs fake that, like Apple, accepts only the pass certificate as client."""
    bundle = client_ca_bundle(dev_certs, tmp_path / "apns-client-ca.pem")
    with ApnsFakeServer(tmp_path / "apns", require_client_cert_ca=bundle) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def settings(settings: Settings, dev_certs: DevCertPaths, apns: ApnsFakeServer) -> Settings:
    """The suite's settings with real (dev) signing certificates and APNs at the fake."""
    assert settings.apple_cert == dev_certs.cert_path
    assert settings.apple_key == dev_certs.key_path
    assert settings.apple_wwdr == dev_certs.wwdr_path
    return settings.with_changes(apns_url=apns.url, apns_ca_file=str(apns.ca_file))


@pytest.fixture
def dispatcher(app: Flask) -> Dispatcher:
    """The worker's dispatcher over this app's services (closed with the app)."""
    return build_dispatcher(services_of(app))


def push_token(n: int) -> str:
    """A well-formed 64-hex-digit APNs device token."""
    return f"{n:064x}"


def library_id(n: int) -> str:
    """A deviceLibraryIdentifier as Wallet sends it (32 hex digits)."""
    return f"{n:032x}"


def local(url: str) -> str:
    """The path and query of an absolute URL, to fetch it through the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def pass_json_of(package: bytes) -> dict[str, Any]:
    """The pass.json inside a .pkpass."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        document: dict[str, Any] = json.loads(archive.read("pass.json"))
    return document


def count(app: Flask, model: type[Base], *where: Any) -> int:
    """How many rows of a model (matching `where`) the database holds."""
    with services_of(app).db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def settle(app: Flask, timeout: float = 10.0) -> None:
    """Wait until the poll tag is past every card change (at once on SQLite).

    On Postgres the tag a poll hands out is the oldest transaction still running anywhere on the
    server, other databases included, so a long transaction elsewhere (another test run's
    TRUNCATE) makes polls list recent changes again until it ends. That is safe, only wasteful;
    tests that expect "nothing changed" wait for it first.
    """
    deadline = time.monotonic() + timeout
    while True:
        with services_of(app).db.transaction() as session:
            newest = session.scalar(select(func.max(Card.update_tag))) or 0
            if current_poll_tag(session) > newest:
                return
        assert time.monotonic() < deadline, "an old transaction kept the poll tag back"
        time.sleep(0.01)


@dataclass(frozen=True)
class IssuedPass:
    """A member's card as Wallet holds it after downloading the pass."""

    member_id: int
    barcode: str
    serial: str
    pass_type_id: str
    auth_token: str
    web_service_url: str
    pass_json: dict[str, Any]


def issue_pass(client: FlaskClient, brand: BrandKeys, name: str = "Ada Lovelace") -> IssuedPass:
    """Enroll a member and download their pass through the signed link, like a phone would."""
    member = enroll(client, brand, name=name)
    response = client.get(local(member["card"]["apple_pass_url"]))
    assert response.status_code == 200, response.get_data(as_text=True)
    document = pass_json_of(response.data)
    return IssuedPass(
        member_id=member["id"],
        barcode=member["card"]["barcode"],
        serial=document["serialNumber"],
        pass_type_id=document["passTypeIdentifier"],
        auth_token=document["authenticationToken"],
        web_service_url=document["webServiceURL"],
        pass_json=document,
    )


def purchase(
    client: FlaskClient, brand: BrandKeys, issued: IssuedPass, amount: str = "10.00"
) -> None:
    """A cashier scan of the member's card, which changes their pass."""
    response = scan(client, brand, issued.barcode, amount, uuid.uuid4().hex)
    assert response.status_code == 201, response.get_data(as_text=True)


class WalletDevice:
    """One iPhone's Wallet: calls the web service the way Apple's client does."""

    def __init__(self, client: FlaskClient, library: str, token: str) -> None:
        self.client = client
        self.library_id = library
        self.push_token = token

    @staticmethod
    def auth(issued: IssuedPass) -> dict[str, str]:
        """The Authorization header Wallet sends for a pass."""
        return {"Authorization": f"ApplePass {issued.auth_token}"}

    @staticmethod
    def url(issued: IssuedPass, path: str) -> str:
        """A web service path under the pass's own webServiceURL (Wallet appends v1/...)."""
        return urlsplit(issued.web_service_url).path + "v1/" + path

    def registration_url(self, issued: IssuedPass, pass_type_id: str | None = None) -> str:
        """Where this device registers for (and unregisters from) a pass."""
        ptid = pass_type_id or issued.pass_type_id
        return self.url(issued, f"devices/{self.library_id}/registrations/{ptid}/{issued.serial}")

    def register(
        self,
        issued: IssuedPass,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        pass_type_id: str | None = None,
    ) -> TestResponse:
        """POST the registration with this device's push token."""
        data = body if body is not None else json.dumps({"pushToken": token or self.push_token})
        return self.client.post(
            self.registration_url(issued, pass_type_id),
            data=data,
            headers=self.auth(issued) if headers is None else headers,
            content_type="application/json",
        )

    def unregister(
        self, issued: IssuedPass, *, headers: dict[str, str] | None = None
    ) -> TestResponse:
        """DELETE the registration."""
        return self.client.delete(
            self.registration_url(issued), headers=self.auth(issued) if headers is None else headers
        )

    def updates(
        self, issued: IssuedPass, since: str | None = None, *, pass_type_id: str | None = None
    ) -> TestResponse:
        """Ask which serials changed (no Authorization: the library id is the secret)."""
        ptid = pass_type_id or issued.pass_type_id
        query = {} if since is None else {"passesUpdatedSince": since}
        return self.client.get(
            self.url(issued, f"devices/{self.library_id}/registrations/{ptid}"),
            query_string=query,
        )

    def latest(
        self,
        issued: IssuedPass,
        *,
        if_modified_since: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        """GET the latest version of a pass, conditionally when asked."""
        sent = dict(self.auth(issued) if headers is None else headers)
        if if_modified_since is not None:
            sent["If-Modified-Since"] = if_modified_since
        return self.client.get(
            self.url(issued, f"passes/{issued.pass_type_id}/{issued.serial}"), headers=sent
        )


@pytest.fixture
def phone(client: FlaskClient) -> WalletDevice:
    """A device with its own library id and push token."""
    return WalletDevice(client, library_id(1), push_token(1))


@pytest.fixture
def issued(client: FlaskClient, brand: BrandKeys) -> IssuedPass:
    """A member's pass, downloaded."""
    return issue_pass(client, brand)
