"""The JSON API of the contract under /api/v1; views parse, call one service and serialise."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.loyalty import ledger
from walletd.loyalty.members import Enrollment, enroll_member, get_card_of, get_member, tier_name
from walletd.loyalty.money import format_minor
from walletd.models import Card, Member
from walletd.push.messages import send_member_message
from walletd.web import links
from walletd.web.auth import principal, require_role
from walletd.web.deps import context, json_body, json_response, run_in_transaction, services
from walletd.web.wallets import google_save_url

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", field=name)
    return value or None


def _optional_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an integer", field=name)
    return value


def _parse_enrollment(data: dict[str, Any]) -> Enrollment:
    name = data.get("name")
    if not isinstance(name, str):
        raise ValidationError("name is required and must be a string", field="name")
    birthday_text = _optional_str(data, "birthday")
    birthday = None
    if birthday_text is not None:
        try:
            birthday = date.fromisoformat(birthday_text)
        except ValueError as exc:
            raise ValidationError(
                "birthday must be a date as YYYY-MM-DD", field="birthday"
            ) from exc
        if birthday.isoformat() != birthday_text:  # 3.11 also takes "1990-W01-1"
            raise ValidationError("birthday must be a date as YYYY-MM-DD", field="birthday")
    consent = data.get("marketing_consent", False)
    if not isinstance(consent, bool):
        raise ValidationError("marketing_consent must be true or false", field="marketing_consent")
    return Enrollment(
        name=name,
        email=_optional_str(data, "email"),
        phone=_optional_str(data, "phone"),
        birthday=birthday,
        marketing_consent=consent,
        referral_code=_optional_str(data, "referral_code"),
        program_id=_optional_int(data, "program_id"),
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
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "marketing_consent": member.marketing_consent,
        "referral_code": member.referral_code,
        "points": member.points,
        "tier": tier_name(session, member),
        "visits": member.visits,
        "created_at": member.created_at.isoformat(),
        "card": {
            "serial_number": card.serial_number,
            "barcode": card.barcode,
            "qr_url": links.qr_url(settings, card.serial_number),
            "apple_pass_url": links.apple_pass_url(settings, card.serial_number),
            "google_save_url": google_save_url(card),
        },
    }


@bp.post("/members")
@require_role("admin")
def create_member() -> Response:
    """Enroll a member and issue their card."""
    enrollment = _parse_enrollment(json_body())
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        member, card = enroll_member(session, brand_id, enrollment, context())
        return member_body(session, member, card)

    return json_response(run_in_transaction(work), 201)


@bp.get("/members/<int:member_id>")
@require_role("admin")
def show_member(member_id: int) -> Response:
    """One member of the caller's brand."""

    def work(session: Session) -> dict[str, Any]:
        member = get_member(session, principal().brand_id, member_id)
        return member_body(session, member, get_card_of(session, member))

    return jsonify(run_in_transaction(work))


@bp.get("/members/<int:member_id>/ledger")
@require_role("admin")
def show_ledger(member_id: int) -> Response:
    """The member's ledger entries, newest first."""

    def work(session: Session) -> list[dict[str, Any]]:
        get_member(session, principal().brand_id, member_id)
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "points": e.points,
                "amount": None if e.amount_minor is None else _amount(e.amount_minor, e.currency),
                "currency": e.currency,
                "reason": e.reason,
                "created_at": e.created_at.isoformat(),
                "expires_at": e.expires_at.isoformat() if e.expires_at else None,
            }
            for e in ledger.member_ledger(session, principal().brand_id, member_id)
        ]

    return jsonify({"entries": run_in_transaction(work)})


def _amount(minor: int, currency: str | None) -> str:
    return format_minor(minor, currency or "USD")


@bp.post("/members/<int:member_id>/adjustments")
@require_role("admin")
def adjust_member(member_id: int) -> Response:
    """Correct a member's points with a reason."""
    data = json_body()
    actor = ledger.Actor(principal().brand_id, principal().api_key_id)
    outcome = run_in_transaction(
        lambda s: ledger.adjust_points(
            s, actor, member_id, data.get("points"), data.get("reason"), context()
        )
    )
    return json_response(outcome.body, 201)


@bp.post("/scans")
@require_role("cashier", "admin")
def create_scan() -> Response:
    """Credit a checkout scan exactly once per Idempotency-Key."""
    data = json_body()
    actor = ledger.Actor(principal().brand_id, principal().api_key_id)
    key = request.headers.get("Idempotency-Key")
    outcome = run_in_transaction(
        lambda s: ledger.credit_scan(
            s,
            actor,
            barcode=data.get("barcode"),
            amount=data.get("amount"),
            currency=data.get("currency"),
            location_id=data.get("location_id"),
            idempotency_key=key,
            ctx=context(),
        )
    )
    return json_response(outcome.body, 200 if outcome.replayed else 201)


@bp.post("/scans/<int:scan_id>/reversal")
@require_role("admin")
def reverse_scan(scan_id: int) -> Response:
    """Reverse a scan (refund) with a compensating entry."""
    actor = ledger.Actor(principal().brand_id, principal().api_key_id)
    outcome = run_in_transaction(lambda s: ledger.reverse_scan(s, actor, scan_id, context()))
    return json_response(outcome.body, 201)


@bp.post("/redemptions")
@require_role("cashier", "admin")
def create_redemption() -> Response:
    """Redeem points or a reward exactly once per Idempotency-Key."""
    data = json_body()
    actor = ledger.Actor(principal().brand_id, principal().api_key_id)
    key = request.headers.get("Idempotency-Key")
    outcome = run_in_transaction(
        lambda s: ledger.redeem(
            s,
            actor,
            barcode=data.get("barcode"),
            points=data.get("points"),
            reward_id=data.get("reward_id"),
            idempotency_key=key,
            ctx=context(),
        )
    )
    return json_response(outcome.body, 200 if outcome.replayed else 201)


@bp.post("/members/<int:member_id>/message")
@require_role("admin")
def message_member(member_id: int) -> Response:
    """Set a message on the member's cards and push it (Apple lock screen, Google message)."""
    data = json_body()
    brand_id = principal().brand_id
    queued = run_in_transaction(
        lambda s: send_member_message(s, brand_id, member_id, data.get("message"), context())
    )
    return json_response(
        {"member_id": queued.member_id, "message_id": queued.message_id, "status": "queued"}, 202
    )
