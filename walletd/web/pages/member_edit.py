"""The dashboard's correction of a member's details, on the member page."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, flash, redirect, request, url_for

from walletd.errors import MemberExistsError, NotFoundError, ValidationError
from walletd.members import changes
from walletd.web.deps import context, run_in_transaction
from walletd.web.pages.dashboard import _member_page, bp, me, staff_only
from walletd.web.pages.render import _, error_text, render

FIELDS = ("name", "email", "phone", "birthday")
# Longer than any valid value: the service gives the field's own message for what is kept.
_MAX_FORM_TEXT = 400


def _form_changes(values: dict[str, str]) -> dict[str, Any]:
    """The form as the service's changes: a blank optional field clears it."""
    found: dict[str, Any] = {
        "name": values["name"],
        "email": values["email"].strip() or None,
        "phone": values["phone"].strip() or None,
        "marketing_consent": values["marketing_consent"] == "yes",
    }
    if "language" in values:
        found["language"] = values["language"] or None  # blank: the program's default language
    text = values["birthday"].strip()
    try:
        found["birthday"] = date.fromisoformat(text) if text else None
    except ValueError:
        raise ValidationError("birthday must be a date", field="birthday") from None
    return found


@bp.post("/members/<int:member_id>/edit")
@staff_only
def edit_member(member_id: int) -> Any:
    """Correct a member's name, e-mail, phone, birthday or consent; audited like the API's."""
    viewer = me()
    values = {name: request.form.get(name, "")[:_MAX_FORM_TEXT] for name in FIELDS}
    values["marketing_consent"] = "yes" if request.form.get("marketing_consent") == "yes" else ""
    if "language" in request.form:
        values["language"] = request.form.get("language", "")[:_MAX_FORM_TEXT]
    actor = viewer.actor
    errors: dict[str, Any] = {}
    try:
        given = _form_changes(values)
        run_in_transaction(
            lambda s: changes.update_member(
                s, actor, member_id, given, context(), source="dashboard"
            )
        )
    except NotFoundError:
        abort(404)
    except MemberExistsError as exc:
        errors[exc.field or "email"] = _("Another member already has this e-mail or phone.")
        errors["existing_member_id"] = exc.existing_member_id
        status = 409
    except ValidationError as exc:
        errors[exc.field or "name"] = error_text(exc)
        status = 422
    else:
        flash(_("Details saved."))
        return redirect(url_for("dashboard.member", member_id=member_id), 303)
    page = run_in_transaction(lambda s: _member_page(s, viewer.brand_id, member_id))
    return render("dashboard/member.html", status, page=page, errors={}, values={},
                  edit_errors=errors, edit_values=values)  # fmt: skip
