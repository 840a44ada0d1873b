"""The background worker: the outbox dispatcher plus the scheduler, never inside gunicorn."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from walletd.jobs import (
    DAILY_JOBS,
    INTERVAL_JOBS,
    IntervalJob,
    ScheduledJob,
    campaign_step,
    member_import_step,
    offer_issue_step,
    run_automations,
)
from walletd.observability.logs import log_context
from walletd.passes import serving
from walletd.passes.apple import ApplePasses
from walletd.push.apple_channel import ApnsChannel
from walletd.push.dispatcher import Channel, Dispatcher
from walletd.scheduling.claims import EPOCH, daily_period, interval_period, run_once_per_period
from walletd.scheduling.heartbeat import Heartbeat
from walletd.services import Services
from walletd.webhooks.channel import webhook_channel
from walletd.wiring import apple_passes, push_sender

log = logging.getLogger(__name__)

AUTOMATIONS_JOB = IntervalJob("automations", run_automations, minutes=5)

# Threads running scheduled jobs in a worker; with the delivery loop, a worker uses
# SCHEDULER_THREADS + 1 database connections at most (see walletd.db.default_pool_size).
SCHEDULER_THREADS = 2


def _presign(svc: Services, passes: ApplePasses, tokens: Sequence[str]) -> int:
    """Sign the passes behind these push tokens that have no stored package for their tag."""
    settings = svc.settings
    with svc.db.transaction() as session:
        signed = serving.presign_passes(
            session, serving.cards_behind_tokens(session, tokens), svc.context(), passes=passes,
            base_url=settings.base_url, secret_key=settings.secret_key,
        )  # fmt: skip
    if signed:
        log.debug("signed %d passes before pushing", signed)
    return signed


def build_channels(svc: Services) -> list[Channel]:
    """The delivery channels this configuration has."""
    passes = svc.adapter("apple_passes", lambda: apple_passes(svc.settings))
    sender = svc.adapter("push_sender", lambda: push_sender(svc.settings, passes.signer))
    channels: list[Channel] = [
        ApnsChannel(sender, clock=svc.clock, presign=partial(_presign, svc, passes))
    ]
    if svc.settings.google_enabled:
        from walletd.push.google_channel import google_channel

        channels.append(svc.adapter("google_channel", lambda: google_channel(svc)))
    channels.append(svc.adapter("webhook_channel", lambda: webhook_channel(svc)))
    # [email] always there: with e-mail off it cancels e-mail rows instead of leaving them.
    from walletd.email.sender import email_channel

    channels.append(
        svc.adapter("email_channel", lambda: email_channel(svc.settings, svc.db, svc.clock))
    )
    return channels


def build_dispatcher(svc: Services) -> Dispatcher:
    """A dispatcher over this configuration's channels."""
    return Dispatcher(svc.db, build_channels(svc), clock=svc.clock)


class Worker:
    """Runs the dispatcher in a loop and the daily jobs on a schedule until stopped."""

    def __init__(self, svc: Services, *, idle_sleep: float = 0.5, schedule: bool = True) -> None:
        self.svc = svc
        self.idle_sleep = idle_sleep
        self.stop_event = threading.Event()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.held: set[int] = set()
        self.held_issues: set[int] = set()
        self.held_imports: set[int] = set()
        self.dispatcher = build_dispatcher(svc)
        self.scheduler: BackgroundScheduler | None = None
        self.heartbeat = Heartbeat(svc.db, self.worker_id, scheduler=schedule, clock=svc.clock)
        if schedule:
            # coalesce/misfire_grace_time still apply per process: a worker that starts within
            # the grace time after a slot everyone missed runs it once; the JobRun claim makes
            # sure only one worker does (the period is the slot's, see walletd.scheduling.claims).
            self.scheduler = BackgroundScheduler(
                timezone="UTC", executors={"default": ThreadPoolExecutor(SCHEDULER_THREADS)}
            )
            for job in DAILY_JOBS:
                self.scheduler.add_job(
                    self._run_job,
                    CronTrigger(hour=job.hour, minute=job.minute, timezone="UTC"),
                    args=[job],
                    id=job.name,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=3600,
                )
            # Interval slots start from one fixed moment so every worker's slots line up.
            self.scheduler.add_job(
                self._run_job,
                IntervalTrigger(minutes=5, start_date=EPOCH),
                args=[AUTOMATIONS_JOB],
                id="automations",
                max_instances=1,
                coalesce=True,
            )
            for interval_job in INTERVAL_JOBS:
                self.scheduler.add_job(
                    self._run_job,
                    IntervalTrigger(minutes=interval_job.minutes, start_date=EPOCH),
                    args=[interval_job],
                    id=interval_job.name,
                    max_instances=1,
                    coalesce=True,
                )

    def period_of(self, job: ScheduledJob | IntervalJob) -> str:
        """The slot this run of `job` covers (the claim's key with the job's name)."""
        now = self.svc.clock()
        if isinstance(job, IntervalJob):
            return interval_period(now, job.minutes)
        return daily_period(now, job.hour, job.minute)

    def _run_job(self, job: ScheduledJob | IntervalJob) -> Any:
        with log_context(job_id=f"{job.name}:{uuid.uuid4().hex[:12]}"):
            try:
                return run_once_per_period(
                    self.svc.db,
                    job.name,
                    self.period_of(job),
                    self.worker_id,
                    lambda: job.run(self.svc),
                    self.svc.clock,
                )
            except Exception:
                log.exception("job %s failed; it runs again at its next time", job.name)
                return None

    def run(self) -> None:
        """Deliver until `stop()`; the batch in flight finishes first."""
        self.heartbeat.start()
        if self.scheduler is not None:
            self.scheduler.start()
        log.info("worker started (%s)", "with scheduler" if self.scheduler else "delivery only")
        try:
            while not self.stop_event.is_set():
                try:
                    self.heartbeat.beat()
                    handled = campaign_step(self.svc, self.worker_id, self.held)
                    handled += offer_issue_step(self.svc, self.worker_id, self.held_issues)
                    handled += member_import_step(self.svc, self.worker_id, self.held_imports)
                    handled += self.dispatcher.run_once()
                except Exception:
                    log.exception("worker round failed; trying again shortly")
                    handled = 0
                if handled == 0:
                    self.stop_event.wait(self.idle_sleep)
        finally:
            if self.scheduler is not None:
                self.scheduler.shutdown(wait=True)
            try:
                self.heartbeat.stop()
            except Exception:
                log.exception("could not remove this worker's heartbeat; it is pruned in a day")
            log.info("worker stopped")

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self.stop_event.set()


def start_embedded(svc: Services) -> Worker:
    """Run a worker on a daemon thread inside this process (development: `make run`)."""
    worker = Worker(svc)
    thread = threading.Thread(target=worker.run, name="walletd-worker", daemon=True)
    thread.start()
    return worker
