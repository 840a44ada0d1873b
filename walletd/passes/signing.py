"""Sign pass manifests with the Pass Type ID certificate, and read such signatures back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

# Apple's marker extension on Pass Type ID certificates; its value is the pass type id.
PASS_TYPE_ID_EXTENSION = x509.ObjectIdentifier("1.2.840.113635.100.6.1.16")
# Extended key usage "Pass Type ID" that Apple puts on pass signing certificates.
PASS_SIGNING_EKU = x509.ObjectIdentifier("1.2.840.113635.100.4.14")
# Apple writes the id both in UID and in CN after one of these prefixes.
_CN_PREFIXES = ("Pass Type ID with NFC: ", "Pass Type ID: ")

SignerKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# Default signed attributes carry contentType, messageDigest and signingTime; iOS refuses a
# signature without signingTime, so NoAttributes must never be added here. Binary keeps the bytes
# exactly as hashed in the manifest (no MIME canonicalisation of line ends).
_SIGN_OPTIONS = (pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary)


class ManifestSigner(Protocol):
    """What the pass builder needs from a signer."""

    @property
    def pass_type_id(self) -> str:
        """The pass type id the signature vouches for."""
        ...

    @property
    def team_id(self) -> str:
        """The Apple team id that owns the pass type id."""
        ...

    def sign(self, manifest: bytes) -> bytes:
        """Return the DER PKCS#7 detached signature of `manifest`."""
        ...


class PassSignerError(Exception):
    """The certificate, key or WWDR intermediate cannot be used to sign passes."""


def load_certificate(path: Path) -> x509.Certificate:
    """Read one certificate from a PEM or DER file."""
    data = path.read_bytes()
    # Apple hands out the WWDR intermediate as DER (.cer); operators often skip the conversion.
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_private_key(path: Path, password: str | None) -> SignerKey:
    """Read an RSA or EC private key from a PEM or DER file, decrypting it with `password`."""
    data = path.read_bytes()
    secret = password.encode("utf-8") if password else None
    if b"-----BEGIN" in data:
        key = serialization.load_pem_private_key(data, password=secret)
    else:
        key = serialization.load_der_private_key(data, password=secret)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        # PKCS#7 signing in `cryptography` supports only these two key types.
        raise PassSignerError(f"{path}: only RSA and EC keys can sign passes")
    return key


def _name_values(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in name.get_attributes_for_oid(oid)]


def read_pass_type_id(certificate: x509.Certificate) -> str | None:
    """Return the pass type id named by a Pass Type ID certificate (UID, else CN), or None."""
    uids = _name_values(certificate.subject, NameOID.USER_ID)
    if uids:
        return uids[0]
    for common_name in _name_values(certificate.subject, NameOID.COMMON_NAME):
        for prefix in _CN_PREFIXES:
            if common_name.startswith(prefix):
                return common_name.removeprefix(prefix)
    return None


def read_team_id(certificate: x509.Certificate) -> str | None:
    """Return the Apple team id (subject OU) of a Pass Type ID certificate, or None."""
    units = _name_values(certificate.subject, NameOID.ORGANIZATIONAL_UNIT_NAME)
    return units[0] if units else None


def same_public_key(certificate: x509.Certificate, key: SignerKey) -> bool:
    """Tell whether `key` is the private half of the certificate's public key."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return certificate.public_key().public_bytes(der, spki) == key.public_key().public_bytes(
        der, spki
    )


class PassSigner:
    """Signs manifests as detached PKCS#7; build one per process and share it."""

    def __init__(
        self, certificate: x509.Certificate, private_key: SignerKey, wwdr: x509.Certificate
    ) -> None:
        if not same_public_key(certificate, private_key):
            raise PassSignerError("the private key does not belong to the pass certificate")
        pass_type_id = read_pass_type_id(certificate)
        team_id = read_team_id(certificate)
        if not pass_type_id or not team_id:
            raise PassSignerError(
                "the certificate names no pass type id (UID or 'Pass Type ID: ' CN) or team (OU)"
            )
        self._certificate = certificate
        self._private_key = private_key
        self._wwdr = wwdr
        self._pass_type_id = pass_type_id
        self._team_id = team_id
        # The hash for the RSA signature must match the digest named in SignerInfo; SHA-256 is
        # what current generators use and what iOS accepts (reference S-05).
        self._hash = hashes.SHA256()

    @classmethod
    def from_files(
        cls, *, cert_path: Path, key_path: Path, key_password: str | None, wwdr_path: Path
    ) -> PassSigner:
        """Load the certificate, key and WWDR intermediate once from files."""
        try:
            certificate = load_certificate(cert_path)
            private_key = load_private_key(key_path, key_password)
            wwdr = load_certificate(wwdr_path)
        except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise PassSignerError(f"cannot load signing material: {error}") from error
        return cls(certificate, private_key, wwdr)

    @property
    def certificate(self) -> x509.Certificate:
        """The Pass Type ID certificate that signs."""
        return self._certificate

    @property
    def wwdr(self) -> x509.Certificate:
        """The WWDR intermediate embedded in every signature."""
        return self._wwdr

    @property
    def pass_type_id(self) -> str:
        """The pass type id read from the signer certificate."""
        return self._pass_type_id

    @property
    def team_id(self) -> str:
        """The Apple team id read from the signer certificate."""
        return self._team_id

    def sign(self, manifest: bytes) -> bytes:
        """Return a DER PKCS#7 detached SignedData over `manifest` (SHA-256, with signingTime)."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self._certificate, self._private_key, self._hash)
            .add_certificate(self._wwdr)
            .sign(serialization.Encoding.DER, _SIGN_OPTIONS)
        )


# Reading signatures back. `cryptography` can build PKCS#7 but not verify it, so a small DER
# walker checks what iOS checks; tests also run the openssl binary against the same bytes.

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_SIGNING_TIME = "1.2.840.113549.1.9.5"
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "1.3.14.3.2.26": hashes.SHA1,
    "2.16.840.1.101.3.4.2.1": hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
    "2.16.840.1.101.3.4.2.4": hashes.SHA224,
}


# rsaEncryption, sha{1,256,384,512}WithRSAEncryption, ecdsa-with-SHA{256,384,512}: what iOS and
# cryptography's builder use; RSASSA-PSS is left out because it needs parameters checked too.
_SIGNATURE_ALGORITHMS = frozenset(
    {
        "1.2.840.113549.1.1.1",
        "1.2.840.113549.1.1.5",
        "1.2.840.113549.1.1.11",
        "1.2.840.113549.1.1.12",
        "1.2.840.113549.1.1.13",
        "1.2.840.10045.4.3.2",
        "1.2.840.10045.4.3.3",
        "1.2.840.10045.4.3.4",
    }
)
_INTEGER, _OCTET_STRING, _SEQUENCE, _SET, _CONTEXT_0 = 0x02, 0x04, 0x30, 0x31, 0xA0


class _Tlv(NamedTuple):
    tag: int
    start: int  # offset of the tag byte
    body: int  # offset of the first content byte
    end: int  # offset just past the content


def _read_tlv(data: bytes, pos: int, limit: int) -> _Tlv:
    if pos + 2 > limit:
        raise ValueError("truncated DER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers do not occur in CMS SignedData")
    length = data[pos + 1]
    body = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or body + count > limit:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[body : body + count], "big")
        body += count
    if body + length > limit:
        raise ValueError("truncated DER")
    return _Tlv(tag, pos, body, body + length)


def _expect(item: _Tlv, tag: int, what: str) -> _Tlv:
    if item.tag != tag:
        raise ValueError(f"malformed {what}")
    return item


def _children(data: bytes, parent: _Tlv) -> list[_Tlv]:
    items = []
    pos = parent.body
    while pos < parent.end:
        item = _read_tlv(data, pos, parent.end)
        items.append(item)
        pos = item.end
    return items


def _oid(data: bytes, item: _Tlv) -> str:
    if item.tag != 0x06:
        raise ValueError("expected an OBJECT IDENTIFIER")
    raw = data[item.body : item.end]
    arcs = [min(raw[0] // 40, 2), raw[0] - 40 * min(raw[0] // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(str(arc) for arc in arcs)


def _integer(data: bytes, item: _Tlv) -> int:
    return int.from_bytes(data[item.body : item.end], "big", signed=True)


def _parse_time(data: bytes, item: _Tlv) -> datetime:
    text = data[item.body : item.end].decode("ascii")
    if item.tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ
        return datetime.strptime(text, "%y%m%d%H%M%SZ").replace(tzinfo=UTC)
    if item.tag == 0x18:  # GeneralizedTime, YYYYMMDDHHMMSSZ
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    raise ValueError("signingTime is neither UTCTime nor GeneralizedTime")


@dataclass(frozen=True)
class SignatureInfo:
    """What a pass signature contains, and what is wrong with it."""

    certificates: tuple[x509.Certificate, ...]
    signer: x509.Certificate | None
    signing_time: datetime | None
    detached: bool
    problems: tuple[str, ...]


def inspect_signature(signature: bytes, content: bytes) -> SignatureInfo:
    """Parse a DER PKCS#7 signature over `content` and report the problems iOS would reject."""
    try:
        return _inspect(signature, content)
    # Damaged input surfaces as many exception types: ours (ValueError, IndexError) and
    # cryptography's lazy certificate parsing (ValueError, TypeError, InvalidVersion,
    # UnsupportedAlgorithm, deprecation warnings when warnings are errors). A checker reports
    # them all as one problem rather than crash on a bad package.
    except Exception as error:
        return SignatureInfo((), None, None, False, (f"signature is not DER PKCS#7: {error}",))


def _inspect(signature: bytes, content: bytes) -> SignatureInfo:
    problems: list[str] = []
    top = _expect(_read_tlv(signature, 0, len(signature)), _SEQUENCE, "ContentInfo")
    if top.end != len(signature):
        problems.append("signature has trailing bytes after the PKCS#7 structure")
    content_type, wrapped = _children(signature, top)[:2]
    if _oid(signature, content_type) != _OID_SIGNED_DATA:
        raise ValueError("not a SignedData")
    _expect(wrapped, _CONTEXT_0, "ContentInfo content")
    body = _expect(_children(signature, wrapped)[0], _SEQUENCE, "SignedData")
    # version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
    signed_data = _children(signature, body)
    if _integer(signature, _expect(signed_data[0], _INTEGER, "SignedData version")) != 1:
        problems.append("SignedData version is not 1")
    listed_digests = {
        _oid(signature, _children(signature, algorithm)[0])
        for algorithm in _children(signature, _expect(signed_data[1], _SET, "digestAlgorithms"))
    }
    encapsulated = _children(signature, _expect(signed_data[2], _SEQUENCE, "encapContentInfo"))
    if _oid(signature, encapsulated[0]) != _OID_DATA:
        problems.append("signed content type is not id-data")
    detached = len(encapsulated) == 1
    if not detached:
        problems.append("signature is attached (it embeds the manifest); Apple expects detached")
    # Read the [0] certificates set directly: load_der_pkcs7_certificates falls back to BER with
    # a warning on malformed input, and a pass signature must be strict DER.
    certificates = tuple(
        x509.load_der_x509_certificate(signature[item.start : item.end])
        for block in signed_data[3:-1]
        if block.tag == _CONTEXT_0
        for item in _children(signature, block)
    )
    for certificate in certificates:
        # Parse what callers will read now, while errors still turn into a problem report.
        certificate.subject, certificate.issuer, certificate.extensions, certificate.public_key()
    signer_infos = _children(signature, _expect(signed_data[-1], _SET, "signerInfos"))
    if len(signer_infos) != 1:
        problems.append(f"signature has {len(signer_infos)} signers; expected exactly 1")
        return SignatureInfo(certificates, None, None, detached, tuple(problems))

    fields = _children(signature, _expect(signer_infos[0], _SEQUENCE, "SignerInfo"))
    # version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, ...
    if _integer(signature, _expect(fields[0], _INTEGER, "SignerInfo version")) != 1:
        problems.append("SignerInfo version is not 1 (issuer and serial number)")
    sid, digest_algorithm = fields[1], _expect(fields[2], _SEQUENCE, "digestAlgorithm")
    signer = _find_signer(signature, sid, certificates)
    if signer is None:
        problems.append("the signer's certificate is not embedded in the signature")
    digest_oid = _oid(signature, _children(signature, digest_algorithm)[0])
    digest_type = _DIGESTS.get(digest_oid)
    if digest_oid not in listed_digests:
        problems.append("the signer's digest algorithm is missing from digestAlgorithms")
    if digest_type is None:
        problems.append(f"unsupported digest algorithm {digest_oid}")
        return SignatureInfo(certificates, signer, None, detached, tuple(problems))

    attributes_item = fields[3]
    if attributes_item.tag != 0xA0:
        problems.append("signature has no signed attributes (no signingTime)")
        return SignatureInfo(certificates, signer, None, detached, tuple(problems))
    attributes: dict[str, _Tlv] = {}
    for attribute in _children(signature, attributes_item):
        attr_type, attr_values = _children(signature, attribute)
        attributes[_oid(signature, attr_type)] = _children(signature, attr_values)[0]

    signing_time = None
    if _OID_SIGNING_TIME in attributes:
        signing_time = _parse_time(signature, attributes[_OID_SIGNING_TIME])
    else:
        problems.append("signature lacks the signingTime attribute")
    content_type_item = attributes.get(_OID_CONTENT_TYPE)
    if content_type_item is None or _oid(signature, content_type_item) != _OID_DATA:
        problems.append("signature lacks a contentType attribute of id-data")
    digest_item = attributes.get(_OID_MESSAGE_DIGEST)
    hasher = hashes.Hash(digest_type())
    hasher.update(content)
    expected = hasher.finalize()
    if digest_item is None or signature[digest_item.body : digest_item.end] != expected:
        problems.append("signature's messageDigest does not match manifest.json")

    if signer is not None:
        # The signature covers the DER of the attributes as a SET (tag 0x31), not as [0].
        signed_bytes = b"\x31" + signature[attributes_item.start + 1 : attributes_item.end]
        algorithm = _children(signature, _expect(fields[4], _SEQUENCE, "signatureAlgorithm"))
        if _oid(signature, algorithm[0]) not in _SIGNATURE_ALGORITHMS:
            problems.append("unsupported signature algorithm")
        value_item = _expect(fields[5], _OCTET_STRING, "signature value")
        value = signature[value_item.body : value_item.end]
        if not _verify(signer, value, signed_bytes, digest_type()):
            problems.append("signature value does not verify with the signer certificate")
    return SignatureInfo(certificates, signer, signing_time, detached, tuple(problems))


def _find_signer(
    data: bytes, sid: _Tlv, certificates: tuple[x509.Certificate, ...]
) -> x509.Certificate | None:
    if sid.tag != 0x30:
        return None  # subjectKeyIdentifier form; cryptography and Apple use issuerAndSerial
    issuer, serial = _children(data, sid)
    issuer_der = data[issuer.start : issuer.end]
    serial_number = int.from_bytes(data[serial.body : serial.end], "big", signed=True)
    for certificate in certificates:
        if (
            certificate.serial_number == serial_number
            and certificate.issuer.public_bytes() == issuer_der
        ):
            return certificate
    return None


def _verify(
    certificate: x509.Certificate, value: bytes, signed: bytes, digest: hashes.HashAlgorithm
) -> bool:
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(value, signed, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(value, signed, ec.ECDSA(digest))
        else:
            return False
    except InvalidSignature:
        return False
    return True
