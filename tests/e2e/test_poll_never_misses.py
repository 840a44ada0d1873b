"""A polling Wallet device ends up with every committed change, however transactions overlap.

The device model is Apple's: it asks which serials changed since the tag it was last given, then
downloads each listed pass. The property under test is that, once writers stop and the device
polls one last time (the push after the last change), every pass it holds is the latest version.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import SECRET, truncate_postgres
from walletd.db import Database, utcnow
from walletd.loyalty.brands import create_brand
from walletd.loyalty.cards import next_update_tag, touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import Card
from walletd.push.registrations import parse_tag, register_device, updated_serials

PASS_TYPE_ID = "pass.dev.walletd.loyalty"
LIBRARY_ID = "feedfacefeedfacefeedfacefeedface"
PUSH_TOKEN = "ab" * 32
WRITERS = 6
CARDS_PER_WRITER = 3
TRANSACTIONS_PER_WRITER = 12
# A connection for every writer and the polling device at once (the default pool is sized for
# gunicorn's 4 threads; here a writer waiting for a connection would hide the overlap).
_POOL: dict[str, int] = {"pool_size": WRITERS + 2}

# (session, since) -> (changed serials, the tag to send next time)
ListChanges = Callable[[Session, int | None], tuple[list[str], int]]
# Mark one card changed inside the caller's transaction.
Stamp = Callable[[Session, Card], None]


@dataclass(frozen=True)
class TagScheme:
    """How changes are stamped and how a poll answers."""

    stamp: Stamp
    list_changes: ListChanges


def _ours_list(session: Session, since: int | None) -> tuple[list[str], int]:
    result = updated_serials(session, library_id=LIBRARY_ID, pass_type_id=PASS_TYPE_ID, since=since)
    return result.serials, int(result.last_updated)


def _ours_stamp(session: Session, card: Card) -> None:
    card.update_tag = next_update_tag(session)
    session.flush()


def _naive_next(session: Session) -> int:
    return int(session.scalar(select(func.max(Card.update_tag))) or 0) + 1


def _naive_list(session: Session, since: int | None) -> tuple[list[str], int]:
    tag = _naive_next(session)
    query = select(Card.serial_number).order_by(Card.serial_number)
    if since is not None:
        query = query.where(Card.update_tag >= since)
    return list(session.scalars(query).all()), tag


def _naive_stamp(session: Session, card: Card) -> None:
    card.update_tag = _naive_next(session)
    session.flush()


OURS = TagScheme(_ours_stamp, _ours_list)
# The obvious scheme: "a change gets max(tag) + 1, a poll answers max(tag) + 1". Fine with one
# writer at a time (SQLite), wrong with overlapping transactions (Postgres).
NAIVE = TagScheme(_naive_stamp, _naive_list)


@dataclass
class PollingDevice:
    """What a device knows: its lastUpdated tag and the version (tag) of each pass it holds."""

    db: Database
    list_changes: ListChanges
    tag: str | None = None
    held: dict[str, int] = field(default_factory=dict)
    polls: int = 0

    def poll(self) -> list[str]:
        """Ask what changed, then download each listed pass (separate requests, like Wallet)."""
        with self.db.transaction() as session:
            serials, tag = self.list_changes(session, parse_tag(self.tag))
        with self.db.transaction() as session:
            for serial in serials:
                card = session.scalar(select(Card).where(Card.serial_number == serial))
                assert card is not None
                self.held[serial] = int(card.update_tag)
        self.tag = str(tag)
        self.polls += 1
        return serials


def stale_passes(db: Database, device: PollingDevice) -> dict[str, tuple[int | None, int]]:
    """Passes whose held version is not the committed one: serial -> (held, latest)."""
    with db.transaction() as session:
        latest = {c.serial_number: int(c.update_tag) for c in session.scalars(select(Card))}
    return {
        serial: (device.held.get(serial), tag)
        for serial, tag in latest.items()
        if device.held.get(serial) != tag
    }


def _seed(db: Database, cards: int) -> list[int]:
    """A brand with `cards` members, every card registered on one device; returns card ids."""
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.transaction() as session:
        creds = create_brand(session, "Poll Coffee", now=ctx.now)
        ids = []
        for n in range(cards):
            _, card = enroll_member(session, creds.brand_id, Enrollment(name=f"Member {n}"), ctx)
            register_device(
                session, library_id=LIBRARY_ID, pass_type_id=PASS_TYPE_ID, card=card,
                push_token=PUSH_TOKEN, now=ctx.now,
            )  # fmt: skip
            ids.append(card.id)
    return ids


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The migrated test database (SQLite and Postgres)."""
    database = Database(database_url, **({} if database_url.startswith("sqlite") else _POOL))
    yield database
    database.dispose()


@pytest.fixture
def postgres_db(postgres_migrated: str) -> Iterator[Database]:
    """The migrated Postgres test database, emptied (skipped without a Postgres server)."""
    truncate_postgres(postgres_migrated)
    database = Database(postgres_migrated, **_POOL)
    yield database
    database.dispose()


class InFlight:
    """Counts write transactions that have stamped a card but not committed yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most_seen_by_a_poll = 0

    def add(self, delta: int) -> None:
        with self._lock:
            self.now += delta

    def note_poll(self) -> None:
        with self._lock:
            self.most_seen_by_a_poll = max(self.most_seen_by_a_poll, self.now)


def test_a_device_polling_through_overlapping_writes_ends_with_every_latest_pass(
    db: Database,
) -> None:
    card_ids = _seed(db, WRITERS * CARDS_PER_WRITER)
    device = PollingDevice(db, OURS.list_changes)
    device.poll()
    in_flight = InFlight()
    failures: list[BaseException] = []

    def write(owned: list[int], seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(TRANSACTIONS_PER_WRITER):
                ctx = Context(now=utcnow(), secret_key=SECRET)
                with db.transaction() as session:
                    chosen = rng.sample(owned, rng.randint(1, 2))
                    touch_cards(session, [session.get_one(Card, i) for i in chosen], ctx)
                    session.flush()
                    in_flight.add(1)
                    try:
                        # Commit late, so other writers take tags and commit meanwhile.
                        time.sleep(rng.uniform(0, 0.015))
                    finally:
                        in_flight.add(-1)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    writers = [
        threading.Thread(target=write, args=(card_ids[k::WRITERS], k)) for k in range(WRITERS)
    ]
    for thread in writers:
        thread.start()
    while any(thread.is_alive() for thread in writers):
        in_flight.note_poll()
        device.poll()
        time.sleep(random.uniform(0, 0.003))
    for thread in writers:
        thread.join()
    assert failures == []
    device.poll()  # the push after the last change

    assert stale_passes(db, device) == {}
    assert device.polls >= 3  # the first, at least one during the writes, the last
    if db.is_postgres:
        # The run really polled while transactions held tags they had not committed yet.
        assert in_flight.most_seen_by_a_poll >= 1


def _poll_across_an_overlap(db: Database, scheme: TagScheme) -> tuple[PollingDevice, str]:
    """T1 stamps card A; T2 stamps card B and commits; the device polls; then T1 commits.

    Returns the device after one more poll, and A's serial.
    """
    first, second = _seed(db, 2)
    device = PollingDevice(db, scheme.list_changes)
    device.poll()
    slow = db.sessions()
    try:
        with slow.begin():
            card_a = slow.get_one(Card, first)
            scheme.stamp(slow, card_a)
            with db.transaction() as fast:
                scheme.stamp(fast, fast.get_one(Card, second))
            assert device.poll() != []  # B is reported
        # T1 is committed now, after the poll that could not see it.
    finally:
        slow.close()
    device.poll()
    return device, card_a.serial_number


def test_a_change_committed_after_an_overlapping_poll_is_reported_next_time(
    postgres_db: Database,
) -> None:
    device, serial_a = _poll_across_an_overlap(postgres_db, OURS)
    assert stale_passes(postgres_db, device) == {}
    assert serial_a in device.held


def test_the_naive_max_plus_one_tag_would_lose_that_change(postgres_db: Database) -> None:
    # The same interleaving under max(update_tag) + 1: proof that the test above can fail.
    device, serial_a = _poll_across_an_overlap(postgres_db, NAIVE)
    assert set(stale_passes(postgres_db, device)) == {serial_a}
