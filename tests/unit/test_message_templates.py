"""Message templates: placeholders are data from a fixed list, never a format language."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletd.campaigns import templates
from walletd.campaigns.templates import (
    CAMPAIGN_PLACEHOLDERS,
    MAX_MESSAGE_LENGTH,
    PLACEHOLDERS,
    check_template,
    render,
)
from walletd.errors import ValidationError

NAMES = sorted(PLACEHOLDERS)
# Texts rich in braces and in the characters of Python's format language.
BRACEY = st.text(alphabet=st.sampled_from("{}{}:!.[]>0123456789 _abnmexr\n"), max_size=60)
TOKEN_PARTS = st.sampled_from(
    [*NAMES, "", " ", "nickname", "0", "__class__", "name.__class__", "name[0]", "name!r",
     "name:>300000000", "points:,", "name.__class__.__mro__", "{name}", "tier!s:^9"]
)  # fmt: skip
TEMPLATES = st.one_of(
    st.text(max_size=600),
    BRACEY,
    st.lists(st.one_of(BRACEY, TOKEN_PARTS.map(lambda inner: "{" + inner + "}")), max_size=12).map(
        "".join
    ),
)
VALUES = st.dictionaries(st.sampled_from(NAMES), st.text(max_size=300))


def test_known_placeholders_are_filled_with_the_members_values() -> None:
    text = "Hi {name}, you have {points} points ({tier})."
    template = check_template(text, CAMPAIGN_PLACEHOLDERS)
    values = {"name": "Ann", "points": "1,250", "tier": "Gold"}
    assert render(template, values) == "Hi Ann, you have 1,250 points (Gold)."


def test_doubled_braces_are_literal_braces_and_values_are_never_read_as_templates() -> None:
    template = check_template("{{name}} is {name}", CAMPAIGN_PLACEHOLDERS)
    assert render(template, {"name": "{points:>9}"}) == "{name} is {points:>9}"


@pytest.mark.parametrize(
    "template",
    ["Hi {name:>300000000}", "{name.__class__.__mro__}", "{name!r}", "{name[0]}", "{nickname}",
     "{}", "{0}", "{ name }", "a lone { brace", "a lone } brace", "{reward}"],
)  # fmt: skip
def test_anything_but_a_known_placeholder_is_refused_on_the_message_field(template: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_template(template, CAMPAIGN_PLACEHOLDERS)
    assert refused.value.field == "message"
    assert "{name}, {points}, {tier}" in refused.value.message


@settings(max_examples=300, deadline=None)
@given(template=TEMPLATES, allowed=st.lists(st.sampled_from(NAMES), unique=True))
def test_any_text_is_a_valid_template_or_a_validation_error_on_the_message_field(
    template: str, allowed: list[str]
) -> None:
    try:
        checked = check_template(template, allowed)
    except ValidationError as exc:
        assert exc.field == "message"
        return
    assert 0 < len(checked) <= MAX_MESSAGE_LENGTH
    assert set(templates.placeholders(checked)) <= set(allowed)


@settings(max_examples=300, deadline=None)
@given(template=TEMPLATES, values=VALUES)
def test_rendering_any_stored_text_is_bounded_and_never_reads_attributes(
    template: str, values: dict[str, str]
) -> None:
    # Stored texts from before validation existed are rendered too: never an error, never long.
    started = time.perf_counter()
    rendered = render(template, values)
    assert time.perf_counter() - started < 0.5
    assert len(rendered) <= MAX_MESSAGE_LENGTH
    assert "<class" not in rendered and "<built-in" not in rendered
    # Every character comes from the template or a value: nothing else is looked up.
    assert set(rendered) <= set(template) | set("".join(values.values())) | {"…"}


@settings(max_examples=100, deadline=None)
@given(
    names=st.lists(st.sampled_from(CAMPAIGN_PLACEHOLDERS), min_size=1, max_size=80),
    value=st.text(min_size=1, max_size=200),
)
def test_a_valid_template_never_renders_longer_than_the_cap(names: list[str], value: str) -> None:
    template = "".join("{" + name + "}" for name in names)[:MAX_MESSAGE_LENGTH]
    if template.count("{") != template.count("}"):
        return
    checked = check_template(template, CAMPAIGN_PLACEHOLDERS)
    rendered = render(checked, dict.fromkeys(CAMPAIGN_PLACEHOLDERS, value * 50))
    assert len(rendered) <= MAX_MESSAGE_LENGTH


def test_legacy_format_specs_render_literally_and_quickly() -> None:
    started = time.perf_counter()
    assert render("Hi {name:>300000000}", {"name": "Ann"}) == "Hi {name:>300000000}"
    assert render("{name.__class__.__mro__}", {"name": "Ann"}) == "{name.__class__.__mro__}"
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    "text", ["", "   ", "nul \x00 inside", "bell \x07", "half a surrogate \ud800", "x" * 501]
)
def test_empty_over_long_and_unstorable_texts_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_template(text, CAMPAIGN_PLACEHOLDERS)
    assert refused.value.field == "message"


@pytest.mark.parametrize("value", [None, 5, 5.5, True, ["x"], {"x": 1}])
def test_a_message_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        check_template(value, CAMPAIGN_PLACEHOLDERS)
    assert refused.value.field == "message"


def test_lines_and_tabs_are_kept_and_the_text_is_trimmed() -> None:
    assert check_template("  Line one\n\tline two  ", ()) == "Line one\n\tline two"
