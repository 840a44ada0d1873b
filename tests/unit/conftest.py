"""Fixtures for pass building: development certificates, a signer, templates and a card view."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from walletd.config import BUNDLED_PASS_TEMPLATES
from walletd.passes.certs import DevCertPaths, write_dev_certs
from walletd.passes.signing import PassSigner
from walletd.passes.view import CardView

TEMPLATES_ROOT = BUNDLED_PASS_TEMPLATES
PASS_TYPE_ID = "pass.test.walletd.loyalty"
TEAM_ID = "TESTTEAM42"


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    """Development CA, WWDR-like intermediate and pass certificate, valid now (openssl checks)."""
    # openssl verifies against the real clock, so these are issued at the real current time.
    return write_dev_certs(
        tmp_path_factory.mktemp("dev-certs"),
        pass_type_id=PASS_TYPE_ID,
        team_id=TEAM_ID,
        now=datetime.now(UTC),
    )


@pytest.fixture(scope="session")
def signer(dev_certs: DevCertPaths) -> PassSigner:
    """A signer loaded from the development certificates."""
    return PassSigner.from_files(
        cert_path=dev_certs.cert_path,
        key_path=dev_certs.key_path,
        key_password=None,
        wwdr_path=dev_certs.wwdr_path,
    )


@pytest.fixture
def templates_root() -> Path:
    """The bundled pass_templates folder."""
    return TEMPLATES_ROOT


@pytest.fixture
def card_view() -> CardView:
    """A Gold member with 1,240 points, a brand message and an enrollment date."""
    return CardView(
        serial_number="01HZX3K7Q9V2ABCDEF",
        authentication_token="q8Zf3-vT2xLmN0pQrS7uWy",
        barcode_message="W1.01HZX3K7Q9V2ABCDEF.3f9a1c",
        barcode_alt_text="01HZX3K7",
        organization_name="Example Coffee",
        program_name="Rewards",
        member_name="Ada Lovelace",
        points=1240,
        tier="Gold",
        background_color="#182C52",
        foreground_color="#FFFFFF",
        label_color="#DEAD28",
        template="default",
        updated_at=datetime(2026, 3, 10, 12, 0, 7, tzinfo=UTC),
        message="Double points all weekend",
        message_id="msg-1",
        member_since="2024-03-01",
        program_id=1,
        brand_id=1,
        locations=((52.5200, 13.4050),),
    )
