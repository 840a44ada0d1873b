"""flush_folded: a balance change's rows in one statement on Postgres, exactly as a flush writes
them; the ORM's own flush wherever it cannot stand in for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import bindparam, delete, inspect, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tests.factories import BrandKeys, FrozenClock, services_of, sql_statements
from walletd.db import UTCDateTime
from walletd.loyalty.cards import cards_of_member
from walletd.loyalty.context import Context
from walletd.loyalty.folded import flush_folded
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import Card, LedgerEntry, Member, OutboxMessage
from walletd.push.outbox import Later

# Columns that differ between two members by construction, not by how they were written.
IDENTITY = {
    "id", "member_id", "serial_number", "auth_token", "barcode", "name", "update_tag",
    "referral_code", "idempotency_key",
}  # fmt: skip


def _member(app: Flask, clock: FrozenClock, brand: BrandKeys, name: str) -> int:
    ctx = Context(now=clock(), secret_key=services_of(app).settings.secret_key)
    with services_of(app).db.transaction() as session:
        member, _ = enroll_member(session, brand.brand_id, Enrollment(name=name), ctx)
        return member.id


def _change(session: Session, member_id: int, clock: FrozenClock) -> LedgerEntry:
    """What a scan does to the rows it writes: a new entry, the member's totals, the card's
    version (its tag a SQL expression on Postgres, as touch_cards sets it)."""
    member = session.get_one(Member, member_id)
    card = cards_of_member(session, member_id)[0]
    now = clock() + timedelta(minutes=5)
    entry = LedgerEntry(
        brand_id=member.brand_id, member_id=member.id, kind="earn", points=12,
        amount_minor=1250, currency="USD", idempotency_key=f"k{member_id}", request_hash="h",
        balance_after=member.points + 12, tier_after="Silver", remaining=12, created_at=now,
        scan_extras={"stamps": [1, 8]},
    )  # fmt: skip
    session.add(entry)
    member.points += 12
    member.visits += 1
    member.last_visit_at = now
    postgres = session.get_bind().dialect.name == "postgresql"
    card.update_tag = text("pg_current_xact_id()::text::bigint") if postgres else 7  # type: ignore[assignment]
    card.updated_at = now
    return entry


def _rows(session: Session, member_id: int) -> list[dict[str, Any]]:
    """The member's row, its card's and its newest entry's, as stored."""
    rows = [
        session.execute(select(table).where(column == member_id)).mappings().one()
        for table, column in (
            (Member.__table__, Member.__table__.c.id),
            (Card.__table__, Card.__table__.c.member_id),
        )
    ]
    entry = session.execute(
        select(LedgerEntry.__table__)
        .where(LedgerEntry.member_id == member_id)
        .order_by(LedgerEntry.id.desc())
        .limit(1)
    ).mappings().one()  # fmt: skip
    return [{k: v for k, v in dict(row).items() if k not in IDENTITY} for row in [*rows, entry]]


def _written(app: Flask, member_id: int, clock: FrozenClock, flush: Callable[..., None]) -> Any:
    db = services_of(app).db
    statements = []

    def work() -> None:
        with db.transaction() as session:
            entry = _change(session, member_id, clock)
            flush(session, entry)
            assert inspect(entry).persistent and entry.id is not None
            # Nothing is left for the commit's flush to send.
            statements.extend(sql_statements(app, session.flush))

    statements[:0] = sql_statements(app, work)
    with db.transaction() as session:
        return statements, _rows(session, member_id)


def test_folded_writes_store_what_the_flush_stores(
    app: Flask, clock: FrozenClock, brand: BrandKeys
) -> None:
    folded_id = _member(app, clock, brand, "Folded")
    flushed_id = _member(app, clock, brand, "Flushed")
    statements, folded = _written(app, folded_id, clock, flush_folded)
    _, flushed = _written(app, flushed_id, clock, lambda session, _entry: session.flush())
    assert folded == flushed
    assert folded[0]["points"] > 0 and folded[2]["scan_extras"] == {"stamps": [1, 8]}
    writes = [s for s in statements if s.split()[0].upper() in ("WITH", "INSERT", "UPDATE")]
    if services_of(app).db.is_postgres:
        # One statement for the three rows; the card's tag is the writing transaction's id.
        assert len(writes) == 1 and writes[0].lstrip().startswith("WITH")
        with services_of(app).db.transaction() as session:
            tags = [cards_of_member(session, m)[0].update_tag for m in (folded_id, flushed_id)]
            assert 0 < tags[0] < tags[1]
    else:
        assert len(writes) == 3  # SQLite: the ORM's flush


def test_the_objects_hold_what_was_written(
    app: Flask, clock: FrozenClock, brand: BrandKeys
) -> None:
    member_id = _member(app, clock, brand, "Ada")
    with services_of(app).db.transaction() as session:
        member = session.get_one(Member, member_id)
        card = cards_of_member(session, member_id)[0]
        entry = _change(session, member_id, clock)
        flush_folded(session, entry)
        # Read without a query: the objects hold the written values, the tag included.
        held: list[Any] = []
        reads = sql_statements(
            app, lambda: held.extend((entry.id, card.update_tag, member.points, member.visits))
        )
        assert reads == [] and all(isinstance(value, int) for value in held)
        session.expire_all()
        assert [entry.id, card.update_tag, member.points, member.visits] == held
        # The identity map knows the new row: a query hands back the same object.
        assert session.get(LedgerEntry, held[0]) is entry


@pytest.mark.parametrize("extra", ["a second new row", "a deleted row"])
def test_other_pending_changes_take_the_flush(
    app: Flask, clock: FrozenClock, brand: BrandKeys, extra: str
) -> None:
    member_id = _member(app, clock, brand, "Ada")
    other_id = _member(app, clock, brand, "Bob")
    seen: list[str] = []

    def work() -> None:
        with services_of(app).db.transaction() as session:
            entry = _change(session, member_id, clock)
            if extra == "a second new row":
                session.add(LedgerEntry(
                    brand_id=brand.brand_id, member_id=other_id, kind="bonus", points=1,
                    remaining=1, created_at=clock(),
                ))  # fmt: skip
            else:
                session.delete(
                    session.scalars(
                        select(LedgerEntry).where(LedgerEntry.member_id == other_id)
                    ).first()
                    or session.get_one(Member, other_id)
                )
            flush_folded(session, entry)

    seen = sql_statements(app, work)
    assert not any(s.lstrip().startswith("WITH") for s in seen)
    with services_of(app).db.transaction() as session:
        assert session.get_one(Member, member_id).points == _rows(session, member_id)[0]["points"]
        assert session.scalars(
            select(LedgerEntry).where(LedgerEntry.idempotency_key == f"k{member_id}")
        ).one()


def test_a_row_gone_meanwhile_is_an_error_as_in_the_flush(
    app: Flask, clock: FrozenClock, brand: BrandKeys
) -> None:
    member_id = _member(app, clock, brand, "Ada")
    db = services_of(app).db
    with pytest.raises(StaleDataError), db.transaction() as session:
        with session.no_autoflush:
            card = cards_of_member(session, member_id)[0]
        entry = _change(session, member_id, clock)
        # Removed behind the session's back (as another request would): a Core DELETE.
        with session.no_autoflush:
            session.execute(
                delete(Card).where(Card.id == card.id).execution_options(synchronize_session=False)
            )
        flush_folded(session, entry)
    with db.transaction() as session:  # nothing of the change was kept
        assert session.get_one(Member, member_id).visits == 0
        assert not session.scalars(
            select(LedgerEntry).where(LedgerEntry.idempotency_key == f"k{member_id}")
        ).first()


def test_a_write_handed_over_goes_with_them(
    app: Flask, clock: FrozenClock, brand: BrandKeys
) -> None:
    """touch_cards(defer_apns=True) hands its push rows' INSERT over: it is sent inside the one
    statement on Postgres, after the flush elsewhere, and never lost."""
    member_id = _member(app, clock, brand, "Ada")
    push = text(
        "INSERT INTO outbox (kind, dedupe_key, payload, status, attempts, next_attempt_at,"
        " created_at) VALUES ('apns', :dedupe_key, '{}', 'pending', 0, :now, :now)"
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    later = Later(push, {"dedupe_key": "apns:folded-test", "now": clock()})

    def work() -> None:
        with services_of(app).db.transaction() as session:
            flush_folded(session, _change(session, member_id, clock), later)

    writes = [
        s for s in sql_statements(app, work) if s.split()[0].upper() in ("WITH", "INSERT", "UPDATE")
    ]
    assert len(writes) == (1 if services_of(app).db.is_postgres else 4)
    with services_of(app).db.transaction() as session:
        assert session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == "apns:folded-test")
        ).one()
        assert session.get_one(Member, member_id).visits == 1
