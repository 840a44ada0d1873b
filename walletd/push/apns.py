"""APNs provider client for Wallet pass update pushes over long-lived HTTP/2 connections."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import math
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, cast
from urllib.parse import urlsplit

import certifi
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from walletd.observability.metrics import UPSTREAM_SECONDS

log = logging.getLogger(__name__)

Outcome = Literal["sent", "gone", "bad_token", "retry", "fatal"]

# Apple's reference: a Wallet update push is the empty JSON dictionary; a zero-length body is
# rejected with 400 PayloadEmpty.
PASS_UPDATE_PAYLOAD: Final = b"{}"

# Push tokens are hex strings (64 characters today, but Apple says the length may grow). Anything
# else would change the request path, so it is refused before it reaches the wire.
_TOKEN_RE: Final = re.compile(r"[0-9A-Fa-f]{1,512}")

# A JWT is reused for 20-60 minutes: replacing it more often earns 429 TooManyProviderTokenUpdates,
# keeping it past an hour earns 403 ExpiredProviderToken.
JWT_REFRESH_AFTER: Final = 50 * 60.0
JWT_MIN_REFRESH_INTERVAL: Final = 20 * 60.0

# These mean the certificate, key or topic is wrong: every further push fails the same way, so an
# operator has to act. Deleting registrations for them would throw away good tokens.
_CONFIG_REASONS: Final = frozenset(
    {
        "DeviceTokenNotForTopic",
        "TopicDisallowed",
        "BadTopic",
        "MissingTopic",
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
        "InvalidProviderToken",
        "MissingProviderToken",
        "UnrelatedKeyIdInToken",
        "ExpiredProviderToken",
    }
)

# How long a graceful close may wait for the server before the socket is cut.
_CLOSE_TIMEOUT: Final = 2.0


@dataclass(frozen=True)
class ApnsResult:
    """What APNs said about one push token."""

    token: str
    outcome: Outcome
    status: int | None
    reason: str | None
    gone_at: datetime | None = None
    retry_after: float | None = None
    apns_id: str | None = None


@dataclass(frozen=True)
class CertificateAuth:
    """TLS client authentication with the Pass Type ID certificate and its private key."""

    cert_file: Path | str
    key_file: Path | str | None = None
    key_password: str | bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TokenAuth:
    """Provider token authentication with an APNs `.p8` signing key of the pass's team."""

    key_file: Path | str
    key_id: str
    team_id: str


class PushSender(Protocol):
    """Synchronous port the dispatcher uses to deliver pass update pushes."""

    def push(self, tokens: Sequence[str]) -> list[ApnsResult]:
        """Push one update to each token and report one result per token, in order."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ProviderTokenSigner:
    """Issues and caches the ES256 provider JWT used with token authentication."""

    def __init__(self, auth: TokenAuth, clock: Callable[[], float] = time.time) -> None:
        key = serialization.load_pem_private_key(Path(auth.key_file).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("an APNs .p8 key must be an EC P-256 private key")
        self._key = key
        self._key_id = auth.key_id
        self._team_id = auth.team_id
        self._clock = clock
        self._token: str | None = None
        self._issued_at = 0.0
        self._forced_at: float | None = None

    def current(self) -> str:
        """Return the JWT to send now, issuing a new one when the cached one is 50 minutes old."""
        now = self._clock()
        if self._token is None or now - self._issued_at >= JWT_REFRESH_AFTER:
            return self._issue(now)
        return self._token

    def replace(self, rejected: str) -> bool:
        """Replace a JWT APNs called expired; False when doing so would update tokens too often."""
        if rejected != self._token:
            # Another stream already replaced it after the same answer.
            return True
        now = self._clock()
        if self._forced_at is not None and now - self._forced_at < JWT_MIN_REFRESH_INTERVAL:
            # Refreshing again cannot help (our clock disagrees with Apple's) and would only add
            # TooManyProviderTokenUpdates on top.
            return False
        self._forced_at = now
        self._issue(now)
        return True

    def _issue(self, now: float) -> str:
        header = {"alg": "ES256", "kid": self._key_id}
        claims = {"iss": self._team_id, "iat": int(now)}
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        # JWS wants the raw 64-byte r||s form, not the DER that cryptography produces.
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        self._token = signing_input + "." + _b64url(signature)
        self._issued_at = now
        return self._token


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _parse_timestamp_ms(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def classify_response(
    token: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    token_auth: bool,
    now: float,
) -> ApnsResult:
    """Turn one APNs HTTP response into an ApnsResult."""
    apns_id = headers.get("apns-id")
    retry_after = _parse_retry_after(headers.get("retry-after"), now)
    payload: object = None
    if body:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    data = payload if isinstance(payload, dict) else {}
    raw_reason = data.get("reason")
    reason = raw_reason if isinstance(raw_reason, str) else None

    def result(outcome: Outcome, gone_at: datetime | None = None) -> ApnsResult:
        return ApnsResult(token, outcome, status, reason, gone_at, retry_after, apns_id)

    if status == 200:
        return result("sent")
    if status == 410:
        # The timestamp lets the caller keep a registration renewed after the token died.
        return result("gone", _parse_timestamp_ms(data.get("timestamp")))
    if status == 400 and reason == "BadDeviceToken":
        return result("bad_token")
    if status == 403 and reason == "ExpiredProviderToken" and token_auth:
        # Reached only after the in-client refresh and retry failed too.
        return result("retry")
    if status == 429 or status >= 500:
        return result("retry")
    # Everything else is a configuration problem (_CONFIG_REASONS) or a bug in the request
    # (BadPayload, BadPath, PayloadTooLarge, ...): retrying the same request cannot succeed.
    return result("fatal")


def _is_tls_identity_error(exc: BaseException) -> bool:
    """Tell certificate failures (ours or the server's) from transient network trouble."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if isinstance(current, ssl.SSLError) and "CERTIFICATE" in str(current).upper():
            return True
        current = current.__cause__ or current.__context__
    return False


class _TransportError(Exception):
    """The connection failed under a request; `kind` names it in ApnsResult.reason."""

    kind = "TransportError"


class _ConnectError(_TransportError):
    kind = "ConnectError"


class _ReadError(_TransportError):
    kind = "ReadError"


class _RemoteProtocolError(_TransportError):
    kind = "RemoteProtocolError"


class _Timeout(Exception):
    """No answer in time; `kind` names it in ApnsResult.reason."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class _Stream:
    """One request in flight: its answer arrives through `future`."""

    future: asyncio.Future[tuple[int, dict[str, str], bytes]]
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    unsent: bytes = b""


class _Http2Connection:
    """One TLS connection speaking HTTP/2 to APNs: many concurrent streams, one reader task."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        authority: bytes,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._authority = authority
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding="utf-8",
                # Our request headers are fixed constants, a validated hex token and a JWT.
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            },
        )
        self._streams: dict[int, _Stream] = {}
        # Requests waiting for a stream slot the server's MAX_CONCURRENT_STREAMS allows.
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._flush_scheduled = False
        self._error: _TransportError | None = None
        self._goaway = False
        # Set by the server's first SETTINGS frame: until then its MAX_CONCURRENT_STREAMS is
        # unknown, and opening more streams than it allows would be a protocol error.
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self.last_used = time.monotonic()
        self._h2.initiate_connection()
        self._flush()
        self._reader_task = self._loop.create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        context: ssl.SSLContext,
        authority: bytes,
        timeout: float,
    ) -> _Http2Connection:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host
                )
        except TimeoutError:
            raise _Timeout("ConnectTimeout") from None
        except (OSError, ssl.SSLError) as exc:
            raise _ConnectError(str(exc) or type(exc).__name__) from exc
        ssl_object = writer.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject) or ssl_object.selected_alpn_protocol() != "h2":
            writer.transport.abort()
            raise _ConnectError("the server did not negotiate HTTP/2 (ALPN h2)")
        connection = cls(reader, writer, authority)
        try:
            async with asyncio.timeout(timeout):
                await connection._ready
        except TimeoutError:
            await connection.aclose()
            raise _Timeout("ConnectTimeout") from None
        except BaseException:
            await connection.aclose()
            raise
        return connection

    @property
    def usable(self) -> bool:
        """Whether new streams may start here."""
        return self._error is None and not self._goaway

    @property
    def idle(self) -> bool:
        """Whether no request is in flight."""
        return not self._streams and not self._slot_waiters

    async def request(
        self, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes, timeout: float
    ) -> tuple[int, dict[str, str], bytes]:
        """POST `body` to `path`; returns status, headers and body of the answer."""
        deadline = self._loop.time() + timeout
        while len(self._streams) >= self._h2.remote_settings.max_concurrent_streams:
            if self._error is not None:
                raise _copy_error(self._error)
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._slot_waiters.append(waiter)
            handle = self._loop.call_at(deadline, _expire, waiter, "PoolTimeout")
            try:
                await waiter
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove(waiter)
                # The slot may have been handed to us just before we gave up: pass it on.
                self._release_slot()
                raise
            finally:
                handle.cancel()
        if self._error is not None:
            raise _copy_error(self._error)
        if self._goaway:
            raise _RemoteProtocolError("the server is closing the connection (GOAWAY)")
        try:
            stream_id = self._h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            # Every stream id was used: this connection is done, the next one starts afresh.
            self._goaway = True
            raise _RemoteProtocolError("no stream ids left on this connection") from None
        request_headers = [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", self._authority),
            # Each path is used once: kept out of the HPACK table so it does not evict the
            # topic and provider token entries that every request reuses.
            hpack.NeverIndexedHeaderTuple(b":path", path),
            *headers,
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        future: asyncio.Future[tuple[int, dict[str, str], bytes]] = self._loop.create_future()
        stream = _Stream(future, unsent=body)
        try:
            self._h2.send_headers(stream_id, request_headers)
        except h2.exceptions.ProtocolError as exc:
            raise _RemoteProtocolError(f"cannot open a stream: {exc}") from exc
        self._streams[stream_id] = stream
        self._send_body(stream_id, stream)
        self._schedule_flush()
        self.last_used = time.monotonic()
        handle = self._loop.call_at(deadline, _expire, future, "ReadTimeout")
        try:
            return await future
        finally:
            handle.cancel()
            if self._streams.pop(stream_id, None) is not None:
                # Timed out or cancelled: tell the server we are no longer listening.
                self._reset(stream_id)
            self._release_slot()
            self.last_used = time.monotonic()

    def _send_body(self, stream_id: int, stream: _Stream) -> None:
        # Flow control: send what the windows allow now; the rest waits for WINDOW_UPDATE.
        data = stream.unsent
        window = min(
            self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
        )
        if len(data) > window:
            if window > 0:
                self._h2.send_data(stream_id, data[:window])
                stream.unsent = data[window:]
            return
        self._h2.send_data(stream_id, data, end_stream=True)
        stream.unsent = b""

    def _send_pending_bodies(self) -> None:
        for stream_id, stream in list(self._streams.items()):
            if stream.unsent:
                try:
                    self._send_body(stream_id, stream)
                except h2.exceptions.ProtocolError as exc:
                    self._fail_stream(stream_id, _RemoteProtocolError(str(exc)))

    def _reset(self, stream_id: int) -> None:
        if self._error is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                self._schedule_flush()

    def _release_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _schedule_flush(self) -> None:
        # Frames of every stream started in this loop iteration go out in one TLS write.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self._h2.data_to_send()
        if data and not self._writer.is_closing():
            self._writer.write(data)

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    data = await self._reader.read(65536)
                except (OSError, ssl.SSLError) as exc:
                    raise _ReadError(str(exc) or type(exc).__name__) from exc
                if not data:
                    raise _RemoteProtocolError("the server closed the connection")
                try:
                    events = self._h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    self._flush()
                    raise _RemoteProtocolError(f"HTTP/2 protocol error: {exc}") from exc
                for event in events:
                    self._dispatch(event)
                if self._error is not None:
                    # GOAWAY: nothing more can happen here; the lane opens a new connection.
                    self._writer.close()
                    return
                self._flush()
        except _TransportError as exc:
            self._fail(exc)
            self._writer.transport.abort()
        except Exception as exc:
            # A bug must not leave requests waiting for answers nobody will deliver.
            self._fail(_RemoteProtocolError(f"{type(exc).__name__}: {exc}"))
            self._writer.transport.abort()
            raise

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                # header_encoding makes these text, whatever h2's annotations say.
                headers = cast(list[tuple[str, str]], event.headers)
                for name, value in headers:
                    if name == ":status":
                        stream.status = int(value)
                    else:
                        stream.headers[name] = value
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None and stream.unsent:
                # Answered before the whole body went out: end our half of the stream too.
                self._reset(event.stream_id)
            if stream is not None and not stream.future.done():
                if stream.status is None:
                    stream.future.set_exception(
                        _RemoteProtocolError("the stream ended without a response")
                    )
                else:
                    stream.future.set_result((stream.status, stream.headers, bytes(stream.body)))
        elif isinstance(event, h2.events.StreamReset):
            self._fail_stream(
                event.stream_id,
                _RemoteProtocolError(f"the server reset the stream ({event.error_code!s})"),
            )
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            if isinstance(event, h2.events.RemoteSettingsChanged) and not self._ready.done():
                self._ready.set_result(None)
            self._send_pending_bodies()
            # A raised MAX_CONCURRENT_STREAMS lets waiting requests start.
            while (
                self._slot_waiters
                and len(self._streams) < self._h2.remote_settings.max_concurrent_streams
            ):
                self._release_slot()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # GOAWAY: h2 accepts nothing more on this connection, so whatever is open is resent
            # on a new one (a duplicate update push is harmless).
            self._goaway = True
            detail = (
                event.additional_data.decode("utf-8", "replace") if event.additional_data else ""
            )
            self._fail(
                _RemoteProtocolError(
                    f"the server closed the connection (GOAWAY {event.error_code!s}"
                    + (f" {detail})" if detail else ")")
                )
            )

    def _fail_stream(self, stream_id: int, exc: _TransportError) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and not stream.future.done():
            stream.future.set_exception(exc)

    def _fail(self, exc: _TransportError) -> None:
        if self._error is None:
            self._error = exc
        if not self._ready.done():
            self._ready.set_exception(_copy_error(exc))
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            if not stream.future.done():
                stream.future.set_exception(_copy_error(exc))
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(_copy_error(exc))

    async def aclose(self) -> None:
        """Say GOAWAY if the connection still works, stop reading and close the socket."""
        if self._error is None and not self._writer.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection()
            self._flush()
        self._fail(_RemoteProtocolError("the client closed the connection"))
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader_task
        self._writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self._writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            self._writer.transport.abort()


def _copy_error(exc: _TransportError) -> _TransportError:
    # One instance per waiting request, so their tracebacks do not pile up on a shared one.
    copy = type(exc)(*exc.args)
    copy.__cause__ = exc.__cause__
    return copy


def _expire(future: asyncio.Future[Any], kind: str) -> None:
    if not future.done():
        future.set_exception(_Timeout(kind))


class _Lane:
    """One of the client's connections: reopened when APNs closed it or it sat idle too long."""

    def __init__(
        self, connect: Callable[[], Awaitable[_Http2Connection]], idle_timeout: float | None
    ) -> None:
        self._connect = connect
        self._idle_timeout = idle_timeout
        self._connection: _Http2Connection | None = None
        self._connecting: asyncio.Task[_Http2Connection] | None = None
        # Replaced connections that still had requests in flight, closed once those finish.
        self._retired: list[_Http2Connection] = []

    async def connection(self) -> _Http2Connection:
        """The open connection, after (re)connecting if needed; one connect for all callers."""
        connection = self._connection
        if connection is not None and connection.usable and not self._expired(connection):
            return connection
        task = self._connecting
        if task is None:
            task = asyncio.get_running_loop().create_task(self._replace())
            task.add_done_callback(_retrieve_exception)
            self._connecting = task
        return await asyncio.shield(task)

    def _expired(self, connection: _Http2Connection) -> bool:
        return (
            self._idle_timeout is not None
            and connection.idle
            and time.monotonic() - connection.last_used > self._idle_timeout
        )

    async def _replace(self) -> _Http2Connection:
        try:
            if self._connection is not None:
                self._retired.append(self._connection)
                self._connection = None
            await self._close_retired(only_idle=True)
            self._connection = await self._connect()
            return self._connection
        finally:
            self._connecting = None

    async def _close_retired(self, *, only_idle: bool) -> None:
        keep: list[_Http2Connection] = []
        for connection in self._retired:
            if only_idle and not connection.idle:
                keep.append(connection)
            else:
                await connection.aclose()
        self._retired = keep

    async def aclose(self) -> None:
        """Close the connection and any retired ones."""
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, _TransportError, _Timeout):
                await self._connecting
        if self._connection is not None:
            self._retired.append(self._connection)
            self._connection = None
        await self._close_retired(only_idle=False)


def _retrieve_exception(task: asyncio.Task[_Http2Connection]) -> None:
    # Every waiter may have given up; the failure is theirs to report, not the loop's.
    if not task.cancelled():
        task.exception()


class ApnsClient:
    """Async APNs provider client: a few HTTP/2 connections, many concurrent streams each."""

    def __init__(
        self,
        base_url: str,
        topic: str,
        auth: CertificateAuth | TokenAuth,
        *,
        ca_file: Path | str | None = None,
        connections: int = 1,
        max_concurrent_streams: int = 100,
        timeout: float = 10.0,
        push_type: str | None = None,
        priority: int | None = None,
        idle_timeout: float | None = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if connections < 1 or max_concurrent_streams < 1:
            raise ValueError("connections and max_concurrent_streams must be at least 1")
        if priority not in (None, 1, 5, 10):
            raise ValueError("apns-priority must be 1, 5 or 10")
        if push_type == "background":
            # APNs rejects background pushes at priority 10.
            if priority == 10:
                raise ValueError("background pushes must use apns-priority 5")
            priority = 5
        url = urlsplit(base_url)
        if url.scheme != "https" or not url.hostname:
            raise ValueError("the APNs URL must be https://host[:port]")
        self._host = url.hostname
        self._port = url.port or 443
        self._authority = url.netloc.encode("ascii")
        self._path_prefix = url.path.rstrip("/").encode("ascii") + b"/3/device/"
        self._topic = topic
        self._clock = clock
        self._connections = connections
        self._max_streams = max_concurrent_streams
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._signer = ProviderTokenSigner(auth, clock) if isinstance(auth, TokenAuth) else None
        headers = [(b"apns-topic", topic.encode("utf-8"))]
        if push_type is not None:
            headers.append((b"apns-push-type", push_type.encode("ascii")))
        if priority is not None:
            headers.append((b"apns-priority", str(priority).encode("ascii")))
        headers.append((b"user-agent", b"walletd"))
        self._headers = headers

        context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        if isinstance(auth, CertificateAuth):
            context.load_cert_chain(
                str(auth.cert_file),
                None if auth.key_file is None else str(auth.key_file),
                auth.key_password,
            )
        self._context = context
        # Lanes are separate HTTP/2 connections; idle ones stay open because APNs treats
        # frequent reconnects as abuse. Created on first use, in the loop that runs the client.
        self._lanes: list[tuple[_Lane, asyncio.Semaphore]] | None = None
        self._closed = False

    @property
    def topic(self) -> str:
        """The pass type identifier sent as apns-topic."""
        return self._topic

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        self._closed = True
        lanes, self._lanes = self._lanes, None
        for lane, _ in lanes or ():
            await lane.aclose()

    async def _open_connection(self) -> _Http2Connection:
        return await _Http2Connection.open(
            self._host, self._port, self._context, self._authority, self._timeout
        )

    async def send_many(self, tokens: Sequence[str]) -> list[ApnsResult]:
        """Push one update to each distinct token concurrently; one result per input token."""
        if self._closed:
            raise RuntimeError("the APNs client has been closed")
        if self._lanes is None:
            self._lanes = [
                (
                    _Lane(self._open_connection, self._idle_timeout),
                    asyncio.Semaphore(self._max_streams),
                )
                for _ in range(self._connections)
            ]
        lanes = self._lanes
        # A device uses one token for all passes of a type, so duplicates get a single push.
        unique = list(dict.fromkeys(tokens))
        results: dict[str, ApnsResult] = {}
        pending = iter(unique)

        async def worker(index: int) -> None:
            lane, streams = lanes[index]
            for token in pending:
                async with streams:
                    results[token] = await self._send_one(token, lane)

        # A fixed pool of workers instead of one task per token keeps memory flat for big batches.
        workers = min(len(unique), self._connections * self._max_streams)
        await asyncio.gather(*(worker(i % self._connections) for i in range(workers)))
        self._log_batch(results.values())
        return [results[token] for token in tokens]

    async def _send_one(self, token: str, lane: _Lane) -> ApnsResult:
        if not _TOKEN_RE.fullmatch(token):
            return ApnsResult(token, "bad_token", None, "InvalidTokenFormat")
        jwt = self._signer.current() if self._signer is not None else None
        result = await self._post(token, lane, jwt)
        if (
            jwt is not None
            and self._signer is not None
            and result.status == 403
            and result.reason == "ExpiredProviderToken"
            and self._signer.replace(jwt)
        ):
            result = await self._post(token, lane, self._signer.current())
        return result

    async def _post(self, token: str, lane: _Lane, jwt: str | None) -> ApnsResult:
        headers = self._headers
        if jwt is not None:
            headers = [*headers, (b"authorization", b"bearer " + jwt.encode("ascii"))]
        path = self._path_prefix + token.encode("ascii")
        # Two attempts on transport errors: usually the connection was closed by APNs (GOAWAY,
        # idle timeout) while we held it, the lane reconnects, and a duplicate update push is
        # harmless. Timeouts are not resent here: the caller backs off instead.
        for attempt in (1, 2):
            try:
                connection = await lane.connection()
                with UPSTREAM_SECONDS.labels(service="apns").time():
                    status, response_headers, body = await connection.request(
                        path, headers, PASS_UPDATE_PAYLOAD, self._timeout
                    )
            except _Timeout as exc:
                return ApnsResult(token, "retry", None, exc.kind)
            except _TransportError as exc:
                if _is_tls_identity_error(exc):
                    return ApnsResult(token, "fatal", None, f"TlsCertificateError: {exc}")
                if attempt == 1:
                    continue
                detail = f": {exc}" if str(exc) else ""
                return ApnsResult(token, "retry", None, exc.kind + detail)
            return classify_response(
                token,
                status,
                body,
                response_headers,
                token_auth=self._signer is not None,
                now=self._clock(),
            )
        raise AssertionError("unreachable")

    def _log_batch(self, results: Iterable[ApnsResult]) -> None:
        counts: Counter[str] = Counter()
        fatal: Counter[tuple[int | None, str | None]] = Counter()
        for result in results:
            counts[result.outcome] += 1
            if result.outcome == "fatal":
                fatal[(result.status, result.reason)] += 1
        for (status, reason), count in fatal.items():
            hint = (
                "fix the certificate, key or pass type id"
                if reason in _CONFIG_REASONS or status is None
                else "the request itself was rejected"
            )
            log.error(
                "APNs refused %d push(es) for topic %s: status=%s reason=%s; %s",
                count,
                self._topic,
                status,
                reason,
                hint,
            )
        log.debug("APNs batch for %s: %s", self._topic, dict(counts))


class ApnsSender:
    """Synchronous PushSender running an ApnsClient on a private event-loop thread."""

    def __init__(self, client: ApnsClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="apns-sender", daemon=True
        )
        self._thread.start()

    def push(self, tokens: Sequence[str]) -> list[ApnsResult]:
        """Push one update to each token, reusing the open HTTP/2 connections."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("push() would deadlock when called from the sender's own loop")
        with self._lock:
            if self._closed:
                raise RuntimeError("ApnsSender is closed")
            future = asyncio.run_coroutine_threadsafe(
                self._client.send_many(list(tokens)), self._loop
            )
        return future.result()

    def close(self) -> None:
        """Close the connections, stop the loop thread and wait for it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _shutdown(self) -> None:
        await self._client.aclose()
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullPushSender:
    """PushSender for development without APNs: pretends every push was sent."""

    def push(self, tokens: Sequence[str]) -> list[ApnsResult]:
        """Report every token as sent without any network traffic."""
        log.debug("APNs disabled: skipped %d push(es)", len(tokens))
        return [ApnsResult(token, "sent", None, None) for token in tokens]

    def close(self) -> None:
        """Nothing to release."""
