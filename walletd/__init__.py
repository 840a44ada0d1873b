"""walletd: a self-hosted loyalty-card server for Apple Wallet and Google Wallet."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from walletd.config import Settings
from walletd.db import Database, utcnow
from walletd.services import Services


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None
) -> Flask:
    """Build the Flask app: the only place that wires config, database, blueprints and adapters."""
    if settings is None:
        settings = Settings.from_env(os.environ)
    settings = settings.finalise()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Sessions signed with an older key stay valid while it is listed (key rotation).
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    svc = Services(settings=settings, db=Database(settings.database_url), clock=clock or utcnow)
    app.extensions["walletd"] = svc

    from walletd import cli
    from walletd.web import api, apple, campaigns, errors, google, pages, public
    from walletd.web.endpoint import IdConverter, TokenConverter

    # Before any blueprint: every `<int:…>` in a route is bounded to the ids a row can have.
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["token"] = TokenConverter
    errors.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(apple.bp)
    app.register_blueprint(apple.downloads)
    app.register_blueprint(google.bp)
    from walletd.web import offers as offers_api

    app.register_blueprint(offers_api.bp)
    from walletd.web import promotions as promotions_api

    app.register_blueprint(promotions_api.bp)
    # issue 11: each part registers its blueprint on its own line below.
    # [settings]
    from walletd.web import programs as programs_api

    app.register_blueprint(programs_api.bp)
    # [locations-keys-staff]
    from walletd.web import admin_api

    app.register_blueprint(admin_api.bp)
    # [imports]
    from walletd.web import imports as imports_api

    app.register_blueprint(imports_api.bp)
    # Before the pages' hooks read a form: the import routes take files up to 10 MiB.
    app.before_request(imports_api.allow_large_upload)
    # [webhooks]
    from walletd.web import webhooks as webhooks_api

    app.register_blueprint(webhooks_api.bp)
    # [events]
    # issue 12: [members] [erasure] [refunds] [messages] [feedback] (one line each, below)
    # [members]
    from walletd.web import members_api  # isort: skip

    app.register_blueprint(members_api.bp)
    # [erasure]
    from walletd.web import privacy_api  # isort: skip

    app.register_blueprint(privacy_api.bp)
    # [refunds]
    from walletd.web import refunds_api

    app.register_blueprint(refunds_api.bp)
    # [messages]
    from walletd.web import messages_api  # isort: skip

    app.register_blueprint(messages_api.bp)
    # [feedback]
    from walletd.web import feedback_api  # isort: skip

    app.register_blueprint(feedback_api.bp)
    from walletd.web import events as events_api

    app.register_blueprint(events_api.bp)
    pages.init_app(app)
    # issue 13: each part adds its lines below its own marker only.
    # [ops] (health, metrics, request ids)
    from walletd.observability import web as observability

    observability.init_app(app)
    # [docs] (/docs API reference)
    from walletd.web import docs

    docs.init_app(app)
    # [i18n] (Flask-Babel)
    from flask_babel import Babel  # type: ignore[import-untyped]

    from walletd.web.pages.render import locale_selector

    # The pages' catalogs are read by walletd.web.pages.i18n; Flask-Babel gives the locale and
    # the formats of numbers, money and dates (walletd.web.pages.formats).
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=locale_selector)
    # issues 15 and 16: each part adds its lines below its own marker only.
    # [enrollment]
    from walletd.web import enrollment

    app.register_blueprint(enrollment.bp)
    # [google-signup]
    # [delivery]
    from walletd.web import delivery_api

    app.register_blueprint(delivery_api.bp)
    # [email]
    from walletd import cli_email
    from walletd.web import email_api

    app.register_blueprint(email_api.bp)
    cli_email.init_app(app)
    # [email-links]
    # [email-campaigns]
    from walletd.web import unsubscribe

    app.register_blueprint(unsubscribe.bp)
    # [fastpath] the Apple web service's hot reads, below Flask (inside ProxyFix, like the app)
    from walletd.fastpath import apple as apple_fastpath

    apple_fastpath.install(app, svc)
    # After every blueprint: limits are put on the registered blueprints, and ProxyFix wraps
    # the finished WSGI app.
    from walletd.web import limits

    limits.init_app(app, settings)
    apple_fastpath.attach_limits(app)  # [fastpath] registrations count into the same buckets
    cli.init_app(app)
    if settings.worker == "embedded":
        from walletd.worker import start_embedded

        start_embedded(svc)
    return app
