"""Readiness: the database answers, its schema is at the newest migration, a worker is alive."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import func, select, text

from walletd.models.ops import WorkerHeartbeat
from walletd.services import Services

HEARTBEAT_MAX_AGE = timedelta(seconds=60)


@functools.cache
def _head() -> str:
    from walletd.schema import head_revision

    return head_revision()


def readiness(svc: Services, now: datetime) -> dict[str, str]:
    """Each failing check's name and why; empty when ready. Two small queries."""
    failures: dict[str, str] = {}
    try:
        with svc.db.engine.connect() as connection:
            revisions = {
                r for (r,) in connection.execute(text("SELECT version_num FROM alembic_version"))
            }
            newest = connection.execute(select(func.max(WorkerHeartbeat.seen_at))).scalar()
    except Exception:  # any database failure means "not ready", whatever its type
        return {"database": "the database does not answer"}
    if revisions != {_head()}:
        failures["schema"] = "the schema is not at the newest migration"
    if newest is None:
        failures["worker"] = "no worker heartbeat: start `walletd worker`"
    else:
        if newest.tzinfo is None:
            from datetime import UTC

            newest = newest.replace(tzinfo=UTC)
        if now - newest > HEARTBEAT_MAX_AGE:
            failures["worker"] = "the newest worker heartbeat is older than 60 s"
    return failures
