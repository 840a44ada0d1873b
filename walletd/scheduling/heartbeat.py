"""Worker heartbeats: one `worker_heartbeats` row per running worker, refreshed every ~10 s."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from walletd.db import Database
from walletd.models.ops import WorkerHeartbeat

BEAT_EVERY = timedelta(seconds=10)
FORGET_AFTER = timedelta(days=1)


class Heartbeat:
    """Writes this worker's row at start, at most once per BEAT_EVERY after, deletes it at stop."""

    def __init__(
        self,
        db: Database,
        worker_id: str,
        *,
        scheduler: bool,
        clock: Callable[[], datetime],
        every: timedelta = BEAT_EVERY,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.scheduler = scheduler
        self.clock = clock
        self.every = every
        self.started_at: datetime | None = None
        self.last_beat: datetime | None = None

    def start(self) -> None:
        """Insert (or replace) this worker's row."""
        now = self.clock()
        self.started_at = now
        with self.db.transaction() as session:
            session.merge(
                WorkerHeartbeat(
                    worker_id=self.worker_id,
                    hostname=socket.gethostname()[:255],
                    pid=os.getpid(),
                    scheduler=self.scheduler,
                    started_at=now,
                    seen_at=now,
                )
            )
        self.last_beat = now

    def beat(self) -> bool:
        """One UPDATE when the last beat is BEAT_EVERY old; True when it wrote."""
        now = self.clock()
        if self.last_beat is not None and now - self.last_beat < self.every:
            return False
        with self.db.transaction() as session:
            result = session.execute(
                update(WorkerHeartbeat)
                .where(WorkerHeartbeat.worker_id == self.worker_id)
                .values(seen_at=now)
            )
        if not getattr(result, "rowcount", 1):
            # Pruned while we were stalled for a day: come back.
            self.start()
        self.last_beat = now
        return True

    def stop(self) -> None:
        """Delete this worker's row (a clean stop)."""
        with self.db.transaction() as session:
            session.execute(
                delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == self.worker_id)
            )


def latest_heartbeat(session: Session) -> datetime | None:
    """When any worker was last seen, or None when no worker is running."""
    return session.scalar(select(func.max(WorkerHeartbeat.seen_at)))


def prune_heartbeats(session: Session, *, now: datetime) -> int:
    """Forget workers not seen for a day (killed without a clean stop)."""
    result = session.execute(
        delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < now - FORGET_AFTER)
    )
    return int(getattr(result, "rowcount", 0) or 0)
