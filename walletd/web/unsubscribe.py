"""The one-click unsubscribe of campaign and automation e-mails (RFC 8058).

`GET /unsubscribe` shows a confirmation page with a button, so a link scanner that opens the
link never unsubscribes anyone; `POST /unsubscribe` with `List-Unsubscribe=One-Click` (what mail
clients send from the List-Unsubscribe-Post header, and what the button sends) withdraws the
member's promotional consent at once. No session and no CSRF token (a mail client has neither):
the signature of the link names the member.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, request, url_for
from sqlalchemy.orm import Session

from walletd.campaigns import email_fallback
from walletd.errors import NotFoundError
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages.render import add_error_pages, prefer_program_language, render

bp = Blueprint("unsubscribe", __name__)
add_error_pages(bp)


def _member_id() -> int:
    settings = services().settings
    try:
        return email_fallback.check_unsubscribe(
            request.args.get("m"), request.args.get("sig"), settings.secret_keys
        )
    except NotFoundError:
        abort(404)


@bp.route("/unsubscribe", methods=["GET", "POST"])
def unsubscribe() -> Any:
    """Confirm (GET) or withdraw at once (POST, one click) the member's promotional consent."""
    member_id = _member_id()
    if request.method == "POST" and request.form.get("List-Unsubscribe") != "One-Click":
        abort(400)
    now = context().now

    def work(session: Session) -> email_fallback.Unsubscription:
        if request.method == "POST":
            email_fallback.unsubscribe(session, member_id, now=now)
        return email_fallback.find_unsubscription(session, member_id)

    try:
        found = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    prefer_program_language(found.default_language)
    action = url_for("unsubscribe.unsubscribe", m=request.args["m"], sig=request.args["sig"])
    state = "done" if request.method == "POST" or not found.subscribed else "confirm"
    return render("customer/unsubscribe.html", state=state, action=action, found=found)
