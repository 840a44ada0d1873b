"""Logging set up at the entry points (gunicorn, `walletd worker`, the CLI), never in create_app.

`WALLETD_LOG_FORMAT=json` writes one JSON object per line; text otherwise. Each line carries the
request id (web) or job id (worker) of the context it was written in, and a redaction filter
removes push tokens, API keys and e-mail addresses as a backstop.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "walletd_request_id", default=None
)
job_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "walletd_job_id", default=None
)


class QuietRepeats:
    """Says whether a message is due to be logged: when it is new, or `every` seconds after it
    was last let through. A failure every request meets (an Apple certificate that cannot be
    loaded) is then logged once a minute per process instead of once per request. The standard
    library has no such filter; this is a dozen lines."""

    KEEP = 64  # distinct messages remembered; past that, forget them all and start again

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, message: str) -> bool:
        with self._lock:
            now = self._clock()
            last = self._last.get(message)
            if last is not None and now - last < self._every:
                return False
            if len(self._last) >= self.KEEP:
                self._last.clear()
            self._last[message] = now
            return True


SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SECRETS = (
    (re.compile(r"\b[0-9a-fA-F]{64}\b"), "[token]"),
    (re.compile(r"\bwd_[A-Za-z0-9_-]+"), "wd_[redacted]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
)


def redact(text: str) -> str:
    """The text with hex push tokens, `wd_` keys and e-mail addresses replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def request_id_from(header: str | None) -> str:
    """The incoming X-Request-Id when it is a sane token, else a new uuid4 hex."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@contextmanager
def log_context(*, request_id: str | None = None, job_id: str | None = None) -> Iterator[None]:
    """Every log line written inside carries these ids."""
    tokens = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if job_id is not None:
        tokens.append((job_id_var, job_id_var.set(job_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id/job_id and redacts the formatted message (a backstop, not a licence)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id or job_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            value = getattr(record, key, None)
            if value:
                line[key] = value
        if record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger [id] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(ids)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{k}={v}" for k in ("request_id", "job_id") if (v := getattr(record, k, None))]
        record.ids = f"[{' '.join(ids)}] " if ids else ""
        return super().format(record)


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler with the context/redaction filter and the chosen format."""
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return handler


def configure_logging(
    environ: Mapping[str, str] | None = None, *, stream: TextIO | None = None
) -> None:
    """Root logging for a walletd process; `WALLETD_LOG_FORMAT` = json or text (default)."""
    env = os.environ if environ is None else environ
    fmt = env.get("WALLETD_LOG_FORMAT", "text").strip().lower()
    level = env.get("WALLETD_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "walletd", False)]:
        root.removeHandler(old)
    handler = make_handler(fmt, stream)
    handler.walletd = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO, and APNs URLs carry device push tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
