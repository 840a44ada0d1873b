"""Phones are stored in E.164: every spelling of a number is one text, junk is a field error."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletd.errors import ValidationError
from walletd.loyalty.members import find_phone, normalise_phone
from walletd.loyalty.recovery import parse_contact

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
REGIONS = ["TW", "US", "GB", "DE", "JP", "HK", "FR", "IN", "BR", "AU"]
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str, str]:
    """A real number of a region, its E.164 form, and one way a person might type it."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                 phonenumbers.PhoneNumberType.FIXED_LINE]))  # fmt: skip
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    style = draw(st.sampled_from(["E164", "INTERNATIONAL", "NATIONAL", "RFC3966"]))
    text = phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, style))
    separator = draw(st.sampled_from([" ", "-", ".", "", "  "]))
    text = text.replace(" ", separator) if style != "RFC3966" else text
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    padding = draw(st.sampled_from(["", " ", "\t"]))
    return region, e164, f"{padding}{text}{padding}"


@settings(max_examples=200, deadline=None)
@given(spellings())
def test_every_spelling_of_a_number_is_one_e164_text(case: tuple[str, str, str]) -> None:
    region, e164, typed = case
    assert normalise_phone(typed, region) == e164
    # Written with its country code, the member's region does not matter.
    if typed.strip().startswith(("+", "＋", "tel:")):
        assert normalise_phone(typed, "TW") == e164


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.sampled_from(REGIONS))
def test_any_text_is_an_e164_number_or_a_phone_field_error(text: str, region: str) -> None:
    try:
        phone = normalise_phone(text, region)
    except ValidationError as exc:
        assert exc.field == "phone"
    else:
        assert E164.fullmatch(phone), phone
        assert find_phone(phone, "TW") == phone  # stored values are fixed points


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_a_recovery_contact_is_an_email_a_phone_or_a_contact_field_error(text: str) -> None:
    try:
        contact = parse_contact(text, "TW")
    except ValidationError as exc:
        assert exc.field == "contact"
    else:
        if contact.kind == "email":
            assert contact.value == contact.value.lower() == contact.value.strip()
        else:
            assert E164.fullmatch(contact.value)


def test_taiwanese_spellings_from_the_issue_meet() -> None:
    assert normalise_phone("0912 345 678", "TW") == normalise_phone("+886 912 345 678", "US")
    assert parse_contact(" ADA@Example.COM ").value == "ada@example.com"
    with pytest.raises(ValidationError):
        normalise_phone("12", "TW")
