"""[email-links] Pages of e-mailed one-time links: a member's card link, staff's new password.

The recovery link's page shows a button rather than spending the link on GET: mail scanners
and link previews open links before the member does, and must not use them up.
"""

from __future__ import annotations

from typing import Any

from flask import make_response, redirect, request, url_for
from sqlalchemy.orm import Session

from walletd.email import email_enabled
from walletd.email_links import recovery, staff
from walletd.errors import NotFoundError
from walletd.web import limits
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages.customer import _join_page, card_page_url
from walletd.web.pages.customer import bp as customer
from walletd.web.pages.dashboard import bp as dashboard
from walletd.web.pages.render import _, language, prefer_program_language, render

# Reset requests are counted like recovery e-mails: every request, since none says more than
# "if the address is known, a link is on its way".
RESET_CLIENT = "5 per 15 minutes; 30 per day"
RESET_ACCOUNT = "3 per 15 minutes; 10 per day"
MAX_EMAIL_LENGTH = 320
# Stale links answer 404 like the set-password page; the page says why.
_STATUS = {"valid": 200, "used": 404, "expired": 404, "unknown": 404}


@customer.route("/join/<int:program_id>/recover/<token:token>", methods=["GET", "POST"])
def recovery_link(program_id: int, token: str) -> Any:
    """An e-mailed recovery link: a button that spends it and opens the card page, once."""
    page = run_in_transaction(lambda s: _join_page(s, program_id))
    prefer_program_language(page.default_language)
    now = context().now
    if request.method == "POST":

        def spend(session: Session) -> str:
            return recovery.use_recovery_link(session, program_id, token, now=now).serial_number

        try:
            serial = run_in_transaction(spend)
        except recovery.LinkUsedError:
            state = "used"
        except recovery.LinkExpiredError:
            state = "expired"
        except NotFoundError:
            state = "unknown"
        else:
            return redirect(card_page_url(serial), 303)
    else:
        state = run_in_transaction(
            lambda s: recovery.recovery_link_state(s, program_id, token, now=now)
        )
    return render("customer/recovery_link.html", _STATUS[state], page=page, state=state,
                  token=token)  # fmt: skip


def _reset_limits() -> tuple[limits.FailureLimit, limits.FailureLimit]:
    counters = limits.rate_limits()
    return (
        limits.FailureLimit("reset-client", RESET_CLIENT, counters),
        limits.FailureLimit("reset-account", RESET_ACCOUNT, counters),
    )


def set_password_url(token: str) -> str:
    """The absolute one-time set-password link an e-mail carries."""
    return services().settings.base_url + url_for("dashboard.set_password", token=token)


@dashboard.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> Any:
    """Staff ask for a one-time link to choose a new password, sent to their e-mail."""
    settings = services().settings
    enabled = email_enabled(settings)
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    sent = False
    # With e-mail off the page says so (and a form sent anyway changes nothing).
    if request.method == "POST" and enabled:
        address = request.form.get("email", "").strip()[:MAX_EMAIL_LENGTH]
        values = {"email": address}
        if "@" not in address:
            errors["email"] = _("Enter the e-mail address of your account.")
        else:
            client_limit, account_limit = _reset_limits()
            client, account = limits.client_address(), limits.digest("reset", address.lower())
            wait = limits.longest_wait(
                client_limit.retry_after(client), account_limit.retry_after(account)
            )
            if wait is not None:
                html, status = render("dashboard/forgot_password.html", 429, enabled=True,
                                      values=values, errors={}, sent=False,
                                      throttled=True)  # fmt: skip
                return limits.with_retry_after(make_response(html, status), wait)
            client_limit.fail(client)
            account_limit.fail(account)
            lang, now = language(), context().now
            run_in_transaction(
                lambda s: staff.request_password_reset(
                    s, address, link_for=set_password_url, language=lang, now=now
                )
            )
            sent = True
    return render("dashboard/forgot_password.html", 422 if errors else 200, enabled=enabled,
                  values=values, errors=errors, sent=sent, throttled=False)  # fmt: skip
