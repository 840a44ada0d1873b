"""WALLETD_ENV=production refuses development certificates by content, a WWDR that is not
Apple's G4, weak or published secret keys and a base URL that is not a plain https:// origin.

The chains here are fakes built with `cryptography` that copy the names of Apple's: they show
what the check accepts and refuses. Only Apple's real chain, on a real iPhone, proves a pass.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from walletd import create_app
from walletd.config import Settings
from walletd.errors import ConfigError
from walletd.passes.certs import WWDR_COMMON_NAME, apple_wwdr_problem, write_dev_certs
from walletd.passes.signing import PASS_SIGNING_EKU, PASS_TYPE_ID_EXTENSION

NOW = datetime.now(UTC)
PASS_TYPE_ID = "pass.com.example.loyalty"
TEAM_ID = "ABCDE12345"
APPLE = "Apple Inc."
ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, APPLE),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Apple Certification Authority"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Apple Root CA"),
    ]
)

# Apple's real WWDR G4 intermediate (AppleWWDRCAG4.cer from apple.com/certificateauthority):
# serial 13DC77955271E53DC632E8CCFFE521F3CCC5CED2, the one the reference (S-03) names. It shows
# the name checks accept what Apple really publishes.
APPLE_WWDR_G4_PEM = b"""-----BEGIN CERTIFICATE-----
MIIEVTCCAz2gAwIBAgIUE9x3lVJx5T3GMujM/+Uh88zFztIwDQYJKoZIhvcNAQEL
BQAwYjELMAkGA1UEBhMCVVMxEzARBgNVBAoTCkFwcGxlIEluYy4xJjAkBgNVBAsT
HUFwcGxlIENlcnRpZmljYXRpb24gQXV0aG9yaXR5MRYwFAYDVQQDEw1BcHBsZSBS
b290IENBMB4XDTIwMTIxNjE5MzYwNFoXDTMwMTIxMDAwMDAwMFowdTFEMEIGA1UE
Aww7QXBwbGUgV29ybGR3aWRlIERldmVsb3BlciBSZWxhdGlvbnMgQ2VydGlmaWNh
dGlvbiBBdXRob3JpdHkxCzAJBgNVBAsMAkc0MRMwEQYDVQQKDApBcHBsZSBJbmMu
MQswCQYDVQQGEwJVUzCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBANAf
eKp6JzKwRl/nF3bYoJ0OKY6tPTKlxGs3yeRBkWq3eXFdDDQEYHX3rkOPR8SGHgjo
v9Y5Ui8eZ/xx8YJtPH4GUnadLLzVQ+mxtLxAOnhRXVGhJeG+bJGdayFZGEHVD41t
QSo5SiHgkJ9OE0/QjJoyuNdqkh4laqQyziIZhQVg3AJK8lrrd3kCfcCXVGySjnYB
5kaP5eYq+6KwrRitbTOFOCOL6oqW7Z+uZk+jDEAnbZXQYojZQykn/e2kv1MukBVl
PNkuYmQzHWxq3Y4hqqRfFcYw7V/mjDaSlLfcOQIA+2SM1AyB8j/VNJeHdSbCb64D
YyEMe9QbsWLFApy9/a8CAwEAAaOB7zCB7DASBgNVHRMBAf8ECDAGAQH/AgEAMB8G
A1UdIwQYMBaAFCvQaUeUdgn+9GuNLkCm90dNfwheMEQGCCsGAQUFBwEBBDgwNjA0
BggrBgEFBQcwAYYoaHR0cDovL29jc3AuYXBwbGUuY29tL29jc3AwMy1hcHBsZXJv
b3RjYTAuBgNVHR8EJzAlMCOgIaAfhh1odHRwOi8vY3JsLmFwcGxlLmNvbS9yb290
LmNybDAdBgNVHQ4EFgQUW9n6HeeaGgujmXYiUIY+kchbd6gwDgYDVR0PAQH/BAQD
AgEGMBAGCiqGSIb3Y2QGAgEEAgUAMA0GCSqGSIb3DQEBCwUAA4IBAQA/Vj2e5bbD
eeZFIGi9v3OLLBKeAuOugCKMBB7DUshwgKj7zqew1UJEggOCTwb8O0kU+9h0UoWv
p50h5wESA5/NQFjQAde/MoMrU1goPO6cn1R2PWQnxn6NHThNLa6B5rmluJyJlPef
x4elUWY0GzlxOSTjh2fvpbFoe4zuPfeutnvi0v/fYcZqdUmVIkSoBPyUuAsuORFJ
EtHlgepZAE9bPFo22noicwkJac3AfOriJP6YRLj477JxPxpd1F1+M02cHSS+APCQ
A1iZQT0xWmJArzmoUUOSqwSonMJNsUvSq3xKX+udO7xPiEAGE/+QF4oIRynoYpgp
pU8RBWk6z/Kf
-----END CERTIFICATE-----
"""


def _name(cn: str, ou: str | None, o: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if o is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"))
    return x509.Name(attributes)


G4_NAME = _name(WWDR_COMMON_NAME, "G4", APPLE)


@dataclass(frozen=True)
class Keys:
    """Three RSA keys made once: root, intermediate and pass certificate."""

    root: rsa.RSAPrivateKey
    wwdr: rsa.RSAPrivateKey
    leaf: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Keys for the fake chains (the slow part, so made once)."""

    def make() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(make(), make(), make())


def ca_certificate(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool = True,
) -> x509.Certificate:
    """A certificate authority (or, with ca=False, a look-alike that is not one)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def pass_certificate(
    issuer: x509.Certificate, key: rsa.RSAPrivateKey, issuer_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    """A Pass Type ID certificate shaped like the ones Apple issues."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, PASS_TYPE_ID),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {PASS_TYPE_ID}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM_ID),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Coffee Ltd"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )
    value = PASS_TYPE_ID.encode()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([PASS_SIGNING_EKU, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(
                PASS_TYPE_ID_EXTENSION, b"\x0c" + bytes([len(value)]) + value
            ),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def write_pem(path: Path, certificate: x509.Certificate) -> Path:
    """Write a certificate as PEM and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass(frozen=True)
class Chain:
    """Files of one fake chain: pass certificate, its key and the intermediate."""

    cert: Path
    key: Path
    wwdr: Path


def write_chain(
    directory: Path, keys: Keys, *, wwdr_name: x509.Name = G4_NAME, root_name: x509.Name = ROOT_NAME
) -> Chain:
    """A fake "Apple Root CA" → WWDR intermediate → Pass Type ID chain written to `directory`."""
    wwdr = ca_certificate(wwdr_name, root_name, keys.wwdr, keys.root)
    leaf = pass_certificate(wwdr, keys.leaf, keys.wwdr)
    key_path = directory / "pass.key"
    directory.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(
        keys.leaf.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Chain(
        write_pem(directory / "pass.pem", leaf), key_path, write_pem(directory / "wwdr.pem", wwdr)
    )


def production(chain: Chain, tmp_path: Path, **changes: object) -> Settings:
    """Settings a production deployment would have, with `chain` as its certificates.

    `tmp_path` holds the instance folder, where a development key might have been generated.
    """
    base = Settings(
        env="production",
        database_url="postgresql+psycopg://walletd@db/walletd",
        base_url="https://loyalty.example.com",
        secret_key=secrets.token_urlsafe(48),
        apple_pass_type_id=PASS_TYPE_ID,
        apple_team_id=TEAM_ID,
        apple_cert=chain.cert,
        apple_key=chain.key,
        apple_wwdr=chain.wwdr,
        instance_path=tmp_path / "instance",
    )
    return base.with_changes(**changes)


def refusal(settings: Settings) -> str:
    """The message of the ConfigError that finalise raises."""
    with pytest.raises(ConfigError) as raised:
        settings.finalise()
    return str(raised.value)


@pytest.fixture(scope="module")
def apple_chain(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Chain:
    """A chain shaped like Apple's: accepted by the production checks."""
    return write_chain(tmp_path_factory.mktemp("apple"), keys)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance folder for tests that generate many settings (no development key in it)."""
    return tmp_path_factory.mktemp("instance")


# --- certificates -------------------------------------------------------------------------------


def test_a_chain_shaped_like_apples_is_accepted(apple_chain: Chain, tmp_path: Path) -> None:
    assert production(apple_chain, tmp_path).finalise().production


def test_apples_real_wwdr_g4_passes_the_intermediate_check() -> None:
    assert apple_wwdr_problem(x509.load_pem_x509_certificate(APPLE_WWDR_G4_PEM)) is None


@pytest.mark.parametrize("how", ["absolute", "renamed"])
def test_development_certificates_are_refused_wherever_they_are(tmp_path: Path, how: str) -> None:
    dev = write_dev_certs(tmp_path / "dev", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)
    if how == "renamed":  # copied elsewhere under names that look real
        target = tmp_path / "etc" / "walletd"
        target.mkdir(parents=True)
        chain = Chain(
            Path(shutil.copy(dev.cert_path, target / "pass_type_id.pem")),
            Path(shutil.copy(dev.key_path, target / "pass_type_id.key")),
            Path(shutil.copy(dev.wwdr_path, target / "AppleWWDRCAG4.pem")),
        )
    else:
        chain = Chain(dev.cert_path.resolve(), dev.key_path.resolve(), dev.wwdr_path.resolve())

    message = refusal(production(chain, tmp_path))

    assert "WALLETD_APPLE_CERT" in message and "development certificate" in message
    assert "WALLETD_APPLE_WWDR" in message and "development intermediate" in message


def test_the_development_wwdr_is_refused_even_with_a_real_looking_pass_certificate(
    apple_chain: Chain, tmp_path: Path
) -> None:
    dev = write_dev_certs(tmp_path / "dev", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)

    message = refusal(production(apple_chain, tmp_path, apple_wwdr=dev.wwdr_path))

    assert message.startswith("WALLETD_APPLE_WWDR:")
    assert "development intermediate" in message
    assert "is not issued by the WWDR intermediate" in message  # and the chain breaks too


@pytest.mark.parametrize(
    ("wwdr_name", "reason"),
    [
        (_name(WWDR_COMMON_NAME, "G3", APPLE), "not G4"),
        (_name(WWDR_COMMON_NAME, None, APPLE), "not G4"),
        (_name(WWDR_COMMON_NAME, "G4", "Apple Inc"), "is not Apple's WWDR intermediate"),
        (_name("Example Intermediate CA", "G4", APPLE), "is not Apple's WWDR intermediate"),
    ],
)
def test_an_intermediate_that_is_not_apples_g4_is_refused(
    tmp_path: Path, keys: Keys, wwdr_name: x509.Name, reason: str
) -> None:
    chain = write_chain(tmp_path / "chain", keys, wwdr_name=wwdr_name)

    message = refusal(production(chain, tmp_path))

    assert message.startswith("WALLETD_APPLE_WWDR:")
    assert reason in message


def test_an_intermediate_not_issued_by_apple_root_ca_is_refused(tmp_path: Path, keys: Keys) -> None:
    other_root = _name("Apple Root CA - G3", "Apple Certification Authority", APPLE)
    chain = write_chain(tmp_path / "chain", keys, root_name=other_root)

    message = refusal(production(chain, tmp_path))

    assert "WALLETD_APPLE_WWDR" in message and "is not issued by Apple Root CA" in message


def test_an_intermediate_that_is_not_a_ca_is_refused(
    apple_chain: Chain, tmp_path: Path, keys: Keys
) -> None:
    not_ca = ca_certificate(G4_NAME, ROOT_NAME, keys.wwdr, keys.root, ca=False)
    path = write_pem(tmp_path / "not-ca.pem", not_ca)

    assert "not a certificate authority" in refusal(
        production(apple_chain, tmp_path, apple_wwdr=path)
    )


def test_a_pass_certificate_another_intermediate_signed_is_refused(
    apple_chain: Chain, tmp_path: Path, keys: Keys
) -> None:
    # Same names as G4, another key: what a wrong download or a G4 look-alike gives.
    impostor = ca_certificate(G4_NAME, ROOT_NAME, keys.root, keys.root)
    path = write_pem(tmp_path / "impostor.pem", impostor)

    message = refusal(production(apple_chain, tmp_path, apple_wwdr=path))

    assert message.startswith("WALLETD_APPLE_CERT:")
    assert "is not issued by the WWDR intermediate" in message


def test_unreadable_certificates_name_their_variable(apple_chain: Chain, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")

    assert "WALLETD_APPLE_CERT: cannot read" in refusal(
        production(apple_chain, tmp_path, apple_cert=tmp_path / "missing.pem")
    )
    assert "WALLETD_APPLE_WWDR: cannot read" in refusal(
        production(apple_chain, tmp_path, apple_wwdr=garbage)
    )


def test_create_app_refuses_to_start_with_development_certificates(tmp_path: Path) -> None:
    dev = write_dev_certs(tmp_path / "dev", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)
    chain = Chain(dev.cert_path, dev.key_path, dev.wwdr_path)

    with pytest.raises(ConfigError, match="WALLETD_APPLE_CERT"):
        create_app(production(chain, tmp_path))


def test_development_certificates_still_work_outside_production(tmp_path: Path) -> None:
    dev = write_dev_certs(tmp_path / "dev", pass_type_id=PASS_TYPE_ID, team_id=TEAM_ID)
    chain = Chain(dev.cert_path, dev.key_path, dev.wwdr_path)

    assert production(chain, tmp_path, env="development").finalise().env == "development"


NAME_PARTS = {
    "cn": (WWDR_COMMON_NAME, "Apple Worldwide Developer Relations CA", "walletd WWDR"),
    "ou": ("G4", "G3", "G1", "g4", None),
    "o": (APPLE, "Apple", "walletd development (not Apple)", None),
    "issuer_cn": ("Apple Root CA", "Apple Root CA - G2", "Apple Root CA "),
    "issuer_o": (APPLE, "Apple Inc", None),
}


@examples(max_examples=80, deadline=None)
@given(
    parts=st.fixed_dictionaries({k: st.sampled_from(v) for k, v in NAME_PARTS.items()}),
    # A CN holds at most 64 bytes and Apple's takes 59.
    extra=st.text(min_size=1, max_size=5).filter(lambda t: len(t.encode()) <= 5),
    where=st.sampled_from([None, "cn", "ou", "o", "issuer_cn"]),
)
def test_only_apples_exact_g4_names_pass_the_intermediate_check(
    keys: Keys, parts: dict[str, str | None], extra: str, where: str | None
) -> None:
    if where is not None and parts[where] is not None:
        parts = {**parts, where: f"{parts[where]}{extra}"}  # near-misses: a suffix anywhere
    subject = _name(str(parts["cn"]), parts["ou"], parts["o"])
    issuer = _name(str(parts["issuer_cn"]), "Apple Certification Authority", parts["issuer_o"])
    certificate = ca_certificate(subject, issuer, keys.wwdr, keys.root)
    exact = parts == {
        "cn": WWDR_COMMON_NAME,
        "ou": "G4",
        "o": APPLE,
        "issuer_cn": "Apple Root CA",
        "issuer_o": APPLE,
    }

    assert (apple_wwdr_problem(certificate) is None) is exact


# --- the secret key -----------------------------------------------------------------------------


@examples(max_examples=100, deadline=None)
@given(key=st.text(min_size=1, max_size=31))
def test_a_key_shorter_than_32_characters_is_refused(
    apple_chain: Chain, instance: Path, key: str
) -> None:
    with pytest.raises(ConfigError, match="WALLETD_SECRET_KEY must be at least 32 characters"):
        production(apple_chain, instance, secret_key=key).finalise()


@pytest.mark.parametrize(
    "key",
    [
        "test-secret-key-that-is-long-enough-0123456789",  # tests/conftest.py
        "bench-secret-key-that-is-long-enough-0123456789",  # bench/common.py
        "change-me-change-me-change-me-change-me",
        "my-example-walletd-key-0123456789abcdef",
        "acme-loyalty-secret-key-2026-production",
        "a" * 64,
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ],
)
def test_a_known_or_placeholder_key_is_refused(
    apple_chain: Chain, tmp_path: Path, key: str
) -> None:
    message = refusal(production(apple_chain, tmp_path, secret_key=key))

    assert message.startswith("WALLETD_SECRET_KEY ")
    assert key not in message  # a refused key is still never printed


def test_the_generated_development_key_is_refused(apple_chain: Chain, tmp_path: Path) -> None:
    development = Settings(instance_path=tmp_path / "instance").finalise().secret_key

    message = refusal(production(apple_chain, tmp_path, secret_key=development))

    assert "development key generated into" in message


@examples(max_examples=50, deadline=None)
@given(size=st.integers(24, 64), encode=st.sampled_from(["base64", "urlsafe", "hex"]))
def test_random_keys_are_accepted(
    apple_chain: Chain, instance: Path, size: int, encode: str
) -> None:
    # What `openssl rand -base64 48` and Python's secrets module make.
    raw = secrets.token_bytes(size)
    key = {
        "base64": base64.b64encode(raw).decode(),
        "urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
    }[encode]
    fallback = secrets.token_urlsafe(size)

    settings = production(apple_chain, instance, secret_key=key, secret_key_fallbacks=(fallback,))

    assert settings.finalise().secret_keys == (key, fallback)


def test_each_fallback_key_must_be_long_and_unknown_in_production(
    apple_chain: Chain, tmp_path: Path
) -> None:
    good = secrets.token_urlsafe(48)
    settings = production(apple_chain, tmp_path, secret_key_fallbacks=(good, "short-old-key"))

    message = refusal(settings)

    assert message.startswith("WALLETD_SECRET_KEY_FALLBACKS (key 2 of 2)")
    assert "at least 32 characters" in message
    published = "test-secret-key-that-is-long-enough-0123456789"
    assert "published" in refusal(
        production(apple_chain, tmp_path, secret_key_fallbacks=(published,))
    )
    assert production(apple_chain, tmp_path, secret_key_fallbacks=(good,)).finalise()
    # Development keeps whatever fallbacks a developer sets.
    assert Settings(secret_key=good, secret_key_fallbacks=("old",)).finalise()


# --- the base URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://loyalty.example.com",
        "https://",
        "https:///passes",
        "https://loyalty.example.com?x=1",
        "https://loyalty.example.com#top",
        "https://user:pw@loyalty.example.com",
        "https://loyalty.example.com:port",
        "https://loyalty example.com",
    ],
)
def test_a_base_url_that_is_not_a_plain_https_origin_is_refused(
    apple_chain: Chain, tmp_path: Path, url: str
) -> None:
    assert refusal(production(apple_chain, tmp_path, base_url=url)).startswith("WALLETD_BASE_URL")


@examples(max_examples=50, deadline=None)
@given(
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){1,3}", fullmatch=True),
    port=st.none() | st.integers(1, 65535),
    path=st.sampled_from(["", "/loyalty", "/a/b"]),
)
def test_a_plain_https_base_url_is_accepted(
    apple_chain: Chain, instance: Path, host: str, port: int | None, path: str
) -> None:
    url = f"https://{host}{'' if port is None else f':{port}'}{path}"

    assert production(apple_chain, instance, base_url=url).finalise().base_url == url
