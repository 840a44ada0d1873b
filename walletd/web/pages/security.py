"""Page security: CSRF tokens, security headers with a strict CSP, login throttling and sessions."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Response, abort, g, redirect, request, session, url_for
from sqlalchemy import select

from walletd.loyalty.brands import Principal
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
    return isinstance(expected, str) and hmac.compare_digest(expected, sent)


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
    with services().db.sessions() as db:
        if isinstance(staff_id, int):
            staff = find_staff(db, staff_id)
            if staff is None:
                return None
            return Viewer("staff", staff.brand_id, staff.role, staff.email, staff_id=staff.staff_id)
        if isinstance(key_id, int):
            # Checked on every request, so a revoked key logs its cashiers out at once.
            key = db.scalar(select(ApiKey).where(ApiKey.id == key_id))
            if key is None or key.revoked_at is not None:
                return None
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
    """A local path to go back to; anything that could leave the site becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# --- throttling ---------------------------------------------------------------------------------


class Throttle:
    """Failures per client address in a sliding window, kept in this process's memory.

    Each gunicorn process counts on its own, so the real limit is this times the process count;
    staff accounts also lock in the database after repeated wrong passwords (see loyalty.staff).
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def blocked(self, key: str) -> bool:
        """True when the key used up its failures in the window."""
        now = time.monotonic()
        with self._lock:
            return len(self._recent(key, now)) >= self.limit

    def fail(self, key: str) -> None:
        """Count one failure of the key."""
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._hits) > 10_000:  # forget idle addresses rather than grow without end
                for stale in [k for k, v in self._hits.items() if not v]:
                    del self._hits[stale]

    def reset(self, key: str) -> None:
        """Forget a key's failures (after a success)."""
        with self._lock:
            self._hits.pop(key, None)


def throttle(app: Flask, name: str) -> Throttle:
    """The app's throttle of a given purpose."""
    throttles: dict[str, Throttle] = app.extensions["walletd_throttles"]
    return throttles[name]


def client_key(purpose: str) -> str:
    """What a throttle counts by: the purpose and the client's address."""
    return f"{purpose}:{request.remote_addr or '-'}"


# --- headers ------------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    page = request.blueprint in PAGE_BLUEPRINTS or request.endpoint == "static"
    if not page and response.mimetype != "text/html":
        return response
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Card links carry a signature in their query string: never hand it to another site.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    if request.blueprint in PAGE_BLUEPRINTS and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Session cookie settings, throttles and the security headers of every page."""
    app.config.update(
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_COOKIE_NAME="walletd_session",
    )
    app.extensions["walletd_throttles"] = {
        "login": Throttle(limit=10, window=300),
        "recover": Throttle(limit=5, window=900),
    }
    app.after_request(_security_headers)
