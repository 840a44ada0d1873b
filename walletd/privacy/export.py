"""Everything walletd holds about one member, as one JSON document (the right of access).

Never a secret: no pass authentication token, no push token or device id, no coupon code or
barcode (either one redeems the coupon at a till). Everything else is listed in full; nothing is
truncated, so a member with a long history gets a long document.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd import audit
from walletd.enrollment.service import sign_ups_of  # [enrollment]
from walletd.feedback import member_feedback
from walletd.loyalty.members import get_member, tier_name
from walletd.loyalty.money import format_minor
from walletd.models import (
    Card,
    Coupon,
    Event,
    LedgerEntry,
    MessageLog,
    Offer,
    Program,
    Registration,
)
from walletd.models.card_message import CardMessage
from walletd.models.member import Member
from walletd.privacy.consent import consent_history

EXPORT_VERSION = 1


def _amount(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return format_minor(minor, currency)


def _properties(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _member(session: Session, member: Member, currency: str) -> dict[str, Any]:
    return {
        "id": member.id,
        "program_id": member.program_id,
        "name": member.name,
        "email": member.email,
        "phone": member.phone,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "external_id": member.external_id,
        "marketing_consent": member.marketing_consent,
        "language": member.language,
        "referral_code": member.referral_code,
        "referred_by_id": member.referred_by_id,
        "points": member.points,
        "tier": tier_name(session, member),
        "stamps": member.stamps,
        "visits": member.visits,
        "lifetime_spend": _amount(member.lifetime_spend_minor, currency),
        "currency": currency,
        "first_visit_at": member.first_visit_at,
        "last_visit_at": member.last_visit_at,
        "created_at": member.created_at,
        **sign_ups_of(session, member.id),  # [enrollment] what Wallet's sign-up sheet gave
    }


def _cards(session: Session, member_id: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    cards = session.scalars(select(Card).where(Card.member_id == member_id).order_by(Card.id))
    listed = []
    google = 0
    card_ids = []
    for card in cards:
        card_ids.append(card.id)
        on_google = card.google_saved_at is not None and card.google_deleted_at is None
        google += 1 if on_google and card.kind == "loyalty" else 0
        listed.append(
            {
                "serial_number": card.serial_number,
                "kind": card.kind,
                "message": card.message,
                "created_at": card.created_at,
                "updated_at": card.updated_at,
                "google_saved_at": card.google_saved_at,
                "google_deleted_at": card.google_deleted_at,
            }
        )
    apple = (
        session.scalar(select(func.count()).where(Registration.card_id.in_(card_ids)))
        if card_ids
        else 0
    )
    return listed, {"apple_devices": int(apple or 0), "google_saved_cards": google}


def _ledger(session: Session, member_id: int) -> list[dict[str, Any]]:
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.member_id == member_id).order_by(LedgerEntry.id)
    )
    return [
        {
            "id": e.id,
            "kind": e.kind,
            "points": e.points,
            "amount": _amount(e.amount_minor, e.currency),
            "currency": e.currency,
            "reason": e.reason,
            "balance_after": e.balance_after,
            "tier_after": e.tier_after,
            "location_id": e.location_id,
            "reverses_id": e.reverses_id,
            "expires_at": e.expires_at,
            "created_at": e.created_at,
        }
        for e in entries
    ]


def _coupons(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Coupon, Offer.name)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.member_id == member_id)
        .order_by(Coupon.id)
    ).all()
    return [
        {
            "id": c.id,
            "offer_id": c.offer_id,
            "offer": name,
            "status": c.status,
            "value": None if c.value is None else format(c.value.normalize(), "f"),
            "source": c.source,
            "issued_at": c.issued_at,
            "expires_at": c.expires_at,
        }
        for c, name in rows
    ]


def _messages(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(MessageLog).where(MessageLog.member_id == member_id).order_by(MessageLog.id)
    )
    return [
        {
            "source": m.source,
            "source_id": m.source_id,
            "kind": m.kind,
            "marketing": m.marketing,
            # A holdout member was chosen for the message but, on purpose, never sent it.
            "holdout": m.holdout,
            "sent_at": m.sent_at,
        }
        for m in rows
    ]


def _card_messages(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(CardMessage).where(CardMessage.member_id == member_id).order_by(CardMessage.id)
    )
    return [
        {
            "text": m.text,
            "source": m.source,
            "created_at": m.created_at,
            "expires_at": m.expires_at,
            "withdrawn_at": m.withdrawn_at,
        }
        for m in rows
    ]


def _events(session: Session, member_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Event).where(Event.member_id == member_id).order_by(Event.id))
    return [
        {
            "id": e.id,
            "type": e.type,
            "properties": _properties(e.properties),
            "occurred_at": e.occurred_at,
            "received_at": e.received_at,
        }
        for e in rows
    ]


def _import_origin(ledger: list[dict[str, Any]]) -> dict[str, Any]:
    # An import leaves exactly one trace per member: its "opening" balance entry.
    opening = [e for e in ledger if e["kind"] == "opening"]
    return {
        "imported": bool(opening),
        "opening_points": sum(int(e["points"]) for e in opening),
        "imported_at": opening[0]["created_at"] if opening else None,
    }


def export_member(
    session: Session, actor: audit.Actor, member_id: int, *, now: datetime
) -> dict[str, Any]:
    """The whole record of one member of the actor's brand; audited as member.exported."""
    member = get_member(session, actor.brand_id, member_id)
    currency = session.scalar(select(Program.currency).where(Program.id == member.program_id))
    cards, wallets = _cards(session, member.id)
    ledger = _ledger(session, member.id)
    document = {
        "version": EXPORT_VERSION,
        "exported_at": now,
        "member": _member(session, member, currency or "USD"),
        "cards": cards,
        "wallets": wallets,
        "ledger": ledger,
        "coupons": _coupons(session, member.id),
        "messages": _messages(session, member.id),
        "card_messages": _card_messages(session, member.id),
        "events": _events(session, member.id),
        "import_origin": _import_origin(ledger),
        "feedback": member_feedback(session, member.id),
        "consent_history": [
            {"marketing_consent": c.consent, "source": c.source, "at": c.created_at}
            for c in consent_history(session, member.id)
        ],
    }
    audit.record(session, actor, "member.exported", "member", member.id, now=now)
    return document
