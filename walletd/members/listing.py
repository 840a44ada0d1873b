"""Members and ledger entries in keyset pages: filters, a page size and the id to go on after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from walletd.errors import N_, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.members import find_phone, normalise_email
from walletd.models import Card, LedgerEntry, Member, Program, Tier

DEFAULT_PAGE = 50
MAX_PAGE = 200
# Longer than any name, e-mail or external id worth searching a substring of.
MAX_QUERY = 100
MAX_SEARCH = 200
# Primary keys are 32-bit INTEGER columns on Postgres (see walletd.web.endpoint.MAX_ID).
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class MemberFilters:
    """What a listing keeps: every given filter must hold (absent or blank ones are ignored)."""

    email: str | None = None
    phone: str | None = None
    q: str | None = None
    tier: str | None = None
    program_id: int | None = None
    # The dashboard's search box: part of the name, e-mail or phone, or exactly a referral code,
    # a member id or an external id.
    search: str | None = None


@dataclass(frozen=True)
class MemberPage:
    """One page of members and the id to ask for the next page after (None: it was the last)."""

    members: list[Member]
    next_after: int | None


@dataclass(frozen=True)
class LedgerPage:
    """One page of a member's entries, newest first, and the entry id the next page follows."""

    entries: list[LedgerEntry]
    next_after: int | None


def _text(value: str | None, field: str, max_length: int) -> str | None:
    """A filter's text without surrounding blanks; None when blank; a field error when unusable."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > max_length:
        raise ValidationError(
            N_("{field} must be at most {max} characters"),
            field=field,
            params={"field": field, "max": max_length},
        )
    # NUL and other control characters never match a stored value, and Postgres refuses NUL.
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text):
        raise ValidationError(
            N_("{field} must not contain control characters"), field=field, params={"field": field}
        )
    return text or None


def _page_size(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(
            N_("limit must be 1 to {max}"), field="limit", params={"max": MAX_PAGE}
        )
    return limit


def _conditions(
    session: Session, brand_id: int, filters: MemberFilters, phone_region: str
) -> list[ColumnElement[bool]]:
    # An erased member is found by no route (walletd/privacy).
    conditions: list[ColumnElement[bool]] = [
        Member.brand_id == brand_id,
        Member.erased_at.is_(None),
    ]
    if filters.program_id is not None:
        # Another brand's program is a 404, as its id in a path would be.
        conditions.append(
            Member.program_id == get_program(session, brand_id, filters.program_id).id
        )
    email = _text(filters.email, "email", 320)
    if email is not None:
        # Stored normalised at enrollment, import and edit: an equality the email index serves.
        conditions.append(Member.email == normalise_email(email))
    phone = _text(filters.phone, "phone", 64)
    if phone is not None:
        # Any spelling of a number finds its E.164 form; a text that is no number can still
        # match a row from before migration 0006 that kept its text.
        conditions.append(Member.phone == (find_phone(phone, phone_region) or phone))
    tier = _text(filters.tier, "tier", 100)
    if tier is not None:
        tiers = (
            select(Tier.id)
            .join(Program, Program.id == Tier.program_id)
            .where(Program.brand_id == brand_id, func.lower(Tier.name) == tier.lower())
        )
        conditions.append(Member.tier_id.in_(tiers.scalar_subquery()))
    query = _text(filters.q, "q", MAX_QUERY)
    if query is not None:
        lowered = query.lower()
        matches: list[ColumnElement[bool]] = [
            # SQLite's lower() folds ASCII only: the exact spelling also finds other scripts.
            func.lower(Member.name).contains(lowered, autoescape=True),
            Member.name.contains(query, autoescape=True),
            Member.email.contains(lowered, autoescape=True),
            Member.external_id == query,
        ]
        if query.isascii() and query.isdigit() and int(query) <= MAX_ID:
            matches.append(Member.id == int(query))
        conditions.append(or_(*matches))
    search = _text(filters.search, "q", MAX_SEARCH)
    if search is not None:
        lowered = search.lower()
        matches = [
            func.lower(Member.name).contains(lowered, autoescape=True),
            Member.name.contains(search, autoescape=True),
            Member.email.contains(lowered, autoescape=True),
            Member.phone.contains(search, autoescape=True),
            Member.referral_code == search.upper(),
            Member.external_id == search,
        ]
        phone = find_phone(search, phone_region)
        if phone is not None:
            matches.append(Member.phone == phone)
        if search.isascii() and search.isdigit() and int(search) <= MAX_ID:
            matches.append(Member.id == int(search))
        conditions.append(or_(*matches))
    return conditions


def list_members(
    session: Session,
    brand_id: int,
    filters: MemberFilters,
    *,
    phone_region: str,
    after: int | None = None,
    limit: int = DEFAULT_PAGE,
    newest_first: bool = False,
) -> MemberPage:
    """One page of the brand's members matching every filter, by id (oldest or newest first).

    Keyset pagination: `after` is the last id of the previous page, so members enrolled or
    erased while a client walks the pages never make it skip or repeat one.
    """
    size = _page_size(limit)
    statement: Select[tuple[Member]] = select(Member).where(
        *_conditions(session, brand_id, filters, phone_region)
    )
    if after is not None:
        statement = statement.where(Member.id < after if newest_first else Member.id > after)
    order = Member.id.desc() if newest_first else Member.id
    # One more than asked: whether a next page exists, without a count.
    found = list(session.scalars(statement.order_by(order).limit(size + 1)))
    more = len(found) > size
    members = found[:size]
    return MemberPage(members=members, next_after=members[-1].id if more else None)


def loyalty_cards(session: Session, members: Sequence[Member]) -> dict[int, Card]:
    """Each member's current loyalty card, in one query for a whole page."""
    if not members:
        return {}
    cards: dict[int, Card] = {}
    rows = session.scalars(
        select(Card)
        .where(Card.member_id.in_([m.id for m in members]), Card.kind == "loyalty")
        .order_by(Card.id)
    )
    for card in rows:
        cards[card.member_id] = card  # the newest card wins, as get_card_of chooses
    return cards


def ledger_page(
    session: Session,
    brand_id: int,
    member_id: int,
    *,
    after: int | None = None,
    limit: int = DEFAULT_PAGE,
) -> LedgerPage:
    """One page of a member's ledger, newest first (by time, then id).

    `after` is the last entry id of the previous page; its time is read back so the page goes
    on exactly where the last one stopped, even among entries of the same instant.
    """
    size = _page_size(limit)
    statement = select(LedgerEntry).where(
        LedgerEntry.member_id == member_id, LedgerEntry.brand_id == brand_id
    )
    if after is not None:
        last: datetime | None = session.scalar(
            select(LedgerEntry.created_at).where(
                LedgerEntry.id == after,
                LedgerEntry.member_id == member_id,
                LedgerEntry.brand_id == brand_id,
            )
        )
        if last is None:
            raise ValidationError("after is not an entry of this member's ledger", field="after")
        statement = statement.where(
            or_(
                LedgerEntry.created_at < last,
                and_(LedgerEntry.created_at == last, LedgerEntry.id < after),
            )
        )
    found = list(
        session.scalars(
            statement.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc()).limit(size + 1)
        )
    )
    more = len(found) > size
    entries = found[:size]
    return LedgerPage(entries=entries, next_after=entries[-1].id if more else None)
