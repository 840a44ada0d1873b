"""Bearer API keys with roles; the principal of a request lives on `g`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from walletd.errors import AuthenticationError, PermissionDeniedError
from walletd.loyalty.brands import LAST_USED_PRECISION, Principal, authenticate, hash_key
from walletd.web.deps import services

F = TypeVar("F", bound=Callable[..., Any])


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send Authorization: Bearer <api key>")
    return token.strip()


def _authenticate(token: str) -> Principal:
    # Looked up in the database (outside KeyCache's routes, on every request) so that a revoked
    # key stops working at once. One statement in autocommit (no BEGIN/COMMIT); the key's last
    # use, written at most once a minute, is a single statement of its own.
    svc = services()
    with svc.db.reads() as session:
        return authenticate(session, token, now=svc.clock())


class KeyCache:
    """Keys this process has seen live, for routes whose service checks in its own transaction
    that the key is still live (`endpoint(key_rechecked=True)`: scans, redemptions and coupons
    redeemed at the till, whose locked read asks): key hash -> (principal, when the database
    last said it was live).

    Why: the key's own statement was a sixth of a scan's CPU samples (bench/hotpath_profile.py
    under py-spy) and one of its three round trips. A key's brand, role, label and location
    never change, only its revocation, which the route's transaction re-checks; an entry is
    used for LAST_USED_PRECISION after the database's word, so `last_used_at` keeps its
    precision. Unknown and revoked keys are never kept."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Principal, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or not entry[1] <= now < entry[1] + LAST_USED_PRECISION:
            return None
        return entry[0]

    def put(self, digest: str, principal: Principal, now: datetime) -> None:
        with self._lock:
            self._entries.pop(digest, None)
            if len(self._entries) >= self.LIMIT:
                del self._entries[next(iter(self._entries))]  # the longest unchecked
            self._entries[digest] = (principal, now)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)


def _key_cache() -> KeyCache:
    return services().adapter("api_key_cache", KeyCache)  # type: ignore[no-any-return]


def _rechecked_principal(token: str) -> Principal:
    """The key's principal from this process's cache (its route re-checks revocation), or from
    the database, then kept."""
    now = services().clock()
    digest = hash_key(token)
    cache = _key_cache()
    cached = cache.get(digest, now)
    if cached is not None:
        g.key_from_cache = True
        return cached
    principal = _authenticate(token)
    cache.put(digest, principal, now)
    return principal


def confirm_cached_key() -> None:
    """After a request whose key came from the cache failed: ask the database about the key, so
    that a key revoked since is told 401 (and forgotten), not what its request would have been
    told (a validation error, an unknown card)."""
    if not g.pop("key_from_cache", False):
        return
    token = _bearer()
    try:
        _authenticate(token)
    except AuthenticationError:
        _key_cache().forget(hash_key(token))
        raise


def authorize(roles: tuple[str, ...], *, rechecked: bool = False) -> Principal:
    """The request's live key, refused unless it has one of `roles`; kept on `g`. `rechecked`:
    the route's service re-checks in its transaction that the key is live, so the key may come
    from this process's cache (KeyCache)."""
    token = _bearer()
    principal = _rechecked_principal(token) if rechecked else _authenticate(token)
    if principal.role not in roles:
        raise PermissionDeniedError(f"a {principal.role} key may not do this")
    g.principal = principal
    return principal


def require_role(*roles: str) -> Callable[[F], F]:
    """Refuse the view unless the request carries a live key with one of these roles."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorize(roles)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def principal() -> Principal:
    """The authenticated caller of this request."""
    return cast(Principal, g.principal)
