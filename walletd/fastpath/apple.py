"""The Apple web service's hot requests below Flask: the 304, the stored pass, the list, register.

Hand-written WSGI instead of a Flask view, because of a measurement (bench/hotpath_profile.py and
the peer sitting in BENCHMARKS.md, issue 14): through Flask, its request hooks, the limiter and
an ORM session a 304 cost ~1.9 ms of CPU, of which the statement is a small part; devices poll
these routes more than anything else. Here a request is one compiled statement on a pooled
connection in autocommit (no BEGIN, no ROLLBACK round trip).

Only the common case is answered here: a known card with the right token and, for a full fetch,
the pass already signed for its current tag (walletd/passes/serving.py); a list whose query
string is empty or only passesUpdatedSince; a registration with a valid push token, within the
rate limit, for a brand without webhook endpoints and a card below its device cap; Postgres.
Anything else (no or a wrong token, an unknown serial, an erased member, an enrollment pass, a
tag nobody signed yet, HEAD, other query strings, a 429, SQLite, any error) goes on to the Flask
app, which answers it exactly as before, so every refusal keeps its one implementation in
walletd/web/apple.py. The statements are the Flask path's Core statements (serving.
stored_pass_query, registrations.updated_serials_query, registration_upsert,
refresh_registration_statement, eviction_statement, recording.synced_statement) plus
register_holder_query, compiled once; a registration is one transaction of two statements (three
past the device cap or for a device already registered).
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Histogram
from werkzeug.http import http_date, parse_date

from walletd.delivery.recording import synced_statement
from walletd.enrollment.service import is_enrollment_serial
from walletd.errors import ValidationError
from walletd.observability import metrics
from walletd.observability.logs import request_id_from
from walletd.passes.pkpass import PKPASS_MIME
from walletd.passes.serving import stored_pass_query
from walletd.passes.signing import PassSignerError
from walletd.push import registrations
from walletd.push.registrations import updated_serials_query
from walletd.services import Services
from walletd.web import limits
from walletd.web.endpoint import TOKEN_PATTERN
from walletd.web.pages.security import SECURITY_HEADERS

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]

PREFIX = "/passes/v1/"
_TOKEN = re.compile(TOKEN_PATTERN)
_SINCE = re.compile(r"passesUpdatedSince=([0-9]{1,19})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
# What the Flask app adds to an empty (text/html) answer: walletd/web/pages/security.py. On a
# 304 werkzeug drops the entity headers (Content-Type, Last-Modified: RFC 9110's list).
_SECURITY_HEADERS = list(SECURITY_HEADERS)
_HTML = ("Content-Type", "text/html; charset=utf-8")
_NO_BODY = ("Content-Length", "0")
# A registration body is {"pushToken": "<64 hex digits>"}: anything longer goes to the app.
MAX_REGISTER_BODY = 1024
_MAX_TAG = 2**63 - 1


@dataclass(frozen=True)
class _Statement:
    """A statement's text and the values of its own constants (the caller adds the rest)."""

    sql: str
    constants: dict[str, Any]

    def params(self, **given: Any) -> dict[str, Any]:
        return {**self.constants, **given}


@dataclass(frozen=True)
class _Statements:
    stored_pass: _Statement
    updated: _Statement
    updated_since: _Statement
    synced: _Statement
    register_holder: _Statement
    upsert: _Statement
    refresh: _Statement
    evict: _Statement


def _next_second(since: datetime) -> datetime:
    """The first time after `since` whose whole second is later (If-Modified-Since's)."""
    try:
        return since + _ONE_SECOND
    except OverflowError:  # the year 9999: no card changed after that
        return since


class ApplePaths:
    """WSGI middleware: answers the hot Apple web service reads, hands the rest to `app`."""

    def __init__(self, app: WSGIApp, svc: Services, *, routes: dict[str, str]) -> None:
        self.app = app
        self.svc = svc
        # False: every request goes to the Flask app (tests compare both answers).
        self.enabled = svc.db.is_postgres
        self._routes = routes  # latest/updated/register -> the Flask rule (the metrics' label)
        self._statements: _Statements | None = None
        self._timers: dict[tuple[str, str, str], Any] = {}
        # The app's rate limits (walletd/web/limits.py), set once they exist; None: hand over.
        self._rate_limits: limits.RateLimits | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD")
        if self.enabled and path.startswith(PREFIX) and method in ("GET", "POST"):
            started = time.perf_counter()
            try:
                parts = path[len(PREFIX) :].split("/")
                if method == "GET":
                    answer = self._answer(environ, parts)
                else:
                    answer = self._register(environ, parts)
            except Exception as exc:  # noqa: BLE001 - the Flask app answers (and reports) it
                log.warning("fast path gave up on %s: %r; the app answers", path, exc)
                metrics.FASTPATH.labels(result="error").inc()
                answer = None
            if answer is None:
                metrics.FASTPATH.labels(result="app").inc()
            else:
                metrics.FASTPATH.labels(result="answered").inc()
                status, headers, body = answer
                headers.append(("X-Request-Id", request_id_from(environ.get("HTTP_X_REQUEST_ID"))))
                start_response(status, headers)
                if method == "POST":
                    route = self._routes["register"]
                elif path.startswith("/passes/v1/passes/"):
                    route = self._routes["latest"]
                else:
                    route = self._routes["updated"]
                self._timer(route, method, status).observe(time.perf_counter() - started)
                return [body]
        return self.app(environ, start_response)

    def _timer(self, route: str, method: str, status: str) -> Histogram:
        key = (route, method, status)
        timer = self._timers.get(key)
        if timer is None:
            timer = metrics.REQUEST_SECONDS.labels(route, method, f"{status[0]}xx")
            self._timers[key] = timer
        return timer

    def _answer(self, environ: dict[str, Any], parts: list[str]) -> Answer | None:
        if not all(_TOKEN.fullmatch(part) for part in parts):
            return None
        if len(parts) == 3 and parts[0] == "passes":
            return self._latest(environ, pass_type_id=parts[1], serial=parts[2])
        if len(parts) == 4 and parts[0] == "devices" and parts[2] == "registrations":
            return self._updated(environ, device_id=parts[1], pass_type_id=parts[3])
        return None

    def _pass_type_id(self) -> str | None:
        """Ours, or None while the signing material cannot be loaded (the app answers 503)."""
        from walletd.wiring import shared_apple_passes  # the builder the Flask views share

        try:
            passes = shared_apple_passes(self.svc)
        except PassSignerError:
            return None
        return str(passes.pass_type_id)

    def _pass_token(self, environ: dict[str, Any], pass_type_id: str, serial: str) -> str | None:
        """The ApplePass token of a request for one of our passes (not an enrollment pass)."""
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if scheme != "ApplePass" or not token or is_enrollment_serial(serial):
            return None
        return token if pass_type_id == self._pass_type_id() else None

    def statements(self) -> _Statements:
        """The statements' text for this engine's dialect, compiled on first use."""
        if self._statements is None:
            dialect = self.svc.db.engine.dialect

            def compiled(statement: Any) -> _Statement:
                done = statement.compile(dialect=dialect)
                constants = {k: v for k, v in done.params.items() if v is not None}
                return _Statement(str(done), constants)

            self._statements = _Statements(
                stored_pass=compiled(stored_pass_query()),
                updated=compiled(updated_serials_query(postgres=True, since=False)),
                updated_since=compiled(updated_serials_query(postgres=True, since=True)),
                synced=compiled(synced_statement()),
                register_holder=compiled(registrations.register_holder_query()),
                upsert=compiled(registrations.registration_upsert()),
                refresh=compiled(registrations.refresh_registration_statement()),
                evict=compiled(registrations.eviction_statement()),
            )
        return self._statements

    def _run(
        self, work: Callable[[Any], Answer | None], *, transaction: bool = False
    ) -> Answer | None:
        """`work(cursor)` on a pooled connection, in autocommit or (`transaction`) in one
        transaction, committed when `work` answers and rolled back when it hands over."""
        pooled = self.svc.db.engine.raw_connection()
        try:
            connection = pooled.driver_connection
            assert connection is not None
            if transaction:
                with connection.cursor() as cursor:
                    answer = work(cursor)
                if answer is None:
                    connection.rollback()
                else:
                    connection.commit()
                return answer
            connection.autocommit = True
            try:
                with connection.cursor() as cursor:
                    return work(cursor)
            finally:
                connection.autocommit = False
        except BaseException:
            pooled.invalidate()  # a connection in an unknown state is not handed out again
            raise
        finally:
            pooled.close()

    def _latest(self, environ: dict[str, Any], *, pass_type_id: str, serial: str) -> Answer | None:
        token = self._pass_token(environ, pass_type_id, serial)
        if token is None:
            return None
        since = parse_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
        fetch_from = _EPOCH if since is None else _next_second(since)
        statement = self.statements().stored_pass

        def work(cursor: Any) -> Answer | None:
            # Binary results: the pass comes as its bytes, not as hex text twice its size.
            cursor.execute(
                statement.sql, statement.params(serial=serial, fetch_from=fetch_from), binary=True
            )
            row = cursor.fetchone()
            if row is None:
                return None
            _card_id, expected, _tag, updated_at, erased_at, data = row
            if erased_at is not None:
                return None
            if not hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace")):
                return None
            modified = updated_at.astimezone(UTC).replace(microsecond=0)
            headers = [("Last-Modified", http_date(modified)), ("Cache-Control", "no-cache")]
            if since is not None and modified <= since:
                return "304 NOT MODIFIED", [*_SECURITY_HEADERS, ("Cache-Control", "no-cache")], b""
            if data is None:
                return None  # nobody signed this tag yet: the app signs and stores it
            metrics.PASS_CACHE.labels(result="stored").inc()
            body = bytes(data)
            return (
                "200 OK",
                [("Content-Type", PKPASS_MIME), ("Content-Length", str(len(body))), *headers],
                body,
            )

        return self._run(work)

    def _updated(
        self, environ: dict[str, Any], *, device_id: str, pass_type_id: str
    ) -> Answer | None:
        query: str = environ.get("QUERY_STRING", "")
        statements = self.statements()
        params: dict[str, Any] = {"library_id": device_id, "pass_type_id": pass_type_id}
        statement = statements.updated
        if query:
            match = _SINCE.fullmatch(query)
            if match is None or int(match.group(1)) > _MAX_TAG:
                return None
            params["since"] = int(match.group(1))
            statement = statements.updated_since
        now = self.svc.clock()

        def work(cursor: Any) -> Answer:
            cursor.execute(statement.sql, statement.params(**params))
            tag, serials, behind = cursor.fetchone()
            if behind:
                # [delivery] as registrations.updated_serials: a statement of its own, as the
                # select ran in its own snapshot (the write is monotonic, so order is free).
                synced = statements.synced
                cursor.execute(synced.sql, synced.params(ids=sorted(behind), tag=tag, now=now))
            if not serials:
                return "204 NO CONTENT", [_HTML, *_SECURITY_HEADERS], b""
            body = json.dumps({"serialNumbers": serials, "lastUpdated": str(tag)}).encode()
            return (
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                body,
            )

        return self._run(work)

    def _register(self, environ: dict[str, Any], parts: list[str]) -> Answer | None:
        """A device registration with two upserts, as registrations.register_device does it,
        when nothing more is needed: no webhook event, no eviction past the device cap."""
        if not (
            len(parts) == 5
            and parts[0] == "devices"
            and parts[2] == "registrations"
            and all(_TOKEN.fullmatch(part) for part in parts)
        ):
            return None
        _, device_id, _, pass_type_id, serial = parts
        token = self._pass_token(environ, pass_type_id, serial)
        if token is None:
            return None
        body = _read_body(environ)
        if body is None:
            return None
        try:
            document = json.loads(body or b"null")
            push_token = registrations.check_push_token(
                document.get("pushToken") if isinstance(document, dict) else None
            )
        except (ValueError, ValidationError):  # not JSON, or no push token: the app's 400
            return None
        statements = self.statements()
        cap = max(self.svc.settings.max_devices_per_card, 1)
        rate_limits = self._rate_limits
        now = self.svc.clock()

        def work(cursor: Any) -> Answer | None:
            holder = statements.register_holder
            cursor.execute(holder.sql, holder.params(serial=serial))
            row = cursor.fetchone()
            if row is None:
                return None
            card_id, expected, _brand, _member, _kind, erased_at, endpoints, registered = row
            if not hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace")):
                return None
            if erased_at is not None or endpoints:
                return None  # the app: a refusal, or a pass.installed event to queue
            if rate_limits is None or not limits.allow_apple_register(
                rate_limits, environ.get("REMOTE_ADDR")
            ):
                return None  # the app counts it too and answers 429
            upsert = statements.upsert
            cursor.execute(
                upsert.sql,
                upsert.params(
                    library=device_id, of_card=card_id, pass_type=pass_type_id,
                    token=push_token, at=now,
                ),
            )  # fmt: skip
            device_row, created = cursor.fetchone()
            if created is not None:
                if registered >= cap:  # as registrations.register_device: the oldest go
                    _evict(cursor, statements, card_id, cap)
                return "201 CREATED", [_HTML, _NO_BODY, *_SECURITY_HEADERS], b""
            refresh = statements.refresh
            cursor.execute(
                refresh.sql,
                refresh.params(
                    of_device=device_row, of_card=card_id, new_token=push_token, confirmed_at=now
                ),
            )
            return "200 OK", [_HTML, _NO_BODY, *_SECURITY_HEADERS], b""

        return self._run(work, transaction=True)


def _evict(cursor: Any, statements: _Statements, card_id: int, cap: int) -> None:
    cursor.execute(statements.evict.sql, statements.evict.params(of_card=card_id, cap=cap))
    evicted, _devices = cursor.fetchone()
    if evicted:
        log.info("card %d is at its cap of %d devices: evicted %d", card_id, cap, evicted)


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body when its length is declared and small, else None (the app reads it).

    What is read is put back as a fresh stream, so the app can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 <= length <= MAX_REGISTER_BODY:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def install(app: Any, svc: Services) -> ApplePaths:
    """Put the fast path in front of the Flask app's WSGI callable (before ProxyFix wraps it)."""
    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    routes = {name: rules[f"apple.{name}"] for name in ("latest", "updated", "register")}
    fast = ApplePaths(app.wsgi_app, svc, routes=routes)
    app.wsgi_app = fast
    app.extensions["walletd_fastpath"] = fast
    return fast


def attach_limits(app: Any) -> None:
    """Give the fast path the app's rate limits (built after it is installed)."""
    fast = app.extensions.get("walletd_fastpath")
    if isinstance(fast, ApplePaths):
        fast._rate_limits = app.extensions[limits.EXTENSION]
