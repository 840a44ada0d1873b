"""Dashboard: erase a member, behind a confirmation page (the same service as the API's DELETE)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, request, url_for
from sqlalchemy.orm import Session

from walletd.errors import NotFoundError
from walletd.loyalty.members import get_member
from walletd.privacy.erasure import erase_member
from walletd.web.deps import context, run_in_transaction
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.render import _, render


@dataclass(frozen=True)
class ErasePage:
    """What the confirmation page names: who goes, and what stays."""

    member_id: int
    name: str
    points: int
    visits: int


def _erase_page(session: Session, brand_id: int, member_id: int) -> ErasePage:
    member = get_member(session, brand_id, member_id)
    return ErasePage(member.id, member.name, member.points, member.visits)


def _page(member_id: int) -> ErasePage:
    viewer = me()
    try:
        return run_in_transaction(lambda s: _erase_page(s, viewer.brand_id, member_id))
    except NotFoundError:
        abort(404)


@bp.get("/members/<int:member_id>/erase")
@staff_only
def erase_member_form(member_id: int) -> tuple[str, int]:
    """Ask the admin to confirm the erasure of one member."""
    return render("dashboard/member_erase.html", page=_page(member_id), error=False)


@bp.post("/members/<int:member_id>/erase")
@staff_only
def erase_member_confirmed(member_id: int) -> Any:
    """Erase the member once the admin ticked the confirmation; back to the member list."""
    page = _page(member_id)
    if request.form.get("confirm") != "yes":
        return render("dashboard/member_erase.html", 422, page=page, error=True)
    actor = me().actor
    ctx = context()
    try:
        run_in_transaction(lambda s: erase_member(s, actor, member_id, ctx))
    except NotFoundError:
        abort(404)
    flash(_("The member was erased. Their card is closed; their points stay in your reports."))
    return redirect(url_for("dashboard.members"), 303)
