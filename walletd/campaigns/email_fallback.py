"""Campaign and automation messages by e-mail for members without an installed card, the
one-click unsubscribe their e-mails carry (RFC 8058), and the campaign's counts per channel."""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from walletd.email import EmailContent, queue_email
from walletd.email.catalog import translator
from walletd.errors import N_, NotFoundError
from walletd.models import Card, Member, OutboxMessage, Program
from walletd.models.email import Email, EmailBounce
from walletd.privacy.consent import record_consent
from walletd.web.links import check_link, link_signature

CHANNEL = "email"
ONE_CLICK = "List-Unsubscribe=One-Click"
MAX_SUBJECT = 150
# Outbox kinds per wallet channel of a campaign's progress; e-mails are counted from `emails`.
PUSH_CHANNELS = {
    "apns": "apple",
    "google_object": "google",
    "google_message": "google",
    "google_class_message": "google",
    "google_coupon": "google",
}


@dataclass(frozen=True)
class EmailTarget:
    """A member reachable by e-mail: their address and their card's serial (for its page)."""

    member_id: int
    address: str
    serial: str


def _t(language: str, text: str, **values: object) -> str:
    """`text` in the member's language (the pages' catalog), its {placeholders} filled."""
    return translator(language)(text, **values)


def email_targets(
    session: Session, brand_id: int, member_ids: Collection[int]
) -> tuple[dict[int, EmailTarget], set[int]]:
    """Of these members, those with an e-mail address to write to, and those whose address the
    relay refused for good (bouncing); two queries for the whole chunk."""
    if not member_ids:
        return {}, set()
    rows = session.execute(
        select(Member.id, Member.email, Card.serial_number)
        .join(Card, (Card.member_id == Member.id) & (Card.kind == "loyalty"))
        .where(
            Member.id.in_(list(member_ids)),
            Member.brand_id == brand_id,
            Member.email.is_not(None),
            Member.erased_at.is_(None),
        )
        .order_by(Member.id, Card.id)
    ).all()
    found = {
        int(member_id): EmailTarget(int(member_id), str(address).strip().lower(), str(serial))
        for member_id, address, serial in rows
        if address and str(address).strip()
    }
    bounced = set(
        session.scalars(
            select(EmailBounce.address).where(
                EmailBounce.brand_id == brand_id,
                EmailBounce.address.in_({t.address for t in found.values()}),
            )
        ).all()
    )
    bouncing = {m for m, t in found.items() if t.address in bounced}
    return {m: t for m, t in found.items() if m not in bouncing}, bouncing


def card_page_url(base_url: str, secret_key: str, serial: str) -> str:
    """The signed address of the member's card page."""
    return f"{base_url}/card/{serial}?sig={link_signature('page', serial, secret_key)}"


def unsubscribe_url(base_url: str, secret_key: str, member_id: int) -> str:
    """The member's signed one-click unsubscribe address (no expiry: e-mails are kept)."""
    sig = link_signature("unsubscribe", str(member_id), secret_key)
    return f"{base_url}/unsubscribe?m={member_id}&sig={sig}"


def check_unsubscribe(member: object, signature: object, secret_keys: tuple[str, ...]) -> int:
    """The member id of a genuine unsubscribe link; NotFoundError for anything else."""
    if not isinstance(member, str) or not member.isascii() or not member.isdigit():
        raise NotFoundError("unsubscribe link not found")
    if len(member) > 10 or not check_link("unsubscribe", member, signature, secret_keys):
        raise NotFoundError("unsubscribe link not found")
    return int(member)


def _subject(text: str) -> str:
    """One line of at most MAX_SUBJECT characters: no header can be smuggled in."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(line) > MAX_SUBJECT:
        line = line[: MAX_SUBJECT - 1].rstrip() + "…"
    return line or "…"


def fallback_content(
    *,
    subject: str,
    message: str,
    program_name: str,
    language: str,
    card_url: str,
    unsubscribe: str,
) -> EmailContent:
    """The e-mail of one member: the message, their card's link, why they get it and the
    one-click unsubscribe (a visible link and the List-Unsubscribe headers)."""
    open_card = _t(language, N_("Open your card page"))
    why = _t(
        language,
        N_("You receive this e-mail because you agreed to messages from {program}."),
        program=program_name,
    )
    stop = _t(language, N_("Unsubscribe"))
    text = f"{message}\n\n{open_card}: {card_url}\n\n--\n{why}\n{stop}: {unsubscribe}\n"
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in message.split("\n") if p.strip())
    lang = "zh-Hant" if language == "zh-Hant" else "en"
    body = (
        f'<!doctype html><html lang="{lang}"><body>'
        f"{paragraphs}"
        f'<p><a href="{html.escape(card_url)}">{html.escape(open_card)}</a></p>'
        f'<hr><p style="font-size:12px;color:#555">{html.escape(why)} '
        f'<a href="{html.escape(unsubscribe)}">{html.escape(stop)}</a></p>'
        "</body></html>"
    )
    return EmailContent(
        subject=_subject(subject),
        text=text,
        html=body,
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": ONE_CLICK},
    )


def queue_fallback_emails(
    session: Session,
    *,
    program: Program,
    targets: Mapping[int, EmailTarget],
    texts: Mapping[int, str],
    languages: Mapping[int, str | None],
    subject: str | None,
    now: datetime,
    base_url: str,
    secret_key: str,
    campaign_id: int | None = None,
    automation_id: int | None = None,
) -> set[int]:
    """Queue each member's message by e-mail (subject: `subject`, else the message); the members
    it was queued for (a bouncing address is skipped by `queue_email`)."""
    queued: set[int] = set()
    kind = "campaign" if campaign_id is not None else "automation"
    for member_id, text in texts.items():
        target = targets[member_id]
        language = languages.get(member_id) or program.default_language or "en"
        content = fallback_content(
            subject=subject or text,
            message=text,
            program_name=program.name,
            language=language,
            card_url=card_page_url(base_url, secret_key, target.serial),
            unsubscribe=unsubscribe_url(base_url, secret_key, member_id),
        )
        email_id = queue_email(
            session, brand_id=program.brand_id, to=target.address, kind=kind, content=content,
            now=now, program_id=program.id, member_id=member_id, campaign_id=campaign_id,
            automation_id=automation_id,
        )  # fmt: skip
        if email_id is not None:
            queued.add(member_id)
    return queued


@dataclass(frozen=True)
class Unsubscription:
    """What the unsubscribe page shows: the program (and its language) and the consent now."""

    program_name: str
    default_language: str | None
    subscribed: bool


def find_unsubscription(session: Session, member_id: int) -> Unsubscription:
    """The member behind an unsubscribe link; an erased or unknown member is not found."""
    row = session.execute(
        select(Program.name, Program.default_language, Member.marketing_consent)
        .join(Program, Program.id == Member.program_id)
        .where(Member.id == member_id, Member.erased_at.is_(None))
    ).first()
    if row is None:
        raise NotFoundError("unsubscribe link not found")
    return Unsubscription(str(row[0]), row[1], bool(row[2]))


def unsubscribe(session: Session, member_id: int, *, now: datetime) -> bool:
    """Withdraw the member's promotional consent (logged with source "email"); True when it
    changed, False when it was already off."""
    member = session.scalar(
        select(Member).where(Member.id == member_id, Member.erased_at.is_(None)).with_for_update()
    )
    if member is None:
        raise NotFoundError("unsubscribe link not found")
    return record_consent(session, member, False, "email", now=now)


def cancel_campaign_emails(session: Session, campaign_id: int, now: datetime) -> None:
    """A cancelled campaign's e-mails not yet sent stay unsent (their outbox rows are cancelled
    with the campaign's other deliveries)."""
    session.execute(
        update(Email)
        .where(Email.campaign_id == campaign_id, Email.status == "pending")
        .values(status="cancelled", failed_at=now)
        .execution_options(synchronize_session=False)
    )


def by_channel(session: Session, campaign_id: int) -> dict[str, dict[str, int]]:
    """A campaign's deliveries per channel: Apple and Google pushes by state, e-mails queued,
    sent, failed (temporarily refused until given up) and bounced (refused for good)."""
    channels: dict[str, dict[str, int]] = {
        name: {"queued": 0, "sent": 0, "failed": 0, "cancelled": 0} for name in ("apple", "google")
    }
    pushes = session.execute(
        select(OutboxMessage.kind, OutboxMessage.status, func.count())
        .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.kind.in_(PUSH_CHANNELS))
        .group_by(OutboxMessage.kind, OutboxMessage.status)
    ).all()
    for kind, status, count in pushes:
        state = {"pending": "queued", "sending": "queued", "gone": "failed"}.get(status, status)
        if state in ("queued", "sent", "failed", "cancelled"):
            channels[PUSH_CHANNELS[kind]][state] += int(count)
    email = {"queued": 0, "sent": 0, "failed": 0, "bounced": 0, "cancelled": 0}
    bounced = EmailBounce.id.is_not(None)
    rows = session.execute(
        select(Email.status, bounced, func.count())
        .outerjoin(
            EmailBounce,
            (EmailBounce.brand_id == Email.brand_id) & (EmailBounce.address == Email.to_address),
        )
        .where(Email.campaign_id == campaign_id)
        .group_by(Email.status, bounced)
    ).all()
    for status, is_bounced, count in rows:
        if status == "failed" and is_bounced:
            email["bounced"] += int(count)
        elif status == "pending":
            email["queued"] += int(count)
        elif status in email:
            email[str(status)] += int(count)
    result: dict[str, Any] = {**channels, CHANNEL: email}
    return result
