"""The events of the program as webhooks carry them: one builder per event, called by services.

Each payload names the member by walletd's id and the brand's `external_id`, and carries ids,
points, balances, tiers and amounts (decimal strings); never a barcode, a coupon code, an auth
token, or personal data beyond the name, e-mail and phone on `member.enrolled`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.loyalty.money import format_minor
from walletd.models import Coupon, LedgerEntry, Member
from walletd.webhooks import emit_event

Platform = Literal["apple", "google"]


def _member_ref(member: Member) -> dict[str, Any]:
    return {
        "member_id": member.id,
        "external_id": member.external_id,
        "program_id": member.program_id,
    }


def _amount(minor: int | None, currency: str | None) -> str | None:
    if minor is None or currency is None:
        return None
    return format_minor(minor, currency)


def member_enrolled(session: Session, member: Member, tier: str | None, *, now: datetime) -> None:
    """A member joined the program (their welcome bonus already counted in `points`)."""
    emit_event(
        session,
        member.brand_id,
        "member.enrolled",
        {
            **_member_ref(member),
            "name": member.name,
            "email": member.email,
            "phone": member.phone,
            "marketing_consent": member.marketing_consent,
            "points": member.points,
            "tier": tier,
            "referred_by_id": member.referred_by_id,
            "created_at": member.created_at,
        },
        now=now,
    )


def member_updated(
    session: Session, member: Member, fields: Iterable[str], *, now: datetime
) -> None:
    """A member's details changed: the names of the fields, not their values (call after it)."""
    emit_event(
        session,
        member.brand_id,
        "member.updated",
        {**_member_ref(member), "changed": sorted(set(fields))},
        now=now,
    )


def member_erased(
    session: Session, brand_id: int, member_id: int, external_id: str | None, *, now: datetime
) -> None:
    """A member's personal data was erased: call with the ids read before the erasure."""
    emit_event(
        session,
        brand_id,
        "member.erased",
        {"member_id": member_id, "external_id": external_id},
        now=now,
    )


def scan_credited(session: Session, member: Member, entry: LedgerEntry, *, now: datetime) -> None:
    """A checkout earned points."""
    emit_event(
        session,
        member.brand_id,
        "scan.credited",
        {
            **_member_ref(member),
            "scan_id": entry.id,
            "points_earned": entry.points,
            "balance": entry.balance_after,
            "tier": entry.tier_after,
            "amount": _amount(entry.amount_minor, entry.currency),
            "currency": entry.currency,
            "location_id": entry.location_id,
        },
        now=now,
    )


def scan_reversed(
    session: Session, member: Member, scan: LedgerEntry, reversal: LedgerEntry, *, now: datetime
) -> None:
    """A scan was refunded, in part or in full: the points taken back and the amount refunded."""
    emit_event(
        session,
        member.brand_id,
        "scan.reversed",
        {
            **_member_ref(member),
            "scan_id": scan.id,
            "reversal_id": reversal.id,
            "points_reversed": -reversal.points,
            "shortfall": reversal.shortfall or 0,
            "balance": member.points,
            # What this refund gave back (the whole scan for a full refund of it).
            "amount": _amount(-(reversal.amount_minor or 0), scan.currency),
            "scan_amount": _amount(scan.amount_minor, scan.currency),
            "partial": reversal.reverses_id != scan.id,
            "currency": scan.currency,
        },
        now=now,
    )


def redemption_created(
    session: Session, member: Member, entry: LedgerEntry, *, now: datetime
) -> None:
    """Points were spent, directly or on a reward."""
    emit_event(
        session,
        member.brand_id,
        "redemption.created",
        {
            **_member_ref(member),
            "redemption_id": entry.id,
            "points_redeemed": -entry.points,
            "balance": entry.balance_after,
            "reward_id": entry.reward_id,
            "reward": entry.reason if entry.reward_id else None,
        },
        now=now,
    )


def tier_changed(
    session: Session,
    member: Member,
    before: str | None,
    after: str | None,
    *,
    reason: Literal["scan", "reevaluation", "refund"],
    now: datetime,
) -> None:
    """The member moved to another tier (`from`/`to` are tier names; null is no tier)."""
    if before == after:
        return
    emit_event(
        session,
        member.brand_id,
        "tier.changed",
        {**_member_ref(member), "from": before, "to": after, "reason": reason},
        now=now,
    )


def _coupon_ref(member: Member, coupon: Coupon) -> dict[str, Any]:
    # Never the code or the barcode: either one redeems the coupon at a till.
    return {
        **_member_ref(member),
        "coupon_id": coupon.id,
        "offer_id": coupon.offer_id,
        "value": None if coupon.value is None else format(coupon.value.normalize(), "f"),
    }


def coupon_issued(session: Session, member: Member, coupon: Coupon, *, now: datetime) -> None:
    """A member got a coupon of an offer."""
    emit_event(
        session,
        member.brand_id,
        "coupon.issued",
        {
            **_coupon_ref(member, coupon),
            "source": coupon.source,
            "issued_at": coupon.issued_at,
            "expires_at": coupon.expires_at,
        },
        now=now,
    )


def coupon_redeemed(session: Session, coupon: Coupon, currency: str, *, now: datetime) -> None:
    """A coupon was used at a till, alone or with a scan."""

    def data() -> dict[str, Any]:  # the member is read only when someone listens
        member = session.get_one(Member, coupon.member_id)
        return {
            **_coupon_ref(member, coupon),
            "scan_id": coupon.redeemed_scan_id,
            "discount": _amount(coupon.discount_minor, currency),
            "purchase": _amount(coupon.purchase_minor, currency),
            "currency": currency,
            "points_awarded": coupon.points_awarded,
        }

    emit_event(session, coupon.brand_id, "coupon.redeemed", data, now=now)


def pass_changed(
    session: Session,
    brand_id: int,
    member_id: int,
    card_id: int,
    kind: str,
    platform: Platform,
    *,
    installed: bool,
    now: datetime,
) -> None:
    """A wallet added (`pass.installed`) or removed (`pass.removed`) one of the member's passes.

    The member and coupon are read only when an endpoint subscribed: a device registration is a
    hot path, and most brands have no webhook endpoint.
    """

    def data() -> dict[str, Any]:
        member = session.get_one(Member, member_id)
        coupon_id = None
        if kind == "coupon":
            coupon_id = session.scalar(select(Coupon.id).where(Coupon.card_id == card_id))
        return {**_member_ref(member), "platform": platform, "pass": kind, "coupon_id": coupon_id}

    emit_event(session, brand_id, "pass.installed" if installed else "pass.removed", data, now=now)
