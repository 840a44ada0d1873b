"""Rendering helpers shared by the page blueprints: language, translation, error pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request

from walletd.errors import N_, WalletdError
from walletd.web.pages import i18n, texts

ERROR_PAGES = (
    (400, N_("Something is wrong with this request"), N_("Go back and try again.")),
    (403, N_("You may not open this page"), N_("Log in with an account that may.")),
    (404, N_("Page not found"), N_("The link may be old or mistyped.")),
    (405, N_("Page not found"), N_("The link may be old or mistyped.")),
    (413, N_("That was too much at once"), N_("Send less and try again.")),
    (429, N_("Too many attempts"), N_("Wait a few minutes and try again.")),
)


def language() -> str:
    """The language of this request's page."""
    if "lang" not in g:
        g.lang = i18n.choose_language(request.cookies.get(i18n.COOKIE), request.accept_languages)
    return str(g.lang)


def prefer_program_language(default: str | None) -> None:
    """A program's page: the visitor's switch wins, then the program's default language (if it
    has one), then the browser's."""
    if request.cookies.get(i18n.COOKIE) not in i18n.LANGUAGES and default in i18n.LANGUAGES:
        g.lang = default


def _(text: str, **values: object) -> str:
    """Translate a text into this request's language, then fill its {placeholders}."""
    return i18n.translator(language())(text, **values)


def ngettext(singular: str, plural: str, num: int, **values: object) -> str:
    """The singular or plural form for `num` in this request's language; {num} is the count."""
    return i18n.plural_translator(language())(singular, plural, num, **values)


def error_text(exc: WalletdError) -> str:
    """A domain error's message in the page's language: its template translated, then filled."""
    params = dict(exc.params)
    name = params.get("field")
    if isinstance(name, str) and name in texts.FIELD_LABELS:
        params["field"] = _(texts.FIELD_LABELS[name])
    return _(exc.template, **params)


def locale_selector() -> str:
    """Flask-Babel's locale: the page's language, with its country's conventions."""
    return str(i18n.babel_locale(language()))


def page_error(status: int, title: str, detail: str) -> tuple[str, int]:
    """An error page in the shared layout."""
    return render_template("error.html", status=status, title=_(title), detail=_(detail)), status


def add_error_pages(blueprint: Blueprint) -> None:
    """Answer HTTP errors of a blueprint's pages with HTML pages instead of JSON."""
    for status, title, detail in ERROR_PAGES:
        if status == 429:
            continue  # walletd.web.limits answers 429s, with their Retry-After, as pages too

        def handle(exc: Exception, status: int = status, title: str = title,
                   detail: str = detail) -> tuple[str, int]:  # fmt: skip
            return page_error(status, title, detail)

        blueprint.register_error_handler(status, handle)


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render a page template with a status."""
    return render_template(template, **context), status
