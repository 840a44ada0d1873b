"""Pure earning and tier rules: no database, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from walletd.loyalty.money import minor_unit_exponent

_ROUNDING = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True)
class TierRule:
    """A tier as the rules see it."""

    id: int
    name: str
    threshold: int
    multiplier: Decimal


def points_for_purchase(
    amount_minor: int,
    currency: str,
    *,
    points_per_unit: Decimal,
    multiplier: Decimal,
    rounding: str,
    cap: int | None,
) -> int:
    """Points earned for a purchase: amount × rate × tier multiplier, rounded, then capped."""
    amount = Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))
    raw = amount * points_per_unit * multiplier
    points = int(raw.to_integral_value(rounding=_ROUNDING[rounding]))
    points = max(points, 0)
    if cap is not None:
        points = min(points, cap)
    return points


def tier_for(qualifying: int, tiers: Sequence[TierRule]) -> TierRule | None:
    """The highest tier whose threshold the qualifying value reaches."""
    best: TierRule | None = None
    for tier in sorted(tiers, key=lambda t: t.threshold):
        if qualifying >= tier.threshold:
            best = tier
    return best


def add_months(year: int, month: int, months: int) -> tuple[int, int]:
    """(year, month) moved by a number of months."""
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1
