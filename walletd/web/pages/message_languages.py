"""The dashboard's per-language message fields: one optional textarea per offered language."""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.datastructures import MultiDict

from walletd.campaigns.templates import member_values, render
from walletd.web.pages.i18n import LANGUAGE_NAMES, LANGUAGES

# The made-up member a preview fills the placeholders with.
_SAMPLE = member_values("Ann Lee", 1250, "Gold")


def field_name(language: str) -> str:
    """The form field of a language's text."""
    return f"message_{language}"


def extra_languages(
    default_language: str | None, stored: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(tag, name) of the languages offered a textarea beside the default message: every
    language but the program's default one, and any that already has a text."""
    default = default_language or "en"
    return [
        (tag, LANGUAGE_NAMES[tag])
        for tag in LANGUAGES
        if tag != default or (stored and stored.get(tag))
    ]


def form_messages(form: MultiDict[str, str]) -> dict[str, str]:
    """The per-language texts of a form (empty ones are dropped by the service)."""
    return {tag: form.get(field_name(tag), "") for tag in LANGUAGES if field_name(tag) in form}


def previews(message: str, messages: Mapping[str, str]) -> list[tuple[str | None, str]]:
    """Each text as a sample member would read it: the default first, then each language's."""
    shown: list[tuple[str | None, str]] = [(None, render(message, _SAMPLE))] if message else []
    shown += [
        (LANGUAGE_NAMES[tag], render(text, _SAMPLE))
        for tag, text in messages.items()
        if text.strip()
    ]
    return shown
