"""Google Wallet REST client: google-auth OAuth, client-side rate limit, typed errors, retries."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import requests
from google.auth import exceptions as auth_exceptions
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2 import service_account

from walletd.observability.metrics import UPSTREAM_SECONDS

JsonDict = dict[str, Any]

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://walletobjects.googleapis.com/walletobjects/v1"
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
# Google documents "20 requests per second" per issuer.
DEFAULT_RATE_PER_SECOND = 20.0

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A 403 is retried only for throttling; permission and quotaExceeded are final (edutap #36).
_RETRY_403_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class GoogleApiError(Exception):
    """A Google Wallet call failed; status 0 means no HTTP answer (network, token endpoint)."""

    retryable = False

    def __init__(
        self,
        status: int,
        reason: str,
        message: str = "",
        *,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(f"Google Wallet {status} {reason}: {message}".rstrip(": "))
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts


class GoogleBadRequestError(GoogleApiError):
    """400: the body or id is invalid; fix the payload, never retry."""


class GoogleAuthError(GoogleApiError):
    """401 after a fresh token, or the token endpoint refused the service account."""


class GooglePermissionError(GoogleApiError):
    """403 permission denied: the service account is not a user of this issuer."""


class GoogleQuotaExceededError(GoogleApiError):
    """403 quotaExceeded: the notification budget is spent; resend as TEXT or later."""


class GoogleNotFoundError(GoogleApiError):
    """404: the class or object does not exist."""


class GoogleConflictError(GoogleApiError):
    """409: the class or object already exists."""


class GoogleRetryableError(GoogleApiError):
    """Throttling, 5xx or network failure that outlived all attempts; retry later."""

    retryable = True


class GoogleWallet(Protocol):
    """What the rest of walletd needs from Google Wallet."""

    def insert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty class."""
        ...

    def patch_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into a loyalty class."""
        ...

    def get_class(self, class_id: str) -> JsonDict:
        """Fetch a loyalty class."""
        ...

    def upsert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty class, or patch it when it exists."""
        ...

    def insert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty object."""
        ...

    def patch_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into a loyalty object."""
        ...

    def get_object(self, object_id: str) -> JsonDict:
        """Fetch a loyalty object."""
        ...

    def upsert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty object, or patch it when it exists."""
        ...

    def add_object_message(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add a message to one card; returns the object."""
        ...

    def add_class_message(self, class_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add a message to every card of a class; returns the class."""
        ...

    def upsert_offer_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create an offer class, or patch it when it exists."""
        ...

    def patch_offer_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into an offer class."""
        ...

    def upsert_offer_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create an offer object, or patch it when it exists."""
        ...

    def patch_offer_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into an offer object."""
        ...

    def modify_linked_offers(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add or remove offer objects linked into a loyalty object; returns the object."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Limiter(Protocol):
    """Something that spaces requests: `acquire()` waits for a slot, returns the wait."""

    def acquire(self) -> float: ...


class RateLimiter:
    """Spaces calls at least 1/rate apart across all threads (a token bucket one token deep)."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = float("-inf")

    def acquire(self) -> float:
        """Wait for the next free slot and return how long that took."""
        if self._interval == 0.0:
            return 0.0
        with self._lock:
            # Reserve a slot under the lock, wait outside it, so threads queue in order.
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self._interval
        # One token deep on purpose: a full bucket would let 2x the rate through in one second
        # of Google's window.
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


class _TimeoutRequest(AuthRequest):
    """google-auth transport that keeps the token call under our timeout, not its 120 s."""

    def __init__(self, session: requests.Session, timeout: float | tuple[float, float]) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(  # type: ignore[no-untyped-call]
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout or self._timeout,
            **kwargs,
        )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # Google APIs send delta-seconds; an HTTP-date would need the wall clock, so fall back
        # to our own back-off instead.
        return None


def _error_from_response(response: requests.Response) -> GoogleApiError:
    status = response.status_code
    reason = ""
    message = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        message = str(error.get("message", ""))
        errors = error.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            reason = str(errors[0].get("reason", ""))
        reason = reason or str(error.get("status", ""))
    else:
        message = response.text[:200]
    reason = reason or f"http{status}"
    retry_after = _retry_after(response)
    kind: type[GoogleApiError]
    if status in _RETRY_STATUSES or (status == 403 and reason in _RETRY_403_REASONS):
        kind = GoogleRetryableError
    elif status == 400:
        kind = GoogleBadRequestError
    elif status == 401:
        kind = GoogleAuthError
    elif status == 403 and reason == "quotaExceeded":
        kind = GoogleQuotaExceededError
    elif status == 403:
        kind = GooglePermissionError
    elif status == 404:
        kind = GoogleNotFoundError
    elif status == 409:
        kind = GoogleConflictError
    else:
        kind = GoogleApiError
    return kind(status, reason, message, retry_after=retry_after)


class GoogleWalletClient:
    """Thread-safe Google Wallet REST client; build one per worker process and share it."""

    def __init__(
        self,
        *,
        credentials_path: str,
        api_url: str = DEFAULT_API_URL,
        rate_per_second: float = DEFAULT_RATE_PER_SECOND,
        timeout: float | tuple[float, float] = (5.0, 20.0),
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 16.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._credentials: Any = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            credentials_path, scopes=[WALLET_SCOPE]
        )
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._rng = rng or random.Random()
        # A shared limiter (walletd.scheduling.rate) holds the rate across processes; without
        # one, this process alone is limited.
        self._limiter: Limiter = limiter or RateLimiter(rate_per_second, clock=clock, sleep=sleep)
        # One token for every thread; refreshed under a lock so a burst of threads fetches it once.
        self._token_lock = threading.Lock()
        # requests.Session is not documented as thread-safe: one per thread, all closed by close().
        # Sized for long-lived worker threads; each new thread adds one pool until close().
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        self._closed = False

    @property
    def service_account_email(self) -> str:
        """The service account's e-mail, the save JWT's issuer."""
        return str(self._credentials.service_account_email)

    def __enter__(self) -> GoogleWalletClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's connection pool."""
        with self._sessions_lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            with self._sessions_lock:
                if self._closed:
                    raise RuntimeError("GoogleWalletClient is closed")
                session = requests.Session()
                self._sessions.append(session)
            self._local.session = session
        return session

    def _token(self, session: requests.Session, *, stale: str | None = None) -> str:
        with self._token_lock:
            creds = self._credentials
            # After a 401, refresh only if no other thread has already replaced the bad token.
            if not creds.valid or (stale is not None and creds.token == stale):
                try:
                    # refresh() + our own header, not before_request(): in google-auth 2.62 the
                    # latter also starts a background Regional Access Boundary lookup thread
                    # against iamcredentials.googleapis.com that Wallet calls do not need.
                    creds.refresh(_TimeoutRequest(session, self._timeout))
                except auth_exceptions.RefreshError as exc:
                    if getattr(exc, "retryable", False):
                        raise GoogleRetryableError(0, "tokenRefreshFailed", str(exc)) from exc
                    raise GoogleAuthError(401, "tokenRefreshFailed", str(exc)) from exc
                except auth_exceptions.TransportError as exc:
                    raise GoogleRetryableError(0, "tokenTransportError", str(exc)) from exc
            return str(creds.token)

    def _send_once(
        self, method: str, url: str, body: Mapping[str, Any] | None
    ) -> requests.Response:
        session = self._session()
        token = self._token(session)
        for refreshed in (False, True):
            try:
                with UPSTREAM_SECONDS.labels(service="google").time():
                    response = session.request(
                        method,
                        url,
                        json=body,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                        timeout=self._timeout,
                    )
            except requests.Timeout as exc:
                raise GoogleRetryableError(0, "timeout", str(exc)) from exc
            except requests.ConnectionError as exc:
                raise GoogleRetryableError(0, "connectionError", str(exc)) from exc
            if response.status_code != 401 or refreshed:
                return response
            # An expired or revoked token: fetch a new one and try exactly once more.
            response.close()
            token = self._token(session, stale=token)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Exponential with "equal jitter": never zero, so workers that failed together spread out.
        ceiling = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> JsonDict:
        url = f"{self._api_url}{path}"
        for attempt in range(1, self._max_attempts + 1):
            self._limiter.acquire()
            try:
                response = self._send_once(method, url, body)
            except GoogleApiError as exc:
                error = exc
            else:
                with response:
                    if response.status_code < 300:
                        return _json_body(response)
                    error = _error_from_response(response)
            error.attempts = attempt
            log.info(
                "google wallet %s %s -> %s %s (attempt %d)",
                method,
                path,
                error.status,
                error.reason,
                attempt,
            )
            if not error.retryable or attempt == self._max_attempts:
                raise error
            delay = self._delay(attempt, error.retry_after)
            if delay > self._max_retry_after:
                # Longer than a worker should block: hand the wait to the outbox schedule.
                raise error
            self._sleep(delay)
        raise AssertionError("unreachable")

    def insert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty class."""
        return self._call("POST", "/loyaltyClass", cls)

    def patch_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into a loyalty class (send reviewStatus UNDER_REVIEW with it)."""
        return self._call("PATCH", f"/loyaltyClass/{_quote(class_id)}", patch)

    def get_class(self, class_id: str) -> JsonDict:
        """Fetch a loyalty class."""
        return self._call("GET", f"/loyaltyClass/{_quote(class_id)}")

    def upsert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty class, or patch it with the same body when it exists."""
        try:
            return self.insert_class(cls)
        except GoogleConflictError:
            return self.patch_class(str(cls["id"]), cls)

    def insert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty object."""
        return self._call("POST", "/loyaltyObject", obj)

    def patch_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into a loyalty object; arrays sent replace the stored ones."""
        return self._call("PATCH", f"/loyaltyObject/{_quote(object_id)}", patch)

    def get_object(self, object_id: str) -> JsonDict:
        """Fetch a loyalty object (with classReference and hasUsers)."""
        return self._call("GET", f"/loyaltyObject/{_quote(object_id)}")

    def upsert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create a loyalty object, or patch it with the same body when it exists."""
        try:
            return self.insert_object(obj)
        except GoogleConflictError:
            return self.patch_object(str(obj["id"]), obj)

    def add_object_message(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add a message to one card; returns the object, unwrapped from "resource"."""
        path = f"/loyaltyObject/{_quote(object_id)}/addMessage"
        return _resource(self._call("POST", path, body))

    def add_class_message(self, class_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add a message to every card of a class; returns the class, unwrapped."""
        path = f"/loyaltyClass/{_quote(class_id)}/addMessage"
        return _resource(self._call("POST", path, body))

    def upsert_offer_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Create an offer class, or patch it with the same body when it exists."""
        try:
            return self._call("POST", "/offerClass", cls)
        except GoogleConflictError:
            return self.patch_offer_class(str(cls["id"]), cls)

    def patch_offer_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into an offer class (send reviewStatus UNDER_REVIEW with it)."""
        return self._call("PATCH", f"/offerClass/{_quote(class_id)}", patch)

    def upsert_offer_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Create an offer object, or patch it with the same body when it exists."""
        try:
            return self._call("POST", "/offerObject", obj)
        except GoogleConflictError:
            return self.patch_offer_object(str(obj["id"]), obj)

    def patch_offer_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Merge fields into an offer object."""
        return self._call("PATCH", f"/offerObject/{_quote(object_id)}", patch)

    def modify_linked_offers(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Add or remove offer objects linked into a loyalty object; returns the object."""
        path = f"/loyaltyObject/{_quote(object_id)}/modifyLinkedOfferObjects"
        return self._call("POST", path, body)


def _quote(resource_id: str) -> str:
    return quote(resource_id, safe="")


def _json_body(response: requests.Response) -> JsonDict:
    if not response.content:
        return {}
    try:
        payload = response.json()
    except ValueError as exc:
        raise GoogleApiError(response.status_code, "invalidJson", response.text[:200]) from exc
    if not isinstance(payload, dict):
        raise GoogleApiError(response.status_code, "invalidJson", "answer is not an object")
    return payload


def _resource(payload: JsonDict) -> JsonDict:
    # addMessage wraps the resource; rest-samples read .get("id") on the wrapper and got None.
    resource = payload.get("resource")
    return resource if isinstance(resource, dict) else payload


class NullGoogleWallet:
    """Stands in when Google Wallet is not configured: accepts every call, sends nothing."""

    def insert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Pretend to create a loyalty class."""
        return dict(cls)

    def patch_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Pretend to patch a loyalty class."""
        return {"id": class_id, **patch}

    def get_class(self, class_id: str) -> JsonDict:
        """Nothing is stored, so every class is missing."""
        raise GoogleNotFoundError(404, "notFound", f"Wallet Object Class {class_id} not found")

    def upsert_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Pretend to create a loyalty class."""
        return dict(cls)

    def insert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Pretend to create a loyalty object."""
        return dict(obj)

    def patch_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Pretend to patch a loyalty object."""
        return {"id": object_id, **patch}

    def get_object(self, object_id: str) -> JsonDict:
        """Nothing is stored, so every object is missing."""
        raise GoogleNotFoundError(404, "notFound", f"Wallet Object {object_id} not found")

    def upsert_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Pretend to create a loyalty object."""
        return dict(obj)

    def add_object_message(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Pretend to add a message to a card."""
        return {"id": object_id, "messages": [body.get("message", {})]}

    def add_class_message(self, class_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Pretend to add a message to a class."""
        return {"id": class_id, "messages": [body.get("message", {})]}

    def upsert_offer_class(self, cls: Mapping[str, Any]) -> JsonDict:
        """Pretend to create an offer class."""
        return dict(cls)

    def patch_offer_class(self, class_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Pretend to patch an offer class."""
        return {"id": class_id, **patch}

    def upsert_offer_object(self, obj: Mapping[str, Any]) -> JsonDict:
        """Pretend to create an offer object."""
        return dict(obj)

    def patch_offer_object(self, object_id: str, patch: Mapping[str, Any]) -> JsonDict:
        """Pretend to patch an offer object."""
        return {"id": object_id, **patch}

    def modify_linked_offers(self, object_id: str, body: Mapping[str, Any]) -> JsonDict:
        """Pretend to link offers into a loyalty object."""
        return {"id": object_id}

    def close(self) -> None:
        """Nothing to release."""
