"""Correcting a member's details: validated like an enrollment, audited, pushed to the cards."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.campaigns.templates import check_language
from walletd.errors import N_, ConflictError, ValidationError
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.members import (
    Enrollment,
    ensure_contact_is_new,
    get_member,
    validate_enrollment,
)
from walletd.models import Card, Member
from walletd.privacy.consent import Source, record_consent
from walletd.webhooks import events as webhook_events

EDITABLE = (
    "name", "email", "phone", "birthday", "marketing_consent", "external_id", "language",
)  # fmt: skip
# What the pass and the Google object show of the member: a change of these updates the cards.
SHOWN_ON_CARD = frozenset({"name"})
_MAX_EXTERNAL_ID = 100
# A stand-in name for validating the other fields when the name is not being changed.
_ANY_VALID_NAME = "-"


def _external_id(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    # The rules of imports (walletd/imports/rows.py): a "/" would not fit GET /members/ext:{id}.
    if (
        not text
        or len(text) > _MAX_EXTERNAL_ID
        or "/" in text
        or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)
    ):
        raise ValidationError(
            "external id must be 1 to 100 characters without / or control characters",
            field="external_id",
        )
    return text


def validate_changes(changes: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
    """The given fields checked and normalised by the enrollment rules; null clears an optional
    field (e-mail, phone, birthday, external id)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"{sorted(unknown)[0]} cannot be changed", field=sorted(unknown)[0])
    for required in ("name", "marketing_consent"):
        if required in changes and changes[required] is None:
            raise ValidationError(
                N_("{field} cannot be removed"), field=required, params={"field": required}
            )
    checked = validate_enrollment(
        Enrollment(
            name=changes.get("name") or _ANY_VALID_NAME,
            email=changes.get("email") or None,
            phone=changes.get("phone") or None,
            birthday=changes.get("birthday"),
        ),
        ctx.now.date(),
        phone_region=ctx.phone_region,
    )
    values: dict[str, Any] = {}
    for name in changes:
        if name == "external_id":
            values[name] = _external_id(changes[name])
        elif name == "language":
            values[name] = check_language(changes[name])
        elif name == "marketing_consent":
            values[name] = bool(changes[name])
        else:
            values[name] = getattr(checked, name)
    return values


def _audit_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _ensure_external_id_is_new(session: Session, member: Member, external_id: str) -> None:
    # The unique index would refuse it too, but as a database error (a 500), not a 409.
    taken = session.scalar(
        select(Member.id).where(
            Member.program_id == member.program_id,
            Member.external_id == external_id,
            Member.id != member.id,
        )
    )
    if taken is not None:
        raise ConflictError(
            "another member of the program has this external id", field="external_id"
        )


def update_member(
    session: Session,
    actor: Actor,
    member_id: int,
    changes: Mapping[str, Any],
    ctx: Context,
    *,
    source: Source = "api",
) -> Member:
    """Change some of a member's details; cards are pushed when what they show changed.

    Every change is audited with its before and after values and announced as `member.updated`
    (field names only); a consent change is logged with `source` as the card page's is; a
    request that changes nothing writes nothing.
    """
    member = get_member(session, actor.brand_id, member_id)
    values = validate_changes(changes, ctx)
    done = {
        name: [getattr(member, name), value]
        for name, value in values.items()
        if getattr(member, name) != value
    }
    if not done:
        return member
    ensure_contact_is_new(
        session,
        member.program_id,
        email=done["email"][1] if "email" in done else None,
        phone=done["phone"][1] if "phone" in done else None,
        exclude_member_id=member.id,
    )
    if "external_id" in done and done["external_id"][1] is not None:
        _ensure_external_id_is_new(session, member, done["external_id"][1])
    for name, (_, value) in done.items():
        if name == "marketing_consent":
            record_consent(session, member, value, source, now=ctx.now)
        else:
            setattr(member, name, value)
    session.flush()
    if SHOWN_ON_CARD & done.keys():
        cards = list(session.scalars(select(Card).where(Card.member_id == member.id)))
        touch_cards(session, cards, ctx)
    record(
        session,
        actor,
        "member.updated",
        "member",
        member.id,
        now=ctx.now,
        changes={name: [_audit_value(b), _audit_value(a)] for name, (b, a) in done.items()},
    )
    webhook_events.member_updated(session, member, done.keys(), now=ctx.now)
    return member
