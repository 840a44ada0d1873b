"""Several workers: each scheduled period runs once, heartbeats, --no-scheduler, pool sizing."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.factories import BrandKeys, FrozenClock, services_of
from walletd.db import Database, default_pool_size
from walletd.jobs import DAILY_JOBS, prune_worker_bookkeeping
from walletd.models.ops import JobRun, WorkerHeartbeat
from walletd.passes.certs import write_dev_certs
from walletd.scheduling.claims import (
    claim,
    daily_period,
    interval_period,
    run_once_per_period,
)
from walletd.scheduling.heartbeat import Heartbeat, latest_heartbeat
from walletd.scheduling.rate import SharedRateLimiter
from walletd.worker import Worker


@pytest.fixture(scope="session")
def cert_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Development certificates made once (a Worker loads the Apple signing material)."""
    return write_dev_certs(tmp_path_factory.mktemp("dev-certs")).directory


@pytest.fixture
def certs(tmp_path: Path, cert_template: Path) -> Path:
    """The certificates where the `settings` fixture expects them."""
    shutil.copytree(cert_template, tmp_path / "certs")
    return tmp_path / "certs"


def test_periods_are_the_scheduled_slots() -> None:
    at = datetime(2026, 12, 4, 2, 30, tzinfo=UTC)
    assert daily_period(at, hour=3) == "2026-12-03"  # today's 03:00 slot has not come yet
    assert daily_period(at.replace(hour=3, minute=40), hour=3) == "2026-12-04"
    assert interval_period(at.replace(minute=7, second=59), 5) == "2026-12-04T02:05"
    assert interval_period(at.replace(minute=59), 60) == "2026-12-04T02:00"


def test_a_period_is_claimed_once_and_marked_done(app: Flask, clock: FrozenClock) -> None:
    db = services_of(app).db
    calls: list[str] = []

    def job() -> int:
        calls.append("ran")
        return 1

    assert run_once_per_period(db, "birthday_bonuses", "2026-03-10", "a", job, clock) == 1
    assert run_once_per_period(db, "birthday_bonuses", "2026-03-10", "b", job, clock) is None
    assert run_once_per_period(db, "birthday_bonuses", "2026-03-11", "b", job, clock) == 1
    assert calls == ["ran", "ran"]
    with db.transaction() as session:
        runs = session.scalars(select(JobRun).order_by(JobRun.period)).all()
        assert [(r.worker_id, r.status) for r in runs] == [("a", "done"), ("b", "done")]
        assert all(r.finished_at == clock() for r in runs)


def test_a_failed_run_is_marked_failed_and_not_rerun_in_its_period(
    app: Flask, clock: FrozenClock
) -> None:
    db = services_of(app).db

    def boom() -> int:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        run_once_per_period(db, "expire_points", "2026-03-10", "a", boom, clock)
    assert not claim(db, "expire_points", "2026-03-10", "b", clock())
    with db.transaction() as session:
        assert session.get(JobRun, ("expire_points", "2026-03-10")).status == "failed"  # type: ignore[union-attr]


def test_two_workers_run_a_daily_job_once(
    app: Flask, brand: BrandKeys, clock: FrozenClock, certs: Path
) -> None:
    svc = services_of(app)
    clock.now = datetime(2026, 3, 10, 8, 0, 5, tzinfo=UTC)
    ran: list[str] = []
    job = next(j for j in DAILY_JOBS if j.name == "birthday_bonuses")

    def counting(svc: object) -> int:
        ran.append("x")
        return 0

    counted = type(job)(job.name, counting, hour=job.hour)
    first, second = Worker(svc, schedule=False), Worker(svc, schedule=False)
    first._run_job(counted)
    second._run_job(counted)
    assert ran == ["x"]


def test_heartbeat_upserts_at_most_every_ten_seconds_and_goes_on_stop(
    app: Flask, clock: FrozenClock
) -> None:
    db = services_of(app).db
    beat = Heartbeat(db, "host:1:abc", scheduler=False, clock=clock)
    beat.start()
    started = clock()
    clock.advance(seconds=3)
    assert beat.beat() is False
    clock.advance(seconds=8)
    assert beat.beat() is True
    with db.transaction() as session:
        row = session.get(WorkerHeartbeat, "host:1:abc")
        assert row is not None and row.scheduler is False
        assert row.started_at == started and row.seen_at == clock()
        assert latest_heartbeat(session) == clock()
    beat.stop()
    with db.transaction() as session:
        assert latest_heartbeat(session) is None


def test_the_daily_prune_forgets_old_runs_and_dead_workers(app: Flask, clock: FrozenClock) -> None:
    svc = services_of(app)
    gone = Heartbeat(svc.db, "gone", scheduler=True, clock=clock)
    gone.start()
    claim(svc.db, "expire_points", "2026-02-01", "gone", clock())
    claim(svc.db, "expire_points", "2026-01-01", "gone", datetime(2026, 1, 1, 3, tzinfo=UTC))
    clock.advance(days=2)
    live = Heartbeat(svc.db, "live", scheduler=True, clock=clock)
    live.start()
    assert prune_worker_bookkeeping(svc) == 2  # the 2026-01-01 run and the "gone" worker
    with svc.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 1
        kept = session.get(JobRun, ("expire_points", "2026-02-01"))
        assert kept is not None and kept.status == "abandoned"


def test_no_scheduler_worker_starts_no_scheduler(app: Flask, certs: Path) -> None:
    svc = services_of(app)
    assert Worker(svc, schedule=False).scheduler is None
    worker = Worker(svc)
    assert worker.scheduler is not None
    ids = {job.id for job in worker.scheduler.get_jobs()}
    assert {"automations", "birthday_bonuses", "prune_worker_bookkeeping"} <= ids


def test_the_worker_command_takes_no_scheduler(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import walletd.worker as worker_module

    seen: list[bool] = []

    class Recorder:
        def __init__(self, svc: object, *, schedule: bool = True) -> None:
            seen.append(schedule)

        def run(self) -> None:
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(worker_module, "Worker", Recorder)
    result = app.test_cli_runner().invoke(args=["worker", "--no-scheduler"])
    assert result.exit_code == 0, result.output
    assert seen == [False]


def test_pool_size_comes_from_the_setting_else_the_threads() -> None:
    assert default_pool_size({}) == 4
    assert default_pool_size({"GUNICORN_THREADS": "8"}) == 8
    assert default_pool_size({"GUNICORN_THREADS": "8", "WALLETD_DB_POOL_SIZE": "2"}) == 2
    with pytest.raises(ValueError, match="WALLETD_DB_POOL_SIZE"):
        default_pool_size({"WALLETD_DB_POOL_SIZE": "-1"})


def test_a_postgres_engine_uses_the_pool_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLETD_DB_POOL_SIZE", "3")
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert db.engine.pool.size() == 3  # type: ignore[attr-defined]
    assert db.engine.pool._max_overflow == 0  # type: ignore[attr-defined]  # the exact cap
    db.dispose()


class FakeTime:
    """One wall clock for every "process": sleeping moves it forward."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_two_processes_sharing_an_issuer_never_exceed_the_rate_together(
    database_url: str,
) -> None:
    fake = FakeTime()
    rate = 10.0
    first, second = Database(database_url), Database(database_url)
    limiters = [
        SharedRateLimiter(db, "google:3388", rate, block=5, clock=fake, sleep=fake.sleep)
        for db in (first, second)
    ]
    granted: list[datetime] = []
    for i in range(40):  # the two processes take turns unevenly
        limiter = limiters[0] if i % 3 else limiters[1]
        limiter.acquire()
        granted.append(fake())
    granted.sort()
    gaps = [b - a for a, b in zip(granted, granted[1:], strict=False)]
    assert min(gaps) >= timedelta(seconds=1 / rate), gaps
    # Alternating processes waste the rest of their blocks: slower, never faster than the rate.
    assert granted[-1] - granted[0] <= timedelta(seconds=40 * 5 / rate)
    first.dispose()
    second.dispose()
