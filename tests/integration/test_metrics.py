"""/metrics: Prometheus text, scan counters, outbox depth from the database, access."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import BrandKeys, enroll, scan, services_of
from walletd.push.dispatcher import Delivery, claim_due, record
from walletd.push.outbox import enqueue


def _samples(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scan_moves_the_scan_counter(client: FlaskClient, brand: BrandKeys) -> None:
    member = enroll(client, brand)
    key = ("walletd_scans_total", (("result", "ok"),))
    replay = ("walletd_scans_total", (("result", "replay"),))
    before = _samples(client)
    assert scan(client, brand, member["card"]["barcode"], "5.00", "k1").status_code == 201
    assert scan(client, brand, member["card"]["barcode"], "5.00", "k1").status_code == 200
    after = _samples(client)
    assert after[key] - before.get(key, 0.0) == 1
    assert after[replay] - before.get(replay, 0.0) == 1
    assert any(name == "walletd_request_duration_seconds_count" for name, _ in after)
    routes = {dict(labels).get("route") for name, labels in after if "request_duration" in name}
    assert "/api/v1/scans" in routes


def test_a_queued_push_shows_in_outbox_depth(app: Flask, client: FlaskClient) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        enqueue(session, [{"kind": "apns", "dedupe_key": "apns:x"}], now=svc.clock())
    samples = _samples(client)
    assert samples[("walletd_outbox_pending", (("kind", "apns"),))] == 1
    assert ("walletd_outbox_oldest_due_age_seconds", (("kind", "apns"),)) in samples
    assert samples[("walletd_google_notifications_last_day", ())] == 0


def test_metrics_need_the_token_when_one_is_set(app: Flask, client: FlaskClient) -> None:
    services_of(app).settings.__dict__["metrics_token"] = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200


def test_metrics_are_loopback_only_without_a_token(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403


def test_a_delivered_push_counts_by_channel_and_outcome(app: Flask, client: FlaskClient) -> None:
    svc = services_of(app)
    key = ("walletd_pushes_total", (("channel", "apns"), ("outcome", "gone")))
    before = _samples(client).get(key, 0.0)
    with svc.db.transaction() as session:
        enqueue(session, [{"kind": "apns", "dedupe_key": "apns:y"}], now=svc.clock())
    with svc.db.transaction() as session:
        rows = claim_due(
            session, now=svc.clock(), kinds=("apns",), limit=10, lease=timedelta(seconds=60)
        )
        record(session, rows, [Delivery(rows[0].id, "gone")], svc.clock())
    assert _samples(client)[key] - before == 1
