"""Once-per-period scheduled jobs across every worker, by claiming a `job_runs` row.

Every worker with a scheduler fires the same jobs at the same slots. Before running, a worker
inserts JobRun(job, period) in its own transaction; the primary key makes the insert succeed for
exactly one worker (SQLite and Postgres both raise IntegrityError for the others, who skip).

A worker that dies mid-run leaves its row "running". Nobody re-runs that period (its row still
holds the key, so a second run of the same period can never happen); the next period is a new
key and is claimed normally, and the jobs are idempotent, so the next run catches up. Such rows are
marked "abandoned" by `prune_job_runs` once they are a day old and their worker's heartbeat is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from walletd.db import Database
from walletd.models.ops import JobRun, WorkerHeartbeat

log = logging.getLogger(__name__)

KEEP_JOB_RUNS = timedelta(days=30)
ABANDONED_AFTER = timedelta(days=1)
# Interval triggers start here so every worker's slots fall on the same boundaries.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def daily_period(now: datetime, hour: int, minute: int = 0) -> str:
    """The UTC date of the latest daily slot at or before `now` (a late start keeps its slot)."""
    now = now.astimezone(UTC)
    slot = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if slot > now:
        slot -= timedelta(days=1)
    return slot.date().isoformat()


def interval_period(now: datetime, minutes: int) -> str:
    """The start of the interval slot holding `now`, rounded down to `minutes` from EPOCH."""
    step = timedelta(minutes=minutes)
    slot = EPOCH + ((now.astimezone(UTC) - EPOCH) // step) * step
    return slot.strftime("%Y-%m-%dT%H:%M")


def claim(db: Database, job: str, period: str, worker_id: str, now: datetime) -> bool:
    """Insert the claim row; False when another worker already has this job's period."""
    try:
        with db.transaction() as session:
            session.add(
                JobRun(
                    job=job, period=period, worker_id=worker_id, started_at=now, status="running"
                )
            )
    except IntegrityError:
        return False
    return True


def finish(db: Database, job: str, period: str, status: str, now: datetime) -> None:
    """Record how the claimed run ended ("done" or "failed")."""
    with db.transaction() as session:
        session.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.period == period)
            .values(status=status, finished_at=now)
        )


def run_once_per_period(
    db: Database,
    job: str,
    period: str,
    worker_id: str,
    run: Callable[[], int],
    clock: Callable[[], datetime],
) -> int | None:
    """Run `run` if this worker wins the period's claim; None when another worker has it."""
    if not claim(db, job, period, worker_id, clock()):
        log.debug("job %s %s already claimed elsewhere; skipped", job, period)
        return None
    try:
        result = run()
    except Exception:
        finish(db, job, period, "failed", clock())
        raise
    finish(db, job, period, "done", clock())
    return result


def prune_job_runs(session: Session, *, now: datetime) -> int:
    """Delete runs older than 30 days; mark day-old "running" rows of gone workers abandoned."""
    live = select(WorkerHeartbeat.worker_id)
    session.execute(
        update(JobRun)
        .where(
            JobRun.status == "running",
            JobRun.started_at < now - ABANDONED_AFTER,
            JobRun.worker_id.not_in(live),
        )
        .values(status="abandoned", finished_at=now)
    )
    result = session.execute(delete(JobRun).where(JobRun.started_at < now - KEEP_JOB_RUNS))
    return int(getattr(result, "rowcount", 0) or 0)
