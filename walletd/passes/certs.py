"""Development certificates for signing passes locally, and checks of the configured ones."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from walletd.passes.signing import (
    PASS_SIGNING_EKU,
    PASS_TYPE_ID_EXTENSION,
    PassSignerError,
    SignerKey,
    load_certificate,
    load_private_key,
    read_pass_type_id,
    read_team_id,
    same_public_key,
)

DEV_ORGANIZATION = "walletd development (not Apple)"
# Real Apple intermediates carry this CN; the dev one copies it so the chain looks like Apple's,
# and DEV_ORGANIZATION makes it impossible to mistake for the real thing.
WWDR_COMMON_NAME = "Apple Worldwide Developer Relations Certification Authority"
IDENTITY_FILE = "dev-certs.json"
# What Apple's WWDR G4 intermediate says about itself and its issuer (Apple's certificate authority
# page; the reference's S-03). Names, not a fingerprint: Apple re-issues intermediates under the
# same names (the first one was renewed in 2016), and a pinned fingerprint would break then.
APPLE_ORGANIZATION = "Apple Inc."
APPLE_ROOT_COMMON_NAME = "Apple Root CA"
WWDR_GENERATION = "G4"
# Apple's first WWDR intermediate; it expired on 2023-02-07 and many old guides still link it.
_APPLE_G1_EXPIRY = datetime(2023, 2, 7, 21, 48, 47, tzinfo=UTC)

CertLevel = Literal["error", "warning"]
_Reporter = Callable[[str, str], None]


@dataclass(frozen=True)
class DevCertPaths:
    """Where write_dev_certs put each file, and the identity the pass certificate carries."""

    directory: Path
    ca_path: Path
    wwdr_path: Path
    cert_path: Path
    key_path: Path
    identity_path: Path
    pass_type_id: str
    team_id: str


@dataclass(frozen=True)
class CertFinding:
    """One problem found in the configured signing certificates."""

    level: CertLevel
    code: str  # stable identifier for tests and tooling, e.g. "pass_type_id_mismatch"
    message: str


def dev_cert_paths(directory: Path, *, pass_type_id: str, team_id: str) -> DevCertPaths:
    """Return the file layout of a development certificate directory."""
    return DevCertPaths(
        directory=directory,
        ca_path=directory / "ca.pem",
        wwdr_path=directory / "wwdr.pem",
        cert_path=directory / "pass.pem",
        key_path=directory / "pass.key",
        identity_path=directory / IDENTITY_FILE,
        pass_type_id=pass_type_id,
        team_id=team_id,
    )


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca_certificate(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    now: datetime,
    days: int,
    path_length: int | None,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _utf8_string_der(text: str) -> bytes:
    """Encode `text` as a DER UTF8String, the shape of Apple's pass type id extension."""
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        return b"\x0c" + bytes([len(raw)]) + raw
    length = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return b"\x0c" + bytes([0x80 | len(length)]) + length + raw


def _pass_certificate(
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    *,
    pass_type_id: str,
    team_id: str,
    now: datetime,
) -> x509.Certificate:
    subject = _name(
        (NameOID.USER_ID, pass_type_id),
        (NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
        (NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        (NameOID.COUNTRY_NAME, "US"),
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A little slack so a clock slightly behind still accepts a certificate made just now.
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # Apple's certificates carry client auth too: the same certificate authenticates to APNs.
        .add_extension(
            x509.ExtendedKeyUsage([PASS_SIGNING_EKU, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(PASS_TYPE_ID_EXTENSION, _utf8_string_der(pass_type_id)),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    # A reader (another worker starting up) must never see half a key or certificate.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_dev_certs(
    directory: Path,
    *,
    pass_type_id: str = "pass.dev.walletd.loyalty",
    team_id: str = "WALLETDDEV",
    now: datetime | None = None,
) -> DevCertPaths:
    """Write a dev root CA, WWDR-like intermediate and Pass Type ID certificate with its key."""
    now = now or datetime.now(UTC)
    paths = dev_cert_paths(directory, pass_type_id=pass_type_id, team_id=team_id)
    directory.mkdir(parents=True, exist_ok=True)

    root_key, wwdr_key, pass_key = _new_key(), _new_key(), _new_key()
    root_name = _name(
        (NameOID.COMMON_NAME, "walletd development root CA (not Apple)"),
        (NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        (NameOID.COUNTRY_NAME, "US"),
    )
    root = _ca_certificate(
        root_name, root_key, root_name, root_key, now=now, days=3650, path_length=1
    )
    wwdr_name = _name(
        (NameOID.COMMON_NAME, WWDR_COMMON_NAME),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        (NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        (NameOID.COUNTRY_NAME, "US"),
    )
    wwdr = _ca_certificate(
        wwdr_name, wwdr_key, root.subject, root_key, now=now, days=1825, path_length=0
    )
    certificate = _pass_certificate(
        pass_key, wwdr, wwdr_key, pass_type_id=pass_type_id, team_id=team_id, now=now
    )
    key_pem = pass_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The CA and intermediate keys are thrown away: nothing should ever issue from them again.
    _write_atomically(paths.ca_path, _pem(root))
    _write_atomically(paths.wwdr_path, _pem(wwdr))
    _write_atomically(paths.key_path, key_pem, mode=0o600)
    _write_atomically(paths.cert_path, _pem(certificate))
    identity = {
        "pass_type_id": pass_type_id,
        "team_id": team_id,
        "created_at": now.isoformat(),
        "note": "development certificates; passes signed with them will not install on an iPhone",
    }
    # Written last: its presence means the set above is complete.
    _write_atomically(paths.identity_path, (json.dumps(identity, indent=2) + "\n").encode())
    return paths


def read_dev_identity(directory: Path) -> tuple[str, str] | None:
    """Return (pass_type_id, team_id) recorded by write_dev_certs, or None if there is none."""
    try:
        identity = json.loads((directory / IDENTITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(identity, dict):
        return None
    pass_type_id, team_id = identity.get("pass_type_id"), identity.get("team_id")
    if isinstance(pass_type_id, str) and isinstance(team_id, str):
        return pass_type_id, team_id
    return None


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Several gunicorn workers may start at once; only one of them may generate the set.
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _usable(paths: DevCertPaths, now: datetime) -> bool:
    files = (paths.ca_path, paths.wwdr_path, paths.cert_path, paths.key_path)
    if not all(path.is_file() for path in files):
        return False
    if read_dev_identity(paths.directory) != (paths.pass_type_id, paths.team_id):
        return False
    try:
        certificate = load_certificate(paths.cert_path)
    except ValueError:
        return False
    return certificate.not_valid_after_utc > now


def ensure_dev_certs(
    directory: Path,
    *,
    pass_type_id: str = "pass.dev.walletd.loyalty",
    team_id: str = "WALLETDDEV",
    now: datetime | None = None,
) -> DevCertPaths:
    """Write development certificates unless a complete, unexpired set for this id exists."""
    now = now or datetime.now(UTC)
    paths = dev_cert_paths(directory, pass_type_id=pass_type_id, team_id=team_id)
    if _usable(paths, now):
        return paths
    with _locked(directory):
        if _usable(paths, now):  # another process finished while we waited for the lock
            return paths
        return write_dev_certs(directory, pass_type_id=pass_type_id, team_id=team_id, now=now)


def is_dev_certificate(certificate: x509.Certificate) -> bool:
    """Tell whether a certificate was issued by walletd's development intermediate."""
    organizations = certificate.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return any("not Apple" in str(attribute.value) for attribute in organizations)


def _has_dev_marker(certificate: x509.Certificate) -> bool:
    # dev-certs writes DEV_ORGANIZATION into every name it makes, subject and issuer alike.
    for name in (certificate.subject, certificate.issuer):
        for attribute in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
            if str(attribute.value) == DEV_ORGANIZATION or "not Apple" in str(attribute.value):
                return True
    return False


def _values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def apple_wwdr_problem(wwdr: x509.Certificate) -> str | None:
    """Why a certificate is not Apple's WWDR G4 intermediate, or None when it looks like it is."""
    if _has_dev_marker(wwdr):
        return "is the walletd development intermediate written by `dev-certs`, not Apple's"
    subject, issuer = wwdr.subject, wwdr.issuer
    if _values(subject, NameOID.COMMON_NAME) != [WWDR_COMMON_NAME] or _values(
        subject, NameOID.ORGANIZATION_NAME
    ) != [APPLE_ORGANIZATION]:
        return (
            f"is not Apple's WWDR intermediate (subject {subject.rfc4514_string()}; expected "
            f"CN={WWDR_COMMON_NAME}, O={APPLE_ORGANIZATION})"
        )
    generations = _values(subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    if generations != [WWDR_GENERATION]:
        return (
            f"is WWDR {', '.join(generations) or 'without a generation'}, not {WWDR_GENERATION}: "
            "Apple issues Pass Type ID certificates from WWDR G4 "
            "(https://www.apple.com/certificateauthority/)"
        )
    if _values(issuer, NameOID.COMMON_NAME) != [APPLE_ROOT_COMMON_NAME] or _values(
        issuer, NameOID.ORGANIZATION_NAME
    ) != [APPLE_ORGANIZATION]:
        return f"is not issued by {APPLE_ROOT_COMMON_NAME} (issuer {issuer.rfc4514_string()})"
    if not _is_ca(wwdr):
        return "is not a certificate authority (no basicConstraints CA:TRUE)"
    return None


def production_certificate_problems(cert_path: Path, wwdr_path: Path) -> list[tuple[str, str]]:
    """(variable, reason) for each way the signing certificates are unfit for production.

    Judged by content, whatever the path: walletd's development certificates, a WWDR that is not
    Apple's G4, and a pass certificate that G4 did not sign are all refused.
    """
    problems: list[tuple[str, str]] = []
    certificate: x509.Certificate | None = None
    wwdr: x509.Certificate | None = None
    try:
        certificate = load_certificate(cert_path)
    except (OSError, ValueError) as problem:
        problems.append(("WALLETD_APPLE_CERT", f"cannot read {cert_path}: {problem}"))
    try:
        wwdr = load_certificate(wwdr_path)
    except (OSError, ValueError) as problem:
        problems.append(("WALLETD_APPLE_WWDR", f"cannot read {wwdr_path}: {problem}"))
    if certificate is not None and _has_dev_marker(certificate):
        problems.append(
            (
                "WALLETD_APPLE_CERT",
                f"{cert_path} is a walletd development certificate written by `dev-certs`; "
                "iPhones refuse passes signed with it",
            )
        )
    if wwdr is not None:
        reason = apple_wwdr_problem(wwdr)
        if reason is not None:
            problems.append(("WALLETD_APPLE_WWDR", f"{wwdr_path} {reason}"))
    if certificate is not None and wwdr is not None and not _directly_issued(certificate, wwdr):
        problems.append(
            (
                "WALLETD_APPLE_CERT",
                f"{cert_path} is not issued by the WWDR intermediate in {wwdr_path} "
                f"(its issuer is {certificate.issuer.rfc4514_string()})",
            )
        )
    return problems


def _directly_issued(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def check_certs(
    *,
    cert_path: Path,
    key_path: Path,
    key_password: str | None,
    wwdr_path: Path,
    pass_type_id: str,
    team_id: str,
    now: datetime,
    warn_days: int = 30,
) -> list[CertFinding]:
    """Check the signing certificate, key and WWDR intermediate against the configuration."""
    findings: list[CertFinding] = []

    def error(code: str, message: str) -> None:
        findings.append(CertFinding("error", code, message))

    def warning(code: str, message: str) -> None:
        findings.append(CertFinding("warning", code, message))

    certificate: x509.Certificate | None = None
    key: SignerKey | None = None
    wwdr: x509.Certificate | None = None
    try:
        certificate = load_certificate(cert_path)
    except (OSError, ValueError) as problem:
        error("cert_unreadable", f"pass certificate {cert_path}: {problem}")
    try:
        key = load_private_key(key_path, key_password)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm, PassSignerError) as problem:
        # TypeError is cryptography's answer to a password given for a plain key or vice versa.
        error("key_unreadable", f"private key {key_path}: {problem}")
    try:
        wwdr = load_certificate(wwdr_path)
    except (OSError, ValueError) as problem:
        error("wwdr_unreadable", f"WWDR intermediate {wwdr_path}: {problem}")

    if certificate is not None:
        _check_identity(certificate, pass_type_id, team_id, error, warning)
        _check_validity(certificate, "pass certificate", "cert", now, warn_days, error, warning)
        if key is not None and not same_public_key(certificate, key):
            error("key_mismatch", f"private key {key_path} does not belong to {cert_path}")
    if wwdr is not None:
        _check_wwdr(wwdr, now, warn_days, error, warning)
        if certificate is not None:
            _check_issuer(certificate, wwdr, error)
    if certificate is not None and is_dev_certificate(certificate):
        warning(
            "dev_certificate",
            "the pass certificate is a walletd development certificate; passes signed by "
            "development certificates will not install on a real iPhone",
        )
    return findings


def _check_identity(
    certificate: x509.Certificate,
    pass_type_id: str,
    team_id: str,
    error: _Reporter,
    warning: _Reporter,
) -> None:
    found_id = read_pass_type_id(certificate)
    if found_id != pass_type_id:
        error(
            "pass_type_id_mismatch",
            f"certificate is for pass type id {found_id!r}, configured {pass_type_id!r}",
        )
    found_team = read_team_id(certificate)
    if found_team != team_id:
        error(
            "team_id_mismatch",
            f"certificate belongs to team {found_team!r}, configured {team_id!r}",
        )
    try:
        extension = certificate.extensions.get_extension_for_oid(PASS_TYPE_ID_EXTENSION)
    except x509.ExtensionNotFound:
        warning(
            "pass_type_extension_missing",
            "certificate lacks Apple's pass type id extension (1.2.840.113635.100.6.1.16)",
        )
    else:
        value = extension.value
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
        # The extension holds the id DER-wrapped (UTF8String); the bytes of the id are enough.
        if found_id is not None and found_id.encode("utf-8") not in raw:
            error(
                "pass_type_extension_mismatch",
                f"certificate's pass type id extension does not name {found_id!r}",
            )
    try:
        usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []
    if PASS_SIGNING_EKU not in usages:
        warning(
            "not_pass_certificate",
            "certificate lacks the Pass Type ID key usage (1.2.840.113635.100.4.14); "
            "is it an app or APNs certificate?",
        )


def _check_validity(
    certificate: x509.Certificate,
    what: str,
    code: str,
    now: datetime,
    warn_days: int,
    error: _Reporter,
    warning: _Reporter,
) -> None:
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < not_before:
        error(f"{code}_not_yet_valid", f"{what} is valid only from {not_before:%Y-%m-%d %H:%M} UTC")
    elif now >= not_after:
        error(f"{code}_expired", f"{what} expired on {not_after:%Y-%m-%d}")
    elif not_after - now <= timedelta(days=warn_days):
        warning(
            f"{code}_expiring",
            f"{what} expires on {not_after:%Y-%m-%d}, in {_days(not_after - now)} days",
        )


def _check_wwdr(
    wwdr: x509.Certificate, now: datetime, warn_days: int, error: _Reporter, warning: _Reporter
) -> None:
    _check_validity(wwdr, "WWDR intermediate", "wwdr", now, warn_days, error, warning)
    units = [
        str(unit.value)
        for unit in wwdr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]
    if "G4" in units:
        return
    if abs(wwdr.not_valid_after_utc - _APPLE_G1_EXPIRY) < timedelta(days=1):
        warning(
            "wwdr_g1",
            "the WWDR intermediate is Apple's original G1, which expired on 2023-02-07; "
            "Pass Type ID certificates chain to G4 (https://www.apple.com/certificateauthority/)",
        )
    else:
        warning(
            "wwdr_not_g4",
            f"the WWDR intermediate is not G4 (OU={', '.join(units) or 'none'}); "
            "Apple issues Pass Type ID certificates from WWDR G4",
        )


def _check_issuer(certificate: x509.Certificate, wwdr: x509.Certificate, error: _Reporter) -> None:
    if certificate.issuer != wwdr.subject:
        error(
            "not_issued_by_wwdr",
            f"the pass certificate was issued by {certificate.issuer.rfc4514_string()}, "
            f"not by the configured WWDR intermediate {wwdr.subject.rfc4514_string()}",
        )
        return
    try:
        certificate.verify_directly_issued_by(wwdr)
    except (ValueError, TypeError, InvalidSignature):
        # Same name, different key: another intermediate generation, or another dev CA.
        error(
            "not_issued_by_wwdr",
            "the pass certificate names the WWDR intermediate as issuer, but its signature does "
            "not verify with the configured intermediate's key (wrong generation or another CA)",
        )
