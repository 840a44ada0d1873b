"""Serving signed Apple passes: one statement answers a 304, stored bytes answer a fetch.

A pass is signed once per (card, update tag) for the whole site: by the worker when the card
changes (before its push goes out, `presign_passes`), or by the first web request that asks for
a tag nobody signed yet. Every later fetch of that tag, in any process, is a read of stored
bytes; a process also keeps the newest packages it served in memory (ApplePasses.cache).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from walletd.db import UTCDateTime
from walletd.loyalty.context import Context
from walletd.models import Card, Member, PassPackage, Registration
from walletd.observability.metrics import PASS_CACHE
from walletd.passes.apple import ApplePasses
from walletd.passes.cards import card_views
from walletd.passes.view import CardView
from walletd.push.registrations import PassHolder


def render_card_view(
    session: Session, card: Card, ctx: Context, *, base_url: str, secret_key: str
) -> CardView:
    """Everything the pass of a card shows now, with its feedback and manage-messages links."""
    views = render_card_views(session, [card], ctx, base_url=base_url, secret_key=secret_key)
    return views[card.id]


def render_card_views(
    session: Session, cards: Sequence[Card], ctx: Context, *, base_url: str, secret_key: str
) -> dict[int, CardView]:
    """render_card_view of many cards by card id, with a fixed number of queries for the lot."""
    # Imported here: both modules import the pass builders this module sits beside.
    from walletd.feedback import with_feedback_links
    from walletd.privacy.consent import with_manage_link

    views = with_feedback_links(session, card_views(session, cards, now=ctx.now), cards, ctx)
    return {
        card.id: with_manage_link(views[card.id], card, base_url=base_url, secret_key=secret_key)
        for card in cards
    }


def store_package(session: Session, card_id: int, tag: int, data: bytes, now: datetime) -> None:
    """Keep a card's signed pass for `tag`, unless a newer tag is already stored."""
    store_packages(session, [(card_id, tag, data)], now)


def store_packages(
    session: Session, packages: Sequence[tuple[int, int, bytes]], now: datetime
) -> None:
    """store_package of many (card id, tag, bytes), distinct cards, in one statement."""
    if packages:
        session.execute(
            _store_statement(session.get_bind().dialect.name),
            [{"card_id": c, "update_tag": t, "data": d, "signed_at": now} for c, t, d in packages],
        )


@functools.cache
def _store_statement(dialect_name: str) -> Any:
    """The upsert of stored passes, built once per dialect: building it for every pass cost more
    CPU than signing it (bench/storm.py's presign; a new statement is compiled each time)."""
    table = PassPackage.__table__
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.card_id],
        set_={
            "update_tag": insert.excluded.update_tag,
            "data": insert.excluded.data,
            "signed_at": insert.excluded.signed_at,
        },
        where=table.c.update_tag < insert.excluded.update_tag,
    )


def package_of(
    session: Session,
    holder: PassHolder,
    ctx: Context,
    *,
    passes: ApplePasses,
    base_url: str,
    secret_key: str,
) -> bytes:
    """The signed pass of an authenticated card at its current tag: memory, store, or signed now."""
    key = (holder.serial_number, holder.update_tag)
    data = passes.cache.get(key)
    if data is not None:
        PASS_CACHE.labels(result="hit").inc()
        return data
    data = session.scalar(
        select(PassPackage.data).where(
            PassPackage.card_id == holder.card_id, PassPackage.update_tag == holder.update_tag
        )
    )
    if data is None:
        card = session.get_one(Card, holder.card_id)
        view = render_card_view(session, card, ctx, base_url=base_url, secret_key=secret_key)
        data = passes.sign(view, holder.update_tag)
        store_package(session, holder.card_id, holder.update_tag, data, ctx.now)
        PASS_CACHE.labels(result="miss").inc()
    else:
        PASS_CACHE.labels(result="stored").inc()
    passes.cache.put(key, data)
    return data


@functools.cache
def stored_pass_query() -> Any:
    """A card's serving facts by `serial`, with the package stored for its current tag.

    The package is joined only when the card changed at or after `fetch_from` (for a request
    with If-Modified-Since, that time plus one second): a conditional GET that ends in a 304
    reads no bytes. Columns: card id, auth token, update tag, updated_at, erased_at, data.
    walletd/fastpath/apple.py runs its compiled text.
    """
    fetch_from = bindparam("fetch_from", type_=UTCDateTime())
    return (
        select(
            Card.id,
            Card.auth_token,
            Card.update_tag,
            Card.updated_at,
            Member.erased_at,
            PassPackage.data,
        )  # fmt: skip
        .join(Member, Member.id == Card.member_id)
        .outerjoin(
            PassPackage,
            and_(
                PassPackage.card_id == Card.id,
                PassPackage.update_tag == Card.update_tag,
                Card.updated_at >= fetch_from,
            ),
        )
        .where(Card.serial_number == bindparam("serial", type_=String))
    )


def cards_behind_tokens(session: Session, tokens: Sequence[str]) -> list[int]:
    """The cards registered with these push tokens whose stored pass is older than the card."""
    if not tokens:
        return []
    return list(
        session.scalars(
            select(Registration.card_id)
            .join(Card, Card.id == Registration.card_id)
            .outerjoin(PassPackage, PassPackage.card_id == Card.id)
            .where(Registration.push_token.in_(sorted(set(tokens))))
            .where(PassPackage.card_id.is_(None) | (PassPackage.update_tag < Card.update_tag))
            .distinct()
        ).all()
    )


def presign_passes(
    session: Session,
    card_ids: Sequence[int],
    ctx: Context,
    *,
    passes: ApplePasses,
    base_url: str,
    secret_key: str,
) -> int:
    """Sign and store the current pass of each card that has none for its tag; the count signed.

    The worker calls this before pushing, so the fetch that follows a push reads stored bytes.
    """
    if not card_ids:
        return 0
    cards = session.scalars(
        select(Card)
        .join(Member, Member.id == Card.member_id)
        .outerjoin(PassPackage, PassPackage.card_id == Card.id)
        .where(Card.id.in_(sorted(set(card_ids))))
        .where((PassPackage.card_id.is_(None)) | (PassPackage.update_tag < Card.update_tag))
        .order_by(Card.id)
    ).all()
    views = render_card_views(session, cards, ctx, base_url=base_url, secret_key=secret_key)
    signed = [(c.id, int(c.update_tag), passes.sign(views[c.id], int(c.update_tag))) for c in cards]
    store_packages(session, signed, ctx.now)
    return len(cards)
