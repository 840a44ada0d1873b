"""Declarative routes: one decorator parses a view's body and query into pydantic models, serialises
its answer through a response model and records both for the generated OpenAPI document.

Why not flask-openapi3 or spectree: both replace walletd's error envelope (`{"error": {"code",
"message", "field"}}`) and JSON decoding (numbers as `Decimal`, bounded nesting) with their own, and
flask-openapi3 replaces the Flask app class. What is left to write here is small: pydantic does the
validation and the JSON Schema; this module only wires them to Flask views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, cast

import pydantic
from flask import Response, jsonify, request
from werkzeug.routing import BaseConverter, IntegerConverter, Map

from walletd.web.auth import authorize, confirm_cached_key
from walletd.web.deps import json_body
from walletd.web.errors import RequestValidationError

F = TypeVar("F", bound=Callable[..., Any])

# Primary keys are INTEGER columns (32-bit signed on Postgres): a larger number names nothing,
# and binding one would be a database error instead of a 404.
MAX_ID = 2**31 - 1
# Serial numbers, device library ids, pass type ids and kinds in paths.
TOKEN_PATTERN = r"[A-Za-z0-9._\-]{1,128}"


class IdConverter(IntegerConverter):
    """`<int:…>` for every route: ASCII digits only and at most MAX_ID, else the route is 404."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=MAX_ID)


class TokenConverter(BaseConverter):
    """`<token:…>`: identifiers of ASCII letters, digits, `.`, `_`, `-` (at most 128), else 404."""

    regex = TOKEN_PATTERN


@dataclass(frozen=True)
class Header:
    """A request header an operation reads."""

    name: str
    description: str
    required: bool = False
    max_length: int = 200


@dataclass(frozen=True)
class Spec:
    """What an operation takes and answers; the OpenAPI document is built from these."""

    summary: str
    tag: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    response: type[pydantic.BaseModel] | None = None
    # A body the view parses itself (after its own authentication), documented all the same.
    body_doc: type[pydantic.BaseModel] | None = None
    # The body may be left out (a refund without one refunds the rest).
    body_optional: bool = False
    status: int = 200
    auth: str = "api"  # "api" (Bearer key), "none", "apple" (ApplePass token), "google"
    roles: tuple[str, ...] = ()
    headers: tuple[Header, ...] = ()
    media_type: str = "application/json"
    other_responses: dict[int, str] = field(default_factory=dict)


SPEC_ATTRIBUTE = "__walletd_spec__"


def spec_of(view: Callable[..., Any]) -> Spec | None:
    """The Spec recorded on a view function, if it was declared with `endpoint`."""
    return cast(Spec | None, getattr(view, SPEC_ATTRIBUTE, None))


def _field_path(location: tuple[int | str, ...], prefix: str | None) -> str:
    parts = [str(p) for p in location]
    if prefix:
        parts.insert(0, prefix)
    return ".".join(parts) or "body"


def validate(
    model: type[pydantic.BaseModel], data: Any, *, prefix: str | None = None
) -> pydantic.BaseModel:
    """`model` parsed from `data`, or a 422 that lists every field error at once."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = [
            {
                "field": _field_path(error["loc"], prefix),
                "message": error["msg"],
                "type": error["type"],
            }
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise RequestValidationError(problems) from None


def _query_data(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    args = request.args
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in args:
            continue
        values = args.getlist(key)
        data[key] = values if _is_list(info.annotation) else values[-1]
    return data


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is list


def render(spec: Spec, result: Any) -> Response:
    """A view's result as a response: models and dicts through the response model."""
    if isinstance(result, Response):
        return result
    status = spec.status
    if isinstance(result, tuple):
        result, status = result
    if spec.response is not None:
        if not isinstance(result, spec.response):
            result = spec.response.model_validate(result)
        body = result.model_dump(mode="json", by_alias=True)
    elif isinstance(result, pydantic.BaseModel):
        body = result.model_dump(mode="json", by_alias=True)
    else:
        body = result
    response = jsonify(body)
    response.status_code = status
    return response


def endpoint(
    summary: str,
    *,
    tag: str,
    body: type[pydantic.BaseModel] | None = None,
    query: type[pydantic.BaseModel] | None = None,
    response: type[pydantic.BaseModel] | None = None,
    body_doc: type[pydantic.BaseModel] | None = None,
    body_optional: bool = False,
    status: int = 200,
    auth: str = "api",
    roles: tuple[str, ...] = (),
    headers: tuple[Header, ...] = (),
    media_type: str = "application/json",
    other_responses: dict[int, str] | None = None,
    key_rechecked: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Declare a route's models: the view gets `body=` and `query=` parsed, and may return a
    response model, a dict for it, `(model, status)`, or a ready Response.

    `key_rechecked`: every successful answer of the view passes through a statement that
    refuses a revoked key (the ledger's locked read), so the API key may come from the
    process's cache (walletd/web/auth.py, KeyCache); any failure asks the database about the
    key before it is answered."""
    spec = Spec(
        summary=summary, tag=tag, body=body, query=query, response=response,
        body_doc=body_doc, body_optional=body_optional, status=status,
        auth=auth, roles=roles, headers=headers, media_type=media_type,
        other_responses=dict(other_responses or {}),
    )  # fmt: skip

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            if spec.roles:
                authorize(spec.roles, rechecked=key_rechecked)
            if not key_rechecked:
                return run(*args, **kwargs)
            try:
                return run(*args, **kwargs)
            except Exception:
                confirm_cached_key()
                raise

        def run(*args: Any, **kwargs: Any) -> Response:
            for header in spec.headers:
                value = request.headers.get(header.name)
                if value is not None and len(value) > header.max_length:
                    raise RequestValidationError(
                        [{"field": header.name, "message": f"at most {header.max_length} "
                          "characters", "type": "string_too_long"}]
                    )  # fmt: skip
            if spec.query is not None:
                kwargs["query"] = validate(spec.query, _query_data(spec.query))
            if spec.body is not None:
                kwargs["body"] = validate(spec.body, json_body())
            return render(spec, view(*args, **kwargs))

        setattr(wrapper, SPEC_ATTRIBUTE, spec)
        return wrapper

    return decorate
