"""The brand's offers: create, change, archive, and the value a member of a tier gets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import N_, NotFoundError, ValidationError
from walletd.loyalty.context import Context
from walletd.loyalty.ledger import MAX_ID, MAX_POINTS_PER_OPERATION
from walletd.loyalty.money import format_minor, parse_amount
from walletd.models import Offer, Program, Tier
from walletd.models.offer import OFFER_KINDS

MAX_VALID_DAYS = 3650
MAX_PER_MEMBER_LIMIT = 1000
_FIELDS = (
    "name", "kind", "value", "item", "tier_values", "min_spend", "valid_from", "valid_until",
    "valid_days", "per_member_limit", "terms",
)  # fmt: skip


@dataclass(frozen=True)
class OfferInput:
    """An offer as a client describes it; values are checked by `create_offer`/`update_offer`."""

    program_id: int | None
    name: str
    kind: str
    value: object = None
    item: str | None = None
    tier_values: dict[str, object] | None = None
    min_spend: object = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    per_member_limit: int | None = None
    terms: str | None = None


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: "10", "12.5"."""
    return format(value.normalize(), "f")


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValidationError(
            N_("{field} must be a decimal string or number"), field=field, params={"field": field}
        )
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation as exc:
        raise ValidationError(
            N_("{field} must be a decimal number"), field=field, params={"field": field}
        ) from exc
    if not number.is_finite():
        raise ValidationError(
            N_("{field} must be a finite number"), field=field, params={"field": field}
        )
    return number


def check_value(kind: str, value: object, currency: str, field: str = "value") -> Decimal | None:
    """An offer value made canonical for its kind, or a field error."""
    if kind == "free_item":
        if value is not None:
            raise ValidationError("a free item offer has no value; name the item", field=field)
        return None
    if value is None:
        raise ValidationError(
            N_("a {kind} offer needs a value"), field=field, params={"kind": kind}
        )
    if kind == "percent_off":
        number = _decimal(value, field)
        if not Decimal(0) < number <= Decimal(100):
            raise ValidationError("a percentage must be above 0 and at most 100", field=field)
        if number.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValidationError("a percentage has at most 2 decimals", field=field)
        return Decimal(decimal_text(number))
    if kind == "amount_off":
        minor = parse_amount(value, currency, field=field)
        return Decimal(format_minor(minor, currency))
    number = _decimal(value, field)
    if number != number.to_integral_value() or not 1 <= number <= MAX_POINTS_PER_OPERATION:
        raise ValidationError(
            N_("bonus points must be a whole number from 1 to {max}"),
            field=field,
            params={"max": f"{MAX_POINTS_PER_OPERATION:,}"},
        )
    return Decimal(int(number))


def _utc(value: datetime | None, field: str) -> datetime | None:
    """A time zone-aware time in UTC, within the years a database column holds."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError(
            N_("{field} needs a time zone offset"), field=field, params={"field": field}
        )
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValidationError(
            N_("{field} is out of range"), field=field, params={"field": field}
        ) from exc
    if not 2000 <= moment.year <= 9000:
        raise ValidationError(
            N_("{field} must be between the years 2000 and 9000"),
            field=field,
            params={"field": field},
        )
    return moment


def _checked(session: Session, brand_id: int, data: OfferInput) -> dict[str, Any]:
    """Every column of an offer from a full description, or the first field error."""
    if data.program_id is None:
        program = session.scalars(
            select(Program).where(Program.brand_id == brand_id).order_by(Program.id).limit(1)
        ).first()
    elif isinstance(data.program_id, bool) or not isinstance(data.program_id, int):
        raise ValidationError("program_id must be an integer", field="program_id")
    else:
        program = session.get(Program, data.program_id) if 1 <= data.program_id <= MAX_ID else None
    if program is None or program.brand_id != brand_id:
        raise ValidationError("program_id is not a program of this brand", field="program_id")
    name = (data.name or "").strip() if isinstance(data.name, str) else ""
    if not name or len(name) > 200:
        raise ValidationError("name must be 1 to 200 characters", field="name")
    if data.kind not in OFFER_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(OFFER_KINDS)}", field="kind")
    value = check_value(data.kind, data.value, program.currency)
    item = data.item.strip() if isinstance(data.item, str) and data.item.strip() else None
    if data.kind == "free_item" and item is None:
        raise ValidationError("a free item offer needs the item", field="item")
    if item is not None and len(item) > 200:
        raise ValidationError("item must be at most 200 characters", field="item")
    tier_values: dict[str, str] | None = None
    if data.tier_values:
        if data.kind == "free_item":
            raise ValidationError("a free item is the same for every tier", field="tier_values")
        names = set(session.scalars(select(Tier.name).where(Tier.program_id == program.id)).all())
        tier_values = {}
        for tier, tier_value in data.tier_values.items():
            if tier not in names:
                raise ValidationError(f"{tier!r} is not a tier of this program",
                                      field="tier_values")  # fmt: skip
            checked = check_value(data.kind, tier_value, program.currency, "tier_values")
            tier_values[tier] = decimal_text(checked) if checked is not None else ""
    min_spend = None
    if data.min_spend is not None:
        min_spend = parse_amount(data.min_spend, program.currency, field="min_spend")
    valid_from = _utc(data.valid_from, "valid_from")
    valid_until = _utc(data.valid_until, "valid_until")
    if valid_from and valid_until and valid_from >= valid_until:
        raise ValidationError("valid_until must be after valid_from", field="valid_until")
    for field, number, high in (
        ("valid_days", data.valid_days, MAX_VALID_DAYS),
        ("per_member_limit", data.per_member_limit, MAX_PER_MEMBER_LIMIT),
    ):
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= high
        ):
            raise ValidationError(
                N_("{field} must be a whole number from 1 to {high}"),
                field=field,
                params={"field": field, "high": high},
            )
    terms = data.terms.strip() if isinstance(data.terms, str) and data.terms.strip() else None
    if terms is not None and len(terms) > 2000:
        raise ValidationError("terms must be at most 2000 characters", field="terms")
    return {
        "program_id": program.id,
        "name": name,
        "kind": data.kind,
        "value": value,
        "item": item,
        "tier_values": tier_values,
        "min_spend_minor": min_spend,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "valid_days": data.valid_days,
        "per_member_limit": data.per_member_limit,
        "terms": terms,
    }


def create_offer(session: Session, brand_id: int, data: OfferInput, ctx: Context) -> Offer:
    """A new active offer of one of the brand's programs."""
    columns = _checked(session, brand_id, data)
    offer = Offer(brand_id=brand_id, status="active", created_at=ctx.now, updated_at=ctx.now,
                  **columns)  # fmt: skip
    session.add(offer)
    session.flush()
    return offer


def get_offer(session: Session, brand_id: int, offer_id: int) -> Offer:
    """One of the brand's offers, or NotFoundError."""
    offer = session.get(Offer, offer_id) if 1 <= offer_id <= MAX_ID else None
    if offer is None or offer.brand_id != brand_id:
        raise NotFoundError("offer not found")
    return offer


def list_offers(session: Session, brand_id: int) -> list[Offer]:
    """The brand's offers, newest first."""
    return list(
        session.scalars(
            select(Offer).where(Offer.brand_id == brand_id).order_by(Offer.id.desc())
        ).all()
    )


def offer_input(offer: Offer) -> OfferInput:
    """An offer's current description, to apply a partial change to."""
    currency_value: object = offer.value
    return OfferInput(
        program_id=offer.program_id, name=offer.name, kind=offer.kind, value=currency_value,
        item=offer.item, tier_values=dict(offer.tier_values) if offer.tier_values else None,
        min_spend=None, valid_from=offer.valid_from, valid_until=offer.valid_until,
        valid_days=offer.valid_days, per_member_limit=offer.per_member_limit, terms=offer.terms,
    )  # fmt: skip


def update_offer(
    session: Session, brand_id: int, offer_id: int, changes: dict[str, Any], ctx: Context
) -> Offer:
    """Change some fields of an offer; coupons already issued keep their value and expiry."""
    offer = get_offer(session, brand_id, offer_id)
    unknown = set(changes) - set(_FIELDS)
    if unknown:
        raise ValidationError(f"{sorted(unknown)[0]} cannot be changed", field=sorted(unknown)[0])
    current = offer_input(offer)
    if offer.min_spend_minor is not None:
        program = session.get_one(Program, offer.program_id)
        current = replace(current, min_spend=format_minor(offer.min_spend_minor, program.currency))
    if "kind" in changes and changes["kind"] != offer.kind and "value" not in changes:
        current = replace(current, value=None, tier_values=None)
    merged = replace(current, **{k: v for k, v in changes.items() if k in _FIELDS})
    columns = _checked(session, brand_id, merged)
    for name, column_value in columns.items():
        setattr(offer, name, column_value)
    offer.updated_at = ctx.now
    session.flush()
    return offer


def archive_offer(session: Session, brand_id: int, offer_id: int, ctx: Context) -> Offer:
    """Stop issuing an offer; coupons already issued stay redeemable until they expire."""
    offer = get_offer(session, brand_id, offer_id)
    offer.status = "archived"
    offer.updated_at = ctx.now
    session.flush()
    return offer


def offer_value_for(offer: Offer, tier_name: str | None) -> Decimal | None:
    """The offer's value for a member of a tier: the tier's own value when it has one."""
    if tier_name is not None and offer.tier_values and tier_name in offer.tier_values:
        return Decimal(str(offer.tier_values[tier_name]))
    return offer.value


__all__ = [
    "OfferInput",
    "archive_offer",
    "check_value",
    "create_offer",
    "get_offer",
    "list_offers",
    "offer_value_for",
    "update_offer",
]


def get_active_offer(
    session: Session, brand_id: int, program_id: int, offer_id: object, *, field: str = "offer_id"
) -> Offer:
    """An active offer of the program that something may issue, or a ValidationError on `field`."""
    refusal = ValidationError(
        N_("{field} must be an active offer of this program"), field=field, params={"field": field}
    )
    if isinstance(offer_id, bool) or not isinstance(offer_id, int) or not 0 < offer_id <= MAX_ID:
        raise refusal
    offer = session.scalar(
        select(Offer).where(
            Offer.id == offer_id,
            Offer.brand_id == brand_id,
            Offer.program_id == program_id,
            Offer.status == "active",
        )
    )
    if offer is None:
        raise refusal
    return offer
