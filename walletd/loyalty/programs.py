"""Editing a loyalty program: earning rate, bonuses, tiers, rewards, colours and card template."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from walletd.errors import N_, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.money import format_minor, minor_unit_exponent
from walletd.models import Card, Member, Offer, Program, Reward, Tier
from walletd.models.program import ROUNDING_RULES, TIER_BASES

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
MAX_RATE = Decimal(1000)
MAX_BONUS = 1_000_000
MAX_TIERS = 10
MAX_REWARDS = 30
# Cards are touched this many at a time, so a program of a million cards never sits in memory.
TOUCH_CHUNK = 500


@dataclass(frozen=True)
class TierChange:
    """One tier row of the program form; `id` None adds a tier, `delete` removes one."""

    id: int | None
    name: str
    threshold: str  # major currency units for spend-based tiers, points otherwise
    multiplier: str
    delete: bool = False
    # Member prices: the percent a POS takes off for this tier (0..100), and what the card lists.
    member_discount_percent: str = "0"
    benefits: str = ""


@dataclass(frozen=True)
class RewardChange:
    """One reward row of the program form; rewards are switched off, never deleted."""

    id: int | None
    name: str
    cost_points: str
    active: bool = True


@dataclass(frozen=True)
class ProgramChanges:
    """The program form as text, validated by `update_program`."""

    name: str
    points_per_unit: str
    rounding: str
    welcome_bonus: str
    birthday_bonus: str
    referral_bonus_referrer: str
    referral_bonus_referee: str
    points_expiry_months: str
    tier_basis: str
    background_color: str
    foreground_color: str
    label_color: str
    template: str
    tiers: Sequence[TierChange] = field(default_factory=tuple)
    rewards: Sequence[RewardChange] = field(default_factory=tuple)
    # Smallest purchase paying the referral bonuses, in major units ("5.00"); None keeps it.
    referral_min_purchase: str | None = None
    # The referrer's reward coupon: an offer id as text, "" for none; None keeps it.
    referral_offer_id: str | None = None


def _whole(text: str, name: str, *, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise ValidationError(
            N_("{field} must be a whole number"), field=name, params={"field": name}
        ) from exc
    if not low <= value <= high:
        raise ValidationError(
            N_("{field} must be between {low} and {high}"),
            field=name,
            params={"field": name, "low": low, "high": f"{high:,}"},
        )
    return value


def parse_decimal(text: str, name: str, *, low: Decimal, high: Decimal) -> Decimal:
    """A decimal from text, within [low, high] and with at most 4 decimals."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValidationError(
            N_("{field} must be a number such as 1.5"), field=name, params={"field": name}
        ) from exc
    if not value.is_finite() or not low <= value <= high:
        raise ValidationError(
            N_("{field} must be between {low} and {high}"),
            field=name,
            params={"field": name, "low": low, "high": high},
        )
    if value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValidationError(
            N_("{field} may have at most 4 decimals"), field=name, params={"field": name}
        )
    return value


def parse_color(text: str, name: str) -> str:
    """A "#RRGGBB" colour, upper-cased."""
    value = text.strip()
    if not _COLOR.match(value):
        raise ValidationError(
            N_("{field} must be a colour such as #1F3A5F"), field=name, params={"field": name}
        )
    return value.upper()


def parse_money(program: Program, text: str, name: str, *, high: Decimal) -> int:
    """A form amount in the program's major units, as minor units."""
    exponent = minor_unit_exponent(program.currency)
    value = parse_decimal(text, name, low=Decimal(0), high=high)
    if value.as_tuple().exponent < -exponent:  # type: ignore[operator]
        raise ValidationError(
            N_("{field} has too many decimals for {currency}"),
            field=name,
            params={"field": name, "currency": program.currency},
        )
    return int(value.scaleb(exponent))


def referral_min_purchase_text(program: Program) -> str:
    """The referral's minimum qualifying purchase as the form shows it ("5.00")."""
    return format_minor(program.referral_min_purchase_minor, program.currency)


def threshold_text(program: Program, threshold: int) -> str:
    """A tier threshold as the form shows it (major units for spend, points otherwise)."""
    if program.tier_basis == "spend":
        return format_minor(threshold, program.currency)
    return str(threshold)


def _threshold(program: Program, basis: str, text: str, name: str) -> int:
    if basis == "points":
        return _whole(text, name, low=0, high=100_000_000)
    return parse_money(program, text, name, high=Decimal(10**9))


def update_program(
    session: Session,
    brand_id: int,
    program_id: int,
    changes: ProgramChanges,
    ctx: Context,
    *,
    templates: Sequence[str],
    touch: bool = True,
) -> int:
    """Apply the program form, then mark every card changed; returns how many cards were touched.

    `touch=False` leaves the cards to the caller, which knows whether anything they show changed.
    """
    program = get_program(session, brand_id, program_id)
    name = changes.name.strip()
    if not 1 <= len(name) <= 200:
        raise ValidationError("name must be 1 to 200 characters", field="name")
    if changes.rounding not in ROUNDING_RULES:
        raise ValidationError("rounding is not a known rule", field="rounding")
    if changes.tier_basis not in TIER_BASES:
        raise ValidationError("tier basis must be spend or points", field="tier_basis")
    if changes.template not in templates:
        raise ValidationError("template is not a known card design", field="template")
    rate = parse_decimal(changes.points_per_unit, "points_per_unit", low=Decimal(0), high=MAX_RATE)
    bonuses = {
        key: _whole(getattr(changes, key), key, low=0, high=MAX_BONUS)
        for key in (
            "welcome_bonus",
            "birthday_bonus",
            "referral_bonus_referrer",
            "referral_bonus_referee",
        )
    }
    referral_minimum = (
        parse_money(
            program, changes.referral_min_purchase, "referral_min_purchase", high=Decimal(10**9)
        )
        if changes.referral_min_purchase is not None and changes.referral_min_purchase.strip()
        else program.referral_min_purchase_minor
    )
    expiry_text = changes.points_expiry_months.strip()
    expiry = _whole(expiry_text, "points_expiry_months", low=1, high=120) if expiry_text else None
    colors = {
        key: parse_color(getattr(changes, key), key)
        for key in ("background_color", "foreground_color", "label_color")
    }
    apply_tiers(session, program, changes.tier_basis, changes.tiers)
    apply_rewards(session, program, changes.rewards)
    program.name = name
    program.points_per_unit = rate
    program.rounding = changes.rounding
    program.tier_basis = changes.tier_basis
    program.points_expiry_months = expiry
    program.referral_min_purchase_minor = referral_minimum
    if changes.referral_offer_id is not None:
        program.referral_offer_id = _referral_offer(session, program, changes.referral_offer_id)
    program.template = changes.template
    for key, value in {**bonuses, **colors}.items():
        setattr(program, key, value)
    program.updated_at = ctx.now
    # The Google class carries the colours and name: mark it for the next class sync.
    program.google_class_synced_at = None
    session.flush()
    return touch_program_cards(session, program.id, ctx) if touch else 0


def apply_tiers(session: Session, program: Program, basis: str, rows: Sequence[TierChange]) -> None:
    """Add, change and delete tiers (members of a deleted tier lose it until their next scan)."""
    existing = {t.id: t for t in session.scalars(select(Tier).where(Tier.program_id == program.id))}
    kept: list[tuple[Tier | None, str, int, Decimal, Decimal, str | None]] = []
    doomed: list[Tier] = []
    for index, row in enumerate(rows):
        prefix = f"tier-{index}"
        tier = existing.get(row.id) if row.id is not None else None
        if row.id is not None and tier is None:
            raise ValidationError("this tier is not part of the program", field=f"{prefix}-name")
        if row.delete:
            if tier is not None:
                doomed.append(tier)
            continue
        name = row.name.strip()
        if tier is None and not name:
            continue  # the empty "new tier" row
        if not 1 <= len(name) <= 64:
            raise ValidationError("tier name must be 1 to 64 characters", field=f"{prefix}-name")
        threshold = _threshold(program, basis, row.threshold, f"{prefix}-threshold")
        multiplier = parse_decimal(
            row.multiplier, f"{prefix}-multiplier", low=Decimal(1), high=Decimal(10)
        )
        discount = parse_decimal(
            row.member_discount_percent, f"{prefix}-discount", low=Decimal(0), high=Decimal(100)
        )
        kept.append((tier, name, threshold, multiplier, discount, _benefits(row.benefits, prefix)))
    names = [row[1].casefold() for row in kept]
    if len(names) != len(set(names)):
        raise ValidationError("two tiers have the same name", field="tier-0-name")
    thresholds = [row[2] for row in kept]
    if len(thresholds) != len(set(thresholds)):
        raise ValidationError("two tiers have the same threshold", field="tier-0-threshold")
    if len(kept) > MAX_TIERS:
        raise ValidationError(
            N_("a program has at most {max} tiers"), field="tier-0-name", params={"max": MAX_TIERS}
        )
    for tier in doomed:
        session.execute(update(Member).where(Member.tier_id == tier.id).values(tier_id=None))
        session.delete(tier)
    session.flush()  # free the names of deleted tiers before renaming others
    for tier, name, threshold, multiplier, discount, benefits in kept:
        if tier is None:
            tier = Tier(program_id=program.id)
            session.add(tier)
        tier.name, tier.threshold, tier.multiplier = name, threshold, multiplier
        tier.member_discount_percent, tier.benefits = discount, benefits


MAX_BENEFITS = 500


def _benefits(text: str, prefix: str) -> str | None:
    """A tier's benefits text: at most 500 characters, lines of printable text; blank is none."""
    value = text.replace("\r\n", "\n").strip()
    if len(value) > MAX_BENEFITS or not all(line.isprintable() for line in value.split("\n")):
        message = f"benefits must be at most {MAX_BENEFITS} characters of text"
        raise ValidationError(message, field=f"{prefix}-benefits")
    return value or None


def apply_rewards(session: Session, program: Program, rows: Sequence[RewardChange]) -> None:
    """Add and change rewards; rows not given stay as they are (rewards are never deleted)."""
    existing = {
        r.id: r for r in session.scalars(select(Reward).where(Reward.program_id == program.id))
    }
    count = len(existing)
    for index, row in enumerate(rows):
        prefix = f"reward-{index}"
        reward = existing.get(row.id) if row.id is not None else None
        if row.id is not None and reward is None:
            raise ValidationError("this reward is not part of the program", field=f"{prefix}-name")
        name = row.name.strip()
        if reward is None and not name:
            continue
        if not 1 <= len(name) <= 200:
            raise ValidationError("reward name must be 1 to 200 characters", field=f"{prefix}-name")
        cost = _whole(row.cost_points, f"{prefix}-cost", low=1, high=10_000_000)
        if reward is None:
            reward = Reward(program_id=program.id)
            session.add(reward)
            count += 1
        reward.name, reward.cost_points, reward.active = name, cost, row.active
    if count > MAX_REWARDS:
        raise ValidationError(
            N_("a program has at most {max} rewards"),
            field="reward-0-name",
            params={"max": MAX_REWARDS},
        )


def touch_program_cards(
    session: Session, program_id: int, ctx: Context, *, chunk: int = TOUCH_CHUNK
) -> int:
    """Mark every card of a program changed, a chunk at a time; returns how many.

    Coupon passes too (every kind): they wear the program's name, colours and template.
    """
    last_id = 0
    total = 0
    while True:
        cards = list(
            session.scalars(
                select(Card)
                .join(Member, Member.id == Card.member_id)
                .where(Member.program_id == program_id, Card.id > last_id)
                .order_by(Card.id)
                .limit(chunk)
            ).all()
        )
        if not cards:
            return total
        touch_cards(session, cards, ctx)
        session.flush()
        last_id = cards[-1].id
        total += len(cards)
        for card in cards:
            session.expunge(card)


def program_tiers(session: Session, program_id: int) -> list[Tier]:
    """A program's tiers, lowest threshold first."""
    return list(
        session.scalars(
            select(Tier).where(Tier.program_id == program_id).order_by(Tier.threshold, Tier.id)
        ).all()
    )


def program_rewards(
    session: Session, program_id: int, *, active_only: bool = False
) -> list[Reward]:
    """A program's rewards, cheapest first."""
    query = select(Reward).where(Reward.program_id == program_id)
    if active_only:
        query = query.where(Reward.active)
    return list(session.scalars(query.order_by(Reward.cost_points, Reward.id)).all())


def redeemable_rewards(session: Session, program_id: int, balance: int) -> list[Reward]:
    """The active rewards a balance can pay for, cheapest first."""
    return [
        r
        for r in program_rewards(session, program_id, active_only=True)
        if r.cost_points <= balance
    ]


def brand_programs(session: Session, brand_id: int) -> list[Program]:
    """A brand's programs, oldest first."""
    return list(
        session.scalars(
            select(Program).where(Program.brand_id == brand_id).order_by(Program.id)
        ).all()
    )


def find_program(session: Session, program_id: int) -> Program | None:
    """Any brand's program by id (enrollment links are public), or None."""
    return session.get(Program, program_id)


def program_brand_name(session: Session, program: Program) -> str:
    """The name of the brand running a program."""
    from walletd.models import Brand

    return session.get_one(Brand, program.brand_id).name


def _referral_offer(session: Session, program: Program, text: str) -> int | None:
    """The offer id a form names for the referral reward: an active offer of the program."""
    if not text.strip():
        return None
    from walletd.offers.catalog import get_active_offer  # offers build on this module

    offer_id = _whole(text, "referral_offer_id", low=1, high=2**31 - 1)
    return get_active_offer(
        session, program.brand_id, program.id, offer_id, field="referral_offer_id"
    ).id


def active_offer_choices(session: Session, program_id: int) -> list[tuple[int, str]]:
    """The program's active offers, for a choice in a form."""
    return [
        (int(i), str(n))
        for i, n in session.execute(
            select(Offer.id, Offer.name)
            .where(Offer.program_id == program_id, Offer.status == "active")
            .order_by(Offer.id)
        ).all()
    ]
