"""Members' data rights under /api/v1: export a member's record, erase the person (admin keys)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from walletd.privacy.erasure import erase_member
from walletd.privacy.export import export_member
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.privacy_schemas import MemberExport

bp = Blueprint("privacy", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)


@bp.get("/members/<int:member_id>/export")
@endpoint("Everything walletd holds about a member", tag="members", roles=ADMIN,
          response=MemberExport)  # fmt: skip
def export(member_id: int) -> dict[str, Any]:
    """The member's fields, cards, wallets, ledger, coupons, messages, events and consent."""
    actor = principal().actor
    now = context().now
    document = run_in_transaction(lambda s: export_member(s, actor, member_id, now=now))
    return {**document, "exported_at": now.isoformat()}


@bp.delete("/members/<int:member_id>")
@endpoint("Erase a member (the ledger stays, anonymised)", tag="members", roles=ADMIN,
          status=204, media_type="")  # fmt: skip
def erase(member_id: int) -> Response:
    """Scrub the person, void their passes and forget their devices; a second call is 404."""
    actor = principal().actor
    ctx = context()
    run_in_transaction(lambda s: erase_member(s, actor, member_id, ctx))
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response
