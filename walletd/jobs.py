"""Scheduled jobs: each opens its own transactions, is idempotent and logs what it did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.campaigns import automations
from walletd.campaigns import service as campaigns
from walletd.events import runs as event_runs
from walletd.imports import service as imports
from walletd.loyalty import ledger
from walletd.loyalty.context import Context
from walletd.messages import service as card_messages
from walletd.models import Program
from walletd.offers import coupons, issues, promotions
from walletd.privacy.erasure import forget_erased_devices_job
from walletd.push import google_sync, registrations
from walletd.scheduling.claims import prune_job_runs
from walletd.scheduling.heartbeat import prune_heartbeats
from walletd.services import Services

log = logging.getLogger(__name__)


def _in_batches(svc: Services, step: Callable[[Session, Context], int]) -> int:
    """Run a batch step in its own transaction until it finds nothing more to do."""
    total = 0
    while True:
        with svc.db.transaction() as session:
            done = step(session, svc.context())
        total += done
        if done == 0:
            return total


def expire_points(svc: Services) -> int:
    """Expire due point lots, in batches of members."""
    total = _in_batches(svc, ledger.expire_due_lots)
    log.info("expire_points: %d member(s) lost expired points", total)
    return total


def birthday_bonuses(svc: Services) -> int:
    """Grant today's birthday bonuses (once a year per member)."""
    total = _in_batches(svc, ledger.grant_birthday_bonuses)
    log.info("birthday_bonuses: %d member(s) got their birthday bonus", total)
    return total


def reevaluate_tiers(svc: Services) -> int:
    """Re-evaluate every program's tiers over the rolling 12 months (the only downgrade path)."""
    with svc.db.transaction() as session:
        program_ids = list(session.scalars(select(Program.id)).all())
    changed = 0
    for program_id in program_ids:
        with svc.db.transaction() as session:
            changed += ledger.reevaluate_tiers(session, svc.context(), program_id=program_id)
    log.info("reevaluate_tiers: %d member(s) changed tier", changed)
    return changed


def campaign_step(svc: Services, worker_id: str, held: set[int], *, max_chunks: int = 10) -> int:
    """Fan out up to `max_chunks` chunks of the campaigns this worker holds or can claim."""
    with svc.db.transaction() as session:
        claimed = campaigns.claim_due_campaign(session, worker_id, svc.clock())
    if claimed is not None:
        log.info("campaign %d claimed by %s", claimed, worker_id)
        held.add(claimed)
    chunks = 0
    for campaign_id in sorted(held):
        while chunks < max_chunks:
            with svc.db.transaction() as session:
                state = campaigns.fan_out_chunk(session, campaign_id, worker_id, svc.context())
            if state == "more":
                chunks += 1
                continue
            if state == "done":
                held.discard(campaign_id)
            break
    return chunks


def offer_issue_step(svc: Services, worker_id: str, held: set[int]) -> int:
    """Issue up to ten chunks of the offer issues this worker holds or can claim."""
    return issues.run_issue_step(svc.db, worker_id, held, svc.context)


def member_import_step(svc: Services, worker_id: str, held: set[int]) -> int:
    """Apply up to ten chunks of the member imports this worker holds or can claim."""
    return imports.run_import_step(svc.db, worker_id, held, svc.context)


def expire_coupons(svc: Services) -> int:
    """Expire coupons past their expiry, in batches, updating their passes."""
    total = _in_batches(svc, coupons.expire_due_coupons)
    log.info("expire_coupons: %d coupon(s) expired", total)
    return total


def refresh_promotion_cards(svc: Services) -> int:
    """At each program's local day change, update cards whose running promotion changed."""
    with svc.db.transaction() as session:
        total = promotions.refresh_cards_at_day_change(session, svc.context())
    log.info("refresh_promotion_cards: %d card(s) touched", total)
    return total


def run_automations(svc: Services) -> int:
    """Send the automatic messages that are due now (each at most once per member and key)."""
    with svc.db.transaction() as session:
        totals = automations.run_automations(session, svc.context())
    sent = sum(v for k, v in totals.items() if k.endswith(".sent"))
    log.info("automations: %s", totals or "nothing due")
    return sent


def prune_google_bookkeeping(svc: Services) -> int:
    """Forget Google notification counts older than a day and callback nonces older than 30."""
    with svc.db.transaction() as session:
        pruned = google_sync.prune_bookkeeping(session, now=svc.clock())
    log.info("prune_google_bookkeeping: %d old record(s) removed", pruned)
    return pruned


def prune_device_logs(svc: Services) -> int:
    """Keep device log lines within WALLETD_DEVICE_LOG_MAX_ROWS and _MAX_DAYS."""
    settings = svc.settings
    with svc.db.transaction() as session:
        pruned = registrations.prune_device_logs(
            session,
            now=svc.clock(),
            max_rows=settings.device_log_max_rows,
            max_days=settings.device_log_max_days,
        )
    log.info("prune_device_logs: %d log line(s) removed", pruned)
    return pruned


def cap_registrations(svc: Services) -> int:
    """Hold every card to WALLETD_MAX_DEVICES_PER_CARD registrations (older data, a lower cap)."""
    with svc.db.transaction() as session:
        evicted = registrations.evict_over_cap(
            session, max_devices=svc.settings.max_devices_per_card
        )
    log.info("cap_registrations: %d registration(s) over the cap removed", evicted)
    return evicted


def expire_card_messages(svc: Services) -> int:
    """Take expired messages off the cards, in batches, and push the cards."""
    total = _in_batches(svc, card_messages.expire_due_messages)
    log.info("expire_card_messages: %d message(s) expired", total)
    return total


def fire_event_automations(svc: Services) -> int:
    """Send, cancel or skip the event automation runs that are due (one transaction each)."""
    totals = event_runs.fire_due_runs(svc.db, svc.context)
    log.info("event automations: %s", event_runs.run_summary(totals))
    return totals.get("sent", 0)


def prune_worker_bookkeeping(svc: Services) -> int:
    """Forget job runs older than 30 days and workers not seen for a day."""
    now = svc.clock()
    with svc.db.transaction() as session:
        # Heartbeats first: a run still "running" whose worker is gone is then marked abandoned.
        pruned = prune_heartbeats(session, now=now)
        pruned += prune_job_runs(session, now=now)
    log.info("prune_worker_bookkeeping: %d old record(s) removed", pruned)
    return pruned


@dataclass(frozen=True)
class ScheduledJob:
    """A job and when it runs (cron fields, UTC)."""

    name: str
    run: Callable[[Services], int]
    hour: int
    minute: int = 0


DAILY_JOBS = (
    ScheduledJob("expire_points", expire_points, hour=3),
    ScheduledJob("reevaluate_tiers", reevaluate_tiers, hour=4),
    ScheduledJob("birthday_bonuses", birthday_bonuses, hour=8),
    ScheduledJob("prune_google_bookkeeping", prune_google_bookkeeping, hour=5),
    ScheduledJob("cap_registrations", cap_registrations, hour=5, minute=30),
    ScheduledJob("prune_worker_bookkeeping", prune_worker_bookkeeping, hour=5, minute=45),
)


@dataclass(frozen=True)
class IntervalJob:
    """A job that runs every few minutes."""

    name: str
    run: Callable[[Services], int]
    minutes: int


# The log endpoint is unauthenticated: prune often so a flood between runs stays small.
INTERVAL_JOBS = (
    IntervalJob("prune_device_logs", prune_device_logs, minutes=10),
    # Hourly, so a coupon's pass shows it expired soon after its time, not up to a day later.
    IntervalJob("expire_coupons", expire_coupons, minutes=60),
    # Hourly, so every time zone's midnight falls in some run (see refresh_cards_at_day_change).
    IntervalJob("refresh_promotion_cards", refresh_promotion_cards, minutes=60),
    # Every minute: an abandoned-cart reminder is due minutes after its delay, not an hour.
    IntervalJob("fire_event_automations", fire_event_automations, minutes=1),
    # A message that expires leaves the card within a quarter of an hour.
    IntervalJob("expire_card_messages", expire_card_messages, minutes=15),
    # Hourly: an erased card's devices are forgotten soon after their grace window ends.
    IntervalJob("forget_erased_devices", forget_erased_devices_job, minutes=60),
)
