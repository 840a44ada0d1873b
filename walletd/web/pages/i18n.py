"""A small dictionary translator for the pages: English keys, Traditional Chinese texts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from walletd.web.pages.strings_zh_hant import EN, ZH_HANT

LANGUAGES = ("en", "zh-Hant")
LANGUAGE_NAMES = {"en": "English", "zh-Hant": "繁體中文"}
COOKIE = "walletd_lang"
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "zh-Hant": ZH_HANT}

Translator = Callable[..., str]


def _language_of(tag: str) -> str | None:
    primary = tag.strip().lower().replace("_", "-")
    if primary.startswith("zh"):
        # Only Traditional Chinese is offered; a reader of Simplified reads it better than English.
        return "zh-Hant"
    if primary.startswith("en"):
        return "en"
    return None


def choose_language(cookie: str | None, accepted: Iterable[tuple[str, float]]) -> str:
    """The switch's choice when there is one, else the browser's best offered language."""
    if cookie in LANGUAGES:
        return cookie
    for tag, quality in sorted(accepted, key=lambda item: -item[1]):
        if quality <= 0:
            continue
        language = _language_of(tag)
        if language is not None:
            return language
    return "en"


def translator(language: str) -> Translator:
    """`_("English text", name=value)`: the text in `language`, formatted with the values."""
    catalogue = CATALOGUES.get(language, {})

    def translate(text: str, **values: object) -> str:
        result = catalogue.get(text) or EN.get(text, text)
        return result.format(**values) if values else result

    return translate


def html_lang(language: str) -> str:
    """The value of <html lang>."""
    return "zh-Hant-TW" if language == "zh-Hant" else "en"
