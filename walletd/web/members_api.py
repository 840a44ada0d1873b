"""Finding and correcting members under /api/v1: the filtered list and PATCH of one member."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, url_for
from sqlalchemy.orm import Session

from walletd.loyalty.members import get_card_of
from walletd.members import changes, listing
from walletd.web.api import member_body
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.member_schemas import MemberList, MemberListQuery, MemberUpdate
from walletd.web.schemas import MemberOut

bp = Blueprint("members_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
FILTERS = ("email", "phone", "q", "tier", "program_id")


@bp.get("/members")
@endpoint("Find members: filters and keyset pages (next link)", tag="members", roles=ADMIN,
          query=MemberListQuery, response=MemberList)  # fmt: skip
def list_members(query: MemberListQuery) -> dict[str, Any]:
    """The brand's members matching every filter, by ascending id, a page at a time."""
    brand_id = principal().brand_id
    ctx = context()
    filters = listing.MemberFilters(**{name: getattr(query, name) for name in FILTERS})

    def work(session: Session) -> tuple[list[dict[str, Any]], int | None]:
        page = listing.list_members(
            session, brand_id, filters, phone_region=ctx.phone_region,
            after=query.after, limit=query.limit,
        )  # fmt: skip
        cards = listing.loyalty_cards(session, page.members)
        bodies = [
            member_body(session, m, cards.get(m.id) or get_card_of(session, m))
            for m in page.members
        ]
        return bodies, page.next_after

    bodies, after = run_in_transaction(work)
    link = None
    if after is not None:
        given = {name: getattr(query, name) for name in FILTERS if getattr(query, name) is not None}
        link = url_for("members_api.list_members", **given, limit=query.limit, after=after)
    return {"members": bodies, "next": link}


@bp.patch("/members/<int:member_id>")
@endpoint(
    "Correct a member's details (cards are updated when the name changes)",
    tag="members",
    roles=ADMIN,
    body=MemberUpdate,
    response=MemberOut,
    other_responses={409: "member_exists: another member has the e-mail or phone"},
)
def update_member(member_id: int, body: MemberUpdate) -> dict[str, Any]:
    """Change some of a member's details; audited and announced as member.updated."""
    actor = principal().actor
    given = {name: getattr(body, name) for name in body.model_fields_set}

    def work(session: Session) -> dict[str, Any]:
        member = changes.update_member(session, actor, member_id, given, context())
        return member_body(session, member, get_card_of(session, member))

    return run_in_transaction(work)
