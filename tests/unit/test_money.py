"""Amounts of money: decimal input to integer minor units, and back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from walletd.errors import ValidationError
from walletd.loyalty.money import format_minor, minor_unit_exponent, parse_amount


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12", "USD", 1200),
        ("0.01", "USD", 1),
        (" 7.25 ", "USD", 725),
        ("1.230", "USD", 123),
        ("1E2", "USD", 10000),
        ("500", "JPY", 500),
        ("1.234", "KWD", 1234),
        ("1.5", "KWD", 1500),
        ("3", "KWD", 3000),
    ],
)
def test_parse_amount_reads_decimal_strings_as_minor_units(
    value: str, currency: str, expected: int
) -> None:
    assert parse_amount(value, currency) == expected


def test_parse_amount_accepts_ints_as_major_units() -> None:
    assert parse_amount(12, "USD") == 1200
    assert parse_amount(12, "JPY") == 12
    assert parse_amount(12, "KWD") == 12000


def test_parse_amount_accepts_decimals_as_json_numbers_arrive() -> None:
    assert parse_amount(Decimal("1.5"), "USD") == 150
    assert parse_amount(Decimal("0.001"), "KWD") == 1


def test_parse_amount_treats_currency_codes_case_insensitively() -> None:
    assert minor_unit_exponent("jpy") == 0
    assert parse_amount("15", "jpy") == 15
    with pytest.raises(ValidationError):
        parse_amount("1.5", "jpy")


@pytest.mark.parametrize("value", [True, False, None, [], ["1"], {"x": 1}, object()])
def test_parse_amount_rejects_values_that_are_not_numbers(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_amount(value, "USD")
    assert caught.value.field == "amount"


@pytest.mark.parametrize("value", [1.5, 0.1, 12.0])
def test_parse_amount_rejects_binary_floats(value: float) -> None:
    with pytest.raises(ValidationError):
        parse_amount(value, "USD")


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", Decimal("NaN"), Decimal("Infinity")],
)
def test_parse_amount_rejects_non_finite_numbers(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_amount(value, "USD")


@pytest.mark.parametrize("value", ["0", "0.00", "-0", "0e5", "-1", "-0.01", 0, -5, Decimal("-2")])
def test_parse_amount_rejects_zero_and_negative_amounts(value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_amount(value, "USD")
    assert caught.value.field == "amount"


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("1.234", "USD"),
        ("0.001", "USD"),
        ("1.5", "JPY"),
        ("100.01", "JPY"),
        ("1.2345", "KWD"),
        (Decimal("0.005"), "USD"),
    ],
)
def test_parse_amount_rejects_more_decimals_than_the_currency_has(
    value: object, currency: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_amount(value, currency)
    assert caught.value.field == "amount"


@pytest.mark.parametrize("value", ["", "   ", "abc", "12,50", "0x10", "1.2.3", "$5", "5 USD"])
def test_parse_amount_rejects_text_that_is_not_a_decimal(value: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(value, "USD")


def test_parse_amount_rejects_strings_longer_than_32_characters() -> None:
    with pytest.raises(ValidationError):
        parse_amount("1" * 33, "USD")
    with pytest.raises(ValidationError):
        parse_amount("1" * 100_000, "USD")


def test_parse_amount_names_the_field_it_was_given() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_amount("abc", "USD", field="price")
    assert caught.value.field == "price"


@pytest.mark.parametrize("value", ["1e999999999", Decimal("1e999999999"), "1e999998"])
def test_parse_amount_rejects_astronomical_exponents_as_validation_errors(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_amount(value, "USD")


def test_parse_amount_never_returns_zero_for_a_tiny_positive_amount() -> None:
    with pytest.raises(ValidationError):
        parse_amount("1e-999999999", "USD")


def test_parse_amount_is_exact_or_refuses_for_long_amounts() -> None:
    text = "1234567890123456789012345678.91"
    try:
        parsed = parse_amount(text, "USD")
    except ValidationError:
        return
    assert parsed == 123456789012345678901234567891


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1250, "USD", "12.50"),
        (1, "USD", "0.01"),
        (0, "USD", "0.00"),
        (100, "USD", "1.00"),
        (500, "JPY", "500"),
        (1234, "KWD", "1.234"),
        (5, "KWD", "0.005"),
        (10_000_000, "USD", "100000.00"),
        (-250, "USD", "-2.50"),
    ],
)
def test_format_minor_writes_plain_decimals_with_the_currency_exponent(
    minor: int, currency: str, expected: str
) -> None:
    assert format_minor(minor, currency) == expected


@pytest.mark.parametrize(
    ("text", "currency"), [("12.50", "USD"), ("0.01", "USD"), ("500", "JPY"), ("1.234", "KWD")]
)
def test_format_minor_round_trips_parse_amount(text: str, currency: str) -> None:
    assert format_minor(parse_amount(text, currency), currency) == text
