"""Pure earning and tier rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from walletd.loyalty.rules import TierRule, add_months, points_for_purchase, tier_for

ONE = Decimal("1")


def _points(
    amount_minor: int,
    currency: str = "USD",
    *,
    rate: str = "1",
    multiplier: str = "1",
    rounding: str = "floor",
    cap: int | None = None,
) -> int:
    return points_for_purchase(
        amount_minor,
        currency,
        points_per_unit=Decimal(rate),
        multiplier=Decimal(multiplier),
        rounding=rounding,
        cap=cap,
    )


def test_points_are_amount_times_rate() -> None:
    assert _points(1200) == 12
    assert _points(1200, rate="2") == 24
    assert _points(1200, rate="0.5") == 6


def test_points_use_the_currency_exponent() -> None:
    assert _points(500, "JPY", rate="0.01") == 5
    assert _points(2500, "KWD", rate="10") == 25


def test_tier_multiplier_scales_points() -> None:
    assert _points(10000, multiplier="1.25") == 125
    assert _points(10000, multiplier="1.5") == 150
    assert _points(10000, rate="2", multiplier="1.5") == 300


@pytest.mark.parametrize(
    ("amount_minor", "rounding", "expected"),
    [
        (1250, "floor", 12),
        (1250, "half_up", 13),
        (1250, "ceil", 13),
        (1249, "floor", 12),
        (1249, "half_up", 12),
        (1249, "ceil", 13),
        (1299, "floor", 12),
        (1299, "half_up", 13),
        (1200, "ceil", 12),
        (1201, "ceil", 13),
        (1, "floor", 0),
        (1, "ceil", 1),
    ],
)
def test_points_are_rounded_by_the_program_rule(
    amount_minor: int, rounding: str, expected: int
) -> None:
    assert _points(amount_minor, rounding=rounding) == expected


def test_rounding_applies_after_the_multiplier() -> None:
    # 10.00 × 1.25 = 12.5: rounding the amount first would give 12 or 13 either way.
    assert _points(1000, multiplier="1.25", rounding="floor") == 12
    assert _points(1000, multiplier="1.25", rounding="half_up") == 13


def test_cap_limits_points_per_purchase() -> None:
    assert _points(100_000, cap=250) == 250
    assert _points(10_000, cap=250) == 100
    assert _points(25_000, cap=250) == 250
    assert _points(100_000, cap=None) == 1000
    assert _points(100_000, cap=0) == 0


def test_cap_applies_after_the_multiplier() -> None:
    assert _points(20_000, multiplier="1.5", cap=250) == 250


def test_points_are_never_negative() -> None:
    assert _points(-1000) == 0


def test_unknown_rounding_rule_is_refused() -> None:
    with pytest.raises(KeyError):
        _points(1000, rounding="banker")


TIERS = [
    TierRule(3, "VIP", 200_000, Decimal("1.5")),
    TierRule(1, "Silver", 0, ONE),
    TierRule(2, "Gold", 50_000, Decimal("1.25")),
]


@pytest.mark.parametrize(
    ("qualifying", "expected"),
    [
        (0, "Silver"),
        (49_999, "Silver"),
        (50_000, "Gold"),
        (199_999, "Gold"),
        (200_000, "VIP"),
        (10**12, "VIP"),
    ],
)
def test_tier_for_picks_the_highest_threshold_reached(qualifying: int, expected: str) -> None:
    tier = tier_for(qualifying, TIERS)
    assert tier is not None
    assert tier.name == expected


def test_tier_for_is_none_below_every_threshold() -> None:
    tiers = [TierRule(1, "Gold", 100, ONE)]
    assert tier_for(99, tiers) is None
    assert tier_for(-5, TIERS) is None


def test_tier_for_without_tiers_is_none() -> None:
    assert tier_for(1000, []) is None


@pytest.mark.parametrize(
    ("year", "month", "months", "expected"),
    [
        (2026, 1, 0, (2026, 1)),
        (2026, 1, 1, (2026, 2)),
        (2026, 11, 1, (2026, 12)),
        (2026, 12, 1, (2027, 1)),
        (2026, 3, 12, (2027, 3)),
        (2026, 3, 13, (2027, 4)),
        (2026, 12, 25, (2029, 1)),
        (2026, 1, -1, (2025, 12)),
        (2026, 3, -12, (2025, 3)),
        (2026, 1, -13, (2024, 12)),
    ],
)
def test_add_months_moves_across_year_boundaries(
    year: int, month: int, months: int, expected: tuple[int, int]
) -> None:
    assert add_months(year, month, months) == expected
