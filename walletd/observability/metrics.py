"""Prometheus metrics (`walletd_*`); multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set.

Counters and histograms are process-local (or shared files in multiprocess mode, so gunicorn's
workers and `walletd worker` add up). Outbox depth, the Google budget and campaign progress are
read from the database at scrape time by `DatabaseCollector`, one query each.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from walletd.db import Database
from walletd.errors import WalletdError
from walletd.models.campaign import Campaign
from walletd.models.google import GoogleNotification
from walletd.models.outbox import OutboxMessage

SCANS = Counter("walletd_scans_total", "Scans by result", ["result"])
REDEMPTIONS = Counter(
    "walletd_redemptions_total",
    "Redemptions by kind (points, reward, coupon) and result",
    ["kind", "result"],
)
REQUEST_SECONDS = Histogram(
    "walletd_request_duration_seconds",
    "HTTP request latency by route rule",
    ["route", "method", "status"],
)
PUSHES = Counter(
    "walletd_pushes_total", "Push deliveries by channel and outcome", ["channel", "outcome"]
)
UPSTREAM_SECONDS = Histogram(
    "walletd_upstream_request_duration_seconds", "APNs and Google API request latency", ["service"]
)
PASSES_SIGNED = Counter("walletd_passes_signed_total", "Apple passes signed")
PASS_CACHE = Counter("walletd_pass_cache_total", "Pass cache lookups", ["result"])
FASTPATH = Counter(
    "walletd_fastpath_total",
    "Apple web service requests by who answered: the fast path, the app, or the app after an error",
    ["result"],
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class DatabaseCollector(Collector):
    """Outbox depth and oldest due age by kind, computed at scrape time."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "walletd_metrics_database_up", "1 when the scrape-time database gauges could be read"
        )
        try:
            families = list(self._collect())
        except Exception:  # a scrape never fails: the database gauges are just missing
            log.warning("the database gauges could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        depth = GaugeMetricFamily(
            "walletd_outbox_pending", "Pending outbox rows by kind", labels=["kind"]
        )
        age = GaugeMetricFamily(
            "walletd_outbox_oldest_due_age_seconds",
            "Age of the oldest due pending outbox row by kind (0 when none is due)",
            labels=["kind"],
        )
        query = (
            select(
                OutboxMessage.kind,
                func.count(),
                func.min(OutboxMessage.next_attempt_at).filter(
                    OutboxMessage.next_attempt_at <= now
                ),
            )
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.kind)
        )
        with self.db.engine.connect() as connection:
            rows = connection.execute(query).all()
        for kind, count, oldest in rows:
            depth.add_metric([kind], count)
            if oldest is not None:
                if isinstance(oldest, str):
                    oldest = datetime.fromisoformat(oldest)
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=now.tzinfo)
            seconds = max((now - oldest) / timedelta(seconds=1), 0.0) if oldest else 0.0
            age.add_metric([kind], seconds)
        yield depth
        yield age
        yield from self._google_and_campaigns(now)

    def _google_and_campaigns(self, now: datetime) -> Iterator[GaugeMetricFamily]:
        day_ago = now - timedelta(days=1)
        recent = select(Campaign.id).where(
            or_(Campaign.status == "sending", Campaign.fanned_out_at >= day_ago)
        )
        with self.db.engine.connect() as connection:
            sent = connection.execute(
                select(func.count()).where(GoogleNotification.sent_at >= day_ago)
            ).scalar_one()
            progress = connection.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.campaign_id.in_(recent))
                .group_by(OutboxMessage.status)
            ).all()
        budget = GaugeMetricFamily(
            "walletd_google_notifications_last_day",
            "Google notifications sent in the last 24 h (the budget used)",
        )
        budget.add_metric([], sent)
        yield budget
        campaigns = GaugeMetricFamily(
            "walletd_campaign_pushes",
            "Pushes of campaigns sending or fanned out in the last day, by outbox status",
            labels=["status"],
        )
        for status, count in progress:
            campaigns.add_metric([status], count)
        yield campaigns


def render(db: Database, clock: Callable[[], datetime]) -> bytes:
    """The metrics page: this process's (or every process's) metrics plus the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process: CollectorRegistry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)  # type: ignore[no-untyped-call]
    else:
        process = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector(db, clock))
    return generate_latest(process) + generate_latest(database)


def counted(
    counter: Counter, kind: Callable[[dict[str, object]], str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count a use case's result: ok, replay, or the error's stable code (a bounded set)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            labels = {} if kind is None else {"kind": kind(kwargs)}
            try:
                outcome = fn(*args, **kwargs)
            except WalletdError as error:
                counter.labels(**labels, result=error.code).inc()
                raise
            replayed = bool(getattr(outcome, "replayed", False))
            counter.labels(**labels, result="replay" if replayed else "ok").inc()
            return outcome

        return wrapper

    return decorate


def redemption_kind(kwargs: dict[str, object]) -> str:
    """`reward` when a reward is redeemed, else `points`."""
    return "reward" if kwargs.get("reward_id") is not None else "points"


def coupon_kind(kwargs: dict[str, object]) -> str:
    """Coupon redemptions are counted with kind `coupon`."""
    return "coupon"
