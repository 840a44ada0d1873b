"""Development certificates, and the checks of configured signing certificates."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletd.passes.certs import (
    CertFinding,
    DevCertPaths,
    check_certs,
    ensure_dev_certs,
    is_dev_certificate,
    read_dev_identity,
    write_dev_certs,
)
from walletd.passes.signing import (
    PASS_SIGNING_EKU,
    PASS_TYPE_ID_EXTENSION,
    PassSigner,
    load_certificate,
    load_private_key,
)

# Checks run at a fixed moment; certificates are issued relative to it.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PASS_TYPE_ID = "pass.com.example.loyalty"
TEAM_ID = "ABCDE12345"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> DevCertPaths:
    """Development certificates issued at NOW for PASS_TYPE_ID and TEAM_ID."""
    return write_dev_certs(
        tmp_path_factory.mktemp("certs"), pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW
    )


def check(
    paths: DevCertPaths,
    *,
    cert_path: Path | None = None,
    key_path: Path | None = None,
    key_password: str | None = None,
    wwdr_path: Path | None = None,
    pass_type_id: str = PASS_TYPE_ID,
    team_id: str = TEAM_ID,
    now: datetime = NOW,
) -> list[CertFinding]:
    """check_certs on a development set, with any part swapped."""
    return check_certs(
        cert_path=cert_path or paths.cert_path,
        key_path=key_path or paths.key_path,
        key_password=key_password,
        wwdr_path=wwdr_path or paths.wwdr_path,
        pass_type_id=pass_type_id,
        team_id=team_id,
        now=now,
    )


def codes(findings: list[CertFinding], level: str | None = None) -> set[str]:
    """The codes of the findings, optionally of one level."""
    return {finding.code for finding in findings if level is None or finding.level == level}


# --- check_certs --------------------------------------------------------------------------------


def test_dev_certificates_pass_with_only_the_development_warning(certs: DevCertPaths) -> None:
    findings = check(certs)

    assert [(finding.level, finding.code) for finding in findings] == [
        ("warning", "dev_certificate")
    ]
    assert "will not install on a real iPhone" in findings[0].message


def test_a_different_pass_type_id_is_an_error(certs: DevCertPaths) -> None:
    findings = check(certs, pass_type_id="pass.com.example.other")

    assert codes(findings, "error") == {"pass_type_id_mismatch"}
    assert "pass.com.example.other" in findings[0].message


def test_a_different_team_is_an_error(certs: DevCertPaths) -> None:
    assert codes(check(certs, team_id="ZZZZZ99999"), "error") == {"team_id_mismatch"}


def test_a_key_of_another_certificate_is_an_error(certs: DevCertPaths, tmp_path: Path) -> None:
    other = write_dev_certs(tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW)

    assert codes(check(certs, key_path=other.key_path), "error") == {"key_mismatch"}


def test_an_expired_certificate_is_an_error(tmp_path: Path) -> None:
    old = write_dev_certs(
        tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW - timedelta(days=400)
    )

    findings = check(old)

    assert codes(findings, "error") == {"cert_expired"}


def test_a_certificate_expiring_in_ten_days_is_a_warning(tmp_path: Path) -> None:
    ageing = write_dev_certs(
        tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW - timedelta(days=355)
    )

    findings = check(ageing)

    assert codes(findings, "error") == set()
    [expiring] = [finding for finding in findings if finding.code == "cert_expiring"]
    assert expiring.level == "warning"
    assert "in 10 days" in expiring.message


def test_the_expiry_warning_window_is_configurable(tmp_path: Path) -> None:
    ageing = write_dev_certs(
        tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW - timedelta(days=355)
    )

    findings = check_certs(
        cert_path=ageing.cert_path,
        key_path=ageing.key_path,
        key_password=None,
        wwdr_path=ageing.wwdr_path,
        pass_type_id=PASS_TYPE_ID,
        team_id=TEAM_ID,
        now=NOW,
        warn_days=7,
    )

    assert "cert_expiring" not in codes(findings)


def test_a_certificate_not_yet_valid_is_an_error(certs: DevCertPaths) -> None:
    assert "cert_not_yet_valid" in codes(check(certs, now=NOW - timedelta(days=2)), "error")


def test_a_certificate_from_another_intermediate_is_an_error(
    certs: DevCertPaths, tmp_path: Path
) -> None:
    # Same intermediate name, different key: what a G1/G4 or staging/production mix-up looks like.
    stranger = write_dev_certs(tmp_path, pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID, now=NOW)

    findings = check(certs, wwdr_path=stranger.wwdr_path)

    assert codes(findings, "error") == {"not_issued_by_wwdr"}
    assert "does not verify" in findings[0].message


def test_an_intermediate_with_another_name_is_an_error_and_not_g4(certs: DevCertPaths) -> None:
    findings = check(certs, wwdr_path=certs.ca_path)

    assert codes(findings, "error") == {"not_issued_by_wwdr"}
    assert "wwdr_not_g4" in codes(findings, "warning")


def test_an_expired_intermediate_is_an_error_too(certs: DevCertPaths) -> None:
    # Six years on, the pass certificate (1 year) and the intermediate (5 years) have both lapsed.
    findings = check(certs, now=NOW + timedelta(days=6 * 365))

    assert codes(findings, "error") == {"cert_expired", "wwdr_expired"}


def test_unreadable_files_are_errors(certs: DevCertPaths, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")

    findings = check(certs, cert_path=tmp_path / "missing.pem", key_path=garbage, wwdr_path=garbage)

    assert codes(findings, "error") == {"cert_unreadable", "key_unreadable", "wwdr_unreadable"}


def test_an_encrypted_key_needs_the_right_password(certs: DevCertPaths, tmp_path: Path) -> None:
    key = load_private_key(certs.key_path, None)
    encrypted = tmp_path / "pass.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"sesame"),
        )
    )

    assert codes(check(certs, key_path=encrypted, key_password="sesame"), "error") == set()
    assert codes(check(certs, key_path=encrypted, key_password="wrong"), "error") == {
        "key_unreadable"
    }
    assert codes(check(certs, key_path=encrypted), "error") == {"key_unreadable"}


def test_only_certificates_issued_by_the_dev_intermediate_count_as_development(
    certs: DevCertPaths,
) -> None:
    key = load_private_key(certs.key_path, None)
    apple = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Apple Worldwide Developer Relations"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
        ]
    )
    issued_by_apple = (
        x509.CertificateBuilder()
        .subject_name(load_certificate(certs.cert_path).subject)
        .issuer_name(apple)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )

    assert is_dev_certificate(load_certificate(certs.cert_path))
    assert not is_dev_certificate(issued_by_apple)


# --- the development certificates themselves ----------------------------------------------------


def test_pass_certificate_looks_like_apples(certs: DevCertPaths) -> None:
    certificate = load_certificate(certs.cert_path)
    subject = certificate.subject

    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == PASS_TYPE_ID
    assert (
        subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == f"Pass Type ID: {PASS_TYPE_ID}"
    )
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == TEAM_ID
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert PASS_SIGNING_EKU in usages and ExtendedKeyUsageOID.CLIENT_AUTH in usages
    marker = certificate.extensions.get_extension_for_oid(PASS_TYPE_ID_EXTENSION).value
    assert isinstance(marker, x509.UnrecognizedExtension)
    assert marker.value == b"\x0c" + bytes([len(PASS_TYPE_ID)]) + PASS_TYPE_ID.encode()
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert timedelta(days=364) < lifetime < timedelta(days=367)


def test_wwdr_intermediate_mimics_g4_but_says_it_is_not_apple(certs: DevCertPaths) -> None:
    wwdr = load_certificate(certs.wwdr_path)

    def names(oid: x509.ObjectIdentifier) -> list[str]:
        return [str(attribute.value) for attribute in wwdr.subject.get_attributes_for_oid(oid)]

    assert names(NameOID.COMMON_NAME) == [
        "Apple Worldwide Developer Relations Certification Authority"
    ]
    assert names(NameOID.ORGANIZATIONAL_UNIT_NAME) == ["G4"]
    assert "not Apple" in names(NameOID.ORGANIZATION_NAME)[0]
    assert load_certificate(certs.cert_path).issuer == wwdr.subject


def test_private_key_is_rsa_2048_readable_only_by_its_owner(certs: DevCertPaths) -> None:
    key = load_private_key(certs.key_path, None)

    assert key.key_size == 2048
    assert stat.S_IMODE(certs.key_path.stat().st_mode) == 0o600


def test_dev_certificates_sign_passes(certs: DevCertPaths) -> None:
    signer = PassSigner.from_files(
        cert_path=certs.cert_path,
        key_path=certs.key_path,
        key_password=None,
        wwdr_path=certs.wwdr_path,
    )

    assert (signer.pass_type_id, signer.team_id) == (PASS_TYPE_ID, TEAM_ID)


def test_identity_file_records_the_pass_type_id_and_team(certs: DevCertPaths) -> None:
    assert read_dev_identity(certs.directory) == (PASS_TYPE_ID, TEAM_ID)
    assert json.loads(certs.identity_path.read_text())["pass_type_id"] == PASS_TYPE_ID


def test_no_identity_without_development_certificates(tmp_path: Path) -> None:
    assert read_dev_identity(tmp_path) is None


def test_ensure_dev_certs_writes_once_and_then_leaves_them_alone(tmp_path: Path) -> None:
    first = ensure_dev_certs(tmp_path / "dev", now=NOW)
    pem = first.cert_path.read_bytes()

    second = ensure_dev_certs(tmp_path / "dev", now=NOW + timedelta(days=1))

    assert second == first
    assert second.cert_path.read_bytes() == pem
    assert read_dev_identity(tmp_path / "dev") == ("pass.dev.walletd.loyalty", "WALLETDDEV")


def test_ensure_dev_certs_replaces_an_incomplete_set(tmp_path: Path) -> None:
    first = ensure_dev_certs(tmp_path, now=NOW)
    pem = first.cert_path.read_bytes()
    first.key_path.unlink()

    second = ensure_dev_certs(tmp_path, now=NOW)

    assert second.key_path.is_file()
    assert second.cert_path.read_bytes() != pem
    assert (
        codes(check(second, pass_type_id=second.pass_type_id, team_id=second.team_id), "error")
        == set()
    )


def test_ensure_dev_certs_replaces_an_expired_set(tmp_path: Path) -> None:
    first = ensure_dev_certs(tmp_path, now=NOW - timedelta(days=400))
    pem = first.cert_path.read_bytes()

    second = ensure_dev_certs(tmp_path, now=NOW)

    assert second.cert_path.read_bytes() != pem
