"""The pages' languages: gettext catalogs (walletd/translations) read through Flask-Babel.

Pages and templates call `_("English text", name=value)`: the text is looked up in the catalog of
the page's language, then its brace placeholders are filled in (`str.format`). Texts with a count
use `ngettext("{num} member", "{num} members", num)`. The catalogs are made with `pybabel`
(`make translations`, see the README's "Translate").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

from babel import Locale, numbers
from babel.support import NullTranslations, Translations

# Languages offered by the switch: our tag (cookie, program default_language) -> its Babel locale.
LANGUAGES = ("en", "zh-Hant")
LOCALES = {"en": "en", "zh-Hant": "zh_Hant_TW"}
# The folder of each language's catalog in walletd/translations.
CATALOG_DIRS = {"en": "en", "zh-Hant": "zh_Hant"}
LANGUAGE_NAMES = {"en": "English", "zh-Hant": "繁體中文"}
COOKIE = "walletd_lang"
DOMAIN = "messages"

Translator = Callable[..., str]
PluralTranslator = Callable[..., str]


def translations_dir() -> Path:
    """walletd/translations inside the installed package (never the working directory)."""
    return Path(str(resources.files("walletd") / "translations"))


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


def babel_locale(language: str) -> Locale:
    """The Babel locale whose conventions (numbers, money, dates) a page in `language` uses."""
    return Locale.parse(LOCALES.get(language, "en"))


@lru_cache(maxsize=8)
def catalog(language: str) -> NullTranslations:
    """The compiled catalog (.mo) of a language; English texts when it has none."""
    folder = CATALOG_DIRS.get(language, "en")
    return Translations.load(str(translations_dir()), [folder], DOMAIN)


def format_text(text: str, values: dict[str, object]) -> str:
    """Fill a translated text's brace placeholders."""
    return text.format(**values) if values else text


def translator(language: str) -> Translator:
    """`_("English text", name=value)`: the text in `language`, formatted with the values."""
    translations = catalog(language)

    def translate(text: str, **values: object) -> str:
        return format_text(translations.gettext(text), values)

    return translate


def plural_translator(language: str) -> PluralTranslator:
    """`ngettext("{num} member", "{num} members", num, **values)`: the form for `num`, whose
    {num} is written with the language's digit grouping (1,240)."""
    translations = catalog(language)
    locale = babel_locale(language)

    def translate(singular: str, plural: str, num: int, **values: object) -> str:
        text = translations.ngettext(singular, plural, num)
        return format_text(text, {"num": numbers.format_decimal(num, locale=locale), **values})

    return translate


def html_lang(language: str) -> str:
    """The value of <html lang>."""
    return "zh-Hant-TW" if language == "zh-Hant" else "en"
