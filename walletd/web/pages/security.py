"""Page security: CSRF tokens, security headers with a strict CSP, sessions, trusted devices."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.audit import Actor
from walletd.loyalty.brands import Principal, touch_last_used
from walletd.loyalty.staff import StaffPrincipal, find_staff
from walletd.models import ApiKey
from walletd.web.deps import services

F = TypeVar("F", bound=Callable[..., Any])

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SESSION_LIFETIME = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
PAGE_BLUEPRINTS = frozenset({"customer", "cashier", "dashboard", "pages"})


# --- CSRF ---------------------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_valid() -> bool:
    """True when the request carries this session's CSRF token (form field or header)."""
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    # Bytes: compare_digest refuses str with non-ASCII characters, which a forged form can hold.
    return isinstance(expected, str) and hmac.compare_digest(
        expected.encode(), sent.encode("utf-8", "replace")
    )


# --- who is logged in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who uses the staff pages: a staff account or a cashier logged in with an API key."""

    kind: str  # "staff" or "key"
    brand_id: int
    role: str  # "admin" or "cashier"
    label: str  # e-mail, or the key's public prefix: never the key itself
    staff_id: int | None = None
    api_key_id: int | None = None

    @property
    def actor(self) -> Actor:
        """This viewer as the actor of a change (the audit log, ledger entries, campaigns)."""
        return Actor(
            self.brand_id, api_key_id=self.api_key_id, staff_id=self.staff_id, label=self.label
        )


def _start_session() -> None:
    # Fresh session on every login: whatever an attacker planted before (a fixed session, a
    # token they know) does not survive, and the CSRF token changes with the privilege.
    session.clear()
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(16)
    session["csrf"] = secrets.token_urlsafe(32)
    session["login_at"] = int(time.time())


def log_in_staff(principal: StaffPrincipal) -> None:
    """Bind the session to a staff account."""
    _start_session()
    session["staff_id"] = principal.staff_id
    # Compared with the account's on every request: disabling it, changing its role or setting
    # a new password raises the account's epoch and ends this session at once.
    session["epoch"] = principal.session_epoch


def log_in_key(principal: Principal) -> None:
    """Bind the session to an API key's principal (the key itself is never stored)."""
    _start_session()
    session["api_key_id"] = principal.api_key_id


def log_out() -> None:
    """Forget everything about the session."""
    session.clear()


def current_viewer() -> Viewer | None:
    """The logged-in viewer of this request, checked against the database once per request."""
    if "viewer" in g:
        return cast(Viewer | None, g.viewer)
    viewer = _load_viewer()
    g.viewer = viewer
    return viewer


def _load_viewer() -> Viewer | None:
    login_at = session.get("login_at")
    if not isinstance(login_at, int) or time.time() - login_at > SESSION_LIFETIME.total_seconds():
        return None
    staff_id = session.get("staff_id")
    key_id = session.get("api_key_id")
    svc = services()
    with svc.db.sessions() as db:
        if isinstance(staff_id, int):
            staff = find_staff(db, staff_id)  # None when deleted or disabled
            # Sessions from before epochs existed carry none: they match an untouched account.
            if staff is None or session.get("epoch", 0) != staff.session_epoch:
                return None
            return Viewer("staff", staff.brand_id, staff.role, staff.email, staff_id=staff.staff_id)
        if isinstance(key_id, int):
            # Checked on every request, so a revoked key logs its cashiers out at once.
            key = db.scalar(select(ApiKey).where(ApiKey.id == key_id))
            if key is None or key.revoked_at is not None:
                return None
            touch_last_used(db, key, svc.clock())
            db.commit()
            return Viewer("key", key.brand_id, key.role, f"{key.prefix}…", api_key_id=key.id)
    return None


def require_viewer(*roles: str, login_endpoint: str) -> Callable[[F], F]:
    """Send anonymous visitors to the login page and refuse other roles with 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            viewer = current_viewer()
            if viewer is None:
                return redirect(url_for(login_endpoint, next=request.full_path.rstrip("?")))
            if viewer.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def safe_next(target: str | None, default: str) -> str:
    r"""A path on this site to go back to; anything that could leave the site becomes `default`.

    Browsers drop tabs and newlines inside a URL, skip leading blanks and controls and read `\`
    as `/`, so `/\t/evil.example` and `/\evil.example` both mean `//evil.example` to them.
    Such values are refused, not cleaned: no real link back to a page contains them.
    """
    if not target or len(target) > 2048:
        return default
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in target):
        return default
    if not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


# --- trusted devices ----------------------------------------------------------------------------

DEVICE_COOKIE = "walletd_device"
DEVICE_LIFETIME = timedelta(days=180)
_MAX_DEVICE_ACCOUNTS = 8


def _device_serializer() -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and accepts all: old cookies survive a key rotation.
    keys = [*current_app.config.get("SECRET_KEY_FALLBACKS", []), current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt="walletd-device")


def _device() -> tuple[str, list[str]] | None:
    raw = request.cookies.get(DEVICE_COOKIE, "")
    if not raw or len(raw) > 2048:
        return None
    try:
        data = _device_serializer().loads(raw, max_age=int(DEVICE_LIFETIME.total_seconds()))
    except BadData:
        return None
    if not isinstance(data, dict):
        return None
    device, accounts = data.get("d"), data.get("a")
    if not isinstance(device, str) or not isinstance(accounts, list):
        return None
    return device, [a for a in accounts if isinstance(a, str)]


def trusted_device(account: str) -> str | None:
    """The id of this browser when it logged in to `account` before (its device cookie)."""
    found = _device()
    if found is None or account not in found[1]:
        return None
    return found[0]


def trust_device(response: WerkzeugResponse, account: str) -> None:
    """After a correct password: remember in a signed cookie that this browser owns `account`."""
    found = _device()
    device, accounts = found if found is not None else (secrets.token_urlsafe(16), [])
    accounts = [a for a in accounts if a != account][-(_MAX_DEVICE_ACCOUNTS - 1) :] + [account]
    response.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps({"d": device, "a": accounts}),
        max_age=int(DEVICE_LIFETIME.total_seconds()),
        secure=request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )


# --- headers ------------------------------------------------------------------------------------


SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Card links carry a signature in their query string: never hand it to another site.
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(self), microphone=(), geolocation=()"),
)


def _security_headers(response: Response) -> Response:
    page = request.blueprint in PAGE_BLUEPRINTS or request.endpoint == "static"
    if not page and response.mimetype != "text/html":
        return response
    for name, value in SECURITY_HEADERS:
        response.headers[name] = value
    if request.blueprint in PAGE_BLUEPRINTS and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Session cookie settings and the security headers of every page."""
    app.config.update(
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_COOKIE_NAME="walletd_session",
    )
    app.after_request(_security_headers)
