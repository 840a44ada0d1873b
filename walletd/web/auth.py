"""Bearer API keys with roles; the principal of a request lives on `g`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from walletd.errors import AuthenticationError, PermissionDeniedError
from walletd.loyalty.brands import Principal, authenticate
from walletd.web.deps import services

F = TypeVar("F", bound=Callable[..., Any])


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send Authorization: Bearer <api key>")
    return token.strip()


def _authenticate(token: str) -> Principal:
    # Looked up on every request (no cache) so that a revoked key stops working at once. One
    # statement in autocommit (no BEGIN/COMMIT); the key's last use, written at most once a
    # minute, is a single statement of its own.
    svc = services()
    with svc.db.reads() as session:
        return authenticate(session, token, now=svc.clock())


def authorize(roles: tuple[str, ...]) -> Principal:
    """The request's live key, refused unless it has one of `roles`; kept on `g`."""
    principal = _authenticate(_bearer())
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
