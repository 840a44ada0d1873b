"""Rate limits: per key or client, behind trusted proxies only, shared across processes by Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd import create_app
from walletd.config import Settings
from walletd.errors import ConfigError
from walletd.web.limits import rate_limits

REDIS_URL = "redis://127.0.0.1:6379"
_HYPOTHESIS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def make_app(settings: Settings, clock: FrozenClock) -> Iterator[Any]:
    """Apps with some settings changed; closed after the test."""
    apps: list[Flask] = []

    def build(**changes: object) -> Flask:
        app = create_app(settings.with_changes(**changes), clock=clock)
        apps.append(app)
        return app

    yield build
    for app in apps:
        services_of(app).close()


def _member_get(client: FlaskClient, headers: dict[str, str], **environ: str) -> Any:
    return client.get("/api/v1/members/1", headers=headers, environ_base=environ)


def test_the_api_is_limited_per_key_with_the_json_envelope_and_retry_after(make_app: Any) -> None:
    app = make_app(ratelimit_api="3 per minute")
    brand = make_brand(app)
    client = app.test_client()
    statuses = [_member_get(client, brand.admin).status_code for _ in range(4)]
    assert statuses[:3] != [429] * 3 and statuses[3] == 429
    refused = _member_get(client, brand.admin)
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert refused.get_json()["error"]["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    # Another key from the same address has its own budget.
    assert _member_get(client, brand.cashier).status_code != 429


def test_random_keys_do_not_escape_the_limit_on_wrong_keys(make_app: Any) -> None:
    app = make_app(ratelimit_api_auth_failures="5 per minute")
    client = app.test_client()
    statuses = [
        _member_get(client, {"Authorization": f"Bearer wd_a_guess{i}"}).status_code
        for i in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


def test_successes_carry_no_rate_limit_headers(client: FlaskClient, brand: BrandKeys) -> None:
    response = client.get("/api/v1/members/1", headers=brand.admin)
    assert response.status_code != 429
    assert "Retry-After" not in response.headers
    assert not [h for h in response.headers.keys() if h.lower().startswith("x-ratelimit")]


def test_forwarded_addresses_are_ignored_without_trusted_proxies(make_app: Any) -> None:
    app = make_app(ratelimit_api_auth_failures="2 per minute")
    client = app.test_client()
    bad = {"Authorization": "Bearer wd_a_nope"}
    for n in range(2):
        headers = {**bad, "X-Forwarded-For": f"203.0.113.{n}"}
        assert client.get("/api/v1/members/1", headers=headers).status_code == 401
    # A client cannot claim to be someone else: the header is not believed.
    spoofed = {**bad, "X-Forwarded-For": "198.51.100.7"}
    assert client.get("/api/v1/members/1", headers=spoofed).status_code == 429


@_HYPOTHESIS
@given(forged=st.lists(st.ip_addresses(v=4).map(str), max_size=3))
def test_behind_one_trusted_proxy_each_client_is_counted_by_the_proxys_entry(
    make_app: Any, forged: list[str]
) -> None:
    app = make_app(trusted_proxies=1, ratelimit_api_auth_failures="2 per minute")
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def attempt(client_ip: str) -> int:
        # The proxy appends the address it saw; whatever the client sent before is not believed.
        chain = ", ".join([*forged, client_ip])
        headers = {"Authorization": "Bearer wd_a_nope", "X-Forwarded-For": chain}
        response = client.get("/api/v1/members/1", headers=headers, environ_base=proxy)
        return int(response.status_code)

    assert [attempt("192.0.2.10") for _ in range(3)] == [401, 401, 429]
    # Another customer behind the same proxy is not affected.
    assert attempt("192.0.2.11") == 401


def test_ipv6_clients_are_counted_by_their_64_network(make_app: Any) -> None:
    app = make_app(ratelimit_api_auth_failures="2 per minute")
    client = app.test_client()
    bad = {"Authorization": "Bearer wd_a_nope"}
    statuses = [
        client.get(
            "/api/v1/members/1", headers=bad, environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{n}"}
        ).status_code
        for n in range(1, 4)
    ]
    assert statuses == [401, 401, 429]
    other = client.get(
        "/api/v1/members/1", headers=bad, environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}
    )
    assert other.status_code == 401


def test_the_apple_log_and_registrations_are_limited_per_client(make_app: Any) -> None:
    app = make_app(ratelimit_apple_log="2 per minute", ratelimit_apple_register="2 per minute")
    client = app.test_client()
    logs = [client.post("/passes/v1/log", json={"logs": ["hello"]}).status_code for _ in range(3)]
    assert logs[:2] != [429, 429] and logs[2] == 429
    path = "/passes/v1/devices/dev1/registrations/pass.test/SERIAL1"
    registrations = [
        client.post(path, json={"pushToken": "t"}, headers={"Authorization": "ApplePass x"})
        for _ in range(3)
    ]
    assert [r.status_code for r in registrations][2] == 429
    assert registrations[2].get_json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in registrations[2].headers
    # Polling for updates is not a registration and stays unlimited.
    assert client.get("/passes/v1/devices/dev1/registrations/pass.test").status_code != 429


def test_join_posts_are_limited_and_answered_with_a_page(make_app: Any) -> None:
    from tests.integration.pages.conftest import csrf_of

    app = make_app(ratelimit_join="2 per hour")
    brand = make_brand(app)
    client = app.test_client()
    path = f"/join/{brand.program_id}"
    token = csrf_of(client, path)
    statuses = []
    for n in range(3):
        data = {"csrf_token": token, "name": f"Member {n}", "email": f"m{n}@example.com"}
        statuses.append(client.post(path, data=data))
    assert [r.status_code for r in statuses] == [303, 303, 429]
    assert "text/html" in statuses[2].headers["Content-Type"]
    assert "Too many attempts" in statuses[2].get_data(as_text=True)
    assert int(statuses[2].headers["Retry-After"]) > 0
    # Showing the form is not limited.
    assert client.get(path).status_code == 200


def test_switched_off_request_limits_leave_failure_counting_on(make_app: Any) -> None:
    from tests.integration.pages.conftest import csrf_of

    app = make_app(ratelimit_enabled=False, ratelimit_api="1 per minute")
    brand = make_brand(app)
    client = app.test_client()
    assert {_member_get(client, brand.admin).status_code for _ in range(3)} != {429}
    token = csrf_of(client, "/cashier/login")
    statuses = [
        client.post(
            "/cashier/login", data={"csrf_token": token, "method": "key", "api_key": "wd_c_x"}
        ).status_code
        for _ in range(11)
    ]
    assert statuses[-1] == 429


@pytest.mark.skipif(not _redis_available(), reason="no Redis on 127.0.0.1:6379")
def test_processes_sharing_redis_share_their_counters(make_app: Any) -> None:
    # Two apps stand for two gunicorn processes; a fresh prefix keeps runs apart.
    prefix = f"walletd-test-{uuid.uuid4().hex}"
    changes = {
        "ratelimit_storage_uri": REDIS_URL,
        "ratelimit_key_prefix": prefix,
        "ratelimit_api_auth_failures": "3 per minute",
        "ratelimit_recover_client": "2 per minute",
    }
    first, second = make_app(**changes), make_app(**changes)
    bad = {"Authorization": "Bearer wd_a_nope"}
    assert _member_get(first.test_client(), bad).status_code == 401
    assert _member_get(second.test_client(), bad).status_code == 401
    assert _member_get(first.test_client(), bad).status_code == 401
    assert _member_get(second.test_client(), bad).status_code == 429
    # Failure counters (logins, recovery) live there too.
    with first.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.1"}):
        rate_limits().recover_client.fail("192.0.2.1")
    with second.test_request_context():
        rate_limits().recover_client.fail("192.0.2.1")
        assert rate_limits().recover_client.retry_after("192.0.2.1") is not None
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
    assert keys
    redis.Redis.from_url(REDIS_URL).delete(*keys)


def test_an_unreachable_redis_fails_open_to_counting_in_memory(make_app: Any) -> None:
    app = make_app(
        ratelimit_storage_uri="redis://127.0.0.1:9",  # nothing listens on the discard port
        ratelimit_recover_client="1 per minute",
    )
    brand = make_brand(app)
    client = app.test_client()
    started = time.monotonic()
    assert _member_get(client, brand.admin).status_code == 404  # answered: no member 1 yet
    with app.test_request_context():
        limits = rate_limits()
        assert limits.recover_client.retry_after("192.0.2.1") is None
        limits.recover_client.fail("192.0.2.1")
        assert limits.recover_client.retry_after("192.0.2.1") is not None
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATELIMIT_API", "lots"),
        ("RATELIMIT_LOGIN_CLIENT", ""),
        ("RATELIMIT_STORAGE_URI", "memcached://x"),
        ("TRUSTED_PROXIES", "²"),
        ("TRUSTED_PROXIES", "-1"),
        ("RATELIMIT_ENABLED", "maybe"),
        ("DEFAULT_PHONE_REGION", "XX"),
    ],
)
def test_bad_limit_settings_are_start_up_errors(name: str, value: str, tmp_path: Any) -> None:
    environ = {f"WALLETD_{name}": value, "WALLETD_INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError):
        Settings.from_env(environ).finalise()


def test_limit_settings_are_read_from_the_environment(tmp_path: Any) -> None:
    settings_ = Settings.from_env(
        {
            "WALLETD_INSTANCE_PATH": str(tmp_path),
            "WALLETD_TRUSTED_PROXIES": "2",
            "WALLETD_RATELIMIT_STORAGE_URI": REDIS_URL,
            "WALLETD_RATELIMIT_API": "10 per second",
            "WALLETD_RATELIMIT_ENABLED": "false",
            "WALLETD_DEFAULT_PHONE_REGION": "de",
        }
    ).finalise()
    assert settings_.trusted_proxies == 2 and settings_.ratelimit_storage_uri == REDIS_URL
    assert settings_.ratelimit_api == "10 per second" and settings_.ratelimit_enabled is False
    assert settings_.default_phone_region == "DE"
    assert Settings().ratelimit_storage_uri == "memory://" and Settings().trusted_proxies == 0
