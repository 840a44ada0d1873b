"""Operations bookkeeping shared by every process: worker heartbeats, scheduled-job claims and
request-rate slots (a limit that holds across all workers, not per process)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class WorkerHeartbeat(Base):
    """One row per running `walletd worker`, refreshed while its loop runs (readiness reads it)."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    # False for `walletd worker --no-scheduler` (delivery only).
    scheduler: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class JobRun(Base):
    """A scheduled job's run for one period, claimed by inserting the row: the primary key makes
    the claim unique across every worker, so each period's run happens once."""

    __tablename__ = "job_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The period the run covers, e.g. "2026-12-04" for a daily job or "2026-12-04T10:05" for one
    # every five minutes.
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # "running", "done" or "failed".
    status: Mapped[str] = mapped_column(String(16), default="running")


class RateSlot(Base):
    """The next free moment of a shared request rate (e.g. one Google issuer's requests/second)."""

    __tablename__ = "rate_slots"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
