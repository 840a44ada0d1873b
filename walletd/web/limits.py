"""Rate limits that hold behind a proxy and across processes, and the proxy handling they need.

Request rates (enrollment, the Apple web service, the API) are Flask-Limiter limits on blueprints,
applied here so the blueprints stay unaware of them. Logins and lost-card recovery count only
*failures*, per client and per target, in moving windows that a success does not reset: someone
who succeeds with their own card or account gains nothing against another's. Every counter lives
in the storage of WALLETD_RATELIMIT_STORAGE_URI: memory:// counts per process, Redis counts for
every process and host.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

from flask import Blueprint, Flask, Response, current_app, make_response, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from walletd.config import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

EXTENSION = "walletd_limits"
# The shared limit on device registrations (and unregistrations) of the Apple web service.
APPLE_REGISTER_SCOPE = "apple-register"
# Pages answer a 429 with HTML; everything else (API, Apple, cashier API) with the JSON envelope.
PAGE_BLUEPRINTS = frozenset({"customer", "cashier", "dashboard", "pages"})
# A Redis that hangs must not hang requests: give up quickly and count in memory meanwhile.
_REDIS_OPTIONS: dict[str, str | int | float] = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}


# --- who is asking ------------------------------------------------------------------------------


def client_address() -> str:
    """The request's client as limits count it (address_key of its remote address)."""
    return address_key(request.remote_addr)


def address_key(remote_addr: str | None) -> str:
    """A client as limits count it: its IPv4 address, or the /64 network of an IPv6 one.

    `remote_addr` is the proxy's address unless WALLETD_TRUSTED_PROXIES lets ProxyFix take the
    client's from X-Forwarded-For. One IPv6 subscriber holds a whole /64, so counting single
    IPv6 addresses would let one client rotate through billions of them.
    """
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return f"{ipaddress.IPv6Network((address, 64), strict=False).network_address}/64"
    return str(address)


def api_client() -> str:
    """What an API request is counted by: its bearer key (hashed), else the client address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return "key:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
    return "ip:" + client_address()


def digest(purpose: str, value: str) -> str:
    """A stable, secret-keyed name for a personal value (an e-mail, a phone) in counter keys."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


# --- failure counting ---------------------------------------------------------------------------


class FailureLimit:
    """Failures per key in moving windows; nothing but time takes a failure away."""

    def __init__(self, name: str, limit: str, limits: RateLimits) -> None:
        self.name = name
        self.items: list[RateLimitItem] = parse_many(limit)
        self._limits = limits

    def retry_after(self, *key: str) -> int | None:
        """Seconds until the key may fail again, or None while it is not blocked."""
        identifiers = (self._limits.prefix, "fail", self.name, *key)

        def check(strategy: RateLimiter) -> int | None:
            waits = [
                max(1, math.ceil(strategy.get_window_stats(item, *identifiers).reset_time
                                 - time.time()))
                for item in self.items
                if not strategy.test(item, *identifiers)
            ]  # fmt: skip
            return max(waits) if waits else None

        return self._limits.run(check)

    def fail(self, *key: str) -> None:
        """Count one failure of the key in every window."""
        identifiers = (self._limits.prefix, "fail", self.name, *key)

        def hit(strategy: RateLimiter) -> None:
            for item in self.items:
                strategy.hit(item, *identifiers)

        self._limits.run(hit)


class RateLimits:
    """The app's limiter, its failure counters and the storage they share."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.prefix = settings.ratelimit_key_prefix
        options = dict(_REDIS_OPTIONS) if settings.ratelimit_storage_uri.startswith("redis") else {}
        self.limiter = Limiter(
            key_func=client_address,
            storage_uri=settings.ratelimit_storage_uri,
            storage_options=options,  # type: ignore[arg-type]
            strategy="fixed-window",  # one counter per key and window: the cheapest check
            key_prefix=self.prefix,
            headers_enabled=False,  # Retry-After goes on 429s only, set by _too_many_requests
            in_memory_fallback_enabled=True,
            swallow_errors=True,
            enabled=settings.ratelimit_enabled,
        )
        self.limiter.init_app(app)
        self.enabled = settings.ratelimit_enabled
        self.apple_register = sorted(parse_many(settings.ratelimit_apple_register))
        # Logins and recovery are counted even when request limits are switched off.
        storage = (
            self.limiter.storage
            if self.limiter.initialized
            else cast(Storage, storage_from_string(settings.ratelimit_storage_uri, **options))
        )
        self._strategy: RateLimiter = MovingWindowRateLimiter(storage)
        self._fallback: RateLimiter = MovingWindowRateLimiter(MemoryStorage())
        self._dead_until = 0.0
        self.login_client = FailureLimit("login-client", settings.ratelimit_login_client, self)
        self.login_account_client = FailureLimit(
            "login-account-client", settings.ratelimit_login_account_client, self
        )
        self.login_account = FailureLimit("login-account", settings.ratelimit_login_account, self)
        self.login_device = FailureLimit("login-device", settings.ratelimit_login_device, self)
        self.recover_client = FailureLimit(
            "recover-client", settings.ratelimit_recover_client, self
        )
        self.recover_target = FailureLimit(
            "recover-target", settings.ratelimit_recover_target, self
        )

    def run(self, work: Callable[[RateLimiter], T]) -> T:
        """Run a counter operation on the shared storage, or in memory while it is down.

        Failing open to per-process memory keeps logins working when Redis is down, still
        slowed down, rather than refusing every owner or letting every guess through.
        """
        if time.monotonic() < self._dead_until:
            return work(self._fallback)
        try:
            return work(self._strategy)
        except Exception:  # noqa: BLE001 - any storage error (connection, timeout, protocol)
            log.warning("rate limit storage unreachable: counting failures in memory for 30 s")
            self._dead_until = time.monotonic() + 30
            return work(self._fallback)

    def reset(self) -> None:
        """Forget every counter (tests)."""
        self._strategy.storage.reset()
        self._fallback.storage.reset()


def rate_limits(app: Flask | None = None) -> RateLimits:
    """The rate limits of an app (the current one by default)."""
    limits: RateLimits = (app or current_app).extensions[EXTENSION]
    return limits


def longest_wait(*waits: int | None) -> int | None:
    """The longest of several waits (every blocked counter must clear), or None."""
    blocked = [w for w in waits if w is not None]
    return max(blocked) if blocked else None


# --- logins and recovery ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginKey:
    """What one staff login attempt is counted by: the account and the client or the device.

    `device` is set when the browser holds this account's device cookie (it logged in to it
    before): such a browser is counted on its own, so strangers failing from elsewhere or from
    the same address never keep the owner out.
    """

    account: str
    device: str | None


def login_key(email: str, device: str | None) -> LoginKey:
    """The counters of a login attempt for an e-mail, known or not (both count the same)."""
    return LoginKey(digest("login", email.strip().lower()), device)


def login_wait(key: LoginKey) -> int | None:
    """Seconds the attempt must wait, or None: checked before the password is."""
    limits = rate_limits()
    if key.device is not None:
        return limits.login_device.retry_after(key.account, key.device)
    client = client_address()
    return longest_wait(
        limits.login_client.retry_after(client),
        limits.login_account_client.retry_after(key.account, client),
        limits.login_account.retry_after(key.account),
    )


def login_failed(key: LoginKey) -> None:
    """Count a wrong e-mail or password."""
    limits = rate_limits()
    if key.device is not None:
        limits.login_device.fail(key.account, key.device)
        return
    client = client_address()
    limits.login_client.fail(client)
    limits.login_account_client.fail(key.account, client)
    limits.login_account.fail(key.account)


def key_login_wait() -> int | None:
    """Seconds a cashier-key login from this client must wait, or None."""
    return rate_limits().login_client.retry_after(client_address())


def key_login_failed() -> None:
    """Count a wrong cashier key."""
    rate_limits().login_client.fail(client_address())


def recovery_target(program_id: int, contact: str) -> str:
    """The counter name of a recovery target: a program's e-mail or E.164 phone."""
    return digest("recover", f"{program_id}:{contact}")


def recovery_wait(target: str) -> int | None:
    """Seconds a recovery attempt must wait, or None."""
    limits = rate_limits()
    return longest_wait(
        limits.recover_client.retry_after(client_address()),
        limits.recover_target.retry_after(target),
    )


def recovery_failed(target: str) -> None:
    """Count a recovery that found no card, for the client and for the target."""
    limits = rate_limits()
    limits.recover_client.fail(client_address())
    limits.recover_target.fail(target)


def with_retry_after(response: Response, seconds: int) -> Response:
    """Tell the client when to try again."""
    response.headers["Retry-After"] = str(seconds)
    return response


# --- request limits on blueprints ---------------------------------------------------------------


def _path_is(*prefixes: str, methods: tuple[str, ...] = ()) -> Callable[[], bool]:
    """An exempt_when that exempts every request except these paths (and methods)."""

    def exempt() -> bool:
        if methods and request.method not in methods:
            return True
        return not request.path.startswith(prefixes)

    return exempt


def _apply_request_limits(app: Flask, limits: RateLimits, settings: Settings) -> None:
    limiter = limits.limiter
    blueprints = {name: bp for name, bp in app.blueprints.items() if isinstance(bp, Blueprint)}
    api_blueprints = [bp for bp in blueprints.values() if (bp.url_prefix or "").startswith("/api/")]
    for bp in api_blueprints:
        # One bucket per key over every API blueprint ("shared" scope), not one per route.
        limiter.shared_limit(settings.ratelimit_api, scope="api", key_func=api_client)(bp)
        # Random keys each get a fresh bucket above: wrong keys are counted per client too.
        limiter.shared_limit(
            settings.ratelimit_api_auth_failures,
            scope="api-auth",
            deduct_when=lambda response: response.status_code == 401,
        )(bp)
    apple = blueprints.get("apple")
    if apple is not None:
        limiter.shared_limit(
            settings.ratelimit_apple_register,
            scope=APPLE_REGISTER_SCOPE,
            exempt_when=_path_is("/passes/v1/devices/", methods=("POST", "DELETE")),
        )(apple)
        limiter.shared_limit(
            settings.ratelimit_apple_log,
            scope="apple-log",
            exempt_when=_path_is("/passes/v1/log", methods=("POST",)),
        )(apple)
    enrollment = blueprints.get("enrollment")  # [enrollment]
    if enrollment is not None:  # [enrollment] every download writes a row, like a join
        limiter.shared_limit(
            settings.ratelimit_join, scope="enrollment-pass", exempt_when=_path_is("/join/")
        )(enrollment)
        limiter.shared_limit(
            settings.ratelimit_apple_register,
            scope="enrollment-personalize",
            exempt_when=_path_is("/passes/", methods=("POST",)),
        )(enrollment)
    customer = blueprints.get("customer")
    if customer is not None:
        limiter.shared_limit(
            settings.ratelimit_join,
            scope="join",
            exempt_when=lambda: request.endpoint != "customer.join" or request.method != "POST",
        )(customer)


def _too_many_requests(exc: RateLimitExceeded) -> Response:
    current = rate_limits().limiter.current_limit
    wait = max(1, math.ceil(current.reset_at - time.time())) if current is not None else 60
    if request.blueprint in PAGE_BLUEPRINTS:
        from walletd.web.pages.render import page_error

        body, status = page_error(429, "Too many attempts", "Wait a few minutes and try again.")
        response = make_response(body, status)
    else:
        from walletd.web.errors import error_response

        response = error_response(
            429, "rate_limited", f"too many requests: try again in {wait} seconds"
        )
    return with_retry_after(response, wait)


def allow_apple_register(limits: RateLimits, remote_addr: str | None) -> bool:
    """Count one device registration as the limiter counts the apple blueprint's POSTs; False
    once past WALLETD_RATELIMIT_APPLE_REGISTER. For walletd/fastpath/apple.py, which answers
    registrations below Flask: the same keys as Flask-Limiter's shared limit (prefix, client,
    scope), so both count into one bucket."""
    if not limits.enabled:
        return True
    identifiers = [limits.prefix] if limits.prefix else []
    identifiers += [address_key(remote_addr), APPLE_REGISTER_SCOPE]
    strategy = limits.limiter.limiter
    # Every limit is counted, as Flask-Limiter does, even after one is exceeded.
    allowed = [strategy.hit(item, *identifiers) for item in limits.apple_register]
    return all(allowed)


def init_app(app: Flask, settings: Settings) -> None:
    """Trust the configured proxies, build the limiter and put limits on the blueprints."""
    if settings.trusted_proxies:
        # Each trusted proxy appends one address; the client's is that many from the right.
        # X-Forwarded-Host/-Port/-Prefix are ignored: links are built from WALLETD_BASE_URL.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    if settings.production and settings.ratelimit_storage_uri.startswith("memory"):
        log.warning(
            "WALLETD_RATELIMIT_STORAGE_URI is memory://: each process counts on its own; "
            "use redis:// when running more than one"
        )
    limits = RateLimits(app, settings)
    app.extensions[EXTENSION] = limits
    if settings.ratelimit_enabled:
        _apply_request_limits(app, limits, settings)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
