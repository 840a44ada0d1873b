"""APNs provider client for Wallet pass update pushes over long-lived HTTP/2 connections."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol, Self

import certifi
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

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
        self._base_url = base_url.rstrip("/")
        self._topic = topic
        self._clock = clock
        self._connections = connections
        # httpcore never opens more than 100 streams per connection (its own SETTINGS), so
        # larger values only make requests queue inside httpcore.
        self._max_streams = max_concurrent_streams
        self._signer = ProviderTokenSigner(auth, clock) if isinstance(auth, TokenAuth) else None
        self._headers = {"apns-topic": topic}
        if push_type is not None:
            self._headers["apns-push-type"] = push_type
        if priority is not None:
            self._headers["apns-priority"] = str(priority)

        context = ssl.create_default_context(cafile=certifi.where())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
        if isinstance(auth, CertificateAuth):
            context.load_cert_chain(
                str(auth.cert_file),
                None if auth.key_file is None else str(auth.key_file),
                auth.key_password,
            )
        # One httpx client per connection: httpcore funnels every request of a pool onto a
        # single HTTP/2 connection, so separate pools are the only way to spread load over N.
        # Idle connections stay open because APNs treats frequent reconnects as abuse.
        self._clients = [
            httpx.AsyncClient(
                http1=False,
                http2=True,
                verify=context,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(
                    max_connections=1, max_keepalive_connections=1, keepalive_expiry=idle_timeout
                ),
                trust_env=False,
                headers={"user-agent": "walletd"},
            )
            for _ in range(connections)
        ]
        self._lanes: list[asyncio.Semaphore] | None = None

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
        for client in self._clients:
            await client.aclose()

    async def send_many(self, tokens: Sequence[str]) -> list[ApnsResult]:
        """Push one update to each distinct token concurrently; one result per input token."""
        if self._lanes is None:
            # Created on first use so they belong to the loop that actually runs the client.
            self._lanes = [asyncio.Semaphore(self._max_streams) for _ in self._clients]
        lanes = self._lanes
        # A device uses one token for all passes of a type, so duplicates get a single push.
        unique = list(dict.fromkeys(tokens))
        results: dict[str, ApnsResult] = {}
        pending = iter(unique)

        async def worker(lane: int) -> None:
            for token in pending:
                async with lanes[lane]:
                    results[token] = await self._send_one(token, lane)

        # A fixed pool of workers instead of one task per token keeps memory flat for big batches.
        workers = min(len(unique), self._connections * self._max_streams)
        await asyncio.gather(*(worker(i % self._connections) for i in range(workers)))
        self._log_batch(results.values())
        return [results[token] for token in tokens]

    async def _send_one(self, token: str, lane: int) -> ApnsResult:
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

    async def _post(self, token: str, lane: int, jwt: str | None) -> ApnsResult:
        headers = dict(self._headers)
        if jwt is not None:
            headers["authorization"] = f"bearer {jwt}"
        url = f"{self._base_url}/3/device/{token}"
        client = self._clients[lane]
        # Two attempts on transport errors: usually the connection was closed by APNs (GOAWAY,
        # idle timeout) while we held it, the pool reconnects, and a duplicate update push is
        # harmless. Timeouts are not resent here: the caller backs off instead.
        for attempt in (1, 2):
            try:
                response = await client.post(url, content=PASS_UPDATE_PAYLOAD, headers=headers)
            except httpx.TimeoutException as exc:
                return ApnsResult(token, "retry", None, type(exc).__name__)
            except httpx.TransportError as exc:
                if _is_tls_identity_error(exc):
                    return ApnsResult(token, "fatal", None, f"TlsCertificateError: {exc}")
                if attempt == 1:
                    continue
                detail = f": {exc}" if str(exc) else ""
                return ApnsResult(token, "retry", None, type(exc).__name__ + detail)
            except httpx.RequestError as exc:
                return ApnsResult(token, "retry", None, f"{type(exc).__name__}: {exc}")
            return classify_response(
                token,
                response.status_code,
                response.content,
                response.headers,
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
