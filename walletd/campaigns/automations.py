"""Automatic lifecycle messages: welcome, birthday, thanks, win-back, tier, expiry, reward."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from walletd import feedback
from walletd.campaigns import email_fallback, policy
from walletd.campaigns.segments import MAX_ID
from walletd.campaigns.templates import (
    MAX_MESSAGE_LENGTH,
    MEMBER_PLACEHOLDERS,
    check_messages,
    check_template,
    member_values,
    pick_message,
    render,
)
from walletd.errors import NotFoundError, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.messages.store import MessageSource
from walletd.models import Automation, LedgerEntry, Member, MessageLog, Offer, Program, Reward, Tier
from walletd.models.campaign import AUTOMATION_KINDS
from walletd.offers.catalog import get_active_offer
from walletd.offers.coupons import issue_coupon
from walletd.push.messages import set_messages

log = logging.getLogger(__name__)

CHUNK = 500


@dataclass(frozen=True)
class Kind:
    """What an automation says by default, when it waits, whether it is marketing, and the
    placeholders beyond the member's own that its occasion fills."""

    message: str
    delay_days: int
    marketing: bool
    extra: tuple[str, ...] = ()

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Every placeholder a text of this kind may use."""
        return MEMBER_PLACEHOLDERS + self.extra


KINDS: dict[str, Kind] = {
    "welcome": Kind("Welcome, {name}! Your card is ready: show it at the till to earn points.", 0,
                    False),
    "birthday": Kind("Happy birthday, {name}! A gift is waiting on your card.", 0, True),
    "post_purchase": Kind("Thanks for your visit, {name}. How was it? You have {points} points. "
                          "Rate your visit: {feedback_url}", 15, True, ("feedback_url",)),
    "win_back": Kind("We miss you, {name}! Come back soon: you have {points} points waiting.", 30,
                     True),
    "tier_upgrade": Kind("Congratulations, {name}: you are now {tier}!", 0, False),
    "points_expiring": Kind("{expiring} of your points expire on {expiry_date}. Use them soon!",
                            14, False, ("expiring", "expiry_date")),
    "reward_near": Kind("Only {needed} points to go until {reward}!", 0, True,
                        ("reward", "needed")),
}  # fmt: skip
assert set(KINDS) == set(AUTOMATION_KINDS)

# Automations that may carry an offer, and the coupon source they issue it as. The occasion of
# each coupon (one per member per occasion) comes from the candidate: "welcome",
# f"birthday:{year}", f"tier:{tier name}", f"win_back:{last visit date}".
OFFER_SOURCES = {
    "welcome": "enrollment",
    "birthday": "birthday",
    "tier_upgrade": "tier_upgrade",
    "win_back": "win_back",
}


class _Unset:
    """An argument not given (apart from null, which clears)."""


UNSET = _Unset()


def list_automations(session: Session, program_id: int) -> list[Automation]:
    """The program's automations, creating switched-off defaults for kinds not yet configured."""
    existing = {a.kind: a for a in session.scalars(
        select(Automation).where(Automation.program_id == program_id)
    ).all()}  # fmt: skip
    for kind in AUTOMATION_KINDS:
        if kind not in existing:
            default = KINDS[kind]
            automation = Automation(
                program_id=program_id, kind=kind, enabled=False, message=default.message,
                delay_days=default.delay_days, holdout_percent=0,
            )  # fmt: skip
            session.add(automation)
            existing[kind] = automation
    session.flush()
    return [existing[kind] for kind in AUTOMATION_KINDS]


def set_automation(
    session: Session,
    brand_id: int,
    program_id: int,
    kind: str,
    *,
    enabled: bool,
    message: object = None,
    delay_days: object = None,
    holdout_percent: object = None,
    offer_id: object = UNSET,
    messages: object = UNSET,
    now: datetime | None = None,
    email: object = None,
) -> Automation:
    """Switch an automation on or off and change its text, per-language texts, delay, holdout
    or offer.

    `offer_id` (or `messages`) null takes the offer (the texts) off; left out, it stays as it was.
    `email` (true or false) switches the e-mail fallback; None leaves it as it was.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise NotFoundError("unknown automation")
    if (
        isinstance(program_id, bool)
        or not isinstance(program_id, int)
        or not 0 < program_id <= MAX_ID
    ):
        raise NotFoundError("program not found")
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", field="enabled")
    get_program(session, brand_id, program_id)
    text = None if message is None else check_template(message, KINDS[kind].placeholders)
    texts = None
    if messages is not UNSET:
        texts = check_messages(messages, lambda t: check_template(t, KINDS[kind].placeholders))
    if delay_days is not None and (
        isinstance(delay_days, bool)
        or not isinstance(delay_days, int)
        or not 0 <= delay_days <= 365
    ):
        raise ValidationError("delay_days must be 0 to 365", field="delay_days")
    if holdout_percent is not None and (
        isinstance(holdout_percent, bool)
        or not isinstance(holdout_percent, int)
        or not 0 <= holdout_percent <= 50
    ):
        raise ValidationError("holdout_percent must be 0 to 50", field="holdout_percent")
    if offer_id is not UNSET and offer_id is not None:
        _check_offer(session, brand_id, program_id, kind, offer_id)
    if email is not None and not isinstance(email, bool):
        raise ValidationError("email_fallback must be true or false", field="email_fallback")
    automation = next(a for a in list_automations(session, program_id) if a.kind == kind)
    automation.enabled = enabled
    if text is not None:
        automation.message = text
    if messages is not UNSET:
        automation.messages = texts
    if delay_days is not None:
        automation.delay_days = delay_days
    if holdout_percent is not None:
        automation.holdout_percent = holdout_percent
    if offer_id is not UNSET:
        automation.offer_id = offer_id if isinstance(offer_id, int) else None
    if isinstance(email, bool):
        automation.email_fallback = email
    if now is not None:
        automation.updated_at = now
    return automation


def _check_offer(
    session: Session, brand_id: int, program_id: int, kind: str, offer_id: object
) -> None:
    """An offer an automation of this program may carry: active, of the same program."""
    if kind not in OFFER_SOURCES:
        raise ValidationError(f"a {kind} automation cannot carry an offer", field="offer_id")
    get_active_offer(session, brand_id, program_id, offer_id)


@dataclass(frozen=True)
class Candidate:
    """A member an automation wants to message, and the key that makes it once-only."""

    member_id: int
    dedupe_key: str
    values: dict[str, Any]
    # The coupon occasion when the automation carries an offer (once per member per occasion).
    occasion: str = ""


def _members(session: Session, program_id: int, after_id: int, *conditions: Any) -> list[Member]:
    return list(
        session.scalars(
            select(Member)
            .where(
                Member.program_id == program_id,
                Member.id > after_id,
                Member.erased_at.is_(None),  # an erased member's card is closed (walletd/privacy)
                *conditions,
            )
            .order_by(Member.id)
            .limit(CHUNK * 4)
        ).all()
    )


def _not_messaged(kind: str, since: Any = None) -> Any:
    """No `kind` message logged for the member (after `since`): once-only checks done in SQL,
    so members already reached are not read again on every run."""
    conditions = [MessageLog.member_id == Member.id, MessageLog.kind == kind]
    if since is not None:
        conditions.append(MessageLog.sent_at > since)
    return ~exists(select(MessageLog.id).where(*conditions))


def _base(member: Member, tiers: Mapping[int | None, str]) -> dict[str, Any]:
    return member_values(member.name, member.points, tiers.get(member.tier_id))


def _candidates(
    session: Session,
    program: Program,
    automation: Automation,
    now: datetime,
    after_id: int,
    tiers: Mapping[int | None, str],
) -> tuple[list[Candidate], int]:
    """One page of candidates with member ids above `after_id`, and the last id looked at."""
    kind, days = automation.kind, automation.delay_days
    local_today = now.astimezone(policy.program_zone(program)).date()
    found: list[Candidate] = []
    seen: list[int] = [after_id]
    if kind == "welcome":
        for m in _members(
            session, program.id, after_id, Member.created_at > now - timedelta(days=2),
            _not_messaged("welcome"),
        ):  # fmt: skip
            seen.append(m.id)
            found.append(Candidate(m.id, "welcome", _base(m, tiers), "welcome"))
    elif kind == "birthday":
        for m in _members(
            session, program.id, after_id, Member.birthday.is_not(None),
            func.extract("month", Member.birthday) == local_today.month,
            func.extract("day", Member.birthday) == local_today.day,
        ):  # fmt: skip
            seen.append(m.id)
            year = f"birthday:{local_today.year}"
            found.append(Candidate(m.id, year, _base(m, tiers), year))
    elif kind == "post_purchase":
        lower, upper = now - timedelta(days=days + 1), now - timedelta(days=days)
        for m in _members(
            session, program.id, after_id, Member.last_visit_at > lower,
            Member.last_visit_at <= upper, _not_messaged(kind, since=Member.last_visit_at),
        ):  # fmt: skip
            seen.append(m.id)
            visit = m.last_visit_at.date().isoformat() if m.last_visit_at else ""
            found.append(Candidate(m.id, f"post_purchase:{visit}", _base(m, tiers)))
    elif kind == "win_back":
        # Lapsed for N days, or for twice the member's own usual interval when that is shorter
        # (at least a week): a weekly regular is missed sooner than an occasional guest.
        for m in _members(
            session, program.id, after_id, Member.last_visit_at <= now - timedelta(days=7),
            Member.last_visit_at > now - timedelta(days=365),
            _not_messaged(kind, since=Member.last_visit_at),
        ):  # fmt: skip
            seen.append(m.id)
            assert m.last_visit_at is not None
            threshold = float(days)
            if m.visits >= 3 and m.first_visit_at is not None:
                usual = (m.last_visit_at - m.first_visit_at).days / (m.visits - 1)
                threshold = max(7.0, min(threshold, 2 * usual))
            if (now - m.last_visit_at).days >= threshold:
                visit = m.last_visit_at.date().isoformat()
                key = f"win_back:{visit}"
                found.append(Candidate(m.id, key, _base(m, tiers), key))
    elif kind == "tier_upgrade":
        tier_rows = session.execute(
            select(Member, Tier)
            .join(Tier, Tier.id == Member.tier_id)
            .where(
                Member.program_id == program.id,
                Member.id > after_id,
                Tier.threshold > 0,
                Member.last_visit_at > now - timedelta(days=2),
            )
            .order_by(Member.id)
            .limit(CHUNK * 4)
        ).all()
        for m, tier in tier_rows:
            seen.append(m.id)
            values = {**_base(m, tiers), "tier": tier.name}
            found.append(Candidate(m.id, f"tier_upgrade:{tier.id}", values, f"tier:{tier.name}"))
    elif kind == "points_expiring":
        rows = session.execute(
            select(Member, func.min(LedgerEntry.expires_at), func.sum(LedgerEntry.remaining))
            .join(LedgerEntry, LedgerEntry.member_id == Member.id)
            .where(
                Member.program_id == program.id,
                Member.id > after_id,
                LedgerEntry.remaining > 0,
                LedgerEntry.expires_at > now,
                LedgerEntry.expires_at <= now + timedelta(days=days or 14),
            )
            .group_by(Member.id)
            .order_by(Member.id)
            .limit(CHUNK * 4)
        ).all()
        for m, expires, remaining in rows:
            seen.append(m.id)
            day = expires.date().isoformat() if expires else ""
            values = {**_base(m, tiers), "expiring": f"{int(remaining or 0):,}", "expiry_date": day}
            found.append(Candidate(m.id, f"points_expiring:{day}", values))
    elif kind == "reward_near":
        reward = session.scalars(
            select(Reward)
            .where(Reward.program_id == program.id, Reward.active)
            .order_by(Reward.cost_points)
            .limit(1)
        ).first()
        if reward is not None:
            floor = int(reward.cost_points * 0.8)
            for m in _members(
                session, program.id, after_id, Member.points >= floor,
                Member.points < reward.cost_points, Member.last_visit_at > now - timedelta(days=2),
            ):  # fmt: skip
                seen.append(m.id)
                values = {**_base(m, tiers), "reward": reward.name,
                          "needed": f"{reward.cost_points - m.points:,}"}  # fmt: skip
                found.append(Candidate(m.id, f"reward_near:{reward.id}:{now:%Y-%m}", values))
    return found, seen[-1]


def _with_feedback_links(
    session: Session, candidates: list[Candidate], ctx: Context
) -> list[Candidate]:
    """Post-purchase candidates with {feedback_url}: a signed link rating their latest visit."""
    scans = feedback.latest_visits(session, [c.member_id for c in candidates])
    expires = feedback.link_expiry(ctx.now)
    return [
        dataclasses.replace(
            c,
            values={
                **c.values,
                "feedback_url": feedback.visit_url(ctx, scans[c.member_id], expires)
                if c.member_id in scans
                else "",
            },
        )
        for c in candidates
    ]


def _message_text(
    automation: Automation, values: Mapping[str, Any], template: str | None = None
) -> str:
    """The automation's text for one member (`template`: the text in their language); a
    post-purchase message always carries its feedback link, whole, even when the brand's text
    has no {feedback_url} (or was cut)."""
    template = automation.message if template is None else template
    text = render(template, values)
    link = str(values.get("feedback_url") or "")
    if automation.kind != "post_purchase" or not link or link in text:
        return text
    rest = render(template, {**values, "feedback_url": ""},
                  limit=MAX_MESSAGE_LENGTH - len(link) - 1)  # fmt: skip
    return f"{rest} {link}"


def _claim_log_rows(session: Session, rows: list[dict[str, Any]]) -> set[int]:
    """Insert message-log rows once per (member, key); returns the members newly logged."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    table_insert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        table_insert(MessageLog)
        .on_conflict_do_nothing(index_elements=["member_id", "dedupe_key"])
        .returning(MessageLog.member_id)
    )
    return {int(member_id) for member_id in session.scalars(stmt, rows).all()}


def run_automation(
    session: Session, program: Program, automation: Automation, ctx: Context
) -> dict[str, int]:
    """Send one automation's due messages once each, within consent, caps and quiet hours."""
    kind = KINDS[automation.kind]
    # Quiet hours hold back every message, service ones too; balance updates are not messages.
    if policy.in_quiet_hours(program, ctx.now):
        return {"deferred": 1}
    stats = {"sent": 0, "holdout": 0, "no_consent": 0, "frequency_cap": 0}
    log_rows: list[dict[str, Any]] = []
    texts: dict[int, str] = {}
    occasions: dict[int, str] = {}
    # [email-campaigns] Members without an installed card who consented, reached by e-mail.
    targets: dict[int, email_fallback.EmailTarget] = {}
    by_email = automation.email_fallback and ctx.email_enabled
    languages_all: dict[int, str | None] = {}
    after_id = 0
    tiers: dict[int | None, str] = {
        int(tier_id): str(name)
        for tier_id, name in session.execute(
            select(Tier.id, Tier.name).where(Tier.program_id == program.id)
        ).all()
    }
    # Page through the candidates in id order until a chunk is due: members already messaged,
    # without consent or at their cap must never keep the ones after them waiting.
    while len(log_rows) < CHUNK:
        candidates, last_id = _candidates(session, program, automation, ctx.now, after_id, tiers)
        if last_id == after_id:
            break
        after_id = last_id
        if not candidates:
            continue
        if automation.kind == "post_purchase":
            candidates = _with_feedback_links(session, candidates, ctx)
        ids = [c.member_id for c in candidates]
        already = set(
            session.scalars(
                select(MessageLog.member_id).where(
                    MessageLog.member_id.in_(ids),
                    MessageLog.dedupe_key.in_(
                        {f"{automation.kind}:{c.dedupe_key}" for c in candidates}
                    ),
                )
            ).all()
        )
        fresh = [c for c in candidates if c.member_id not in already]
        people = session.execute(
            select(Member.id, Member.marketing_consent, Member.language).where(Member.id.in_(ids))
        ).all()
        consent = {int(r[0]): bool(r[1]) for r in people}
        languages = {int(r[0]): r[2] for r in people}
        languages_all.update(languages)
        counts = policy.recent_marketing_counts(session, ids, ctx.now) if kind.marketing else {}
        if by_email:
            installed = policy.members_with_installed_card(session, ids)
            found, _ = email_fallback.email_targets(
                session, program.brand_id, [m for m in ids if consent.get(m) and m not in installed]
            )
            targets.update(found)
        for c in fresh:
            if len(log_rows) >= CHUNK:
                break
            if kind.marketing and not consent.get(c.member_id):
                stats["no_consent"] += 1
                continue
            if kind.marketing and counts.get(c.member_id, 0) >= program.messages_per_week_cap:
                stats["frequency_cap"] += 1
                continue
            holdout = policy.in_holdout(
                f"automation:{automation.id}", c.member_id, automation.holdout_percent
            )
            log_rows.append(
                {"member_id": c.member_id, "source": "automation", "source_id": automation.id,
                 "kind": automation.kind, "dedupe_key": f"{automation.kind}:{c.dedupe_key}",
                 "marketing": kind.marketing, "holdout": holdout, "sent_at": ctx.now,
                 "channel": email_fallback.CHANNEL if c.member_id in targets else None}
            )  # fmt: skip
            if not holdout:
                template = pick_message(
                    automation.message,
                    automation.messages,
                    languages.get(c.member_id),
                    program.default_language,
                )
                texts[c.member_id] = _message_text(automation, c.values, template)
                occasions[c.member_id] = c.occasion
    logged = _claim_log_rows(session, log_rows)
    texts = {member_id: text for member_id, text in texts.items() if member_id in logged}
    stats["holdout"] = len(logged) - len(texts)
    stats["sent"] = len(texts)
    emailed = {member_id: text for member_id, text in texts.items() if member_id in targets}
    if emailed:
        stats["email"] = len(
            email_fallback.queue_fallback_emails(
                session, program=program, targets=targets, texts=emailed,
                languages={m: languages_all.get(m) for m in emailed}, subject=None,
                now=ctx.now, base_url=ctx.base_url, secret_key=ctx.secret_key,
                automation_id=automation.id,
            )
        )  # fmt: skip
    coupons = _issue_offer(session, program, automation, texts.keys(), occasions, ctx)
    if coupons:
        stats["coupons"] = coupons
    source = _message_source(session, program, automation, ctx.now)
    for member_id, text in texts.items():
        set_messages(session, {member_id: text}, f"a{automation.id}-{member_id}-{ctx.now:%Y%m%d}",
                     ctx, source=source, expires_at=source.expiring_until)  # fmt: skip
    return stats


def _message_source(
    session: Session, program: Program, automation: Automation, now: datetime
) -> MessageSource:
    """The automation as a message source, with the condition under which its reminder holds.

    points_expiring holds while points expiring within its window are left (and expires at the
    window's end at the latest); reward_near holds while the balance is below the reward.
    """
    source = MessageSource("automation", automation_kind=automation.kind)
    if automation.kind == "points_expiring":
        until = now + timedelta(days=automation.delay_days or 14)
        return MessageSource("automation", automation_kind=automation.kind, expiring_until=until)
    if automation.kind == "reward_near":
        cost = session.scalar(
            select(Reward.cost_points)
            .where(Reward.program_id == program.id, Reward.active)
            .order_by(Reward.cost_points)
            .limit(1)
        )
        if cost is not None:
            return MessageSource(
                "automation", automation_kind=automation.kind, reward_points=int(cost)
            )
    return source


def _issue_offer(
    session: Session,
    program: Program,
    automation: Automation,
    member_ids: Iterable[int],
    occasions: Mapping[int, str],
    ctx: Context,
) -> int:
    """Issue the automation's offer to the members it just messaged; how many got a coupon.

    The coupon goes with the message (the birthday wish arrives with the birthday coupon), so a
    member held out or not messaged gets none; an offer archived since is skipped.
    """
    source = OFFER_SOURCES.get(automation.kind)
    if automation.offer_id is None or source is None:
        return 0
    offer = session.get(Offer, automation.offer_id)
    if offer is None or offer.status != "active" or offer.program_id != program.id:
        return 0
    ids = sorted(member_ids)
    if not ids:
        return 0
    members = session.scalars(select(Member).where(Member.id.in_(ids)).order_by(Member.id)).all()
    issued = 0
    for member in members:
        occasion = occasions.get(member.id) or automation.kind
        coupon = issue_coupon(session, offer, member, source=source, occasion=occasion, ctx=ctx)
        issued += coupon is not None
    return issued


def run_automations(session: Session, ctx: Context) -> dict[str, int]:
    """Run every enabled automation of every program once; safe to call as often as wanted."""
    totals: dict[str, int] = {}
    rows = session.execute(
        select(Automation, Program)
        .join(Program, Program.id == Automation.program_id)
        .where(Automation.enabled)
    ).all()
    for automation, program in rows:
        for key, value in run_automation(session, program, automation, ctx).items():
            totals[f"{automation.kind}.{key}"] = totals.get(f"{automation.kind}.{key}", 0) + value
    return totals
