"""Two worker processes race for the same scheduled period: exactly one runs it."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue

from flask import Flask
from sqlalchemy import func, select

from tests.conftest import SECRET
from tests.factories import BrandKeys, FrozenClock, enroll, services_of
from walletd.config import Settings
from walletd.jobs import DAILY_JOBS
from walletd.models import LedgerEntry
from walletd.models.ops import JobRun
from walletd.scheduling.claims import daily_period, run_once_per_period


def _race(url: str, instance: Path, go: Event, results: Queue[int | None]) -> None:
    """One "worker process": its own app and database pool, the real clock."""
    from walletd import create_app

    settings = Settings(
        database_url=url,
        base_url="http://walletd.test",
        secret_key=SECRET,
        env="test",
        instance_path=instance,
    )
    svc = services_of(create_app(settings))
    job = next(j for j in DAILY_JOBS if j.name == "birthday_bonuses")
    period = daily_period(svc.clock(), job.hour, job.minute)
    go.wait(30)
    results.put(
        run_once_per_period(
            svc.db, job.name, period, f"worker-{os.getpid()}", lambda: job.run(svc), svc.clock
        )
    )
    svc.close()


def test_two_worker_processes_grant_a_birthday_bonus_once(
    app: Flask, brand: BrandKeys, clock: FrozenClock, database_url: str, tmp_path: Path
) -> None:
    clock.now = datetime.now(UTC)
    enroll(app.test_client(), brand, birthday=clock().date().replace(year=1990).isoformat())
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    results: Queue[int | None] = context.Queue()  # type: ignore[assignment]
    workers = [
        context.Process(target=_race, args=(database_url, tmp_path / f"w{i}", go, results))
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    go.set()
    outcomes = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert [o for o in outcomes if o is not None] == [1]
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
        assert session.scalar(select(JobRun.status)) == "done"
        bonuses = session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.kind == "bonus", LedgerEntry.reason == "birthday")
        )
        assert bonuses == 1
