"""Erasing a member: the person goes, the brand's numbers stay.

One transaction: the personal fields are scrubbed, consent is withdrawn, the member's events lose
their properties, feedback comments are dropped (ratings stay), the card's messages are deleted,
pending event automation runs are cancelled, active coupons are voided and every card loses its
message and its barcode (a scan of the old code finds no card). The member
row stays, marked `erased_at`, so the ledger (amounts, points, visits) keeps the brand's totals
right; every lookup by id, serial or barcode treats an erased member as not found.

Wallets: the cards are touched, which queues one APNs row per push token (the token travels in
the outbox row's payload, so the push needs no registration) and one Google object row (the
object is patched to state INACTIVE; see walletd/passes/google.py). The registrations are kept
for DEVICE_GRACE after the erasure, because a device that receives the push asks the web service
which of *its registered* passes changed and then fetches them: without its registration it
would never see the voided pass. Until then the Apple web service serves the voided pass to a
device holding the pass's token; afterwards `forget_erased_devices` (an hourly worker job) deletes
the registrations and the devices left with none, and the pass answers 401.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from walletd import audit
from walletd.email.history import forget_member_emails  # [email]
from walletd.enrollment.service import forget_enrollment_details  # [enrollment]
from walletd.errors import NotFoundError
from walletd.feedback import erase_member_feedback
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.models import (
    AuditEntry,
    Card,
    Coupon,
    Device,
    Event,
    EventAutomationRun,
    Member,
    Registration,
)
from walletd.models.card_message import CardMessage
from walletd.offers.wallets import coupon_changed
from walletd.privacy.consent import record_consent
from walletd.services import Services
from walletd.webhooks import events as webhook_events

# How long an erased card's device registrations outlive the erasure: long enough for a phone
# that was off or offline to get the push (APNs keeps one notification for a while) and fetch the
# voided pass; short enough that a push token does not linger.
DEVICE_GRACE = timedelta(days=3)
PERSONAL_FIELDS = ("name", "email", "phone", "birthday", "external_id")
_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Erasure:
    """What an erasure did, for the caller's answer and the tests."""

    member_id: int
    erased_at: datetime
    cards: int
    coupons_voided: int
    events_scrubbed: int


def _erasable(session: Session, brand_id: int, member_id: int) -> Member:
    member = session.scalar(
        select(Member)
        .where(Member.id == member_id, Member.brand_id == brand_id, Member.erased_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if member is None:
        raise NotFoundError("member not found")
    return member


def _fresh_referral_code(session: Session) -> str:
    # The old code is printed on the person's invite link: keep no link from it to the row.
    while True:
        code = "X" + "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(11))
        if session.scalar(select(Member.id).where(Member.referral_code == code)) is None:
            return code


def erase_member(session: Session, actor: audit.Actor, member_id: int, ctx: Context) -> Erasure:
    """Erase one member of the actor's brand (see the module docstring); 404 when erased."""
    member = _erasable(session, actor.brand_id, member_id)
    external_id = member.external_id
    held = [f for f in PERSONAL_FIELDS if getattr(member, f) not in (None, "")]
    forget_member_emails(session, member)  # [email] before the address is cleared
    member.name = ""
    member.email = None
    member.phone = None
    member.birthday = None
    member.external_id = None
    member.last_birthday_bonus_year = None
    member.referral_code = _fresh_referral_code(session)
    record_consent(session, member, False, "erasure", now=ctx.now)
    member.erased_at = ctx.now
    forget_enrollment_details(session, member.id)  # [enrollment] the sign-up sheet's postal code

    coupons = list(
        session.scalars(
            select(Coupon)
            .where(Coupon.member_id == member.id, Coupon.status == "active")
            .with_for_update()
        ).all()
    )
    for coupon in coupons:
        coupon.status = "void"
        coupon.updated_at = ctx.now
        coupon_changed(session, coupon, ctx)

    cards = list(session.scalars(select(Card).where(Card.member_id == member.id)).all())
    for card in cards:
        card.message = None
        card.message_id = None
        # A scan of the printed or saved code must find no card: the old barcode is gone.
        card.barcode = f"ERASED.{secrets.token_hex(16).upper()}"
    touch_cards(session, cards, ctx)

    # The messages shown on the card could greet the person by name.
    session.execute(
        delete(CardMessage)
        .where(CardMessage.member_id == member.id)
        .execution_options(synchronize_session=False)
    )
    scrubbed = session.execute(
        update(Event)
        .where(Event.member_id == member.id)
        .values(properties=None, answer=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(EventAutomationRun)
        .where(EventAutomationRun.member_id == member.id, EventAutomationRun.status == "scheduled")
        .values(status="cancelled", reason="erased", decided_at=ctx.now)
        .execution_options(synchronize_session=False)
    )
    _scrub_audit_rows(session, actor.brand_id, member.id)
    # A rating stays in the brand's report, anonymous; the words the person wrote go.
    erase_member_feedback(session, member.id)
    webhook_events.member_erased(session, actor.brand_id, member.id, external_id, now=ctx.now)
    audit.record(
        session,
        actor,
        "member.erased",
        "member",
        member.id,
        now=ctx.now,
        # Which kinds of data were held, never their values.
        changes={"fields": held, "cards": len(cards), "coupons_voided": len(coupons)},
    )
    session.flush()
    return Erasure(
        member_id=member.id,
        erased_at=ctx.now,
        cards=len(cards),
        coupons_voided=len(coupons),
        events_scrubbed=int(getattr(scrubbed, "rowcount", 0) or 0),
    )


def _scrub_audit_rows(session: Session, brand_id: int, member_id: int) -> None:
    """Keep who changed the member and when, but not the values: corrections stored e-mails."""
    rows = session.scalars(
        select(AuditEntry).where(
            AuditEntry.brand_id == brand_id,
            AuditEntry.target_type == "member",
            AuditEntry.target_id == member_id,
        )
    ).all()
    for row in rows:
        if isinstance(row.changes, dict):
            row.changes = {"fields": sorted(str(name) for name in row.changes), "erased": True}


def is_erased_card(session: Session, card: Card) -> bool:
    """True when the card belongs to an erased member."""
    return session.scalar(select(Member.erased_at).where(Member.id == card.member_id)) is not None


def forget_erased_devices(session: Session, *, now: datetime) -> int:
    """Delete the registrations of cards erased more than DEVICE_GRACE ago, and devices left
    with none; returns the registrations deleted."""
    erased_cards = (
        select(Card.id)
        .join(Member, Member.id == Card.member_id)
        .where(Member.erased_at.is_not(None), Member.erased_at <= now - DEVICE_GRACE)
    )
    device_ids = set(
        session.scalars(
            select(Registration.device_id).where(Registration.card_id.in_(erased_cards))
        ).all()
    )
    if not device_ids:
        return 0
    removed = session.execute(
        delete(Registration)
        .where(Registration.card_id.in_(erased_cards))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Device)
        .where(
            Device.id.in_(sorted(device_ids)),
            ~exists().where(Registration.device_id == Device.id),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(removed, "rowcount", 0) or 0)


def forget_erased_devices_job(svc: Services) -> int:
    """The worker's hourly job around `forget_erased_devices`."""
    with svc.db.transaction() as session:
        return forget_erased_devices(session, now=svc.clock())
