"""A real HTTP/2-over-TLS fake of the APNs provider API, for tests and benchmarks on loopback.

Run standalone for benchmarks (serves until SIGINT/SIGTERM, keeps only counters by default):

    python -m tests.fakes.apns_server --port 8443 --ca-out /tmp/apns-ca.pem [--until-stdin-closes]

It prints one JSON line (url, port, ca_file) when ready, and its counters on exit (stderr, and
`--stats-out FILE`). `GET /_fake/stats` on the same port answers the counters as JSON meanwhile;
with `--max-recorded N`, `GET /_fake/tokens?after=K` answers the tokens pushed since the K-th
recorded request (bench/campaign.py --fetch: its devices fetch their passes as pushes arrive).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import ipaddress
import itertools
import json
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Real APNs limits, so oversized requests fail here as they would in production.
MAX_PAYLOAD_BYTES = 4096
PROVIDER_TOKEN_MAX_AGE = 3600.0
_PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "pushtotalk",
        "widgets",
        "controls",
    }
)
_HEX = frozenset("0123456789abcdefABCDEF")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --- throwaway certificates -------------------------------------------------------------------


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its private key, in memory and as PEM files."""

    cert_file: Path
    key_file: Path
    certificate: x509.Certificate
    key: PrivateKey


def _write_pair(
    directory: Path,
    stem: str,
    certificate: x509.Certificate,
    key: PrivateKey,
    key_password: bytes | None = None,
) -> CertFiles:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / f"{stem}.pem"
    key_file = directory / f"{stem}-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(key_password)
        if key_password
        else serialization.NoEncryption()
    )
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return CertFiles(cert_file, key_file, certificate, key)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return builder.not_valid_before(now - timedelta(minutes=5)).not_valid_after(
        now + timedelta(days=2)
    )


def make_ca(directory: Path, stem: str, common_name: str) -> CertFiles:
    """Create a self-signed throwaway CA and write it as `<stem>.pem` / `<stem>-key.pem`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    )
    return _write_pair(directory, stem, builder.sign(key, hashes.SHA256()), key)


def issue_cert(
    ca: CertFiles,
    directory: Path,
    stem: str,
    subject: x509.Name,
    *,
    server_hosts: Sequence[str] = (),
    key: PrivateKey | None = None,
    key_password: bytes | None = None,
) -> CertFiles:
    """Issue a leaf certificate from `ca`: server auth if `server_hosts` is given, else client."""
    leaf_key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_hosts else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server_hosts:
        names: list[x509.GeneralName] = []
        for host in server_hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca.key, hashes.SHA256())
    return _write_pair(directory, stem, certificate, leaf_key, key_password)


def pass_type_subject(pass_type_id: str, team_id: str) -> x509.Name:
    """The subject Apple puts on a Pass Type ID certificate."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, pass_type_id),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {pass_type_id}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Brand"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


# --- what the fake records and how it answers ---------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, with the answer it gave."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    token: str | None
    client_subject: str | None
    received_at: float
    connection_id: int
    stream_id: int
    status: int
    reason: str | None


@dataclass(frozen=True)
class ProviderTokenKey:
    """The team key the fake accepts for token (JWT) authentication."""

    public_key: ec.EllipticCurvePublicKey
    key_id: str
    team_id: str


@dataclass
class _Answer:
    status: int
    reason: str | None = None
    timestamp_ms: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    remaining: int | None = None


@dataclass
class _Stream:
    headers: list[tuple[str, str]]
    body: bytearray = field(default_factory=bytearray)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class ApnsFakeServer:
    """HTTP/2 + TLS server on 127.0.0.1 that validates, records and answers like APNs."""

    def __init__(
        self,
        directory: Path,
        *,
        require_client_cert_ca: Path | None = None,
        provider_token_key: ProviderTokenKey | None = None,
        expected_topic: str | None = None,
        max_concurrent_streams: int = 1000,
        response_delay: float = 0.0,
        max_recorded: int | None = None,
        port: int = 0,
    ) -> None:
        self._directory = directory
        self._client_ca = require_client_cert_ca
        self._provider_key = provider_token_key
        self._expected_topic = expected_topic
        self._max_streams = max_concurrent_streams
        self._response_delay = response_delay
        self._requested_port = port
        self._lock = threading.Lock()
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=max_recorded)
        self._record = max_recorded != 0
        self._recorded_total = 0  # requests ever recorded: /_fake/tokens counts in these
        self._default = _Answer(200)
        self._overrides: dict[str, _Answer] = {}
        self._jwts_seen: dict[str, None] = {}
        self._expired_jwts: set[str] = set()
        self._status_counts: collections.Counter[int] = collections.Counter()
        self._request_count = 0
        self._connections_opened = 0
        self._max_streams_seen = 0
        self._errors: list[str] = []
        self._live: dict[int, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self.port = 0
        self.ca_file = directory / "apns-fake-ca.pem"

    # -- lifecycle --

    def start(self) -> Self:
        """Generate certificates, bind an ephemeral port and serve on a background thread."""
        ca = make_ca(self._directory, "apns-fake-ca", "walletd APNs fake CA")
        leaf = issue_cert(
            ca,
            self._directory,
            "apns-fake-server",
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
            server_hosts=("localhost", "127.0.0.1"),
        )
        # A bare server context: only the CA given below may vouch for client certificates.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(leaf.cert_file), str(leaf.key_file))
        context.set_alpn_protocols(["h2"])
        if self._client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cafile=str(self._client_ca))

        # Binding here (not via host name) avoids getaddrinfo, which would start an executor thread.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._requested_port))
            sock.listen(512)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]

        loop = asyncio.new_event_loop()
        loop.set_exception_handler(self._on_loop_error)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), sock=sock, ssl=context, backlog=512)
            )
        except BaseException:
            sock.close()
            loop.close()
            raise
        self._thread = threading.Thread(target=loop.run_forever, name="apns-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener, then stop and join the server thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        connections = list(self._live.values())
        for connection in connections:
            connection.goaway()
        # Give clients a moment to read the GOAWAY; anything still open after that is cut.
        deadline = time.monotonic() + 1.0
        while any(not c.lost for c in connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in connections:
            connection.abort()
        await asyncio.sleep(0)
        await self._server.wait_closed()
        loop = asyncio.get_running_loop()
        await loop.shutdown_asyncgens()
        await loop.shutdown_default_executor()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- programming answers --

    @property
    def url(self) -> str:
        """Base URL to hand to the client, e.g. https://127.0.0.1:49152."""
        return f"https://127.0.0.1:{self.port}"

    def set_default_response(
        self,
        status: int = 200,
        reason: str | None = None,
        *,
        retry_after: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer every token without an override like this (after `delay` seconds)."""
        with self._lock:
            self._default = _Answer(status, reason, retry_after=retry_after, delay=delay)

    def respond(
        self,
        token: str,
        *,
        status: int,
        reason: str | None = None,
        timestamp_ms: int | None = None,
        retry_after: str | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer pushes to `token` like this (only the next `times` ones when given)."""
        with self._lock:
            self._overrides[token.lower()] = _Answer(
                status, reason, timestamp_ms, retry_after, delay, times
            )

    def expire_provider_tokens(self) -> None:
        """Treat every JWT seen so far as older than an hour (403 ExpiredProviderToken)."""
        with self._lock:
            self._expired_jwts.update(self._jwts_seen)

    def drop_connections(self) -> None:
        """Send GOAWAY (reason Shutdown) on every open connection and close it, like APNs does."""
        loop = self._loop
        if loop is None:
            return

        async def drop() -> None:
            for connection in list(self._live.values()):
                connection.goaway(b'{"reason":"Shutdown"}')

        asyncio.run_coroutine_threadsafe(drop(), loop).result(timeout=5)

    # -- observations --

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._lock:
            return list(self._records)

    def requests_for(self, token: str) -> list[RecordedRequest]:
        """Recorded requests addressed to `token`."""
        return [r for r in self.requests if r.token == token.lower()]

    @property
    def connections_opened(self) -> int:
        """How many TLS+h2 connections were accepted in total."""
        with self._lock:
            return self._connections_opened

    @property
    def max_concurrent_streams_seen(self) -> int:
        """The most requests that were open at once on a single connection."""
        with self._lock:
            return self._max_streams_seen

    @property
    def provider_tokens_seen(self) -> list[str]:
        """Distinct JWTs presented, in first-seen order."""
        with self._lock:
            return list(self._jwts_seen)

    @property
    def errors(self) -> list[str]:
        """Unexpected errors inside the server (tests assert this stays empty)."""
        with self._lock:
            return list(self._errors)

    def stats(self) -> dict[str, Any]:
        """Counters only, cheap enough to poll during a benchmark."""
        with self._lock:
            return {
                "requests": self._request_count,
                "statuses": {str(k): v for k, v in sorted(self._status_counts.items())},
                "connections_opened": self._connections_opened,
                "open_connections": len(self._live),
                "max_concurrent_streams_seen": self._max_streams_seen,
                "provider_tokens_seen": len(self._jwts_seen),
                "errors": len(self._errors),
            }

    def _tokens_after(self, path: str) -> bytes:
        """The tokens pushed (answered 200) after the K-th request ever recorded, for a benchmark's
        devices that fetch their passes as pushes arrive; `after=-1` starts from now."""
        after = int(path.rsplit("=", 1)[1])
        with self._lock:
            first = self._recorded_total - len(self._records)  # the oldest one still kept
            start = self._recorded_total if after < 0 else max(after, first)
            # At most 500 records an answer: the body stays inside one h2 flow-control window.
            recorded = list(itertools.islice(self._records, start - first, start - first + 500))
        tokens = [r.token for r in recorded if r.status == 200 and r.token]
        return json.dumps({"tokens": tokens, "next": start + len(recorded)}).encode()

    # -- called from the server thread --

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, ssl.SSLError | ConnectionError):
            # Refused handshakes (no or untrusted client certificate) are the fake doing its job;
            # asyncio reports them only in debug mode anyway.
            return
        with self._lock:
            self._errors.append(str(exc or context.get("message")))

    def _connection_opened(self, connection: _Connection) -> int:
        with self._lock:
            self._connections_opened += 1
            connection_id = self._connections_opened
            self._live[connection_id] = connection
            return connection_id

    def _connection_closed(self, connection_id: int) -> None:
        with self._lock:
            self._live.pop(connection_id, None)

    def _note_streams(self, open_streams: int) -> None:
        with self._lock:
            self._max_streams_seen = max(self._max_streams_seen, open_streams)

    def _note_error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    def _answer(
        self, connection: _Connection, stream_id: int, stream: _Stream
    ) -> tuple[int, list[tuple[str, str]], bytes, float]:
        """Validate like APNs, pick the programmed answer, record; returns status/headers/body."""
        headers: dict[str, str] = {}
        duplicated = False
        for name, value in stream.headers:
            if name in headers and not name.startswith(":"):
                duplicated = True
            headers[name] = value
        method = headers.get(":method", "")
        path = headers.get(":path", "")
        body = bytes(stream.body)

        if method == "GET" and path == "/_fake/stats":
            return 200, [("content-type", "application/json")], json.dumps(self.stats()).encode(), 0
        if method == "GET" and path.startswith("/_fake/tokens?after="):
            return 200, [("content-type", "application/json")], self._tokens_after(path), 0

        token: str | None = None
        if path.startswith("/3/device/"):
            token = path.removeprefix("/3/device/").lower()
        answer: _Answer
        jwt: str | None = None
        with self._lock:
            if method != "POST":
                answer = _Answer(405, "MethodNotAllowed")
            elif token is None or "/" in token or "?" in token:
                answer = _Answer(404, "BadPath")
            elif not token:
                answer = _Answer(400, "MissingDeviceToken")
            elif not set(token) <= _HEX:
                answer = _Answer(400, "BadDeviceToken")
            elif duplicated:
                answer = _Answer(400, "DuplicateHeaders")
            else:
                auth_reason, jwt = self._check_provider_token(headers.get("authorization"))
                answer = self._validate(headers, body, auth_reason) or self._programmed(token)
            self._request_count += 1
            self._status_counts[answer.status] += 1
            if self._record:
                self._recorded_total += 1
                self._records.append(
                    RecordedRequest(
                        method=method,
                        path=path,
                        headers=headers,
                        body=body,
                        token=token,
                        client_subject=connection.client_subject,
                        received_at=time.time(),
                        connection_id=connection.connection_id,
                        stream_id=stream_id,
                        status=answer.status,
                        reason=answer.reason,
                    )
                )

        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        response_headers = [("apns-id", apns_id)]
        if answer.retry_after is not None:
            response_headers.append(("retry-after", answer.retry_after))
        response_body = b""
        if answer.status != 200:
            error: dict[str, object] = {"reason": answer.reason or "InternalServerError"}
            if answer.timestamp_ms is not None:
                error["timestamp"] = answer.timestamp_ms
            response_body = json.dumps(error).encode()
            response_headers.append(("content-type", "application/json"))
        return answer.status, response_headers, response_body, answer.delay + self._response_delay

    def _validate(
        self, headers: dict[str, str], body: bytes, auth_reason: str | None
    ) -> _Answer | None:
        if auth_reason is not None:
            return _Answer(403, auth_reason)
        topic = headers.get("apns-topic")
        if not topic:
            return _Answer(400, "MissingTopic")
        if self._expected_topic is not None and topic != self._expected_topic:
            return _Answer(400, "DeviceTokenNotForTopic")
        push_type = headers.get("apns-push-type")
        if push_type is not None and push_type not in _PUSH_TYPES:
            return _Answer(400, "InvalidPushType")
        priority = headers.get("apns-priority")
        if priority is not None and priority not in ("1", "5", "10"):
            return _Answer(400, "BadPriority")
        if push_type == "background" and priority == "10":
            return _Answer(400, "BadPriority")
        if not body:
            return _Answer(400, "PayloadEmpty")
        if len(body) > MAX_PAYLOAD_BYTES:
            return _Answer(413, "PayloadTooLarge")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _Answer(400, "BadPayload")
        return None

    def _programmed(self, token: str) -> _Answer:
        answer = self._overrides.get(token)
        if answer is None:
            return self._default
        if answer.remaining is not None:
            answer.remaining -= 1
            if answer.remaining <= 0:
                del self._overrides[token]
        return answer

    def _check_provider_token(self, authorization: str | None) -> tuple[str | None, str | None]:
        """Verify an ES256 provider JWT; returns (403 reason or None, the JWT)."""
        key = self._provider_key
        if key is None:
            return None, None
        if not authorization or not authorization.lower().startswith("bearer "):
            return "MissingProviderToken", None
        jwt = authorization[len("bearer ") :].strip()
        self._jwts_seen.setdefault(jwt, None)
        try:
            header_b64, claims_b64, signature_b64 = jwt.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            return "InvalidProviderToken", jwt
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return "InvalidProviderToken", jwt
        if header.get("alg") != "ES256" or len(signature) != 64:
            return "InvalidProviderToken", jwt
        if header.get("kid") != key.key_id:
            return "InvalidProviderToken", jwt
        if claims.get("iss") != key.team_id:
            return "InvalidProviderToken", jwt
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            key.public_key.verify(
                der, f"{header_b64}.{claims_b64}".encode("ascii"), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return "InvalidProviderToken", jwt
        issued_at = claims.get("iat")
        if not isinstance(issued_at, int) or isinstance(issued_at, bool):
            return "InvalidProviderToken", jwt
        if jwt in self._expired_jwts or time.time() - issued_at > PROVIDER_TOKEN_MAX_AGE:
            return "ExpiredProviderToken", jwt
        return None, jwt


class _Connection(asyncio.Protocol):
    """One accepted TLS connection speaking HTTP/2 (server side)."""

    def __init__(self, server: ApnsFakeServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._streams: dict[int, _Stream] = {}
        self._in_flight: set[int] = set()
        self._unsent: dict[int, bytes] = {}
        self.connection_id = 0
        self.client_subject: str | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject) or ssl_object.selected_alpn_protocol() != "h2":
            # APNs speaks HTTP/2 only; a client that did not negotiate it is turned away.
            self._server._note_error("client did not negotiate ALPN h2")
            self.lost = True
            transport.abort()
            return
        peer = ssl_object.getpeercert(binary_form=True)
        if peer:
            self.client_subject = x509.load_der_x509_certificate(peer).subject.rfc4514_string()
        self.connection_id = self._server._connection_opened(self)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self._server._max_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self._h2.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.connection_id:
            self._server._connection_closed(self.connection_id)

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._server._note_error(f"HTTP/2 protocol error from client: {exc!r}")
            self._flush()
            self.abort()
            return
        completed: list[int] = []
        for event in events:
            if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
                headers = [(str(k), str(v)) for k, v in event.headers or []]
                self._streams[event.stream_id] = _Stream(headers)
                self._in_flight.add(event.stream_id)
            elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
                stream = self._streams.get(event.stream_id)
                if stream is not None and event.data:
                    stream.body += event.data
                self._h2.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id is not None:
                completed.append(event.stream_id)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id is not None:
                self._forget(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_unsent()
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._flush()
                if self._transport is not None:
                    self._transport.close()
                return
        # Answering after the whole read lets the counter see every stream the client had open.
        self._server._note_streams(len(self._in_flight))
        for stream_id in completed:
            self._handle(stream_id)
        self._flush()

    def _handle(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        status, headers, body, delay = self._server._answer(self, stream_id, stream)
        if delay > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self._respond_later, stream_id, status, headers, body)
        else:
            self._respond(stream_id, status, headers, body)

    def _respond_later(
        self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self._respond(stream_id, status, headers, body)
        self._flush()

    def _respond(
        self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        if self.lost or stream_id not in self._in_flight:
            return
        try:
            self._h2.send_headers(
                stream_id, [(":status", str(status)), *headers], end_stream=not body
            )
        except h2.exceptions.ProtocolError:
            # The client reset the stream or the connection is closing; nobody is listening.
            self._forget(stream_id)
            return
        if body:
            self._unsent[stream_id] = body
            self._send_unsent()
        else:
            self._in_flight.discard(stream_id)

    def _send_unsent(self) -> None:
        # Flow control: send what the windows allow; the rest waits for WINDOW_UPDATE.
        # A body longer than one frame goes out frame by frame while the window lasts.
        for stream_id, data in list(self._unsent.items()):
            rest = data
            try:
                while True:
                    window = min(
                        self._h2.local_flow_control_window(stream_id),
                        self._h2.max_outbound_frame_size,
                    )
                    chunk, rest = rest[:window], rest[window:]
                    if chunk or not rest:
                        self._h2.send_data(stream_id, chunk, end_stream=not rest)
                    if not rest or not chunk:
                        break
            except h2.exceptions.ProtocolError:
                self._forget(stream_id)
                continue
            if rest:
                self._unsent[stream_id] = rest
            else:
                self._forget(stream_id)

    def _forget(self, stream_id: int) -> None:
        self._streams.pop(stream_id, None)
        self._unsent.pop(stream_id, None)
        self._in_flight.discard(stream_id)

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self.lost:
            self._transport.write(data)

    def goaway(self, debug: bytes | None = None) -> None:
        """Tell the client this connection is finished and close it."""
        if self.lost or self._transport is None:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection(additional_data=debug)
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        """Cut the connection without waiting for the peer."""
        if self._transport is not None and not self.lost:
            self._transport.abort()


# --- standalone entry point for benchmarks ------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: ephemeral)")
    parser.add_argument("--ca-out", type=Path, help="copy the fake's CA certificate here")
    parser.add_argument("--dir", type=Path, help="where to write certificates (default: temp)")
    parser.add_argument(
        "--max-recorded",
        type=int,
        default=0,
        help="keep the last N requests in memory (default 0: counters only)",
    )
    parser.add_argument("--max-concurrent-streams", type=int, default=1000)
    parser.add_argument("--response-delay", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--require-client-ca", type=Path, help="demand client certs from this CA")
    parser.add_argument("--topic", help="answer DeviceTokenNotForTopic to any other apns-topic")
    parser.add_argument("--status", type=int, default=200, help="default answer status")
    parser.add_argument("--reason", help="default answer reason")
    parser.add_argument("--stats-out", type=Path, help="write final counters here as JSON")
    parser.add_argument(
        "--until-stdin-closes",
        action="store_true",
        help="also stop when stdin reaches EOF, so a crashed parent leaves no orphan server",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _cert_dir(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="apns-fake-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; print one JSON line with url/port/ca_file when ready."""
    args = _parse_args(argv)
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if args.until_stdin_closes:

        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            stopping.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    with _cert_dir(args.dir) as directory:
        server = ApnsFakeServer(
            directory,
            require_client_cert_ca=args.require_client_ca,
            expected_topic=args.topic,
            max_concurrent_streams=args.max_concurrent_streams,
            response_delay=args.response_delay,
            max_recorded=args.max_recorded,
            port=args.port,
        )
        with server:
            server.set_default_response(args.status, args.reason)
            if args.ca_out is not None:
                shutil.copyfile(server.ca_file, args.ca_out)
            ready = {"url": server.url, "port": server.port, "ca_file": str(server.ca_file)}
            print(json.dumps(ready), flush=True)
            while not stopping.wait(0.5):
                pass
            stats = server.stats()
        if args.stats_out is not None:
            args.stats_out.write_text(json.dumps(stats, indent=2))
        print(json.dumps(stats), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
