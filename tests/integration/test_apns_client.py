"""The APNs client against a real HTTP/2 + TLS fake of the provider API on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.apns_server import (
    ApnsFakeServer,
    CertFiles,
    ProviderTokenKey,
    issue_cert,
    make_ca,
    pass_type_subject,
)
from walletd.push.apns import (
    PASS_UPDATE_PAYLOAD,
    ApnsClient,
    ApnsResult,
    ApnsSender,
    CertificateAuth,
    NullPushSender,
    PushSender,
    TokenAuth,
)

PASS_TYPE_ID = "pass.com.example.loyalty"
TEAM_ID = "TEAM123456"
KEY_ID = "KEY1234567"
KEY_PASSWORD = b"pass-cert-password"
REPO_ROOT = Path(__file__).resolve().parents[2]


def token(n: int) -> str:
    """A well-formed 64-hex-digit push token."""
    return f"{n:064x}"


@dataclass(frozen=True)
class PassCert:
    ca: CertFiles
    leaf: CertFiles


@pytest.fixture(scope="module")
def pass_cert(tmp_path_factory: pytest.TempPathFactory) -> PassCert:
    """A throwaway 'Apple' CA and a Pass Type ID client certificate with an encrypted key."""
    directory = tmp_path_factory.mktemp("pass-cert")
    ca = make_ca(directory, "wwdr", "Test WWDR CA")
    leaf = issue_cert(
        ca, directory, "pass", pass_type_subject(PASS_TYPE_ID, TEAM_ID), key_password=KEY_PASSWORD
    )
    return PassCert(ca, leaf)


@pytest.fixture
def server(tmp_path: Path, pass_cert: PassCert) -> Iterator[ApnsFakeServer]:
    """A fake that, like APNs with certificate auth, demands the pass certificate."""
    with ApnsFakeServer(tmp_path, require_client_cert_ca=pass_cert.ca.cert_file) as srv:
        yield srv
        assert srv.errors == []


@pytest.fixture
def p8_key(tmp_path: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """An APNs-style `.p8` signing key (PKCS#8 PEM, EC P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key


@pytest.fixture
def token_server(
    tmp_path: Path, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> Iterator[ApnsFakeServer]:
    """A fake that checks ES256 provider tokens against the team key."""
    trusted = ProviderTokenKey(p8_key[1].public_key(), KEY_ID, TEAM_ID)
    with ApnsFakeServer(tmp_path / "fake", provider_token_key=trusted) as srv:
        yield srv
        assert srv.errors == []


def cert_client(
    srv: ApnsFakeServer,
    pass_cert: PassCert,
    *,
    connections: int = 1,
    max_concurrent_streams: int = 100,
    push_type: str | None = None,
    priority: int | None = None,
) -> ApnsClient:
    """A client authenticating with the pass certificate and trusting the fake's CA."""
    auth = CertificateAuth(pass_cert.leaf.cert_file, pass_cert.leaf.key_file, KEY_PASSWORD)
    return ApnsClient(
        srv.url,
        PASS_TYPE_ID,
        auth,
        ca_file=srv.ca_file,
        connections=connections,
        max_concurrent_streams=max_concurrent_streams,
        push_type=push_type,
        priority=priority,
    )


def send(client: ApnsClient, tokens: Sequence[str]) -> list[ApnsResult]:
    """Send one batch on a fresh loop and close the client afterwards."""

    async def run() -> list[ApnsResult]:
        async with client:
            return await client.send_many(tokens)

    return asyncio.run(run())


def test_each_token_gets_one_empty_json_post_with_the_pass_type_as_topic(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    tokens = [token(1), token(2), token(3)]

    results = send(cert_client(server, pass_cert), tokens)

    assert [r.outcome for r in results] == ["sent"] * 3
    assert [r.token for r in results] == tokens
    assert all(r.status == 200 and r.apns_id for r in results)
    requests = server.requests
    assert sorted(r.path for r in requests) == [f"/3/device/{t}" for t in tokens]
    for request in requests:
        assert request.method == "POST"
        assert request.body == PASS_UPDATE_PAYLOAD == b"{}"
        assert request.headers["apns-topic"] == PASS_TYPE_ID
        assert request.headers[":scheme"] == "https"
        # The reference recommends omitting push type and priority for Wallet passes.
        assert "apns-push-type" not in request.headers
        assert "apns-priority" not in request.headers
        assert "authorization" not in request.headers


def test_the_pass_certificate_is_presented_as_the_tls_client_certificate(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    send(cert_client(server, pass_cert), [token(1)])

    (request,) = server.requests
    assert request.client_subject is not None
    assert f"CN=Pass Type ID: {PASS_TYPE_ID}" in request.client_subject
    assert f"UID={PASS_TYPE_ID}" in request.client_subject
    assert f"OU={TEAM_ID}" in request.client_subject


def test_a_client_without_the_pass_certificate_is_refused(
    server: ApnsFakeServer, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> None:
    client = ApnsClient(
        server.url, PASS_TYPE_ID, TokenAuth(p8_key[0], KEY_ID, TEAM_ID), ca_file=server.ca_file
    )

    (result,) = send(client, [token(1)])

    # With TLS 1.3 the refusal usually reaches the client as a broken connection (retry); if the
    # certificate alert happens to be read first, it is classified as fatal instead.
    assert result.outcome in ("retry", "fatal")
    assert result.status is None
    assert server.requests == []
    assert server.connections_opened == 0


def test_an_untrusted_server_certificate_is_fatal_and_logged(
    server: ApnsFakeServer, pass_cert: PassCert, caplog: pytest.LogCaptureFixture
) -> None:
    auth = CertificateAuth(pass_cert.leaf.cert_file, pass_cert.leaf.key_file, KEY_PASSWORD)
    client = ApnsClient(server.url, PASS_TYPE_ID, auth)  # no ca_file: the fake's CA is unknown

    with caplog.at_level(logging.ERROR, logger="walletd.push.apns"):
        (result,) = send(client, [token(1)])

    assert result.outcome == "fatal"
    assert result.reason is not None and "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_duplicate_tokens_are_pushed_once_and_results_follow_the_input(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    tokens = [token(7), token(8), token(7)]

    results = send(cert_client(server, pass_cert), tokens)

    assert [r.token for r in results] == tokens
    assert results[0] is results[2]
    assert len(server.requests_for(token(7))) == 1


def test_unregistered_token_is_gone_with_the_time_apple_gave(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    server.respond(token(1), status=410, reason="Unregistered", timestamp_ms=1_700_000_000_123)
    server.respond(token(2), status=410, reason="ExpiredToken")

    unregistered, expired, fine = send(
        cert_client(server, pass_cert), [token(1), token(2), token(3)]
    )

    assert unregistered.outcome == "gone"
    assert unregistered.status == 410
    assert unregistered.reason == "Unregistered"
    assert unregistered.gone_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert expired.outcome == "gone"
    assert expired.reason == "ExpiredToken"
    assert expired.gone_at is None
    assert fine.outcome == "sent"


def test_bad_device_token_is_reported_so_the_registration_can_go(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    server.respond(token(1), status=400, reason="BadDeviceToken")

    rejected, malformed = send(cert_client(server, pass_cert), [token(1), "not/a-token"])

    assert (rejected.outcome, rejected.status, rejected.reason) == (
        "bad_token",
        400,
        "BadDeviceToken",
    )
    # A token that is not hex never reaches the wire: it would change the request path.
    assert (malformed.outcome, malformed.status) == ("bad_token", None)
    assert [r.token for r in server.requests] == [token(1)]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "DeviceTokenNotForTopic"),
        (400, "TopicDisallowed"),
        (403, "BadCertificate"),
        (403, "BadCertificateEnvironment"),
        (403, "Forbidden"),
        (403, "ExpiredProviderToken"),  # meaningless with certificate auth: misconfiguration
        (400, "BadPayload"),
        (413, "PayloadTooLarge"),
    ],
)
def test_configuration_and_request_errors_are_fatal_and_logged_loudly(
    server: ApnsFakeServer,
    pass_cert: PassCert,
    caplog: pytest.LogCaptureFixture,
    status: int,
    reason: str,
) -> None:
    server.respond(token(1), status=status, reason=reason)

    with caplog.at_level(logging.ERROR, logger="walletd.push.apns"):
        results = send(cert_client(server, pass_cert), [token(1), token(2)])

    assert (results[0].outcome, results[0].status, results[0].reason) == ("fatal", status, reason)
    assert results[1].outcome == "sent"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert reason in errors[0].getMessage()
    assert PASS_TYPE_ID in errors[0].getMessage()


def test_throttling_and_outages_ask_for_a_retry_with_retry_after(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    server.respond(token(1), status=429, reason="TooManyRequests", retry_after="7")
    server.respond(token(2), status=503, reason="ServiceUnavailable", times=2)
    server.respond(token(3), status=500, reason="InternalServerError")
    client = cert_client(server, pass_cert)

    async def run() -> tuple[list[ApnsResult], list[ApnsResult], list[ApnsResult]]:
        async with client:
            tokens = [token(1), token(2), token(3)]
            return (
                await client.send_many(tokens),
                await client.send_many([token(2)]),
                await client.send_many([token(2)]),
            )

    first, second, third = asyncio.run(run())

    assert [(r.outcome, r.status, r.reason) for r in first] == [
        ("retry", 429, "TooManyRequests"),
        ("retry", 503, "ServiceUnavailable"),
        ("retry", 500, "InternalServerError"),
    ]
    assert first[0].retry_after == 7.0
    assert first[1].retry_after is None
    # The fake answers 503 for the first two attempts only, then recovers.
    assert second[0].outcome == "retry"
    assert third[0].outcome == "sent"


def test_token_auth_sends_an_es256_provider_token_and_reuses_it(
    token_server: ApnsFakeServer, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> None:
    client = ApnsClient(
        token_server.url,
        PASS_TYPE_ID,
        TokenAuth(p8_key[0], KEY_ID, TEAM_ID),
        ca_file=token_server.ca_file,
    )

    results = send(client, [token(1), token(2), token(3)])

    assert [r.outcome for r in results] == ["sent"] * 3
    assert len(token_server.provider_tokens_seen) == 1
    for request in token_server.requests:
        assert request.headers["authorization"].startswith("bearer ")
        assert request.headers["apns-topic"] == PASS_TYPE_ID


def test_expired_provider_token_is_replaced_once_and_the_push_succeeds(
    token_server: ApnsFakeServer, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> None:
    client = ApnsClient(
        token_server.url,
        PASS_TYPE_ID,
        TokenAuth(p8_key[0], KEY_ID, TEAM_ID),
        ca_file=token_server.ca_file,
    )

    async def run() -> tuple[list[ApnsResult], list[ApnsResult]]:
        async with client:
            first = await client.send_many([token(1)])
            token_server.expire_provider_tokens()
            return first, await client.send_many([token(1)])

    first, second = asyncio.run(run())

    assert first[0].outcome == second[0].outcome == "sent"
    old_jwt, new_jwt = token_server.provider_tokens_seen
    assert [(r.status, r.reason) for r in token_server.requests] == [
        (200, None),
        (403, "ExpiredProviderToken"),
        (200, None),
    ]
    assert [r.headers["authorization"] for r in token_server.requests] == [
        f"bearer {old_jwt}",
        f"bearer {old_jwt}",
        f"bearer {new_jwt}",
    ]


def test_a_still_expired_provider_token_after_one_refresh_is_a_retry(
    token_server: ApnsFakeServer, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> None:
    token_server.respond(token(1), status=403, reason="ExpiredProviderToken")
    client = ApnsClient(
        token_server.url,
        PASS_TYPE_ID,
        TokenAuth(p8_key[0], KEY_ID, TEAM_ID),
        ca_file=token_server.ca_file,
    )

    (result,) = send(client, [token(1)])

    assert (result.outcome, result.status, result.reason) == ("retry", 403, "ExpiredProviderToken")
    assert len(token_server.requests) == 2
    assert len(token_server.provider_tokens_seen) == 2


def test_provider_token_is_renewed_after_fifty_minutes_not_before(
    token_server: ApnsFakeServer, p8_key: tuple[Path, ec.EllipticCurvePrivateKey]
) -> None:
    now = [datetime.now(UTC).timestamp()]
    client = ApnsClient(
        token_server.url,
        PASS_TYPE_ID,
        TokenAuth(p8_key[0], KEY_ID, TEAM_ID),
        ca_file=token_server.ca_file,
        clock=lambda: now[0],
    )

    async def run() -> None:
        async with client:
            await client.send_many([token(1)])
            now[0] += 49 * 60
            await client.send_many([token(2)])
            now[0] += 2 * 60
            await client.send_many([token(3)])

    # The fake checks iat against the real clock, so the last token is "from the future"; it
    # only has to be a different, validly signed JWT.
    asyncio.run(run())

    assert [r.status for r in token_server.requests] == [200, 200, 200]
    assert len(token_server.provider_tokens_seen) == 2


def test_a_foreign_signing_key_is_fatal(
    token_server: ApnsFakeServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = tmp_path / "stranger.p8"
    stranger.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client = ApnsClient(
        token_server.url,
        PASS_TYPE_ID,
        TokenAuth(stranger, KEY_ID, TEAM_ID),
        ca_file=token_server.ca_file,
    )

    with caplog.at_level(logging.ERROR, logger="walletd.push.apns"):
        (result,) = send(client, [token(1)])

    assert (result.outcome, result.status, result.reason) == ("fatal", 403, "InvalidProviderToken")
    assert "InvalidProviderToken" in caplog.text


def test_many_pushes_share_one_multiplexed_connection(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    # A little latency, as over the internet, so streams overlap however the reads are chunked.
    server.set_default_response(200, delay=0.005)
    tokens = [token(n) for n in range(500)]

    results = send(cert_client(server, pass_cert), tokens)

    assert all(r.outcome == "sent" for r in results)
    assert len(server.requests) == 500
    assert server.connections_opened == 1
    assert server.max_concurrent_streams_seen > 1


def test_pushes_spread_over_the_configured_number_of_connections(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    server.set_default_response(200, delay=0.005)
    results = send(
        cert_client(server, pass_cert, connections=2, max_concurrent_streams=20),
        [token(n) for n in range(200)],
    )

    assert all(r.outcome == "sent" for r in results)
    assert server.connections_opened == 2
    assert {r.connection_id for r in server.requests} == {1, 2}
    assert 1 < server.max_concurrent_streams_seen <= 20


def test_sync_sender_keeps_its_connection_open_between_pushes(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    threads_before = set(threading.enumerate())
    sender: PushSender = ApnsSender(cert_client(server, pass_cert))
    try:
        first = sender.push([token(1), token(2)])
        second = sender.push([token(3)])
    finally:
        sender.close()

    assert [r.outcome for r in first + second] == ["sent"] * 3
    assert server.connections_opened == 1
    assert {r.connection_id for r in server.requests} == {1}
    assert set(threading.enumerate()) == threads_before


def test_sync_sender_reconnects_after_apns_closes_the_connection(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    with ApnsSender(cert_client(server, pass_cert)) as sender:
        assert sender.push([token(1)])[0].outcome == "sent"
        server.drop_connections()
        results = sender.push([token(2), token(3)])

    assert [r.outcome for r in results] == ["sent", "sent"]
    assert server.connections_opened == 2


def test_closed_sender_refuses_to_push(server: ApnsFakeServer, pass_cert: PassCert) -> None:
    sender = ApnsSender(cert_client(server, pass_cert))
    sender.close()
    sender.close()

    with pytest.raises(RuntimeError):
        sender.push([token(1)])


def test_background_push_type_goes_with_priority_five(
    server: ApnsFakeServer, pass_cert: PassCert
) -> None:
    with pytest.raises(ValueError):
        cert_client(server, pass_cert, push_type="background", priority=10)

    (result,) = send(cert_client(server, pass_cert, push_type="background"), [token(1)])

    assert result.outcome == "sent"
    (request,) = server.requests
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"


def test_null_sender_reports_sent_without_any_traffic(caplog: pytest.LogCaptureFixture) -> None:
    sender: PushSender = NullPushSender()

    with caplog.at_level(logging.DEBUG, logger="walletd.push.apns"):
        results = sender.push([token(1), token(2)])
    sender.close()

    assert [(r.token, r.outcome) for r in results] == [(token(1), "sent"), (token(2), "sent")]
    assert "2" in caplog.text


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "reason"),
    [
        ("POST", f"/3/device/{token(1)}", {}, b"{}", 400, "MissingTopic"),
        ("GET", f"/3/device/{token(1)}", {"apns-topic": PASS_TYPE_ID}, b"", 405, None),
        ("POST", "/3/devices/abc", {"apns-topic": PASS_TYPE_ID}, b"{}", 404, "BadPath"),
        ("POST", "/3/device/xyz", {"apns-topic": PASS_TYPE_ID}, b"{}", 400, "BadDeviceToken"),
        ("POST", f"/3/device/{token(1)}", {"apns-topic": PASS_TYPE_ID}, b"", 400, "PayloadEmpty"),
        ("POST", f"/3/device/{token(1)}", {"apns-topic": PASS_TYPE_ID}, b"{", 400, "BadPayload"),
        (
            "POST",
            f"/3/device/{token(1)}",
            {"apns-topic": PASS_TYPE_ID, "apns-push-type": "background", "apns-priority": "10"},
            b"{}",
            400,
            "BadPriority",
        ),
    ],
)
def test_fake_rejects_requests_real_apns_would_reject(
    tmp_path: Path,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    reason: str | None,
) -> None:
    with ApnsFakeServer(tmp_path) as srv:
        context = ssl.create_default_context(cafile=str(srv.ca_file))
        with httpx.Client(http1=False, http2=True, verify=context, trust_env=False) as http:
            response = http.request(method, srv.url + path, headers=headers, content=body)

    assert response.http_version == "HTTP/2"
    assert response.status_code == status
    if reason is not None:
        assert response.json() == {"reason": reason}


def test_fake_turns_away_clients_that_do_not_speak_http2(tmp_path: Path) -> None:
    with ApnsFakeServer(tmp_path) as srv:
        context = ssl.create_default_context(cafile=str(srv.ca_file))
        with httpx.Client(http2=False, verify=context, trust_env=False) as http:
            with pytest.raises(httpx.TransportError):
                http.post(f"{srv.url}/3/device/{token(1)}", content=b"{}")
        errors = srv.errors

    assert any("h2" in error for error in errors)


def test_fake_runs_standalone_for_benchmarks(tmp_path: Path, pass_cert: PassCert) -> None:
    ca_out = tmp_path / "ca.pem"
    stats_out = tmp_path / "stats.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.apns_server",
            "--ca-out",
            str(ca_out),
            "--dir",
            str(tmp_path / "certs"),
            "--stats-out",
            str(stats_out),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        auth = CertificateAuth(pass_cert.leaf.cert_file, pass_cert.leaf.key_file, KEY_PASSWORD)
        client = ApnsClient(ready["url"], PASS_TYPE_ID, auth, ca_file=ca_out)
        results = send(client, [token(n) for n in range(50)])
        context = ssl.create_default_context(cafile=str(ca_out))
        with httpx.Client(http1=False, http2=True, verify=context, trust_env=False) as http:
            live = http.get(ready["url"] + "/_fake/stats").json()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert process.returncode == 0, stderr
    assert all(r.outcome == "sent" for r in results)
    assert live["requests"] == 50
    assert json.loads(stats_out.read_text())["statuses"] == {"200": 50}
