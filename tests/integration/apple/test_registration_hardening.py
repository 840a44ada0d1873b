"""Apple registrations under abuse: push tokens per registration, the per-card cap, device logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.conftest import POSTGRES_URL, private_postgres_database
from tests.factories import BrandKeys, FrozenClock, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    count,
    issue_pass,
    library_id,
    purchase,
    push_token,
)
from walletd import jobs
from walletd.config import Settings
from walletd.db import UTCDateTime
from walletd.errors import AuthenticationError, ConfigError, ValidationError
from walletd.models import Card, Device, DeviceLog, OutboxMessage, Registration
from walletd.push import registrations
from walletd.push.dispatcher import Dispatcher
from walletd.push.outbox import card_push_rows
from walletd.schema import downgrade, upgrade
from walletd.worker import Worker

CAP = 3
# Function-scoped fixtures (one app, database and APNs fake per test) are shared by a test's
# examples on purpose; each example starts by forgetting every registration.
GENERATED = examples(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ = examples(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
# Any character, lone surrogates and NUL included: json.dumps escapes them and json.loads gives
# them back, as a hostile device would send them.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
LONG_TEXT = st.text(st.characters(exclude_categories=()), min_size=1990, max_size=2100)
# Every character str.isdigit() accepts ("²", "١", "①", ...), alone or among ASCII digits.
ISDIGIT_CHARACTERS = [chr(c) for c in range(0x110000) if chr(c).isdigit()]
DIGITS_OF_ANY_SCRIPT = st.text(
    st.sampled_from(ISDIGIT_CHARACTERS) | st.sampled_from("0123456789"), min_size=1, max_size=25
) | st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=25)
LOG_BODIES = (
    st.builds(
        lambda logs: {"logs": logs},
        st.lists(ANY_TEXT | JSON_VALUES, max_size=70)
        | st.lists(LONG_TEXT, min_size=1, max_size=12),
    )
    | JSON_VALUES
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The Apple suite's settings with a small cap, so the cap is reached in a few requests.

    These tests send hundreds of requests from one client, so request rate limits (tested in
    tests/integration/test_rate_limits.py) are off here.
    """
    return settings.with_changes(max_devices_per_card=CAP, ratelimit_enabled=False)


@pytest.fixture
def three_passes(client: FlaskClient, brand: BrandKeys) -> list[IssuedPass]:
    """Three members' passes, issued once per test and shared by its examples."""
    return [issue_pass(client, brand, name) for name in ("Ada", "Grace", "Edsger")]


def _forget_registrations(app: Flask) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(Registration))
        session.execute(delete(Device))


def _card_id(app: Flask, serial: str) -> int:
    with services_of(app).db.transaction() as session:
        card_id = session.scalar(select(Card.id).where(Card.serial_number == serial))
        assert card_id is not None
        return card_id


def _push_tokens_of(app: Flask, serial: str) -> set[str]:
    """The tokens a change of this card is pushed to (the outbox rows it would write)."""
    card_id = _card_id(app, serial)
    with services_of(app).db.transaction() as session:
        rows = card_push_rows(session, [card_id], google=False, serials={})
    return {row["payload"]["token"] for row in rows}


def _registered_libraries(app: Flask, serial: str) -> set[str]:
    with services_of(app).db.transaction() as session:
        return set(
            session.scalars(
                select(Device.library_id)
                .join(Registration, Registration.device_id == Device.id)
                .join(Card, Card.id == Registration.card_id)
                .where(Card.serial_number == serial)
            ).all()
        )


def _apns_rows(app: Flask) -> list[OutboxMessage]:
    with services_of(app).db.transaction() as session:
        return list(
            session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "apns")).all()
        )


# --- 1. a registration never moves another pass's pushes ---------------------------------------


def test_registering_a_victims_device_id_for_ones_own_pass_leaves_the_victims_pushes_alone(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    three_passes: list[IssuedPass],
) -> None:
    victim_pass, attacker_pass, _ = three_passes
    victim = WalletDevice(client, library_id(1), push_token(1))
    assert victim.register(victim_pass).status_code == 201
    # The attacker learned the victim's deviceLibraryIdentifier and holds a pass of their own.
    attacker = WalletDevice(client, library_id(1), push_token(0xBAD))
    assert attacker.register(attacker_pass).status_code == 201
    assert attacker.register(attacker_pass, token=push_token(0xBAD2)).status_code == 200
    purchase(client, brand, victim_pass)
    dispatcher.drain()
    assert [request.token for request in apns.requests] == [push_token(1)]
    assert _push_tokens_of(app, attacker_pass.serial) == {push_token(0xBAD2)}


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["register", "unregister"]),
        st.integers(0, 2),  # device
        st.integers(0, 2),  # pass
        st.integers(0, 3),  # token
    ),
    min_size=1,
    max_size=12,
)


@GENERATED
@given(operations=OPERATIONS)
def test_a_cards_pushes_go_exactly_to_the_tokens_its_own_registrations_last_gave(
    app: Flask,
    client: FlaskClient,
    three_passes: list[IssuedPass],
    operations: list[tuple[str, int, int, int]],
) -> None:
    _forget_registrations(app)
    model: dict[tuple[int, int], str] = {}  # (device, pass) -> the token it registered last
    for action, device, card, token in operations:
        phone = WalletDevice(client, library_id(device + 1), push_token(token + 1))
        issued = three_passes[card]
        if action == "register":
            expected = 200 if (device, card) in model else 201
            assert phone.register(issued).status_code == expected
            model[(device, card)] = phone.push_token
        else:
            assert phone.unregister(issued).status_code == 200
            model.pop((device, card), None)
    for card, issued in enumerate(three_passes):
        expected_tokens = {token for (_, c), token in model.items() if c == card}
        assert _push_tokens_of(app, issued.serial) == expected_tokens, card
    assert count(app, Device) == len({device for device, _ in model})


def test_a_410_forgets_only_the_registrations_not_confirmed_since(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    three_passes: list[IssuedPass],
) -> None:
    first, second, _ = three_passes
    phone = WalletDevice(client, library_id(1), push_token(1))
    assert phone.register(first).status_code == 201
    assert phone.register(second).status_code == 201
    gone_at = clock.advance(minutes=1)
    clock.advance(minutes=1)
    # Only the second pass was confirmed after APNs retired the token.
    assert phone.register(second).status_code == 200
    apns.respond(phone.push_token, status=410, reason="Unregistered", timestamp_ms=_ms(gone_at))
    purchase(client, brand, first)
    dispatcher.drain()
    assert _registered_libraries(app, first.serial) == set()
    assert _registered_libraries(app, second.serial) == {phone.library_id}
    assert count(app, Device) == 1


def test_a_bad_device_token_forgets_that_token_only(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    three_passes: list[IssuedPass],
) -> None:
    first, second, _ = three_passes
    assert WalletDevice(client, library_id(1), push_token(1)).register(first).status_code == 201
    assert WalletDevice(client, library_id(1), push_token(2)).register(second).status_code == 201
    apns.respond(push_token(1), status=400, reason="BadDeviceToken")
    purchase(client, brand, first)
    purchase(client, brand, second)
    dispatcher.drain()
    assert _registered_libraries(app, first.serial) == set()
    assert _push_tokens_of(app, second.serial) == {push_token(2)}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- 2. at most CAP devices per card -----------------------------------------------------------


@GENERATED
@given(devices=st.lists(st.integers(0, 7), min_size=1, max_size=16))
def test_a_card_keeps_its_most_recently_confirmed_devices_and_a_scan_pushes_only_to_those(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    issued: IssuedPass,
    devices: list[int],
) -> None:
    _forget_registrations(app)
    recent: list[int] = []  # registered devices, most recently confirmed last
    for device in devices:
        clock.advance(seconds=1)
        phone = WalletDevice(client, library_id(100 + device), push_token(100 + device))
        expected = 200 if device in recent else 201
        assert phone.register(issued).status_code == expected
        recent = [d for d in recent if d != device][-(CAP - 1) :] + [device]
    assert _registered_libraries(app, issued.serial) == {library_id(100 + d) for d in recent}
    assert count(app, Device) == len(recent)
    purchase(client, brand, issued)
    assert sorted(row.payload["token"] for row in _apns_rows(app)) == sorted(
        push_token(100 + d) for d in recent
    )


def test_a_new_phone_of_the_owner_still_registers_when_old_phones_fill_the_cap(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    clock: FrozenClock,
    apns: ApnsFakeServer,
    dispatcher: Dispatcher,
    issued: IssuedPass,
) -> None:
    for n in range(1, CAP + 1):  # phones restored or replaced over the years, never unregistered
        clock.advance(days=100)
        assert (
            WalletDevice(client, library_id(n), push_token(n)).register(issued).status_code == 201
        )
    clock.advance(days=100)
    new_phone = WalletDevice(client, library_id(99), push_token(99))
    assert new_phone.register(issued).status_code == 201
    assert library_id(1) not in _registered_libraries(app, issued.serial)
    purchase(client, brand, issued)
    dispatcher.drain()
    assert push_token(99) in {request.token for request in apns.requests}
    assert len(apns.requests) == CAP


def test_the_cap_job_trims_cards_registered_before_the_cap(
    app: Flask, client: FlaskClient, issued: IssuedPass, clock: FrozenClock
) -> None:
    now = clock()
    card_id = _card_id(app, issued.serial)
    with services_of(app).db.transaction() as session:
        for n in range(CAP + 5):  # as an old release let them be written
            device = Device(library_id=library_id(n), created_at=now, updated_at=now)
            session.add(device)
            session.flush()
            session.add(
                Registration(
                    device_id=device.id,
                    card_id=card_id,
                    pass_type_id=issued.pass_type_id,
                    push_token=push_token(n),
                    created_at=now,
                    updated_at=now + timedelta(seconds=n),
                )
            )
    assert len(_push_tokens_of(app, issued.serial)) == CAP + 5
    assert jobs.cap_registrations(services_of(app)) == 5
    assert _push_tokens_of(app, issued.serial) == {push_token(n) for n in range(5, CAP + 5)}
    assert count(app, Device) == CAP
    assert jobs.cap_registrations(services_of(app)) == 0


@FUZZ
@given(value=DIGITS_OF_ANY_SCRIPT | ANY_TEXT)
def test_the_new_count_settings_take_only_plain_positive_numbers(value: str) -> None:
    names = ("MAX_DEVICES_PER_CARD", "DEVICE_LOG_MAX_ROWS", "DEVICE_LOG_MAX_DAYS")
    fields = ("max_devices_per_card", "device_log_max_rows", "device_log_max_days")
    text = value.strip()
    plain = text.isascii() and text.isdigit() and len(text) <= 9 and int(text) >= 1
    for name, field in zip(names, fields, strict=True):
        try:
            settings = Settings.from_env({f"WALLETD_{name}": value})
        except ConfigError:
            assert not plain
            continue
        assert plain and getattr(settings, field) == int(text)


# --- registration input never reaches the database unchecked -----------------------------------


@FUZZ
@given(library=ANY_TEXT, token=JSON_VALUES | ANY_TEXT)
def test_registering_any_device_id_or_push_token_stores_it_or_refuses_it_on_its_field(
    app: Flask, clock: FrozenClock, issued: IssuedPass, library: str, token: Any
) -> None:
    services = services_of(app)
    try:
        with services.db.transaction() as session:
            card = registrations.authenticate_pass(session, issued.serial, issued.auth_token)
            registrations.register_device(
                session,
                library_id=library,
                pass_type_id=issued.pass_type_id,
                card=card,
                push_token=token,
                now=clock(),
            )
    except ValidationError as exc:
        assert exc.field in ("pushToken", "deviceLibraryIdentifier")
        return
    assert isinstance(token, str)
    with services.db.transaction() as session:
        stored = session.scalar(
            select(Registration.push_token)
            .join(Device, Device.id == Registration.device_id)
            .where(Device.library_id == library)
        )
    assert stored == token.strip().lower()
    assert all(c in "0123456789abcdef" for c in stored)


@FUZZ
@given(serial=ANY_TEXT, token=st.none() | ANY_TEXT)
def test_authenticating_any_serial_and_token_is_a_card_or_unauthorized(
    app: Flask, issued: IssuedPass, serial: str, token: str | None
) -> None:
    with services_of(app).db.transaction() as session:
        try:
            card = registrations.authenticate_pass(session, serial, token)
        except AuthenticationError:
            return
    assert (serial, token) == (issued.serial, issued.auth_token)
    assert card.serial_number == serial


# --- 5. passesUpdatedSince ---------------------------------------------------------------------


@FUZZ
@given(value=DIGITS_OF_ANY_SCRIPT | ANY_TEXT | st.integers(0, 2**70).map(str))
def test_a_tag_is_ascii_digits_within_64_bits_or_is_ignored(value: str) -> None:
    tag = registrations.parse_tag(value)
    text = value.strip()
    if text.isascii() and text.isdigit() and int(text) < 2**63:
        assert tag == int(text)
    else:
        assert tag is None


@GENERATED
@given(value=DIGITS_OF_ANY_SCRIPT | st.text(max_size=60) | st.integers(0, 2**70).map(str))
def test_listing_with_any_passes_updated_since_answers_200_or_204(
    phone: WalletDevice, issued: IssuedPass, value: str
) -> None:
    if phone.updates(issued).status_code == 204:
        assert phone.register(issued).status_code == 201
    response = phone.updates(issued, value)
    assert response.status_code in (200, 204), value
    if response.status_code == 200:
        assert response.get_json()["serialNumbers"] == [issued.serial]


@FUZZ
@given(since=st.none() | st.integers(-(2**80), 2**80), library=ANY_TEXT, ptid=ANY_TEXT)
def test_listing_with_any_tag_device_or_pass_type_never_fails(
    app: Flask, issued: IssuedPass, since: int | None, library: str, ptid: str
) -> None:
    with services_of(app).db.transaction() as session:
        result = registrations.updated_serials(
            session, library_id=library, pass_type_id=ptid, since=since
        )
    assert result.serials == []
    assert result.last_updated.isdigit()


# --- 3. device logs ----------------------------------------------------------------------------


def _stored_logs(app: Flask) -> list[str]:
    with services_of(app).db.transaction() as session:
        return list(session.scalars(select(DeviceLog.message).order_by(DeviceLog.id)).all())


def _is_apple_shape(body: object) -> bool:
    return isinstance(body, dict) and isinstance(body.get("logs"), list)


def _assert_bounded(lines: list[str]) -> None:
    assert len(lines) <= registrations.MAX_LOG_LINES
    assert all(0 < len(line) <= registrations.MAX_LOG_LENGTH for line in lines)
    assert sum(map(len, lines)) <= registrations.MAX_LOG_TOTAL
    assert not any(c < " " and c not in "\t\n" for line in lines for c in line)


@GENERATED
@given(body=LOG_BODIES)
def test_any_log_body_is_answered_without_error_and_stores_a_bounded_amount(
    app: Flask, client: FlaskClient, body: Any
) -> None:
    before = len(_stored_logs(app))
    response = client.post("/passes/v1/log", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 400, 413)
    added = _stored_logs(app)[before:]
    if response.status_code != 200 or not _is_apple_shape(body):
        assert added == []
    _assert_bounded(added)


@FUZZ
@given(body=LOG_BODIES)
def test_recording_device_logs_keeps_strings_within_the_bounds_and_nothing_else(
    app: Flask, clock: FrozenClock, body: Any
) -> None:
    with services_of(app).db.transaction() as session:
        session.execute(delete(DeviceLog))
        kept = registrations.record_device_logs(session, body, clock())
    stored = _stored_logs(app)
    assert kept == len(stored)
    _assert_bounded(stored)
    if not _is_apple_shape(body):
        assert stored == []
    else:
        lines = [
            line for line in body["logs"][: registrations.MAX_LOG_LINES] if isinstance(line, str)
        ]
        # Every stored line is the start of a line the device sent, in the order sent.
        assert len(stored) <= len(lines)


@GENERATED
@given(
    ages=st.lists(st.integers(0, 60 * 24 * 40), max_size=40).map(lambda a: sorted(a, reverse=True)),
    max_rows=st.integers(1, 25),
    max_days=st.integers(1, 30),
)
def test_pruning_keeps_the_newest_rows_within_the_age_limit(
    app: Flask, clock: FrozenClock, ages: list[int], max_rows: int, max_days: int
) -> None:
    now = clock()
    with services_of(app).db.transaction() as session:
        session.execute(delete(DeviceLog))
        session.add_all(
            DeviceLog(message=f"line {i}", created_at=now - timedelta(minutes=age))
            for i, age in enumerate(ages)
        )
    with services_of(app).db.transaction() as session:
        registrations.prune_device_logs(session, now=now, max_rows=max_rows, max_days=max_days)
    limit = timedelta(days=max_days)
    young = [f"line {i}" for i, age in enumerate(ages) if timedelta(minutes=age) <= limit]
    assert _stored_logs(app) == young[-max_rows:]


def test_the_worker_prunes_device_logs_every_few_minutes(app: Flask, clock: FrozenClock) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        session.add(DeviceLog(message="old", created_at=clock() - timedelta(days=60)))
        session.add(DeviceLog(message="new", created_at=clock()))
    worker = Worker(svc)
    assert worker.scheduler is not None
    job = worker.scheduler.get_job("prune_device_logs")
    assert job is not None
    assert job.trigger.interval <= timedelta(minutes=15)
    assert jobs.prune_device_logs(svc) == 1
    assert _stored_logs(app) == ["new"]


# --- migration 0005 ----------------------------------------------------------------------------


def _insert_placeholder(connection: sa.Connection, table: str, row_id: int, when: datetime) -> None:
    """A row with made-up values in every required column, whatever the schema holds then."""
    values: dict[str, object] = {}
    for column in sa.inspect(connection).get_columns(table):
        name, kind = column["name"], column["type"]
        if name == "id":
            values[name] = row_id
        elif column["nullable"] or column.get("default") is not None:
            continue
        elif name.endswith("_id"):
            values[name] = 1  # the placeholder brand, program or member
        elif isinstance(kind, sa.Boolean):
            values[name] = False
        elif isinstance(kind, sa.DateTime):
            values[name] = when
        elif isinstance(kind, sa.Date):
            values[name] = when.date()
        elif isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
            values[name] = 0
        else:  # text: unique per row, within the column's length
            values[name] = f"{row_id}"[: getattr(kind, "length", None) or 64]
    connection.execute(sa.table(table, *map(sa.column, values)).insert(), [values])


@contextmanager
def _fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("WALLETD_TEST_DATABASE_URL is not set: Postgres tests need a server")
    with private_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_0005_moves_each_devices_token_onto_its_registrations_and_back(
    backend: str, tmp_path: Path
) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    devices = sa.table(
        "devices",
        sa.column("id", sa.Integer),
        sa.column("library_id", sa.String),
        sa.column("push_token", sa.String),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    regs = sa.table(
        "registrations",
        sa.column("id", sa.Integer),
        sa.column("device_id", sa.Integer),
        sa.column("card_id", sa.Integer),
        sa.column("pass_type_id", sa.String),
        sa.column("created_at", UTCDateTime()),
    )
    with _fresh_database(backend, tmp_path) as url:
        upgrade(url, "0004")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                _insert_placeholder(connection, "brands", 1, when)
                _insert_placeholder(connection, "programs", 1, when)
                _insert_placeholder(connection, "members", 1, when)
                for card_id in (7, 8):
                    _insert_placeholder(connection, "cards", card_id, when)
                connection.execute(
                    devices.insert(),
                    [
                        {"id": 1, "library_id": "a", "push_token": "aa", "created_at": when,
                         "updated_at": when + timedelta(hours=1)},
                        {"id": 2, "library_id": "b", "push_token": "bb", "created_at": when,
                         "updated_at": when + timedelta(hours=2)},
                    ],
                )  # fmt: skip
                connection.execute(
                    regs.insert(),
                    [
                        {"id": n, "device_id": device, "card_id": card, "pass_type_id": "p",
                         "created_at": when}
                        for n, device, card in ((1, 1, 7), (2, 1, 8), (3, 2, 7))
                    ],
                )  # fmt: skip
            upgrade(url, "0005")
            moved = sa.table(
                "registrations",
                sa.column("id", sa.Integer),
                sa.column("push_token", sa.String),
                sa.column("updated_at", UTCDateTime()),
            )
            with engine.begin() as connection:
                rows = connection.execute(
                    sa.select(moved.c.id, moved.c.push_token, moved.c.updated_at).order_by(
                        moved.c.id
                    )
                ).all()
                columns = {c["name"] for c in sa.inspect(connection).get_columns("devices")}
            assert [tuple(row) for row in rows] == [
                (1, "aa", when + timedelta(hours=1)),
                (2, "aa", when + timedelta(hours=1)),
                (3, "bb", when + timedelta(hours=2)),
            ]
            assert "push_token" not in columns
            downgrade(url, "0004")
            with engine.begin() as connection:
                back = connection.execute(
                    sa.select(devices.c.id, devices.c.push_token).order_by(devices.c.id)
                ).all()
            assert [tuple(row) for row in back] == [(1, "aa"), (2, "bb")]
        finally:
            engine.dispose()
