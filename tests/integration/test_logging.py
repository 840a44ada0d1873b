"""Request ids in headers and log lines, JSON lines, and the redaction backstop."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, enroll, scan
from walletd.observability.logs import QuietRepeats, configure_logging, redact

TOKEN = "ab" * 32


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The root logger writes JSON lines into a buffer for the test."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging({"WALLETD_LOG_FORMAT": "json", "WALLETD_LOG_LEVEL": "DEBUG"}, stream=stream)
    yield stream
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_sane_request_id_is_echoed_and_a_bad_one_replaced(client: FlaskClient) -> None:
    echoed = client.get("/livez", headers={"X-Request-Id": "abc.DEF_12-3"})
    assert echoed.headers["X-Request-Id"] == "abc.DEF_12-3"
    replaced = client.get("/livez", headers={"X-Request-Id": "bad id\u00e9" + "x" * 200})
    assert len(replaced.headers["X-Request-Id"]) == 32
    generated = client.get("/livez")
    assert len(generated.headers["X-Request-Id"]) == 32


def test_json_lines_carry_the_request_id(app: Flask, log_lines: io.StringIO) -> None:
    @app.get("/_test_log")
    def _test_log() -> str:
        logging.getLogger("walletd.test").info("hello %s", "there")
        return "ok"

    app.test_client().get("/_test_log", headers={"X-Request-Id": "req-42"})
    lines = [line for line in _lines(log_lines) if line["logger"] == "walletd.test"]
    assert lines == [
        {
            "time": lines[0]["time"],
            "level": "INFO",
            "logger": "walletd.test",
            "message": "hello there",
            "request_id": "req-42",
        }
    ]


def test_a_repeated_message_is_let_through_once_per_interval_and_a_new_one_at_once() -> None:
    now = [100.0]
    repeats = QuietRepeats(every=60.0, clock=lambda: now[0])
    assert repeats.due("no certificate")
    assert not repeats.due("no certificate")
    assert repeats.due("no key")  # another message is not held back by the first
    now[0] += 59.9
    assert not repeats.due("no certificate")
    now[0] += 0.1
    assert repeats.due("no certificate")
    assert not repeats.due("no certificate")


def test_redaction_removes_tokens_keys_and_emails() -> None:
    text = redact(f"push {TOKEN} key wd_live_abc123 mail ada@example.com ok")
    assert TOKEN not in text and "wd_live_abc123" not in text and "ada@example.com" not in text
    assert text.endswith(" ok")


def test_a_scan_and_a_registration_log_no_secrets(
    client: FlaskClient, brand: BrandKeys, log_lines: io.StringIO
) -> None:
    member = enroll(client, brand, email="ada@example.com")
    scan(client, brand, member["card"]["barcode"], "5.00", "k-log")
    client.post(
        f"/passes/v1/devices/dev1/registrations/pass.test/{member['card'].get('serial', 'x')}",
        json={"pushToken": TOKEN},
    )
    logging.getLogger("walletd.test").warning("leak %s %s", TOKEN, brand.creds.admin_key)
    text = log_lines.getvalue()
    for secret in (TOKEN, brand.creds.admin_key, brand.creds.cashier_key, "ada@example.com"):
        assert secret not in text
