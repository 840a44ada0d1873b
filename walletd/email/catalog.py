"""The project's gettext catalog for texts written outside a request (e-mails)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources

from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "zh-Hant")
_FOLDERS = {"en": "en", "zh-Hant": "zh_Hant"}

Translator = Callable[..., str]


def language_of(*choices: str | None) -> str:
    """The first offered language among `choices` (a member's, a program's, a page's), else en."""
    for choice in choices:
        if choice in LANGUAGES:
            return choice
    return "en"


@lru_cache(maxsize=4)
def catalog(language: str) -> NullTranslations:
    """The compiled catalog of `language` (en when it is not one of LANGUAGES), read once."""
    folder = str(resources.files("walletd") / "translations")
    return Translations.load(folder, [_FOLDERS.get(language, "en")], "messages")


def translator(language: str) -> Translator:
    """`_("English text", name=value)` in `language`, with its brace placeholders filled."""
    translations = catalog(language)

    def translate(text: str, **values: object) -> str:
        found = translations.gettext(text)
        return found.format(**values) if values else found

    return translate
