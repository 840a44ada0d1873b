"""The Apple Wallet web service's use cases: device registrations, updated serials, logs."""

from __future__ import annotations

import functools
import hmac
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    CursorResult,
    Integer,
    String,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from walletd.db import UTCDateTime
from walletd.delivery.recording import record_synced
from walletd.errors import AuthenticationError, ValidationError
from walletd.loyalty.cards import current_poll_tag
from walletd.models import Card, Device, DeviceLog, Member, Registration
from walletd.webhooks import active_endpoints_exist
from walletd.webhooks import events as webhook_events

log = logging.getLogger(__name__)

DEFAULT_MAX_DEVICES_PER_CARD = 10
# What one POST /v1/log may store: Wallet sends a handful of lines of a few hundred characters.
MAX_LOG_LINES = 50
MAX_LOG_LENGTH = 2000
MAX_LOG_TOTAL = 16_000
# Update tags are 64-bit integers; anything larger cannot be one of ours.
MAX_TAG = 2**63 - 1
_MAX_TAG_DIGITS = len(str(MAX_TAG))
# An authentication token that never matches, compared when the serial is unknown so that the
# time taken does not tell an attacker whether a serial exists.
_DUMMY_TOKEN = "x" * 43
# Identifiers Apple sends in paths (device library ids, pass type ids, serials) are printable
# ASCII; anything else (NUL, surrogates) cannot be ours and must not reach the database.
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,128}")
# APNs device tokens are hexadecimal; not limited to 64 digits, as Apple may lengthen them.
_PUSH_TOKEN = re.compile(r"[0-9A-Fa-f]{1,200}")
# Control characters other than tab and newline are dropped from stored log lines.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def is_identifier(value: object) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


@dataclass(frozen=True)
class PassHolder:
    """A card whose pass authentication token was checked, as the web service needs it."""

    card_id: int
    brand_id: int
    member_id: int
    kind: str
    serial_number: str
    update_tag: int
    updated_at: datetime  # Last-Modified of the pass
    erased: bool


def _holder_columns() -> tuple[Any, ...]:
    """What every authentication of a pass reads of its card."""
    return (Card.id, Card.auth_token, Card.brand_id, Card.member_id, Card.kind)


def _holder_query(serial: str) -> Any:
    return (
        select(
            *_holder_columns(),
            Card.update_tag,
            Card.updated_at,
            Member.erased_at,
        )  # fmt: skip
        .join(Member, Member.id == Card.member_id)
        .where(Card.serial_number == serial)
    )


def _holder(row: Any, serial: str) -> PassHolder:
    return PassHolder(
        card_id=row.id, brand_id=row.brand_id, member_id=row.member_id, kind=row.kind,
        serial_number=serial, update_tag=int(row.update_tag), updated_at=row.updated_at,
        erased=row.erased_at is not None,
    )  # fmt: skip


def authenticate_holder(
    session: Session, serial: str, token: str | None, *, lock: bool = False
) -> PassHolder:
    """The card whose serial and pass authentication token match, read in one statement.

    One error for every failure. An erased member's pass is served (voided) only to the devices
    still registered for it, until walletd/privacy/erasure.forget_erased_devices removes them.
    With `lock`, the card row is locked for the rest of the transaction (registrations count
    each other against the per-card device cap).
    """
    row = None
    if is_identifier(serial):
        query = _holder_query(serial)
        if lock:
            query = query.with_for_update(of=Card)
        row = session.execute(query).first()
    expected = row.auth_token if row is not None else _DUMMY_TOKEN
    given = token.encode("utf-8", "replace") if token else b""
    if not given or not hmac.compare_digest(expected.encode(), given) or row is None:
        raise AuthenticationError("unauthorized")
    holder = _holder(row, serial)
    if holder.erased and not _has_registrations(session, holder.card_id):
        raise AuthenticationError("unauthorized")
    return holder


def find_holder(session: Session, serial: str) -> PassHolder | None:
    """A card by serial for its signed download link (checked by the caller); None when erased."""
    if not is_identifier(serial):
        return None
    row = session.execute(_holder_query(serial)).first()
    return None if row is None or row.erased_at is not None else _holder(row, serial)


def authenticate_pass(session: Session, serial: str, token: str | None) -> Card:
    """The card whose serial and pass authentication token match; one error for every failure."""
    holder = authenticate_holder(session, serial, token)
    return session.get_one(Card, holder.card_id)


def _erased(session: Session, card: Card) -> bool:
    return session.scalar(select(Member.erased_at).where(Member.id == card.member_id)) is not None


def _has_registrations(session: Session, card_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Registration.card_id == card_id))))


def check_push_token(push_token: object) -> str:
    text = push_token.strip() if isinstance(push_token, str) else ""
    if _PUSH_TOKEN.fullmatch(text) is None:
        raise ValidationError("pushToken must be a hexadecimal device token", field="pushToken")
    # One spelling per token, so two registrations of one token share one push.
    return text.lower()


def register_device(
    session: Session,
    *,
    library_id: str,
    pass_type_id: str,
    card: PassHolder | Card,
    push_token: object,
    now: datetime,
    max_devices: int = DEFAULT_MAX_DEVICES_PER_CARD,
) -> bool:
    """Register a device for an authenticated card's updates; True when the registration is new.

    The push token is stored on this card's registration only. A new registration past
    `max_devices` for the card evicts the card's least recently confirmed ones. The caller
    authenticated the card with `lock=True`, so concurrent registrations of one card queue and
    each counts the others for the cap. Upserts keep a registration to four statements after
    authentication (bench/hotpath_profile.py): device, registration, cap, webhook endpoints.
    """
    token = check_push_token(push_token)
    if isinstance(card, Card):
        card = _lock_holder(session, card)
    if card.erased:
        # A closed card takes no new devices (the token check alone would let one in).
        raise AuthenticationError("unauthorized")
    if not is_identifier(library_id):
        raise ValidationError(
            "deviceLibraryIdentifier is not valid", field="deviceLibraryIdentifier"
        )
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        device_id, created = session.execute(
            registration_upsert(),
            {
                "library": library_id, "of_card": card.card_id, "pass_type": pass_type_id,
                "token": token, "at": now,
            },
        ).one()  # fmt: skip
    else:
        statements = register_statements(dialect)
        device_id = session.execute(
            statements.device, {"library_id": library_id, "created_at": now, "updated_at": now}
        ).scalar_one()
        created = session.execute(
            statements.registration,
            {
                "device_id": device_id, "card_id": card.card_id, "pass_type_id": pass_type_id,
                "push_token": token, "created_at": now, "updated_at": now,
            },
        ).scalar_one_or_none()  # fmt: skip
    if created is None:
        # A re-registration refreshes this pass's token and marks when it was last confirmed,
        # which decides whether a later 410 from APNs predates it.
        session.execute(
            refresh_registration_statement(),
            {
                "of_device": device_id,
                "of_card": card.card_id,
                "new_token": token,
                "confirmed_at": now,
            },
        )
        return False
    _evict_beyond_cap(session, card.card_id, max(max_devices, 1))
    webhook_events.pass_changed(
        session, card.brand_id, card.member_id, card.card_id, card.kind, "apple",
        installed=True, now=now,
    )  # fmt: skip
    return True


def _lock_holder(session: Session, card: Card) -> PassHolder:
    """An already authenticated card as a PassHolder, its row locked like authenticate_holder's."""
    erased_at = session.execute(
        select(Member.erased_at)
        .join(Card, Card.member_id == Member.id)
        .where(Card.id == card.id)
        .with_for_update(of=Card)
    ).scalar_one()
    return PassHolder(
        card_id=card.id, brand_id=card.brand_id, member_id=card.member_id, kind=card.kind,
        serial_number=card.serial_number, update_tag=int(card.update_tag),
        updated_at=card.updated_at, erased=erased_at is not None,
    )  # fmt: skip


@dataclass(frozen=True)
class RegisterStatements:
    device: Any
    registration: Any


@functools.cache
def register_statements(dialect: str) -> RegisterStatements:
    """The two upserts of a registration, built once per dialect and run with parameters.

    Built with inline values they were compiled again on every request (~0.6 ms each,
    bench/hotpath_profile.py); as constants SQLAlchemy's compiled cache always hits.
    """
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    devices = Device.__table__
    device = insert(devices)
    device = device.on_conflict_do_update(
        index_elements=[devices.c.library_id], set_={"updated_at": device.excluded.updated_at}
    ).returning(devices.c.id)
    registrations = Registration.__table__
    registration = (
        insert(registrations)
        .on_conflict_do_nothing(index_elements=[registrations.c.device_id, registrations.c.card_id])
        .returning(registrations.c.id)
    )
    return RegisterStatements(device=device, registration=registration)


@functools.cache
def registration_upsert() -> Any:
    """Postgres: register_statements' two upserts in one statement (parameters library,
    of_card, pass_type, token, at); one row: the device's id and the new registration's id, or
    NULL when the device already held one for the card (the caller then refreshes it)."""
    at = bindparam("at", type_=UTCDateTime())
    device_insert = postgresql.insert(Device)
    device = (
        device_insert.values(
            library_id=bindparam("library", type_=String), created_at=at, updated_at=at
        )
        .on_conflict_do_update(
            index_elements=[Device.library_id],
            set_={"updated_at": device_insert.excluded.updated_at},
        )
        .returning(Device.id)
        .cte("device")
    )
    registration = (
        postgresql.insert(Registration)
        .from_select(
            ["device_id", "card_id", "pass_type_id", "push_token", "created_at", "updated_at"],
            select(
                device.c.id,
                bindparam("of_card", type_=BigInteger),
                bindparam("pass_type", type_=String),
                bindparam("token", type_=String),
                at,
                at,
            ),
        )
        .on_conflict_do_nothing(index_elements=[Registration.device_id, Registration.card_id])
        .returning(Registration.id)
        .cte("registration")
    )
    return select(device.c.id, registration.c.id).select_from(
        device.outerjoin(registration, true())
    )


@functools.cache
def register_holder_query() -> Any:
    """authenticate_holder's row for a registration (parameter `serial`), the card locked, and
    what decides whether register_device has more to do than two upserts: whether the brand has
    an active webhook endpoint (a pass.installed event) and how many registrations the card has
    (the cap). Columns: id, auth_token, brand_id, member_id, kind, erased_at, endpoints,
    registrations. walletd/fastpath/apple.py runs its compiled text.
    """
    registered = select(func.count()).where(Registration.card_id == Card.id).scalar_subquery()
    return (
        select(
            *_holder_columns(),
            Member.erased_at,
            active_endpoints_exist(Card.brand_id),
            registered,
        )  # fmt: skip
        .join(Member, Member.id == Card.member_id)
        .where(Card.serial_number == bindparam("serial", type_=String))
        .with_for_update(of=Card)
    )


@functools.cache
def refresh_registration_statement() -> Any:
    """A re-registration's update (parameters of_device, of_card, new_token, confirmed_at)."""
    return (
        update(Registration)
        .where(
            Registration.device_id == bindparam("of_device", type_=BigInteger),
            Registration.card_id == bindparam("of_card", type_=BigInteger),
        )
        .values(push_token=bindparam("new_token"), updated_at=bindparam("confirmed_at"))
        .execution_options(synchronize_session=False)
    )


@functools.cache
def eviction_statement() -> Any:
    """Postgres: the cap in one statement (parameters of_card, cap), built once
    (walletd/fastpath/apple.py runs it too): the card's registrations past the `cap` most
    recently confirmed go, then their devices that hold no other registration. One row: how
    many registrations and how many devices went."""
    past_cap = (
        select(Registration.id)
        .where(Registration.card_id == bindparam("of_card", type_=BigInteger))
        .order_by(Registration.updated_at.desc(), Registration.id.desc())
        .offset(bindparam("cap", type_=Integer))
    )
    gone = (
        delete(Registration)
        .where(Registration.id.in_(past_cap))
        .returning(Registration.id, Registration.device_id)
        .cte("gone")
    )
    # The statement's parts see the rows as they were before it: skip the registrations it
    # deletes when asking whether a device holds another one.
    dropped = (
        delete(Device)
        .where(
            Device.id.in_(select(gone.c.device_id)),
            ~exists().where(
                Registration.device_id == Device.id, Registration.id.not_in(select(gone.c.id))
            ),
        )
        .returning(Device.id)
        .cte("dropped")
    )
    return select(
        select(func.count()).select_from(gone).scalar_subquery(),
        select(func.count()).select_from(dropped).scalar_subquery(),
    )


def _evict_beyond_cap(session: Session, card_id: int, cap: int) -> int:
    """Drop a card's registrations past the `cap` most recently confirmed ones."""
    if session.get_bind().dialect.name == "postgresql":
        evicted, _ = session.execute(eviction_statement(), {"of_card": card_id, "cap": cap}).one()
        if evicted:
            log.info("card %d is at its cap of %d devices: evicted %d", card_id, cap, evicted)
        return int(evicted)
    rows = session.execute(
        select(Registration.id, Registration.device_id)
        .where(Registration.card_id == card_id)
        .order_by(Registration.updated_at.desc(), Registration.id.desc())
    ).all()
    evicted = rows[cap:]
    if not evicted:
        return 0
    session.execute(
        delete(Registration)
        .where(Registration.id.in_([row.id for row in evicted]))
        .execution_options(synchronize_session=False)
    )
    _drop_unregistered_devices(session, {row.device_id for row in evicted})
    log.info("card %d is at its cap of %d devices: evicted %d", card_id, cap, len(evicted))
    return len(evicted)


def evict_over_cap(session: Session, *, max_devices: int) -> int:
    """Apply the per-card cap to every card (registrations made before the cap or the setting)."""
    cap = max(max_devices, 1)
    crowded = session.scalars(
        select(Registration.card_id)
        .group_by(Registration.card_id)
        .having(func.count(Registration.id) > cap)
        .order_by(Registration.card_id)
    ).all()
    return sum(_evict_beyond_cap(session, card_id, cap) for card_id in crowded)


def _drop_unregistered_devices(session: Session, device_ids: Iterable[int]) -> None:
    """Delete the given devices that no longer hold any registration."""
    ids = sorted(set(device_ids))
    if not ids:
        return
    session.execute(
        delete(Device)
        .where(Device.id.in_(ids), ~exists().where(Registration.device_id == Device.id))
        .execution_options(synchronize_session=False)
    )


def unregister_device(
    session: Session, *, library_id: str, card: PassHolder | Card, now: datetime
) -> None:
    """Remove a registration; the device goes too when it was its last one."""
    if not is_identifier(library_id):
        return
    if isinstance(card, Card):
        card = _lock_holder(session, card)
    device_id = session.scalar(select(Device.id).where(Device.library_id == library_id))
    if device_id is None:
        return
    removed = session.execute(
        delete(Registration)
        .where(Registration.device_id == device_id, Registration.card_id == card.card_id)
        .returning(Registration.id)
        .execution_options(synchronize_session=False)
    ).first()
    if removed is None:
        return
    _drop_unregistered_devices(session, [device_id])
    webhook_events.pass_changed(
        session, card.brand_id, card.member_id, card.card_id, card.kind, "apple",
        installed=False, now=now,
    )  # fmt: skip


@dataclass(frozen=True)
class UpdatedSerials:
    """Serials changed since a tag, and the tag to use next time."""

    serials: list[str]
    last_updated: str


def parse_tag(value: str | None) -> int | None:
    """A passesUpdatedSince value, or None when absent or not one of our tags.

    Only ASCII digits up to 2**63 - 1 count: `str.isdigit()` also accepts "²" or "١", which
    `int()` refuses or reads as another number.
    """
    if value is None:
        return None
    text = value.strip()
    if not (0 < len(text) <= _MAX_TAG_DIGITS and text.isascii() and text.isdigit()):
        return None
    tag = int(text)
    return tag if tag <= MAX_TAG else None


@functools.cache
def updated_serials_query(*, postgres: bool, since: bool) -> Any:
    """The statement behind updated_serials, with parameters `library_id`, `pass_type_id` and,
    when `since`, `since`; built once (walletd/fastpath runs its compiled text too).

    On Postgres one row even when nothing matched (the aggregates are NULL): the poll tag, the
    serials, and the registrations whose device is handed a version it lacks. On SQLite one row
    per registration: serial, registration id, the card's tag, the registration's synced tag.
    """
    if postgres:
        tag: Any = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        behind_now = (Card.update_tag < tag) & (
            func.coalesce(Registration.synced_tag, 0) <= Card.update_tag
        )
        columns: tuple[Any, ...] = (
            tag,
            postgresql.array_agg(  # type: ignore[no-untyped-call]
                postgresql.aggregate_order_by(Card.serial_number, Card.serial_number)
            ),
            func.array_agg(Registration.id).filter(behind_now),
        )
    else:
        columns = (Card.serial_number, Registration.id, Card.update_tag, Registration.synced_tag)
    query = (
        select(*columns)
        .select_from(Card)
        .join(Registration, Registration.card_id == Card.id)
        .join(Device, Device.id == Registration.device_id)
        .where(
            Device.library_id == bindparam("library_id", type_=String),
            Registration.pass_type_id == bindparam("pass_type_id", type_=String),
        )
    )
    if since:
        query = query.where(Card.update_tag >= bindparam("since", type_=BigInteger))
    return query if postgres else query.order_by(Card.serial_number)


def updated_serials(
    session: Session,
    *,
    library_id: str,
    pass_type_id: str,
    since: int | None,
    now: datetime | None = None,
) -> UpdatedSerials:
    """The device's registered serials changed at or after `since` (all when absent).

    On Postgres the poll tag is read by the same statement as the serials, from the statement's
    own snapshot: every change it does not see belongs to a transaction at or after the
    snapshot's xmin, so reporting xmin as lastUpdated never skips one, in one round trip.
    """
    if not (is_identifier(library_id) and is_identifier(pass_type_id)):
        return UpdatedSerials(serials=[], last_updated=str(current_poll_tag(session)))
    if since is not None and not 0 <= since <= MAX_TAG:
        since = None  # not a tag we handed out: answer as to a device without one
    postgres = session.get_bind().dialect.name == "postgresql"
    params: dict[str, Any] = {"library_id": library_id, "pass_type_id": pass_type_id}
    if since is not None:
        params["since"] = since
    # [delivery] The device downloads what it is handed now: record, once per version, that it
    # got its card's current version. Only committed versions (tag below the poll tag) count.
    if postgres:
        tag_value, serials, behind = session.execute(
            updated_serials_query(postgres=True, since=since is not None), params
        ).one()
        if behind and now is not None:
            record_synced(session, sorted(behind), tag=int(tag_value), now=now)
        return UpdatedSerials(serials=list(serials or []), last_updated=str(tag_value))
    # SQLite runs one writer at a time: read the tag first, then the serials.
    first_tag = current_poll_tag(session)
    query = updated_serials_query(postgres=False, since=since is not None)
    rows = session.execute(query, params).all()
    behind = [
        r.id for r in rows if r.update_tag < first_tag and not (r.synced_tag or 0) > r.update_tag
    ]
    if behind and now is not None:
        record_synced(session, behind, tag=first_tag, now=now)
    return UpdatedSerials(serials=[r.serial_number for r in rows], last_updated=str(first_tag))


def _storable(line: str) -> str:
    """A log line the database takes: no lone surrogates, NULs or terminal control codes."""
    text = line.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text).strip()


def record_device_logs(session: Session, payload: object, now: datetime) -> int:
    """Store the lines of a /v1/log body `{"logs": [str, ...]}`; returns how many were kept.

    Anything else stores nothing. At most MAX_LOG_LINES entries are read, each line is cut to
    MAX_LOG_LENGTH characters and a body stores at most MAX_LOG_TOTAL characters in all;
    entries that are not strings are skipped.
    """
    logs = payload.get("logs") if isinstance(payload, Mapping) else None
    if not isinstance(logs, list):
        return 0
    kept: list[str] = []
    budget = MAX_LOG_TOTAL
    for line in logs[:MAX_LOG_LINES]:
        if not isinstance(line, str):
            continue
        text = _storable(line[: MAX_LOG_LENGTH * 2])[:MAX_LOG_LENGTH][:budget]
        if not text:
            continue
        kept.append(text)
        budget -= len(text)
        if budget <= 0:
            break
    session.add_all(DeviceLog(message=text, created_at=now) for text in kept)
    return len(kept)


def prune_device_logs(session: Session, *, now: datetime, max_rows: int, max_days: int) -> int:
    """Delete device log lines older than `max_days` and all but the newest `max_rows`."""
    gone = 0
    old: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(DeviceLog).where(DeviceLog.created_at < now - timedelta(days=max_days))
    )
    gone += old.rowcount
    # The newest row past the limit; it and every older one go.
    boundary = session.scalar(
        select(DeviceLog.id).order_by(DeviceLog.id.desc()).offset(max(max_rows, 0)).limit(1)
    )
    if boundary is not None:
        excess: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            delete(DeviceLog).where(DeviceLog.id <= boundary)
        )
        gone += excess.rowcount
    return gone


def forget_token(session: Session, token: str, *, gone_at: datetime | None) -> int:
    """Drop the registrations of a push token APNs no longer delivers to; returns how many.

    A registration confirmed again after APNs's 410 timestamp has a live token: keep it. The
    decision is per registration, so no pass's re-registration keeps another pass's alive.
    """
    query = select(Registration.id, Registration.device_id).where(Registration.push_token == token)
    if gone_at is not None:
        query = query.where(Registration.updated_at <= gone_at)
    rows = session.execute(query).all()
    if not rows:
        return 0
    session.execute(
        delete(Registration)
        .where(Registration.id.in_([row.id for row in rows]))
        .execution_options(synchronize_session=False)
    )
    _drop_unregistered_devices(session, {row.device_id for row in rows})
    return len(rows)
