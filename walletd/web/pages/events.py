"""Dashboard event automations: list with runs by outcome, create, switch on or off, delete."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletd.errors import NotFoundError, ValidationError
from walletd.events import automations
from walletd.loyalty.brands import get_program
from walletd.models.event import EventAutomation
from walletd.web.deps import context, run_in_transaction
from walletd.web.pages import message_languages, security
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.render import _, error_text, render

# Form fields in the order a 422 names them; anything else goes under the name.
FORM_FIELDS = ("name", "trigger_event", "delay_minutes", "cancel_events", "message", "messages")


@dataclass(frozen=True)
class Row:
    """An event automation and its runs by status."""

    automation: EventAutomation
    runs: dict[str, int]


def automation_input(form: MultiDict[str, str]) -> automations.AutomationInput:
    """The form's fields as the service takes them (checked there)."""
    delay_text = form.get("delay_minutes", "").strip()
    if not re.fullmatch(r"[0-9]{1,6}", delay_text):
        raise ValidationError("delay_minutes must be 1 to 43200 (30 days)", field="delay_minutes")
    # Types separated by commas or spaces, as people type a short list.
    cancel = [t for t in re.split(r"[\s,]+", form.get("cancel_events", "")[:2000]) if t]
    values: dict[str, Any] = {
        "name": form.get("name", ""),
        "trigger_event": form.get("trigger_event", "").strip(),
        "delay_minutes": int(delay_text),
        "cancel_events": cancel,
        "cancel_on_purchase": form.get("cancel_on_purchase") == "yes",
        "message": form.get("message", ""),
        "messages": message_languages.form_messages(form),
        "enabled": True,
        "marketing": form.get("marketing") == "yes",
    }
    return automations.AutomationInput(values=values, given=frozenset(values))


def _rows(session: Session, brand_id: int) -> list[Row]:
    found = automations.list_automations(session, brand_id)
    counts = automations.run_counts(session, [a.id for a in found])
    return [Row(a, counts[a.id]) for a in found]


@bp.route("/event-automations", methods=["GET", "POST"])
@staff_only
def event_automations_page() -> Any:
    """The brand's event automations and the form for a new one."""
    viewer = me()
    values: MultiDict[str, str] = MultiDict(
        {"delay_minutes": "120", "cancel_on_purchase": "yes", "marketing": "yes"}
    )
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = MultiDict(
            [(k, v) for k, v in request.form.items(multi=True) if k != security.CSRF_FIELD]
        )
        now = context().now
        try:
            data = automation_input(request.form)
            run_in_transaction(lambda s: automations.create_automation(s, viewer.actor, data, now))
        except ValidationError as exc:
            field = (exc.field or "").split(".")[0]
            field = field if field in FORM_FIELDS else "name"
            errors[field] = error_text(exc)
        else:
            flash(_("Event automation saved."))
            return redirect(url_for("dashboard.event_automations_page"), 303)
    rows, default_language = run_in_transaction(
        lambda s: (_rows(s, viewer.brand_id), get_program(s, viewer.brand_id).default_language)
    )
    languages = message_languages.extra_languages(
        default_language, message_languages.form_messages(values)
    )
    return render("dashboard/event_automations.html", 422 if errors else 200, rows=rows,
                  values=values, errors=errors, message_languages=languages)  # fmt: skip


@bp.post("/event-automations/<int:automation_id>/toggle")
@staff_only
def toggle_event_automation(automation_id: int) -> Any:
    """Switch an event automation on or off; pending runs are cancelled when they fall due."""
    viewer = me()
    now = context().now

    def work(session: Session) -> bool:
        current = automations.get_automation(session, viewer.brand_id, automation_id)
        data = automations.AutomationInput(
            values={"enabled": not current.enabled}, given=frozenset({"enabled"})
        )
        return automations.update_automation(
            session, viewer.actor, automation_id, data, now
        ).enabled

    try:
        enabled = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    flash(_("Event automation switched on.") if enabled else _("Event automation switched off."))
    return redirect(url_for("dashboard.event_automations_page"), 303)


@bp.post("/event-automations/<int:automation_id>/delete")
@staff_only
def delete_event_automation(automation_id: int) -> Any:
    """Delete an event automation with its pending runs."""
    viewer = me()
    now = context().now
    try:
        run_in_transaction(
            lambda s: automations.delete_automation(s, viewer.actor, automation_id, now)
        )
    except NotFoundError:
        abort(404)
    flash(_("Event automation deleted."))
    return redirect(url_for("dashboard.event_automations_page"), 303)
