"""Request and response models of the routes that find and correct members."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from walletd.members.listing import DEFAULT_PAGE, MAX_PAGE, MAX_QUERY
from walletd.web.schemas import (
    MAX_ID,
    IsoDate,
    LedgerEntryOut,
    MemberLanguage,
    MemberOut,
    Reply,
    Request,
    Text,
)

# Query strings carry text: these take "50", not only the JSON number 50.
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE}")]
After = Annotated[
    int,
    Field(ge=0, le=MAX_ID, description="the id the previous page ended with (its `next` link)"),
]


class MemberListQuery(Request):
    """Filters (all must hold) and a keyset page: members by ascending id."""

    email: Text(320) | None = Field(  # type: ignore[valid-type]
        default=None, description="exact address, any case"
    )
    phone: Text(64) | None = Field(  # type: ignore[valid-type]
        default=None, description="any spelling of the number; compared in E.164"
    )
    q: Text(MAX_QUERY) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="part of the name or e-mail, or exactly a member id or an external id",
    )
    tier: Text(100) | None = Field(default=None, description="a tier name")  # type: ignore[valid-type]
    program_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    limit: PageSize = DEFAULT_PAGE
    after: After | None = None


class MemberList(Reply):
    """One page of members; `next` is the link to the following page, null after the last."""

    members: list[MemberOut]
    next: str | None = Field(description="path and query of the next page, or null")


class MemberUpdate(Request):
    """Some of a member's details; null (or "") clears e-mail, phone, birthday or external id."""

    name: Text(200, 1) | None = None  # type: ignore[valid-type]
    email: Text(320) | None = None  # type: ignore[valid-type]
    phone: Text(32) | None = None  # type: ignore[valid-type]
    birthday: IsoDate | None = None
    marketing_consent: StrictBool | None = None
    external_id: Text(100) | None = Field(  # type: ignore[valid-type]
        default=None, description="the id the brand's other system knows the member by"
    )
    language: MemberLanguage | None = None


class LedgerQuery(Request):
    """A keyset page of the ledger, newest first."""

    # 200 by default: the first page is what the route answered before it had pages.
    limit: PageSize = MAX_PAGE
    after: After | None = Field(
        default=None, description="the entry id the previous page ended with (its `next` link)"
    )


class LedgerPageOut(Reply):
    """A page of a member's ledger, newest first; `next` links the following page."""

    entries: list[LedgerEntryOut]
    next: str | None = Field(default=None, description="path and query of the next page, or null")
