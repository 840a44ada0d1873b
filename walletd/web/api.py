"""The JSON API of the contract under /api/v1; views parse, call one service and serialise."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from sqlalchemy.orm import Session

from walletd.admin.actors import actor_json, actor_pair, actor_refs
from walletd.imports.service import get_member_by_external_id
from walletd.loyalty import ledger
from walletd.loyalty.members import Enrollment, enroll_member, get_card_of, get_member, tier_name
from walletd.loyalty.money import format_minor
from walletd.members.listing import ledger_page
from walletd.messages.service import message_expiry
from walletd.models import Card, Member
from walletd.push.messages import send_member_message
from walletd.web import links
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.email_api import send_card_email  # [email]
from walletd.web.endpoint import Header, endpoint
from walletd.web.member_schemas import LedgerPageOut, LedgerQuery
from walletd.web.schemas import (
    AdjustmentCreate,
    AdjustmentOut,
    MemberCreate,
    MemberOut,
    MessageCreate,
    MessageQueued,
    RedemptionCreate,
    RedemptionOut,
    ScanCreate,
    ScanOut,
)
from walletd.web.wallets import google_save_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
TILL = ("cashier", "admin")


def _enrollment(body: MemberCreate) -> Enrollment:
    return Enrollment(
        name=body.name,
        email=body.email or None,
        phone=body.phone or None,
        birthday=body.birthday,
        marketing_consent=body.marketing_consent,
        referral_code=body.referral_code or None,
        program_id=body.program_id,
        language=body.language,
    )


def member_body(session: Session, member: Member, card: Card) -> dict[str, Any]:
    """The contract's member object."""
    settings = services().settings
    return {
        "id": member.id,
        "program_id": member.program_id,
        "name": member.name,
        "email": member.email,
        "phone": member.phone,
        "birthday": member.birthday,
        "marketing_consent": member.marketing_consent,
        "language": member.language,
        "referral_code": member.referral_code,
        "points": member.points,
        "tier": tier_name(session, member),
        "visits": member.visits,
        "created_at": member.created_at,
        "card": {
            "serial_number": card.serial_number,
            "barcode": card.barcode,
            "qr_url": links.qr_url(settings, card.serial_number),
            "apple_pass_url": links.apple_pass_url(settings, card.serial_number),
            "google_save_url": google_save_url(card),
        },
    }


IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "the till's key for this operation: a retry with the same key replays the first answer",
    required=True,
)


@bp.post("/members")
@endpoint(
    "Enroll a member (409 member_exists: the e-mail or phone is a member's already)",
    tag="members",
    roles=ADMIN,
    body=MemberCreate,
    response=MemberOut,
    status=201,
    other_responses={
        409: "member_exists: another member has the e-mail or phone; with send_card_email: "
        "email_disabled, no_email or email_bouncing",
    },
)
def create_member(body: MemberCreate) -> dict[str, Any]:
    """Enroll a member and issue their card."""
    enrollment = _enrollment(body)
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        member, card = enroll_member(session, brand_id, enrollment, context())
        if body.send_card_email:  # [email] in the enrollment's transaction: both or neither
            send_card_email(session, member, card)
        return member_body(session, member, card)

    return run_in_transaction(work)


@bp.get("/members/<int:member_id>")
@endpoint("Show a member", tag="members", roles=ADMIN, response=MemberOut)
def show_member(member_id: int) -> dict[str, Any]:
    """One member of the caller's brand."""

    def work(session: Session) -> dict[str, Any]:
        member = get_member(session, principal().brand_id, member_id)
        return member_body(session, member, get_card_of(session, member))

    return run_in_transaction(work)


@bp.get("/members/ext:<string(maxlength=100):external_id>")
@endpoint("Show a member by external id (GET /members/ext:{external_id})", tag="members",
          roles=ADMIN, response=MemberOut)  # fmt: skip
def show_member_by_external_id(external_id: str) -> dict[str, Any]:
    """One member of the caller's brand, by the id the brand's other system knows them by."""

    def work(session: Session) -> dict[str, Any]:
        member = get_member_by_external_id(session, principal().brand_id, external_id)
        return member_body(session, member, get_card_of(session, member))

    return run_in_transaction(work)


@bp.get("/members/<int:member_id>/ledger")
@endpoint("A member's ledger, newest first, in keyset pages (next link)", tag="members",
          roles=ADMIN, query=LedgerQuery, response=LedgerPageOut)  # fmt: skip
def show_ledger(member_id: int, query: LedgerQuery) -> dict[str, Any]:
    """The member's ledger entries, newest first, a page at a time."""
    brand_id = principal().brand_id

    def work(session: Session) -> tuple[list[dict[str, Any]], int | None]:
        get_member(session, brand_id, member_id)
        page = ledger_page(session, brand_id, member_id, after=query.after, limit=query.limit)
        entries = page.entries
        actors = actor_refs(session, brand_id, [actor_pair(e) for e in entries])
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "points": e.points,
                "amount": None if e.amount_minor is None else _amount(e.amount_minor, e.currency),
                "currency": e.currency,
                "reason": e.reason,
                "created_at": e.created_at,
                "expires_at": e.expires_at,
                "location_id": e.location_id,
                "actor": actor_json(actors[actor_pair(e)]),
            }
            for e in entries
        ], page.next_after

    entries, after = run_in_transaction(work)
    link = None
    if after is not None:
        link = url_for("api.show_ledger", member_id=member_id, limit=query.limit, after=after)
    return {"entries": entries, "next": link}


def _amount(minor: int, currency: str | None) -> str:
    return format_minor(minor, currency or "USD")


def _actor() -> ledger.Actor:
    return principal().actor


@bp.post("/members/<int:member_id>/adjustments")
@endpoint(
    "Adjust a member's points with a reason",
    tag="members",
    roles=ADMIN,
    body=AdjustmentCreate,
    response=AdjustmentOut,
    status=201,
)
def adjust_member(member_id: int, body: AdjustmentCreate) -> dict[str, Any]:
    """Correct a member's points with a reason."""
    actor = _actor()
    outcome = run_in_transaction(
        lambda s: ledger.adjust_points(s, actor, member_id, body.points, body.reason, context())
    )
    return outcome.body


@bp.post("/scans")
@endpoint(
    "Credit a checkout scan (a replay answers 200 with the first result)",
    tag="scans",
    roles=TILL,
    body=ScanCreate,
    response=ScanOut,
    status=201,
    headers=(IDEMPOTENCY_KEY,),
    other_responses={200: "a replay: the first answer"},
    key_rechecked=True,  # ledger.credit_scan's locked read refuses a revoked key
)
def create_scan(body: ScanCreate) -> tuple[dict[str, Any], int]:
    """Credit a checkout scan exactly once per Idempotency-Key."""
    actor = _actor()
    key = request.headers.get("Idempotency-Key")
    outcome = run_in_transaction(
        lambda s: ledger.credit_scan(
            s,
            actor,
            barcode=body.barcode,
            amount=body.amount,
            currency=body.currency,
            location_id=body.location_id,
            idempotency_key=key,
            ctx=context(),
            coupons=body.coupons,
        )
    )
    return outcome.body, 200 if outcome.replayed else 201


# POST /scans/{id}/reversal (refunds, partial or full) lives in walletd/web/refunds_api.py.


@bp.post("/redemptions")
@endpoint(
    "Redeem points or a reward (a replay answers 200 with the first result)",
    tag="scans",
    roles=TILL,
    body=RedemptionCreate,
    response=RedemptionOut,
    status=201,
    headers=(IDEMPOTENCY_KEY,),
    other_responses={200: "a replay: the first answer"},
    key_rechecked=True,  # ledger.redeem's locked read refuses a revoked key
)
def create_redemption(body: RedemptionCreate) -> tuple[dict[str, Any], int]:
    """Redeem points or a reward exactly once per Idempotency-Key."""
    actor = _actor()
    key = request.headers.get("Idempotency-Key")
    outcome = run_in_transaction(
        lambda s: ledger.redeem(
            s,
            actor,
            barcode=body.barcode,
            points=body.points,
            reward_id=body.reward_id,
            idempotency_key=key,
            ctx=context(),
        )
    )
    return outcome.body, 200 if outcome.replayed else 201


@bp.post("/members/<int:member_id>/message")
@endpoint(
    "Set a member's card message and push it",
    tag="members",
    roles=ADMIN,
    body=MessageCreate,
    response=MessageQueued,
    status=202,
)
def message_member(member_id: int, body: MessageCreate) -> MessageQueued:
    """Set a message on the member's cards and push it (Apple lock screen, Google message)."""
    brand_id, ctx = principal().brand_id, context()
    expires_at = message_expiry(body.expires_at, body.expires_in_days, ctx.now)
    queued = run_in_transaction(
        lambda s: send_member_message(
            s, brand_id, member_id, body.message, ctx, expires_at=expires_at
        )
    )
    return MessageQueued(member_id=queued.member_id, message_id=queued.message_id, status="queued")
