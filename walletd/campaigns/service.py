"""Campaign use cases: create, schedule, claim, fan out in resumable chunks, cancel, report."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from walletd.admin.actors import actor_json, actor_ref
from walletd.audit import Actor, record
from walletd.campaigns import email_fallback, policy
from walletd.campaigns.segments import (
    MAX_ID,
    Segment,
    count_segment,
    member_ids_after,
    parse_segment,
    segment_condition,
)
from walletd.campaigns.templates import (
    CAMPAIGN_PLACEHOLDERS,
    check_messages,
    check_template,
    check_text,
    member_values,
    pick_message,
    placeholders,
    render,
)
from walletd.errors import ConflictError, NotFoundError, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.models import (
    Campaign,
    CampaignRecipient,
    Member,
    MessageLog,
    Offer,
    OutboxMessage,
    Tier,
)
from walletd.offers.catalog import get_active_offer
from walletd.offers.coupons import issue_coupon
from walletd.push.messages import set_messages
from walletd.push.outbox import GOOGLE_CLASS_MESSAGE, enqueue

log = logging.getLogger(__name__)

CHUNK = 1000
LEASE = timedelta(minutes=5)
# Fan-out waits while this many of the campaign's deliveries are still queued, so pushes go out
# at the pace the pass endpoint and APNs can absorb and a cancel still stops most of them.
MAX_BACKLOG = 20_000


# A campaign is scheduled at most a year ahead; a time further back than that is a typo, not
# "send now". Checked before converting to UTC, so a time near the calendar's ends never overflows.
SEND_AT_WINDOW = timedelta(days=366)
MAX_NAME_LENGTH = 200


def _parse_send_at(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    refusal = "send_at must be an ISO 8601 time with an offset"
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(refusal, field="send_at") from exc
    else:
        raise ValidationError(refusal, field="send_at")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValidationError("send_at needs a UTC offset such as +08:00", field="send_at")
    if when > now + SEND_AT_WINDOW:
        raise ValidationError("send_at is more than a year away", field="send_at")
    if when < now - SEND_AT_WINDOW:
        raise ValidationError("send_at is more than a year ago", field="send_at")
    # Stored and shown in UTC, so the create answer matches every later read.
    return when.astimezone(UTC)


def _whole(value: object, name: str, low: int, high: int, default: int, refusal: str) -> int:
    """An optional whole number within bounds (absent or null is the default)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(refusal, field=name)
    return value


def create_campaign(
    session: Session,
    brand_id: int,
    data: Mapping[str, Any],
    ctx: Context,
    *,
    actor: Actor | None = None,
) -> Campaign:
    """A scheduled campaign (or a draft with `"draft": true`), recording who created it."""
    if not isinstance(data, Mapping):
        raise ValidationError("a campaign is an object with name, message and segment")
    name = check_text(data.get("name"), field="name", max_length=MAX_NAME_LENGTH)
    message = check_template(data.get("message"), CAMPAIGN_PLACEHOLDERS)
    messages = check_messages(
        data.get("messages"), lambda text: check_template(text, CAMPAIGN_PLACEHOLDERS)
    )
    if data.get("segment") is None:
        raise ValidationError("segment is required", field="segment")
    segment = parse_segment(data["segment"])
    program_id = data.get("program_id")
    if program_id is not None:
        program_id = _whole(program_id, "program_id", 1, MAX_ID, 0,
                            "program_id must be an integer id")  # fmt: skip
    program = get_program(session, brand_id, program_id)
    draft = data.get("draft")
    if draft is not None and not isinstance(draft, bool):
        raise ValidationError("draft must be true or false", field="draft")
    offer_id = data.get("offer_id")
    if offer_id is not None:
        offer_id = get_active_offer(session, brand_id, program.id, offer_id).id
    fallback = data.get("email_fallback")
    if fallback is not None and not isinstance(fallback, bool):
        raise ValidationError("email_fallback must be true or false", field="email_fallback")
    expires_in_days = data.get("message_expires_in_days")
    if expires_in_days is not None:
        expires_in_days = _whole(expires_in_days, "message_expires_in_days", 1, 365, 0,
                                 "message_expires_in_days must be 1 to 365")  # fmt: skip
    campaign = Campaign(
        brand_id=brand_id,
        program_id=program.id,
        name=name,
        message=message,
        messages=messages,
        segment=segment.definition,
        status="draft" if draft else "scheduled",
        send_at=_parse_send_at(data.get("send_at"), ctx.now),
        holdout_percent=_whole(data.get("holdout_percent"), "holdout_percent", 0, 50, 0,
                               "holdout_percent must be a whole number from 0 to 50"),
        lift_window_days=_whole(data.get("lift_window_days"), "lift_window_days", 1, 90, 14,
                                "lift_window_days must be 1 to 90"),
        cursor_member_id=0,
        created_at=ctx.now,
        offer_id=offer_id,
        message_expires_in_days=expires_in_days,
        email_fallback=bool(fallback),
        created_by_api_key_id=None if actor is None else actor.api_key_id,
        created_by_staff_id=None if actor is None else actor.staff_id,
    )  # fmt: skip
    session.add(campaign)
    session.flush()
    if actor is not None:
        record(session, actor, "campaign.created", "campaign", campaign.id, now=ctx.now,
               changes={"name": [None, name], "status": [None, campaign.status]})  # fmt: skip
    return campaign


def get_campaign(session: Session, brand_id: int, campaign_id: int) -> Campaign:
    """A brand's campaign; another brand's is not found."""
    if isinstance(campaign_id, bool) or not isinstance(campaign_id, int):
        raise NotFoundError("campaign not found")
    if not 0 < campaign_id <= MAX_ID:
        raise NotFoundError("campaign not found")
    campaign = session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.brand_id == brand_id)
    )
    if campaign is None:
        raise NotFoundError("campaign not found")
    return campaign


def list_campaigns(session: Session, brand_id: int) -> list[Campaign]:
    """A brand's campaigns, newest first."""
    return list(
        session.scalars(
            select(Campaign).where(Campaign.brand_id == brand_id).order_by(Campaign.id.desc())
        ).all()
    )


def schedule_campaign(session: Session, brand_id: int, campaign_id: int, ctx: Context) -> Campaign:
    """Turn a draft into a scheduled campaign."""
    campaign = get_campaign(session, brand_id, campaign_id)
    if campaign.status != "draft":
        raise ConflictError(f"only a draft can be scheduled; this campaign is {campaign.status}")
    campaign.status = "scheduled"
    campaign.send_at = campaign.send_at or ctx.now
    return campaign


def cancel_campaign(session: Session, brand_id: int, campaign_id: int, ctx: Context) -> Campaign:
    """Stop a campaign: no further chunk is fanned out and queued Google messages are dropped.

    Apple cards already given the message keep it (the pass was already changed).
    """
    campaign = get_campaign(session, brand_id, campaign_id)
    # Wait for a worker writing a chunk, then decide on the status it committed.
    session.refresh(campaign, with_for_update=True)
    if campaign.status in ("sent", "cancelled"):
        raise ConflictError(f"the campaign is already {campaign.status}")
    campaign.status = "cancelled"
    campaign.cancelled_at = ctx.now
    session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.campaign_id == campaign.id,
            OutboxMessage.status == "pending",
            OutboxMessage.kind != "apns",  # a token's push may also carry other cards' changes
        )
        .values(status="cancelled", finished_at=ctx.now)
    )
    email_fallback.cancel_campaign_emails(session, campaign.id, ctx.now)
    return campaign


def claim_due_campaign(session: Session, worker_id: str, now: datetime) -> int | None:
    """Claim one due (or abandoned) campaign with a conditional update; None when none is due."""
    candidates = session.scalars(
        select(Campaign.id)
        .where(
            or_(
                (Campaign.status == "scheduled") & (Campaign.send_at <= now),
                (Campaign.status == "sending") & (Campaign.claimed_until < now),
            )
        )
        .order_by(Campaign.send_at, Campaign.id)
        .limit(5)
    ).all()
    for campaign_id in candidates:
        claimed = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                or_(
                    (Campaign.status == "scheduled") & (Campaign.send_at <= now),
                    (Campaign.status == "sending") & (Campaign.claimed_until < now),
                ),
            )
            .values(status="sending", claimed_by=worker_id, claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            return int(campaign_id)
    return None


def _holding(session: Session, campaign_id: int, worker_id: str) -> Campaign | None:
    """The campaign if this worker still holds it (not cancelled, lease not taken over)."""
    campaign = session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
    if campaign is None or campaign.status != "sending" or campaign.claimed_by != worker_id:
        return None
    return campaign


def _backlog(session: Session, campaign_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status.in_(("pending", "sending")),
            )
        )
        or 0
    )


def _one_class_message(campaign: Campaign) -> bool:
    """True when one Google class-level message reaches everyone: the same text for all."""
    return (
        Segment(campaign.segment).is_everyone
        and campaign.holdout_percent == 0
        and not placeholders(campaign.message)
        and not campaign.messages
    )


def _tier_names(session: Session, program_id: int) -> dict[int | None, str]:
    return {
        int(tier_id): str(name)
        for tier_id, name in session.execute(
            select(Tier.id, Tier.name).where(Tier.program_id == program_id)
        ).all()
    }


def fan_out_chunk(session: Session, campaign_id: int, worker_id: str, ctx: Context) -> str:
    """Write the next chunk of recipients and deliveries: "more", "wait" (backlog) or "done".

    The chunk and the cursor commit together, so a worker killed mid-campaign resumes after the
    last committed chunk and nobody gets the message twice.
    """
    campaign = _holding(session, campaign_id, worker_id)
    if campaign is None:
        return "done"
    program = get_program(session, campaign.brand_id, campaign.program_id)
    campaign.claimed_until = ctx.now + LEASE
    if campaign.cursor_member_id == 0 and campaign.started_at is None:
        if policy.in_quiet_hours(program, ctx.now):
            campaign.status = "scheduled"
            campaign.send_at = policy.quiet_hours_end(program, ctx.now)
            campaign.deferred_reason = "quiet_hours"
            campaign.claimed_by = None
            return "done"
        campaign.started_at = ctx.now
        if _one_class_message(campaign) and ctx.google_enabled:
            # One class-level message reaches every Google holder for one API call.
            enqueue(
                session,
                [
                    {
                        "kind": GOOGLE_CLASS_MESSAGE,
                        "dedupe_key": f"{GOOGLE_CLASS_MESSAGE}:{campaign.id}",
                        "payload": {
                            "program_id": program.id,
                            "message_id": f"c{campaign.id}",
                            "text": render(campaign.message, {}),
                        },
                        "campaign_id": campaign.id,
                    }
                ],
                now=ctx.now,
            )
    if _backlog(session, campaign.id) >= MAX_BACKLOG:
        return "wait"  # keep the lease; deliveries catch up first
    segment = Segment(campaign.segment)
    ids = member_ids_after(
        session,
        campaign.brand_id,
        segment,
        ctx.now,
        after_id=campaign.cursor_member_id,
        limit=CHUNK,
        program_id=campaign.program_id,
    )
    if not ids:
        campaign.status = "sent"
        campaign.fanned_out_at = ctx.now
        campaign.claimed_by = None
        return "done"
    people = {
        int(row[0]): row
        for row in session.execute(
            select(
                Member.id,
                Member.marketing_consent,
                Member.name,
                Member.points,
                Member.tier_id,
                Member.language,
            ).where(Member.id.in_(ids))
        ).all()
    }
    consent = {member_id: bool(row[1]) for member_id, row in people.items()}
    texts_by_language: dict[str, str] = dict(campaign.messages or {})
    personal = any(placeholders(t) for t in (campaign.message, *texts_by_language.values()))
    tiers = _tier_names(session, campaign.program_id) if personal else {}
    installed = policy.members_with_installed_card(session, ids)
    counts = policy.recent_marketing_counts(session, ids, ctx.now)
    # Members without an installed card who consented are reached by e-mail instead, when the
    # campaign asks for it; a bouncing address is skipped like a missing card.
    targets: dict[int, email_fallback.EmailTarget] = {}
    bouncing: set[int] = set()
    if campaign.email_fallback and ctx.email_enabled:
        targets, bouncing = email_fallback.email_targets(
            session, campaign.brand_id, [m for m in ids if consent.get(m) and m not in installed]
        )
    rows: list[dict[str, Any]] = []
    texts: dict[int, str] = {}
    emailed: dict[int, str] = {}
    for member_id in ids:
        reason = None
        if not consent.get(member_id):
            reason = "no_consent"
        elif member_id not in installed and member_id not in targets:
            reason = "email_bouncing" if member_id in bouncing else "no_card_installed"
        elif counts.get(member_id, 0) >= program.messages_per_week_cap:
            reason = "frequency_cap"
        if reason is not None:
            group = "skipped"
        elif policy.in_holdout(f"campaign:{campaign.id}", member_id, campaign.holdout_percent):
            group = "holdout"
        else:
            group = "recipient"
            _, _, name, points, tier_id, language = people[member_id]
            values = member_values(name, points, tiers.get(tier_id)) if personal else {}
            template = pick_message(
                campaign.message, texts_by_language, language, program.default_language
            )
            text = render(template, values)
            if member_id in installed:
                texts[member_id] = text
            else:
                emailed[member_id] = text
        rows.append(
            {"campaign_id": campaign.id, "member_id": member_id, "group": group,
             "skip_reason": reason, "created_at": ctx.now}
        )  # fmt: skip
    session.execute(insert(CampaignRecipient), rows)
    logged = [r for r in rows if r["group"] != "skipped"]
    if logged:
        # The channel is logged for held-out members too (the one they would have had), so the
        # lift of e-mail can be read against its own holdout.
        session.execute(
            insert(MessageLog),
            [
                {"member_id": r["member_id"], "source": "campaign", "source_id": campaign.id,
                 "kind": "campaign", "dedupe_key": f"campaign:{campaign.id}", "marketing": True,
                 "holdout": r["group"] == "holdout", "sent_at": ctx.now,
                 "channel": None if r["member_id"] in installed else email_fallback.CHANNEL}
                for r in logged
            ],
        )  # fmt: skip
    if emailed:
        languages = {member_id: people[member_id][5] for member_id in emailed}
        email_fallback.queue_fallback_emails(
            session, program=program, targets=targets, texts=emailed, languages=languages,
            subject=campaign.name, now=ctx.now, base_url=ctx.base_url,
            secret_key=ctx.secret_key, campaign_id=campaign.id,
        )  # fmt: skip
    if campaign.offer_id is not None and (texts or emailed):
        _issue_campaign_offer(session, campaign, [*texts, *emailed], ctx)
    days = campaign.message_expires_in_days
    # From the start of the fan-out, so every chunk's recipients lose the message together.
    started = campaign.started_at or ctx.now
    set_messages(
        session,
        texts,
        f"c{campaign.id}",
        ctx,
        campaign_id=campaign.id,
        google_per_object=not _one_class_message(campaign),
        expires_at=started + timedelta(days=days) if days else None,
    )
    campaign.cursor_member_id = ids[-1]
    return "more"


def _issue_campaign_offer(
    session: Session, campaign: Campaign, recipients: list[int], ctx: Context
) -> None:
    """Each recipient's coupon of the campaign's offer, once (occasion campaign:<id>); held-out
    and skipped members get none, so the lift compares the offer too."""
    offer = session.get(Offer, campaign.offer_id)
    if offer is None or offer.status != "active":
        return  # archived since: the message still goes out, without a coupon
    for member in session.scalars(select(Member).where(Member.id.in_(recipients))).all():
        issue_coupon(
            session, offer, member, source="campaign", occasion=f"campaign:{campaign.id}", ctx=ctx
        )


def campaign_stats(session: Session, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Recipients, deliveries by state, skips by reason, and the expected finish time."""
    groups = session.execute(
        select(CampaignRecipient.group, CampaignRecipient.skip_reason, func.count())
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(CampaignRecipient.group, CampaignRecipient.skip_reason)
    ).all()
    recipients = sum(int(n) for g, _, n in groups if g == "recipient")
    holdout = sum(int(n) for g, _, n in groups if g == "holdout")
    skipped = {str(reason): int(n) for g, reason, n in groups if g == "skipped"}
    deliveries: dict[str, int] = {
        str(row[0]): int(row[1])
        for row in session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.campaign_id == campaign.id)
            .group_by(OutboxMessage.status)
        ).all()
    }
    pending = int(deliveries.get("pending", 0)) + int(deliveries.get("sending", 0))
    queued = float(pending)
    if campaign.status == "sending":
        # Members not fanned out yet will need as many deliveries each as those already were.
        condition = segment_condition(
            session, campaign.brand_id, Segment(campaign.segment), now, campaign.program_id
        )
        left = session.scalar(
            select(func.count())
            .select_from(Member)
            .where(condition, Member.id > campaign.cursor_member_id)
        )
        fanned = recipients + holdout + sum(skipped.values())
        per_member = sum(deliveries.values()) / fanned if fanned else 1.0
        queued += (left or 0) * per_member
    recent = session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.campaign_id == campaign.id,
            OutboxMessage.finished_at > now - timedelta(seconds=60),
        )
    )
    eta = None
    if campaign.status == "sending" or pending:
        rate = (recent or 0) / 60
        if rate > 0:
            eta = (now + timedelta(seconds=queued / rate)).isoformat()
    total = None
    if campaign.status in ("draft", "scheduled"):
        segment = Segment(campaign.segment)
        total = count_segment(session, campaign.brand_id, segment, now, campaign.program_id)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "message": campaign.message,
        "messages": campaign.messages or {},
        "segment": campaign.segment,
        "status": campaign.status,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "deferred_reason": campaign.deferred_reason,
        "holdout_percent": campaign.holdout_percent,
        "offer_id": campaign.offer_id,
        "message_expires_in_days": campaign.message_expires_in_days,
        "email_fallback": campaign.email_fallback,
        "by_channel": email_fallback.by_channel(session, campaign.id),
        "segment_size": total,
        "recipients": recipients,
        "holdout": holdout,
        "skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "delivered": int(deliveries.get("sent", 0)),
        "failed": int(deliveries.get("failed", 0)) + int(deliveries.get("gone", 0)),
        "pending": pending,
        "cancelled_deliveries": int(deliveries.get("cancelled", 0)),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "fanned_out_at": campaign.fanned_out_at.isoformat() if campaign.fanned_out_at else None,
        "expected_finish_at": eta,
        "created_by": actor_json(
            actor_ref(
                session,
                campaign.brand_id,
                campaign.created_by_api_key_id,
                campaign.created_by_staff_id,
            )
        ),  # fmt: skip
    }
