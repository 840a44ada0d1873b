"""The HTML pages of customers, cashiers and brand staff; one layout, two languages."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from walletd.errors import N_
from walletd.web.errors import error_response
from walletd.web.pages import formats, i18n, security
from walletd.web.pages.render import _, language, ngettext, page_error

STATIC = Path(__file__).resolve().parents[2] / "static"
HTML_BLUEPRINTS = frozenset({"customer", "cashier", "dashboard", "pages", "unsubscribe"})
# [email-campaigns] Mail clients post the one-click unsubscribe (RFC 8058) without a session or
# token: its link is signed instead (walletd/web/unsubscribe.py).
CSRF_EXEMPT = frozenset({"unsubscribe"})
CSRF_BLUEPRINTS = (HTML_BLUEPRINTS - CSRF_EXEMPT) | {"cashier_api"}
# [google-signup] Google Wallet posts its shared data without our token; that page only prefills.
CSRF_EXEMPT_ENDPOINTS = frozenset({"customer.join_from_google"})


@lru_cache(maxsize=256)
def _asset_version(filename: str) -> str:
    path = STATIC / filename
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "0"


# Control characters other than tab and line breaks are never typed into a form or a link, and
# Postgres refuses NUL in text: such requests stop here instead of deep inside a service.
_CONTROL = frozenset(chr(c) for c in (*range(32), *range(127, 160))) - {"\t", "\n", "\r"}


def _refuse_control_characters() -> tuple[str, int] | None:
    if request.blueprint not in HTML_BLUEPRINTS:
        return None
    values = [*request.args.items(multi=True)]
    if request.method == "POST":
        values += request.form.items(multi=True)
    for name, value in values:
        if not _CONTROL.isdisjoint(name) or not _CONTROL.isdisjoint(value):
            return page_error(400, "Something is wrong with this request", "Go back and try again.")
    return None


def _check_csrf() -> Response | tuple[str, int] | None:
    if request.method != "POST" or request.blueprint not in CSRF_BLUEPRINTS:
        return None
    if request.endpoint in CSRF_EXEMPT_ENDPOINTS:  # [google-signup]
        return None
    if security.csrf_valid():
        return None
    if request.blueprint == "cashier_api":
        return error_response(403, "csrf_failed", "the page's security token is missing or old")
    return page_error(
        400, N_("This form has expired"), N_("Go back, reload the page and send it again.")
    )


def _template_context() -> dict[str, Any]:
    if request.blueprint not in HTML_BLUEPRINTS:
        return {}
    lang = language()
    return {
        "_": _,
        "ngettext": ngettext,
        "lang": lang,
        "html_lang": i18n.html_lang(lang),
        "languages": i18n.LANGUAGE_NAMES,
        "csrf_token": security.csrf_token,
        "viewer": security.current_viewer,
        "asset_version": _asset_version,
    }


def init_app(app: Flask) -> None:
    """Register the page blueprints with their security hooks."""
    # offers adds its routes to the dashboard blueprint: imported before it is registered.
    from walletd.web.pages import cashier, common, customer, dashboard, offers, promotions  # noqa: F401

    # issue 11: page modules that add routes to the dashboard blueprint, one line each.
    # [settings]
    # [locations-keys-staff]
    from walletd.web.pages import admin  # noqa: F401  # isort: skip

    # [imports]
    from walletd.web.pages import imports  # noqa: F401

    # [webhooks]
    # [events]
    # [members]
    from walletd.web.pages import member_edit  # noqa: F401  # isort: skip

    # [erasure]
    from walletd.web.pages import erasure  # noqa: F401  # isort: skip

    # [refunds]
    # [messages]
    # [feedback]
    from walletd.web.pages import feedback  # noqa: F401  # isort: skip
    from walletd.web.pages import events  # noqa: F401  # isort: skip

    # [delivery] (Is my card up to date?)
    from walletd.web.pages import delivery  # noqa: F401  # isort: skip

    # [email-links] (recovery links, forgotten staff passwords)
    from walletd.web.pages import email_links  # noqa: F401  # isort: skip

    # [email] (the card by e-mail and the e-mail history on the member page)
    from walletd.web.pages import member_email  # noqa: F401  # isort: skip

    # The coupons panel on the member page (void a coupon)
    from walletd.web.pages import member_coupons  # noqa: F401  # isort: skip

    security.init_app(app)
    formats.init_app(app)
    app.before_request(_refuse_control_characters)
    app.before_request(_check_csrf)
    app.context_processor(_template_context)
    for blueprint in (common.bp, customer.bp, cashier.bp, cashier.api, dashboard.bp):
        app.register_blueprint(blueprint)
