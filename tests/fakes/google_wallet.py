"""A Google Wallet protocol fake on loopback: OAuth token endpoint, loyalty and offer REST, keys.

Strict on purpose. Every request body is checked against the discovery document shipped in
google-api-python-client (types, enums, unknown names), plus the rules Google states only in
prose (required fields, one-of, id and colour formats, list limits). Where Google's behaviour is
undocumented the fake picks the stricter reading and says so:

- PATCH deep-merges objects (arrays replace, null deletes) and re-validates the result, so a
  balance that switched subtype (int -> string) shows up as a one-of error instead of silently
  keeping both.
- An 11th message is refused with 400 (``message_overflow="drop_oldest"`` keeps the newest 10).
- Deprecated fields and legacy enum aliases are refused (``strict=False`` accepts them).
- addMessage with an id already on the resource replaces that message.
- Offer classes and objects follow the loyalty rules (review status, class must exist).
  loyaltyObject.modifyLinkedOfferObjects (deprecated in the discovery document, still served)
  treats `linkedOfferIds` as a set: adding a linked id or removing an unlinked one changes
  nothing, and adding an offer object that does not exist is refused with 400 (Google: "The offer
  objects must already exist").
- Notifications (TEXT_AND_NOTIFY messages, NOTIFY_ON_UPDATE patches that change a balance) are
  counted per object (and per class) over a rolling 24 h; beyond 3 a TEXT_AND_NOTIFY message is
  refused with 403 quotaExceeded and a notifying PATCH is applied silently (recorded with
  ``delivered=False``).

Also: a JWT-bearer token endpoint that checks the assertion's RS256 signature, kid, iss, aud and
scope; 401 without one of its tokens; an optional per-issuer requests-per-second limit (429
``rateLimitExceeded``); ``fail_next`` failure injection; a record of every request; and
``callbacks``, a CallbackSigner whose root keys are served at ``/gp/m/issuer/keys``.
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.resources
import json
import re
import secrets
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

JsonDict = dict[str, Any]

DEFAULT_ISSUER_ID = "3388000000022141777"
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
# google-auth always puts this in the assertion's aud, whatever token_uri says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_PREFIX = "/walletobjects/v1"
NOTIFICATION_WINDOW = 24 * 3600.0

_ID_RE = re.compile(r"^[0-9]+\.[A-Za-z0-9._-]+$")
_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_INT_STRING_RE = re.compile(r"^-?[0-9]+$")

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_REASONS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "notFound",
    409: "duplicate",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


@functools.cache
def discovery_document() -> JsonDict:
    """Return the walletobjects v1 discovery document shipped with google-api-python-client."""
    path = (
        importlib.resources.files("googleapiclient.discovery_cache")
        / "documents"
        / "walletobjects.v1.json"
    )
    document: JsonDict = json.loads(path.read_text(encoding="utf-8"))
    return document


@dataclass(frozen=True)
class Issue:
    """One reason a body was refused."""

    path: str
    reason: str
    message: str


class DiscoveryValidator:
    """Checks JSON bodies against discovery schemas plus Google's prose-only rules."""

    # "Required." appears only in descriptions; the discovery document has no required lists.
    REQUIRED: Mapping[str, tuple[str, ...]] = {
        "LoyaltyClass": ("id", "issuerName", "programName", "programLogo", "reviewStatus"),
        "LoyaltyObject": ("id", "classId", "state"),
        "OfferClass": (
            "id",
            "issuerName",
            "provider",
            "redemptionChannel",
            "reviewStatus",
            "title",
        ),
        "OfferObject": ("id", "classId", "state"),
        "ModifyLinkedOfferObjectsRequest": ("linkedOfferObjectIds",),
        "LoyaltyPoints": ("balance",),
        "AddMessageRequest": ("message",),
        "Message": ("header", "body"),
        "ImageUri": ("uri",),
        "Uri": ("uri",),
        "Barcode": ("type",),
        "TranslatedString": ("language", "value"),
        "LocalizedString": ("defaultValue",),
        "MerchantLocation": ("latitude", "longitude"),
    }
    ONE_OF: Mapping[str, tuple[str, ...]] = {
        "LoyaltyPointsBalance": ("double", "int", "money", "string"),
        "Image": ("sourceUri", "privateImageId"),
    }
    PATTERNS: Mapping[tuple[str, str], re.Pattern[str]] = {
        ("LoyaltyClass", "id"): _ID_RE,
        ("LoyaltyObject", "id"): _ID_RE,
        ("LoyaltyObject", "classId"): _ID_RE,
        ("LoyaltyClass", "hexBackgroundColor"): _COLOR_RE,
        ("OfferClass", "id"): _ID_RE,
        ("OfferObject", "id"): _ID_RE,
        ("OfferObject", "classId"): _ID_RE,
        ("OfferClass", "hexBackgroundColor"): _COLOR_RE,
    }
    MAX_ITEMS: Mapping[str, int] = {
        "messages": 10,
        "merchantLocations": 10,
        "valueAddedModuleData": 15,
    }
    READ_ONLY: frozenset[tuple[str, str]] = frozenset(
        {
            ("LoyaltyObject", "classReference"),
            ("LoyaltyObject", "hasUsers"),
            ("LoyaltyClass", "review"),
            ("OfferObject", "classReference"),
            ("OfferObject", "hasUsers"),
            ("OfferClass", "review"),
        }
    )
    URIS: frozenset[tuple[str, str]] = frozenset({("ImageUri", "uri"), ("Uri", "uri")})

    def __init__(self, document: Mapping[str, Any] | None = None, *, strict: bool = True) -> None:
        self.schemas: Mapping[str, Any] = (document or discovery_document())["schemas"]
        self.strict = strict

    def validate(self, schema: str, body: object, *, partial: bool = False) -> list[Issue]:
        """Return every problem with body as a schema resource; partial=True is for PATCH."""
        issues: list[Issue] = []
        self._object(schema, body, "resource", partial, issues)
        return issues

    def _object(
        self, schema: str, value: object, path: str, partial: bool, issues: list[Issue]
    ) -> None:
        if not isinstance(value, dict):
            issues.append(Issue(path, "invalid", f"Invalid value at '{path}': expected an object"))
            return
        props: Mapping[str, Any] = self.schemas[schema].get("properties", {})
        for name, item in value.items():
            where = f"{path}.{name}"
            spec = props.get(name)
            if spec is None:
                issues.append(
                    Issue(
                        where,
                        "invalid",
                        f"Invalid JSON payload received. Unknown name \"{name}\" at '{path}': "
                        "Cannot find field.",
                    )
                )
                continue
            if item is None:
                continue  # null means "unset" in Google's JSON mapping (and "delete" in PATCH)
            if (schema, name) in self.READ_ONLY:
                issues.append(Issue(where, "invalid", f"{where} is output only; strip it"))
                continue
            if self.strict and spec.get("deprecated"):
                issues.append(Issue(where, "deprecated", f"{where} is deprecated"))
                continue
            self._value(spec, item, where, partial, issues)
            pattern = self.PATTERNS.get((schema, name))
            if pattern and isinstance(item, str) and not pattern.fullmatch(item):
                issues.append(Issue(where, "invalidResource", f"Invalid resource ID: {item!r}"))
            if (schema, name) in self.URIS and isinstance(item, str):
                if not urlsplit(item).scheme:
                    issues.append(Issue(where, "invalid", f"{where}: URIs must have a scheme"))
            limit = self.MAX_ITEMS.get(name)
            if limit is not None and isinstance(item, list) and len(item) > limit:
                issues.append(Issue(where, "invalid", f"{where}: at most {limit} entries"))
        choices = self.ONE_OF.get(schema, ())
        present = [k for k in choices if value.get(k) is not None]
        if choices and (len(present) > 1 or (not partial and not present)):
            options = ", ".join(self.ONE_OF[schema])
            issues.append(Issue(path, "invalid", f"{path}: set exactly one of {options}"))
        if not partial:
            for name in self.REQUIRED.get(schema, ()):
                if value.get(name) in (None, ""):
                    issues.append(
                        Issue(f"{path}.{name}", "required", f"Missing required field {path}.{name}")
                    )

    def _value(
        self, spec: Mapping[str, Any], value: object, path: str, partial: bool, issues: list[Issue]
    ) -> None:
        ref = spec.get("$ref")
        if ref is not None:
            self._object(ref, value, path, partial, issues)
            return
        kind = spec.get("type")
        fmt = spec.get("format")
        bad = Issue(path, "invalid", f"Invalid value at '{path}' ({kind}/{fmt}), {value!r}")
        if kind == "array":
            if not isinstance(value, list):
                issues.append(bad)
                return
            for i, item in enumerate(value):
                if item is None:
                    issues.append(Issue(f"{path}[{i}]", "invalid", f"{path}[{i}] is null"))
                else:
                    self._value(spec["items"], item, f"{path}[{i}]", partial, issues)
            return
        if kind == "string":
            if fmt in ("int64", "uint64"):
                # Proto JSON writes 64-bit integers as strings and also accepts plain numbers.
                ok = (isinstance(value, str) and bool(_INT_STRING_RE.fullmatch(value))) or (
                    isinstance(value, int) and not isinstance(value, bool)
                )
            elif fmt == "byte":
                ok = isinstance(value, str) and _is_base64(value)
            else:
                ok = isinstance(value, str)
        elif kind == "integer":
            # Stricter than Google, which also takes "800": a string here is always our bug.
            ok = isinstance(value, int) and not isinstance(value, bool)
            if ok and fmt == "int32":
                ok = -(2**31) <= value <= 2**31 - 1  # type: ignore[operator]
            elif ok and fmt == "uint32":
                ok = 0 <= value <= 2**32 - 1  # type: ignore[operator]
        elif kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = True
        if not ok:
            issues.append(bad)
            return
        enum = spec.get("enum")
        if enum is not None:
            if value not in enum:
                issues.append(bad)
            elif self.strict and spec.get("enumDeprecated", [False] * len(enum))[enum.index(value)]:
                issues.append(Issue(path, "deprecated", f"{path}: {value!r} is a legacy alias"))


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        try:
            base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            return False
    return True


@functools.cache
def _default_validator() -> DiscoveryValidator:
    return DiscoveryValidator()


def validate_body(schema: str, body: object, *, partial: bool = False) -> list[Issue]:
    """Validate body against a walletobjects schema with the fake's strict rules."""
    return _default_validator().validate(schema, body, partial=partial)


def google_error(
    code: int,
    message: str,
    reason: str | None = None,
    *,
    domain: str = "global",
    extra: list[JsonDict] | None = None,
) -> JsonDict:
    """Return Google's JSON error envelope."""
    errors = extra or [
        {
            "message": message,
            "domain": domain,
            "reason": reason or _DEFAULT_REASONS.get(code, "error"),
        }
    ]
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": errors,
            "status": _STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki_b64(key: ec.EllipticCurvePublicKey) -> str:
    return _b64(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _lv(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


class CallbackSigner:
    """Plays Google's side of save/delete callbacks: root keys, intermediate key, signatures."""

    def __init__(self, issuer_id: str = DEFAULT_ISSUER_ID) -> None:
        self.issuer_id = issuer_id
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())

    def root_keys_document(
        self,
        *,
        expires: datetime | None = None,
        extra: list[JsonDict] | None = None,
    ) -> bytes:
        """Return the JSON Google serves at https://pay.google.com/gp/m/issuer/keys."""
        entry: JsonDict = {
            "keyValue": _spki_b64(self.root_key.public_key()),
            "protocolVersion": "ECv2SigningOnly",
        }
        if expires is not None:
            entry["keyExpiration"] = str(int(expires.timestamp() * 1000))
        return json.dumps({"keys": [entry, *(extra or [])]}).encode("utf-8")

    def sign(
        self,
        *,
        object_id: str,
        class_id: str,
        event_type: str = "save",
        now: datetime,
        message_ttl: timedelta = timedelta(minutes=5),
        key_ttl: timedelta = timedelta(days=7),
        nonce: str | None = None,
        recipient_id: str | None = None,
        protocol_version: str = "ECv2SigningOnly",
        root_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> JsonDict:
        """Return a callback body as Google would POST it to callbackOptions.url."""
        signed_key = json.dumps(
            {
                "keyValue": _spki_b64(self.intermediate_key.public_key()),
                "keyExpiration": str(int((now + key_ttl).timestamp() * 1000)),
            }
        )
        signed_message = json.dumps(
            {
                "classId": class_id,
                "objectId": object_id,
                "expTimeMillis": int((now + message_ttl).timestamp() * 1000),
                "eventType": event_type,
                "count": 1,
                "nonce": nonce or str(uuid.uuid4()),
            }
        )
        root = root_key or self.root_key
        key_signature = root.sign(
            _lv("GooglePayPasses", protocol_version, signed_key), ec.ECDSA(hashes.SHA256())
        )
        message_signature = self.intermediate_key.sign(
            _lv(
                "GooglePayPasses", recipient_id or self.issuer_id, protocol_version, signed_message
            ),
            ec.ECDSA(hashes.SHA256()),
        )
        return {
            "signature": _b64(message_signature),
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [_b64(key_signature)],
            },
            "protocolVersion": protocol_version,
            "signedMessage": signed_message,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake answered."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any  # parsed JSON, form fields for /token, or None
    status: int
    at: float  # time.monotonic() on arrival


@dataclass(frozen=True)
class Notification:
    """One user-visible notification Google would have tried to show."""

    target: str  # object or class id
    trigger: str  # "message" or "update"
    at: float  # fake wall-clock seconds
    delivered: bool  # False: over the 3-per-24 h budget


@dataclass
class _Failure:
    status: int
    reason: str
    message: str
    retry_after: float | None
    path_suffix: str | None = None  # only requests whose path ends with this fail


@dataclass
class _Reply:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: otherwise Nagle + delayed ACK add 40 ms per call.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the fake records requests itself; stderr noise hides test output

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.fake.handle(self.command, self.path, dict(self.headers.items()), raw)
        if isinstance(reply.payload, bytes | bytearray):
            data = bytes(reply.payload)
        else:
            data = json.dumps(reply.payload).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, joined by server_close(): no thread outlives the fake.
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: GoogleWalletFake) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def drop_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            # Wakes handler threads parked on idle keep-alive connections so they can be joined.
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


_ROUTE = re.compile(
    r"^/walletobjects/v1/(?P<kind>loyaltyClass|loyaltyObject|offerClass|offerObject)"
    r"(?:/(?P<rid>[^/]+))?(?:/(?P<action>addMessage|modifyLinkedOfferObjects))?$"
)
_SCHEMAS = {
    "loyaltyClass": "LoyaltyClass",
    "loyaltyObject": "LoyaltyObject",
    "offerClass": "OfferClass",
    "offerObject": "OfferObject",
}
_NOUNS = {
    "loyaltyClass": "Wallet Object Class",
    "loyaltyObject": "Wallet Object",
    "offerClass": "Wallet Object Class",
    "offerObject": "Wallet Object",
}
_CLASS_OF = {"loyaltyObject": "loyaltyClass", "offerObject": "offerClass"}
# Fields whose change can notify under NOTIFY_ON_UPDATE; Google's full allowlist is unpublished.
_NOTIFYING_FIELDS = ("loyaltyPoints", "secondaryLoyaltyPoints")


@functools.cache
def _session_key() -> rsa.RSAPrivateKey:
    # Generated once per test session (2048-bit generation takes up to a second); pass
    # private_key= for a fake with its own key.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class GoogleWalletFake:
    """Google Wallet REST + OAuth on 127.0.0.1, in memory; use as a context manager."""

    def __init__(
        self,
        *,
        issuer_id: str = DEFAULT_ISSUER_ID,
        rate_limit_per_second: float | None = None,
        rate_limit_status: int = 429,
        notification_limit: int = 3,
        message_overflow: str = "reject",
        strict: bool = True,
        token_lifetime: int = 3599,
        private_key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        if message_overflow not in ("reject", "drop_oldest"):
            raise ValueError("message_overflow is 'reject' or 'drop_oldest'")
        self.issuer_id = issuer_id
        self.rate_limit_per_second = rate_limit_per_second
        self.rate_limit_status = rate_limit_status
        self.notification_limit = notification_limit
        self.message_overflow = message_overflow
        self.token_lifetime = token_lifetime
        self.validator = DiscoveryValidator(strict=strict)
        self.callbacks = CallbackSigner(issuer_id)
        self.classes: dict[str, JsonDict] = {}
        self.objects: dict[str, JsonDict] = {}
        self.offer_classes: dict[str, JsonDict] = {}
        self.offer_objects: dict[str, JsonDict] = {}
        self.has_users: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.notifications: list[Notification] = []
        self.tokens_issued = 0
        self.throttled = 0
        self.crashes: list[str] = []  # exceptions inside the fake itself; tests expect none
        self._tokens: dict[str, float] = {}
        self._failures: deque[_Failure] = deque()
        self._window: deque[float] = deque()
        self._clock_offset = 0.0
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._private_key = private_key or _session_key()
        self.private_key_id = secrets.token_hex(20)
        self.service_account_email = "walletd-test@walletd-fake.iam.gserviceaccount.com"
        self.credentials_path = Path()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> GoogleWalletFake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind a free loopback port, serve in a thread, write the service-account key file."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="google-wallet-fake",
            daemon=True,
        )
        self._thread.start()
        self._tmp = tempfile.TemporaryDirectory(prefix="google-wallet-fake-")
        self.credentials_path = Path(self._tmp.name) / "service-account.json"
        self.credentials_path.write_text(json.dumps(self.credentials_info), encoding="utf-8")

    def stop(self) -> None:
        """Stop serving, close every connection and join every thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.drop_connections()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        if self._server is None:
            raise RuntimeError("fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        """REST base to pass as the client's api_url."""
        return self.base_url + API_PREFIX

    @property
    def token_uri(self) -> str:
        """OAuth token endpoint written into the service-account file."""
        return self.base_url + "/token"

    @property
    def keys_url(self) -> str:
        """Where the fake serves the callback root keys."""
        return self.base_url + "/gp/m/issuer/keys"

    @property
    def credentials_info(self) -> dict[str, str]:
        """The service-account JSON key, with token_uri pointing at the fake."""
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return {
            "type": "service_account",
            "project_id": "walletd-fake",
            "private_key_id": self.private_key_id,
            "private_key": pem,
            "client_email": self.service_account_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri if self._server else GOOGLE_TOKEN_AUDIENCE,
            "universe_domain": "googleapis.com",
        }

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        reason: str | None = None,
        message: str = "injected failure",
        retry_after: float | None = None,
        path_suffix: str | None = None,
    ) -> None:
        """Answer the next count authenticated API requests (ending with path_suffix) with this."""
        with self._lock:
            for _ in range(count):
                self._failures.append(
                    _Failure(
                        status,
                        reason or _DEFAULT_REASONS.get(status, "error"),
                        message,
                        retry_after,
                        path_suffix,
                    )
                )

    def reset(self) -> None:
        """Forget resources, records, failures and counters; issued tokens stay valid."""
        with self._lock:
            self.classes.clear()
            self.objects.clear()
            self.offer_classes.clear()
            self.offer_objects.clear()
            self.has_users.clear()
            self.requests.clear()
            self.notifications.clear()
            self.crashes.clear()
            self._failures.clear()
            self._window.clear()
            self.tokens_issued = 0
            self.throttled = 0
            self._clock_offset = 0.0

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The service account's public key, to check what the client signed."""
        return self._private_key.public_key()

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (the next API call gets 401)."""
        with self._lock:
            self._tokens.clear()

    def advance_time(self, seconds: float) -> None:
        """Move the fake's notion of wall time forward (for the 24 h notification window)."""
        with self._lock:
            self._clock_offset += seconds

    def api_requests(self) -> list[RecordedRequest]:
        """Recorded requests to the REST API (not /token or keys)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(API_PREFIX)]

    def notifications_for(self, target: str, *, delivered: bool = True) -> list[Notification]:
        """Notifications recorded for one object or class."""
        with self._lock:
            return [
                n for n in self.notifications if n.target == target and n.delivered == delivered
            ]

    def _now(self) -> float:
        return time.time() + self._clock_offset

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> _Reply:
        """Answer one HTTP request (called from the server's handler threads)."""
        arrived = time.monotonic()
        split = urlsplit(target)
        path = unquote(split.path)
        with self._lock:
            body: Any = None
            try:
                if path == "/token" and method == "POST":
                    body = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
                    reply = self._token(body)
                elif path == "/gp/m/issuer/keys" and method == "GET":
                    reply = _Reply(200, self.callbacks.root_keys_document())
                elif path.startswith(API_PREFIX + "/"):
                    body, reply = self._api(method, path, headers, raw)
                else:
                    reply = _Reply(404, google_error(404, f"Not found: {path}"))
            except Exception as exc:  # a fake bug must show up as a 500, not a hung client
                self.crashes.append(repr(exc))
                reply = _Reply(500, google_error(500, f"fake crashed: {exc!r}"))
            lowered = {k.lower(): v for k, v in headers.items()}
            self.requests.append(
                RecordedRequest(method, path, split.query, lowered, body, reply.status, arrived)
            )
            return reply

    def _token(self, form: Mapping[str, str]) -> _Reply:
        def refuse(description: str) -> _Reply:
            return _Reply(400, {"error": "invalid_grant", "error_description": description})

        if form.get("grant_type") != JWT_BEARER_GRANT:
            return _Reply(400, {"error": "unsupported_grant_type", "error_description": "grant"})
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return refuse("Invalid JWT: malformed assertion")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            return refuse("Invalid JWT: not base64url JSON")
        if header.get("alg") != "RS256":
            return refuse("Invalid JWT: alg must be RS256")
        if header.get("kid") not in (None, self.private_key_id):
            return refuse("Invalid JWT Signature: unknown key id")
        try:
            self._private_key.public_key().verify(
                signature,
                f"{parts[0]}.{parts[1]}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return refuse("Invalid JWT Signature.")
        now = time.time()
        if claims.get("iss") != self.service_account_email:
            return refuse("Invalid JWT: iss is not the service account")
        if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
            return refuse("Invalid JWT: Failed audience check.")
        if WALLET_SCOPE not in str(claims.get("scope", "")).split():
            return refuse("Invalid JWT: missing the wallet_object.issuer scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return refuse("Invalid JWT: iat and exp are required")
        if iat > now + 300 or exp <= now or exp - iat > 3600:
            return refuse(
                "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
            )
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._tokens[token] = time.monotonic() + self.token_lifetime
        self.tokens_issued += 1
        return _Reply(
            200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.partition(" ")
        expiry = self._tokens.get(token)
        return scheme == "Bearer" and expiry is not None and expiry > time.monotonic()

    def _throttle(self) -> _Reply | None:
        if self.rate_limit_per_second is None:
            return None
        now = time.monotonic()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit_per_second:
            self.throttled += 1
            reason = "rateLimitExceeded"
            return _Reply(
                self.rate_limit_status,
                google_error(
                    self.rate_limit_status, "Rate Limit Exceeded", reason, domain="usageLimits"
                ),
            )
        self._window.append(now)
        return None

    def _api(
        self, method: str, path: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[Any, _Reply]:
        if not self._authorized(headers):
            return None, _Reply(
                401,
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                    "authError",
                ),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        throttled = self._throttle()
        if throttled is not None:
            return None, throttled
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return raw.decode("utf-8", "replace"), _Reply(
                    400, google_error(400, "Invalid JSON payload received.", "parseError")
                )
        failure = next(
            (f for f in self._failures if f.path_suffix is None or path.endswith(f.path_suffix)),
            None,
        )
        if failure is not None:
            self._failures.remove(failure)
            extra = (
                {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            )
            domain = "usageLimits" if "ate" in failure.reason else "walletobjects"
            return body, _Reply(
                failure.status,
                google_error(failure.status, failure.message, failure.reason, domain=domain),
                extra,
            )
        match = _ROUTE.match(path)
        if match is None:
            return body, _Reply(404, google_error(404, f"Not found: {path}"))
        kind, rid, action = match["kind"], match["rid"], match["action"]
        if method in ("POST", "PATCH", "PUT") and not isinstance(body, dict):
            return body, _Reply(
                400,
                google_error(
                    400,
                    'Invalid JSON payload received. Unknown name "": Root element must be a '
                    "message.",
                    "invalid",
                ),
            )
        if rid is None and method == "POST":
            return body, self._insert(kind, body)
        if rid is not None and action is None and method == "GET":
            return body, self._get(kind, rid)
        if rid is not None and action is None and method in ("PATCH", "PUT"):
            return body, self._update(kind, rid, body, replace=method == "PUT")
        if rid is not None and action == "addMessage" and method == "POST":
            return body, self._add_message(kind, rid, body)
        if (
            rid is not None
            and action == "modifyLinkedOfferObjects"
            and kind == "loyaltyObject"
            and method == "POST"
        ):
            return body, self._modify_linked_offers(rid, body)
        return body, _Reply(404, google_error(404, f"Method not found: {method} {path}"))

    # -- resources ---------------------------------------------------------------------------

    def _store(self, kind: str) -> dict[str, JsonDict]:
        return {
            "loyaltyClass": self.classes,
            "loyaltyObject": self.objects,
            "offerClass": self.offer_classes,
            "offerObject": self.offer_objects,
        }[kind]

    def _invalid(self, issues: list[Issue]) -> _Reply:
        return _Reply(
            400,
            google_error(
                400,
                issues[0].message,
                extra=[
                    {
                        "message": i.message,
                        "domain": "global",
                        "reason": i.reason,
                        "location": i.path,
                    }
                    for i in issues
                ],
            ),
        )

    def _check_id(self, kind: str, resource_id: str) -> _Reply | None:
        if not _ID_RE.fullmatch(resource_id):
            return _Reply(
                400,
                google_error(
                    400,
                    f"Invalid resource ID: {resource_id}",
                    "invalidResource",
                    domain="walletobjects",
                ),
            )
        if resource_id.split(".", 1)[0] != self.issuer_id:
            return _Reply(403, google_error(403, "Permission denied.", "permissionDenied"))
        return None

    def _not_found(self, kind: str, resource_id: str) -> _Reply:
        return _Reply(
            404,
            google_error(
                404,
                f"{_NOUNS[kind]} {resource_id} not found",
                "resourceNotFound",
                domain="walletobjects",
            ),
        )

    def _render(self, kind: str, stored: JsonDict) -> JsonDict:
        out = copy.deepcopy(stored)
        if kind in _CLASS_OF:
            cls = self._store(_CLASS_OF[kind]).get(stored["classId"])
            if cls is not None:
                out["classReference"] = copy.deepcopy(cls)
            out["hasUsers"] = stored["id"] in self.has_users
        return out

    def _semantics(
        self, kind: str, resource: JsonDict, previous: JsonDict | None, sent: JsonDict
    ) -> _Reply | None:
        """Rules beyond the schema that Google enforces on the whole resource."""
        if kind not in _CLASS_OF:
            status = sent.get("reviewStatus")
            if status in ("APPROVED", "approved", "REJECTED", "rejected"):
                return self._invalid(
                    [
                        Issue(
                            "resource.reviewStatus",
                            "invalid",
                            "reviewStatus may only be set to DRAFT or UNDER_REVIEW",
                        )
                    ]
                )
            if (
                previous is not None
                and previous.get("reviewStatus") == "APPROVED"
                and status not in ("UNDER_REVIEW", "underReview")
            ):
                return self._invalid(
                    [
                        Issue(
                            "resource.reviewStatus",
                            "invalid",
                            "Updating an approved class requires reviewStatus UNDER_REVIEW",
                        )
                    ]
                )
        else:
            class_kind = _CLASS_OF[kind]
            problem = self._check_id(class_kind, resource["classId"])
            if problem is not None:
                return problem
            cls = self._store(class_kind).get(resource["classId"])
            if cls is None:
                return self._not_found(class_kind, resource["classId"])
            if cls.get("reviewStatus") == "DRAFT":
                return self._invalid(
                    [Issue("resource.classId", "invalid", "A DRAFT class cannot have objects")]
                )
        return None

    def _settle(self, kind: str, resource: JsonDict) -> JsonDict:
        stored = {k: v for k, v in resource.items() if v is not None and k != "notifyPreference"}
        if kind not in _CLASS_OF and stored.get("reviewStatus") in ("UNDER_REVIEW", "underReview"):
            # The platform approves UNDER_REVIEW classes at once.
            stored["reviewStatus"] = "APPROVED"
        return copy.deepcopy(stored)

    def _insert(self, kind: str, body: JsonDict) -> _Reply:
        schema = _SCHEMAS[kind]
        issues = self.validator.validate(schema, body)
        if issues:
            return self._invalid(issues)
        problem = self._check_id(kind, body["id"])
        if problem is not None:
            return problem
        store = self._store(kind)
        if body["id"] in store:
            return _Reply(
                409,
                google_error(
                    409,
                    f"Resource already exists: {_NOUNS[kind]} {body['id']} already exists",
                    "duplicate",
                ),
            )
        problem = self._semantics(kind, body, None, body)
        if problem is not None:
            return problem
        store[body["id"]] = self._settle(kind, body)
        return _Reply(200, self._render(kind, store[body["id"]]))

    def _get(self, kind: str, rid: str) -> _Reply:
        problem = self._check_id(kind, rid)
        if problem is not None:
            return problem
        stored = self._store(kind).get(rid)
        if stored is None:
            return self._not_found(kind, rid)
        return _Reply(200, self._render(kind, stored))

    def _update(self, kind: str, rid: str, body: JsonDict, *, replace: bool) -> _Reply:
        schema = _SCHEMAS[kind]
        issues = self.validator.validate(schema, body, partial=not replace)
        if issues:
            return self._invalid(issues)
        if body.get("id") not in (None, rid):
            return self._invalid([Issue("resource.id", "invalid", "id does not match the URL")])
        problem = self._check_id(kind, rid)
        if problem is not None:
            return problem
        store = self._store(kind)
        previous = store.get(rid)
        if previous is None:
            return self._not_found(kind, rid)
        merged = copy.deepcopy(body) if replace else _merge(previous, body)
        merged["id"] = rid
        issues = self.validator.validate(schema, merged)
        if issues:
            return self._invalid(issues)
        problem = self._semantics(kind, merged, previous, body)
        if problem is not None:
            return problem
        if body.get("notifyPreference") == "NOTIFY_ON_UPDATE":
            changed = any(merged.get(f) != previous.get(f) for f in _NOTIFYING_FIELDS)
            if changed:
                self._notify(rid, "update")
        store[rid] = self._settle(kind, merged)
        return _Reply(200, self._render(kind, store[rid]))

    def _budget_left(self, target: str) -> bool:
        since = self._now() - NOTIFICATION_WINDOW
        used = sum(
            1 for n in self.notifications if n.target == target and n.delivered and n.at > since
        )
        return used < self.notification_limit

    def _notify(self, target: str, trigger: str) -> bool:
        delivered = self._budget_left(target)
        self.notifications.append(Notification(target, trigger, self._now(), delivered))
        return delivered

    def _add_message(self, kind: str, rid: str, body: JsonDict) -> _Reply:
        issues = self.validator.validate("AddMessageRequest", body)
        if issues:
            return self._invalid(issues)
        problem = self._check_id(kind, rid)
        if problem is not None:
            return problem
        stored = self._store(kind).get(rid)
        if stored is None:
            return self._not_found(kind, rid)
        message: JsonDict = copy.deepcopy(body["message"])
        message_type = message.get("messageType", "TEXT")
        if message_type in ("EXPIRATION_NOTIFICATION", "expirationNotification"):
            return self._invalid(
                [
                    Issue(
                        "resource.message.messageType",
                        "invalid",
                        "EXPIRATION_NOTIFICATION is not supported",
                    )
                ]
            )
        messages: list[JsonDict] = [
            m
            for m in stored.get("messages", [])
            if "id" not in message or m.get("id") != message["id"]
        ]
        messages.append(message)
        if len(messages) > 10:
            if self.message_overflow == "reject":
                return self._invalid(
                    [
                        Issue(
                            "resource.messages",
                            "invalid",
                            f"{_NOUNS[kind]} {rid} already has the maximum of 10 messages",
                        )
                    ]
                )
            messages = messages[-10:]
        if message_type == "TEXT_AND_NOTIFY":
            if not self._budget_left(rid):
                self.notifications.append(Notification(rid, "message", self._now(), False))
                noun = "object" if kind in _CLASS_OF else "class"
                return _Reply(
                    403,
                    google_error(
                        403,
                        f"Quota exceeded for issuer ({self.issuer_id}) when adding "
                        f"TEXT_AND_NOTIFY message to {noun} {rid}",
                        "quotaExceeded",
                        domain="walletobjects",
                    ),
                )
            self._notify(rid, "message")
        stored["messages"] = messages
        return _Reply(200, {"resource": self._render(kind, stored)})

    def _modify_linked_offers(self, rid: str, body: JsonDict) -> _Reply:
        issues = self.validator.validate("ModifyLinkedOfferObjectsRequest", body)
        if issues:
            return self._invalid(issues)
        problem = self._check_id("loyaltyObject", rid)
        if problem is not None:
            return problem
        stored = self.objects.get(rid)
        if stored is None:
            return self._not_found("loyaltyObject", rid)
        changes = body["linkedOfferObjectIds"]
        add = list(changes.get("addLinkedOfferObjectIds") or [])
        remove = set(changes.get("removeLinkedOfferObjectIds") or [])
        for offer_id in [*add, *remove]:
            problem = self._check_id("offerObject", offer_id)
            if problem is not None:
                return problem
        missing = [offer_id for offer_id in add if offer_id not in self.offer_objects]
        if missing:
            return self._invalid(
                [
                    Issue(
                        "resource.linkedOfferObjectIds.addLinkedOfferObjectIds",
                        "invalid",
                        f"Offer object {missing[0]} does not exist; insert it before linking",
                    )
                ]
            )
        linked = [i for i in stored.get("linkedOfferIds", []) if i not in remove]
        linked += [i for i in dict.fromkeys(add) if i not in linked]
        if linked:
            stored["linkedOfferIds"] = linked
        else:
            stored.pop("linkedOfferIds", None)
        return _Reply(200, self._render("loyaltyObject", stored))


def _merge(base: JsonDict, patch: Mapping[str, Any]) -> JsonDict:
    """Google PATCH: objects merge recursively, arrays replace, null deletes."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def iter_issues(issues: list[Issue]) -> Iterator[str]:
    """Render issues one per line, for assertion messages."""
    for issue in issues:
        yield f"{issue.path}: {issue.reason}: {issue.message}"
