"""A request rate shared by every process: slots reserved on the `rate_slots` row of a key.

Each acquire takes the next free moment of the key (row locked: Postgres `FOR UPDATE`, SQLite
`BEGIN IMMEDIATE`), moves `next_at` past it and sleeps until it, so all workers of one Google
issuer together stay under the rate. To spare a database round trip per request a process
reserves a small block of consecutive slots at once and hands them out in order; slots that have
passed unused are dropped (using a late slot could bunch with another process's).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from walletd.db import Database, utcnow
from walletd.models.ops import RateSlot


class SharedRateLimiter:
    """`acquire()` waits for this process's next slot of `key`; thread-safe."""

    def __init__(
        self,
        db: Database,
        key: str,
        rate_per_second: float,
        *,
        block: int = 5,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0 or block < 1:
            raise ValueError("rate_per_second must be positive and block at least 1")
        self.db = db
        self.key = key
        self.interval = timedelta(seconds=1.0 / rate_per_second)
        self.block = block
        self.clock = clock
        self.sleep = sleep
        self._slots: deque[datetime] = deque()
        self._lock = threading.Lock()

    def _reserve(self, now: datetime) -> None:
        """Take `block` consecutive slots from the shared row (created on first use)."""
        for _ in range(2):
            with self.db.transaction() as session:
                row = session.scalars(
                    select(RateSlot).where(RateSlot.key == self.key).with_for_update()
                ).one_or_none()
                if row is not None:
                    start = max(row.next_at, now)
                    row.next_at = start + self.interval * self.block
                    self._slots.extend(start + self.interval * i for i in range(self.block))
                    return
            try:
                with self.db.transaction() as session:
                    session.add(RateSlot(key=self.key, next_at=now))
            except IntegrityError:
                pass  # another process created it first
        raise RuntimeError(f"rate slot {self.key!r} could not be reserved")

    def acquire(self) -> float:
        """Wait for the next slot and return how long that took, in seconds."""
        with self._lock:
            now = self.clock()
            while self._slots and self._slots[0] < now:
                self._slots.popleft()  # passed unused: using it late could bunch with others
            if not self._slots:
                self._reserve(now)
            slot = self._slots.popleft()
        wait = (slot - now).total_seconds()
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)
