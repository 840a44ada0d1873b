"""Clearing a member's card messages under /api/v1 (admin keys); sending one is in api.py."""

from __future__ import annotations

from flask import Blueprint, Response

from walletd.messages.service import clear_member_messages
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import endpoint

bp = Blueprint("messages_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)


@bp.delete("/members/<int:member_id>/message")
@endpoint("Take every message off the member's cards and push them", tag="members",
          roles=ADMIN, status=204, media_type="")  # fmt: skip
def clear_messages(member_id: int) -> Response:
    """Clear the member's card messages (Apple back fields, Google messages) and push the cards."""
    brand_id, actor, ctx = principal().brand_id, principal().actor, context()
    run_in_transaction(lambda s: clear_member_messages(s, brand_id, member_id, ctx, actor=actor))
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response
