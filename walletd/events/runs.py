"""Firing due event automation runs: one transaction per run (decision, log, message, coupon).

A run is decided when it is due, not before: the member may have bought something or sent a
cancel event in the meantime (in any order of arrival), may have withdrawn consent, or may
have reached the weekly cap. A program inside its quiet hours keeps its runs waiting until the
hours end. A crash between runs loses nothing: an undecided run is still `scheduled`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.campaigns import email_fallback, policy
from walletd.campaigns.templates import member_values, pick_message
from walletd.db import Database
from walletd.events.properties import load_properties
from walletd.events.templates import render_event_message
from walletd.loyalty.context import Context
from walletd.messages.store import MessageSource
from walletd.models import LedgerEntry, Member, MessageLog, Offer, Program, Tier
from walletd.models.event import Event, EventAutomation, EventAutomationRun
from walletd.offers.coupons import issue_coupon
from walletd.push.messages import set_messages

log = logging.getLogger(__name__)

PAGE = 200
# The MessageLog source of these messages (campaign | automation | direct | event).
SOURCE = "event"


def _decide(run: EventAutomationRun, status: str, reason: str | None, ctx: Context) -> str:
    run.status, run.reason, run.decided_at = status, reason, ctx.now
    return status if reason is None else f"{status}.{reason}"


def _cancelling_event(session: Session, automation: EventAutomation, trigger: Event) -> int | None:
    """A cancel event of the member at or after the trigger, received in any order."""
    types = list(automation.cancel_events or [])
    if not types:
        return None
    return session.scalar(
        select(Event.id)
        .where(
            Event.member_id == trigger.member_id,
            Event.type.in_(types),
            Event.occurred_at >= trigger.occurred_at,
            Event.id != trigger.id,
        )
        .order_by(Event.occurred_at, Event.id)
        .limit(1)
    )


def _purchased_since(session: Session, member_id: int, trigger: Event) -> bool:
    return (
        session.scalar(
            select(LedgerEntry.id)
            .where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.kind == "earn",
                LedgerEntry.created_at > trigger.occurred_at,
            )
            .limit(1)
        )
        is not None
    )


def fire_run(session: Session, run_id: int, ctx: Context) -> str:
    """Decide one due run: send, cancel or skip it (or leave it for after the quiet hours)."""
    run = session.scalar(
        select(EventAutomationRun)
        .where(EventAutomationRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is None or run.status != "scheduled" or run.due_at > ctx.now:
        return "gone"  # decided by a twin worker, replaced, or not due after all
    automation = session.get_one(EventAutomation, run.automation_id)
    program = session.get_one(Program, automation.program_id)
    if policy.in_quiet_hours(program, ctx.now):
        return "deferred"
    trigger = session.get_one(Event, run.event_id)
    if not automation.enabled:
        return _decide(run, "cancelled", "automation_disabled", ctx)
    cancel_id = _cancelling_event(session, automation, trigger)
    if cancel_id is not None:
        run.cancelled_by_event_id = cancel_id
        return _decide(run, "cancelled", "cancel_event", ctx)
    if automation.cancel_on_purchase and _purchased_since(session, run.member_id, trigger):
        return _decide(run, "cancelled", "purchase", ctx)
    member = session.get_one(Member, run.member_id)
    if automation.marketing and not member.marketing_consent:
        return _decide(run, "skipped", "no_consent", ctx)
    if automation.marketing:
        sent = policy.recent_marketing_counts(session, [member.id], ctx.now).get(member.id, 0)
        if sent >= program.messages_per_week_cap:
            return _decide(run, "skipped", "frequency_cap", ctx)
    tier = session.get(Tier, member.tier_id) if member.tier_id is not None else None
    values = member_values(member.name, member.points, tier.name if tier else None)
    template = pick_message(
        automation.message, automation.messages, member.language, program.default_language
    )
    text = render_event_message(template, values, load_properties(trigger.properties))
    if not text.strip():
        return _decide(run, "skipped", "empty_message", ctx)
    # [email-campaigns] Without an installed card, a consenting member gets it by e-mail too.
    targets: dict[int, email_fallback.EmailTarget] = {}
    if automation.email_fallback and ctx.email_enabled and member.marketing_consent:
        if member.id not in policy.members_with_installed_card(session, [member.id]):
            targets, _ = email_fallback.email_targets(session, program.brand_id, [member.id])
    session.add(
        MessageLog(
            member_id=member.id, source=SOURCE, source_id=automation.id, kind="event",
            dedupe_key=f"event_run:{run.id}", marketing=automation.marketing, holdout=False,
            sent_at=ctx.now, channel=email_fallback.CHANNEL if targets else None,
        )
    )  # fmt: skip
    source = MessageSource("event", event_automation_id=automation.id)
    set_messages(session, {member.id: text}, f"e{automation.id}-{run.id}", ctx, source=source)
    if targets:
        email_fallback.queue_fallback_emails(
            session, program=program, targets=targets, texts={member.id: text},
            languages={member.id: member.language}, subject=None, now=ctx.now,
            base_url=ctx.base_url, secret_key=ctx.secret_key,
        )  # fmt: skip
    if automation.offer_id is not None:
        offer = session.get(Offer, automation.offer_id)
        # An offer archived since the automation was saved: the message goes without it.
        if offer is not None and offer.status == "active" and offer.program_id == program.id:
            issue_coupon(session, offer, member, source=SOURCE, occasion=f"event_run:{run.id}",
                         ctx=ctx)  # fmt: skip
    return _decide(run, "sent", None, ctx)


def _due_page(session: Session, ctx: Context, after_id: int) -> list[tuple[int, int]]:
    """Due runs with ids above `after_id` and their program, in id order."""
    rows = session.execute(
        select(EventAutomationRun.id, EventAutomation.program_id)
        .join(EventAutomation, EventAutomation.id == EventAutomationRun.automation_id)
        .where(
            EventAutomationRun.status == "scheduled",
            EventAutomationRun.due_at <= ctx.now,
            EventAutomationRun.id > after_id,
        )
        .order_by(EventAutomationRun.id)
        .limit(PAGE)
    ).all()
    return [(int(run_id), int(program_id)) for run_id, program_id in rows]


def fire_due_runs(db: Database, context: Callable[[], Context]) -> dict[str, int]:
    """Decide every due run once, each in its own transaction; counts by outcome."""
    totals: dict[str, int] = {}
    quiet: dict[int, bool] = {}
    after_id = 0
    while True:
        with db.transaction() as session:
            ctx = context()
            page = _due_page(session, ctx, after_id)
            for program_id in {p for _, p in page} - set(quiet):
                program = session.get_one(Program, program_id)
                quiet[program_id] = policy.in_quiet_hours(program, ctx.now)
        if not page:
            return totals
        after_id = page[-1][0]
        for run_id, program_id in page:
            if quiet[program_id]:
                outcome = "deferred"
            else:
                try:
                    with db.transaction() as session:
                        outcome = fire_run(session, run_id, context())
                except Exception:
                    # One broken run (rolled back, still scheduled) must not hold up the rest;
                    # it is tried again on the next pass.
                    log.exception("event automation run %d failed", run_id)
                    outcome = "error"
            totals[outcome] = totals.get(outcome, 0) + 1


def run_summary(totals: dict[str, Any]) -> str:
    """The job's counts as one log line."""
    return ", ".join(f"{k}={v}" for k, v in sorted(totals.items())) or "nothing due"
