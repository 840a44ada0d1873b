"""Promotions: windows that multiply earning (member days, double-points weekends).

Stacking rule: a scan earns base × tier multiplier × the product of the multipliers of every
promotion active for it, where the combined factor (tier × promotions) is capped at ×10; a tier
multiplier that is itself above ×10 is kept as it is (a promotion never lowers earning). A
promotion is active when it is switched on, the scan's day in the program's time zone lies within
starts_on..ends_on (each optional, inclusive), that day's ISO weekday is listed (or none are),
the member's tier is listed (or none are) and the scan's location is listed (or none are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from walletd.errors import N_, NotFoundError, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.loyalty.programs import touch_program_cards
from walletd.models import Location, Program, Tier
from walletd.models.offer import Promotion

MAX_MULTIPLIER = Decimal(10)
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class PromotionInput:
    """The fields of a promotion a caller sets; None leaves a field as it is on update."""

    program_id: int | None = None
    name: str | None = None
    multiplier: object = None
    starts_on: date | None = None
    ends_on: date | None = None
    weekdays: list[int] | None = None
    tiers: list[str] | None = None
    location_ids: list[int] | None = None
    active: bool | None = None
    # Fields set back to "none": no start, no end, any weekday, any tier, any location.
    clear: frozenset[str] = frozenset()


def decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 2, 1.5."""
    return f"{Decimal(value).normalize():f}"


def local_day(program: Program, now: datetime) -> date:
    """The calendar day of `now` in the program's time zone (UTC when the zone is unknown)."""
    try:
        zone: Any = ZoneInfo(program.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def applies(
    promotion: Promotion, day: date, member_tier: str | None, location_id: int | None
) -> bool:
    """Whether a promotion multiplies a scan on `day` by a member of a tier at a location."""
    if not applies_on_day(promotion, day):
        return False
    if promotion.tiers and member_tier not in promotion.tiers:
        return False
    return not (promotion.location_ids and location_id not in promotion.location_ids)


def active_promotions(
    session: Session,
    program: Program,
    member_tier: str | None,
    location_id: int | None,
    now: datetime,
) -> list[Promotion]:
    """The program's promotions that multiply a scan now, oldest first (one query)."""
    day = local_day(program, now)
    rows = session.scalars(
        select(Promotion)
        .where(
            Promotion.program_id == program.id,
            Promotion.active.is_(True),
            or_(Promotion.starts_on.is_(None), Promotion.starts_on <= day),
            or_(Promotion.ends_on.is_(None), Promotion.ends_on >= day),
        )
        .order_by(Promotion.id)
    ).all()
    return [p for p in rows if applies(p, day, member_tier, location_id)]


def combined_multiplier(tier_multiplier: Decimal, promotions: Sequence[Decimal]) -> Decimal:
    """Tier × promotions, capped at ×10 (a tier above ×10 alone is kept: never lower earning)."""
    if not promotions:
        return tier_multiplier
    product = tier_multiplier
    for multiplier in promotions:
        product *= multiplier
    return min(product, max(MAX_MULTIPLIER, tier_multiplier))


def _check(session: Session, brand_id: int, program: Program, promo: Promotion) -> None:
    """Refuse a promotion whose fields disagree with each other or with the brand."""
    if promo.starts_on and promo.ends_on and promo.starts_on > promo.ends_on:
        raise ValidationError("starts_on must not be after ends_on", field="starts_on")
    if promo.tiers:
        names = set(session.scalars(select(Tier.name).where(Tier.program_id == program.id)))
        unknown = [t for t in promo.tiers if t not in names]
        if unknown:
            raise ValidationError(
                N_("not a tier of this program: {tier}"), field="tiers", params={"tier": unknown[0]}
            )
    if promo.location_ids:
        wanted = set(promo.location_ids)
        found = set(
            session.scalars(
                select(Location.id).where(Location.brand_id == brand_id, Location.id.in_(wanted))
            )
        )
        if found != wanted:
            raise ValidationError("not a location of this brand", field="location_ids")


def parse_multiplier(value: object) -> Decimal:
    """A promotion's multiplier: a decimal more than 1 and at most 10, with at most 4 decimals."""
    message = "multiplier must be a decimal more than 1 and at most 10 (e.g. 2 or 1.5)"
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValidationError(message, field="multiplier")
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValidationError(message, field="multiplier") from None
    if not number.is_finite() or not 1 < number <= MAX_MULTIPLIER:
        raise ValidationError(message, field="multiplier")
    if -int(number.normalize().as_tuple().exponent) > 4:
        raise ValidationError("multiplier has more than 4 decimals", field="multiplier")
    return Decimal(f"{number.normalize():f}")


def _apply(promo: Promotion, data: PromotionInput) -> None:
    if data.multiplier is not None:
        promo.multiplier = parse_multiplier(data.multiplier)
    if data.name is not None:
        if not data.name.strip() or not data.name.isprintable():
            raise ValidationError("name must be 1 to 200 printable characters", field="name")
        promo.name = data.name.strip()
    for name in ("starts_on", "ends_on", "active"):
        value = getattr(data, name)
        if value is not None:
            setattr(promo, name, value)
    # Lists: an empty list means "no restriction", stored as NULL.
    if data.weekdays is not None:
        promo.weekdays = sorted(set(data.weekdays)) or None
    if data.tiers is not None:
        promo.tiers = list(dict.fromkeys(data.tiers)) or None
    if data.location_ids is not None:
        promo.location_ids = sorted(set(data.location_ids)) or None
    for name in data.clear:
        setattr(promo, name, None)


def create_promotion(
    session: Session, brand_id: int, data: PromotionInput, ctx: Context
) -> Promotion:
    """Create a promotion of one of the brand's programs (its first when none is named)."""
    now = ctx.now
    program = get_program(session, brand_id, data.program_id)
    if not data.name:
        raise ValidationError("name is required", field="name")
    if data.multiplier is None:
        raise ValidationError("multiplier is required", field="multiplier")
    promo = Promotion(
        brand_id=brand_id, program_id=program.id, active=True, created_at=now, updated_at=now
    )
    _apply(promo, data)
    _check(session, brand_id, program, promo)
    session.add(promo)
    session.flush()
    # Cards show a running promotion: they change with it.
    touch_program_cards(session, program.id, ctx)
    return promo


def get_promotion(session: Session, brand_id: int, promotion_id: int) -> Promotion:
    """One of the brand's promotions."""
    promo = (
        session.scalar(
            select(Promotion).where(Promotion.id == promotion_id, Promotion.brand_id == brand_id)
        )
        if 1 <= promotion_id <= MAX_ID
        else None
    )
    if promo is None:
        raise NotFoundError("promotion not found")
    return promo


def list_promotions(session: Session, brand_id: int) -> list[Promotion]:
    """The brand's promotions, oldest first."""
    return list(
        session.scalars(
            select(Promotion).where(Promotion.brand_id == brand_id).order_by(Promotion.id)
        )
    )


def update_promotion(
    session: Session, brand_id: int, promotion_id: int, data: PromotionInput, ctx: Context
) -> Promotion:
    """Change some fields of a promotion; the result is checked as a whole."""
    promo = get_promotion(session, brand_id, promotion_id)
    if data.program_id is not None and data.program_id != promo.program_id:
        raise ValidationError("a promotion cannot move to another program", field="program_id")
    _apply(promo, data)
    _check(session, brand_id, session.get_one(Program, promo.program_id), promo)
    promo.updated_at = ctx.now
    session.flush()
    touch_program_cards(session, promo.program_id, ctx)
    return promo


def delete_promotion(session: Session, brand_id: int, promotion_id: int, ctx: Context) -> None:
    """Delete a promotion; scans it multiplied keep their points."""
    promo = get_promotion(session, brand_id, promotion_id)
    session.delete(promo)
    session.flush()
    touch_program_cards(session, promo.program_id, ctx)


def applies_on_day(promotion: Promotion, day: date) -> bool:
    """Whether a promotion runs on `day`, whoever the member and wherever the shop."""
    if not promotion.active:
        return False
    if promotion.starts_on is not None and day < promotion.starts_on:
        return False
    if promotion.ends_on is not None and day > promotion.ends_on:
        return False
    return not (promotion.weekdays and day.isoweekday() not in promotion.weekdays)


def refresh_cards_at_day_change(session: Session, ctx: Context) -> int:
    """Touch the cards of programs whose running promotions changed with their local day.

    Run hourly: it acts in the first hour of each program's local day, when yesterday's and
    today's promotions differ (a member day begins or ends, a weekend offer starts), so cards
    show the promotion of the day without a push every day. Returns the cards touched.
    """
    touched = 0
    program_ids = session.scalars(
        select(Promotion.program_id).where(Promotion.active.is_(True)).distinct()
    ).all()
    for program_id in program_ids:
        program = session.get_one(Program, program_id)
        today = local_day(program, ctx.now)
        if local_day(program, ctx.now - timedelta(hours=1)) == today:
            continue  # not the first hour of this program's day
        promotions = session.scalars(
            select(Promotion).where(Promotion.program_id == program_id)
        ).all()
        if {p.id for p in promotions if applies_on_day(p, today)} != {
            p.id for p in promotions if applies_on_day(p, today - timedelta(days=1))
        }:
            touched += touch_program_cards(session, program_id, ctx)
    return touched
