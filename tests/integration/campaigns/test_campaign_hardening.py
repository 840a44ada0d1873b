"""Campaign input hardening: generated segments, dates, campaigns and automations, no 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.factories import BrandKeys
from tests.integration.campaigns.conftest import Shop, push_token
from walletd.campaigns import automations, reports, service
from walletd.campaigns.segments import (
    FIELD_OPS,
    OPS,
    PRESETS,
    count_segment,
    member_ids_after,
    parse_segment,
)
from walletd.campaigns.templates import MAX_MESSAGE_LENGTH
from walletd.errors import NotFoundError, ValidationError, WalletdError
from walletd.loyalty.context import Context
from walletd.models import Automation, Card, OutboxMessage
from walletd.push.outbox import GOOGLE_CLASS_MESSAGE, GOOGLE_MESSAGE

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- generated JSON ---------------------------------------------------------------------------

AWKWARD_NUMBERS = st.sampled_from(
    [0, -1, 1, 12, 13, 36500, 36501, 1_000_000, 10**12, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63),
     10**30, Decimal("-0"), Decimal("1e999999"), Decimal("1E-1000000"), Decimal("NaN"),
     Decimal("sNaN"), Decimal("Infinity"), Decimal("15.00"), Decimal("14.999"), 2.5, 15.0,
     float("nan"), float("inf"), 1e308]
)  # fmt: skip
AWKWARD_TEXTS = st.sampled_from(
    ["", " ", "current", "Gold", "VIP", "apple", "none", "\x00", "Go\x00ld", "\ud800", "1e999",
     "NaN", "-5", "15.00", "0.001", "9" * 40, "1_000", "٣", "²", "x" * 70, "{name}"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=0, max_value=40_000),
    AWKWARD_NUMBERS,
    st.floats(),
    st.decimals(),
    st.text(max_size=20),
    AWKWARD_TEXTS,
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
    ),
    max_leaves=12,
)
LEAF_VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.lists(st.integers(min_value=0, max_value=12), max_size=120),
    JSON,
)
LEAVES = st.fixed_dictionaries(
    {
        "field": st.one_of(st.sampled_from([*FIELD_OPS, "shoe_size"]), SCALARS),
        "op": st.one_of(st.sampled_from([*OPS, "between"]), SCALARS),
        "value": LEAF_VALUES,
    }
)
AMOUNTS = st.one_of(
    st.decimals(min_value=0, max_value=10**13, places=2),
    st.decimals(min_value=0, max_value=100, places=7),
    st.from_regex(r"[0-9]{1,13}(\.[0-9]{1,7})?", fullmatch=True),
    st.floats(min_value=0, max_value=1e13),
    st.integers(min_value=0, max_value=10**13),
)
# Values of the right type for each field, in and just past their bounds.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "tier": st.one_of(st.sampled_from(["Gold", "Silver", "VIP", "Platinum"]), st.text(max_size=70)),
    "points": st.integers(min_value=0, max_value=10**13),
    "spend_12m": AMOUNTS,
    "lifetime_spend": AMOUNTS,
    "visits": st.integers(min_value=0, max_value=10**10),
    "last_visit_days": st.integers(min_value=0, max_value=40_000),
    "enrolled_days": st.integers(min_value=0, max_value=40_000),
    "birthday_month": st.one_of(st.just("current"), st.integers(min_value=0, max_value=13)),
    "marketing_consent": st.booleans(),
    "wallet": st.sampled_from(["apple", "google", "any", "none", "samsung"]),
    "location": st.integers(min_value=0, max_value=2**64),
}


def _plausible_leaf(field: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(FIELD_OPS[field]).flatmap(
        lambda op: st.fixed_dictionaries(
            {
                "field": st.just(field),
                "op": st.just(op),
                "value": st.lists(PLAUSIBLE[field], min_size=1, max_size=4)
                if op == "in"
                else PLAUSIBLE[field],
            }
        )
    )


PLAUSIBLE_LEAVES = st.sampled_from(list(FIELD_OPS)).flatmap(_plausible_leaf)
PRESET_NODES = st.builds(lambda p: {"preset": p}, st.one_of(st.sampled_from([*PRESETS, "x"]), JSON))
SEGMENTS = st.one_of(
    st.recursive(
        st.one_of(PLAUSIBLE_LEAVES, PLAUSIBLE_LEAVES, LEAVES, PRESET_NODES),
        lambda children: st.builds(
            lambda key, items: {key: items},
            st.sampled_from(["and", "or", "and", "or", "not"]),
            st.lists(children, max_size=5),
        ),
        max_leaves=25,
    ),
    PLAUSIBLE_LEAVES,
    JSON,
)


def _dates_near(day: date) -> st.SearchStrategy[tuple[date, date]]:
    def shifted(days: int) -> date:
        try:
            return day + timedelta(days=days)
        except OverflowError:
            return date.max if days > 0 else date.min

    return st.integers(min_value=-3, max_value=4000).map(lambda n: (day, shifted(n)))


DATE_PAIRS = st.one_of(
    st.tuples(st.dates(), st.dates()),
    st.dates().flatmap(_dates_near),
    st.dates(min_value=date(1960, 1, 1), max_value=date(3010, 1, 1)).flatmap(_dates_near),
    st.sampled_from([(date(9999, 12, 31), date(9999, 12, 31)), (date.min, date.min),
                     (date(2026, 1, 1), date.max), (date(1526, 1, 1), date(2026, 1, 1))]),
)  # fmt: skip
OFFSETS = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)
MOMENTS = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=OFFSETS),
    st.sampled_from([datetime.max, datetime.min]).flatmap(
        lambda moment: OFFSETS.map(lambda tz: moment.replace(tzinfo=tz))
    ),
)
SEND_ATS = st.one_of(
    MOMENTS, MOMENTS.map(datetime.isoformat), JSON, st.just("9999-12-31T23:59:59-01:00")
)
PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=210)
TEMPLATE_TEXTS = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.one_of(PRINTABLE, st.sampled_from(["{name}", "{points}", "{tier}", "{{", "}}"])),
        min_size=1,
        max_size=6,
    ).map("".join),
    st.sampled_from(["Hi {name}", "{points} points, {tier}", "{name:>300000000}", "{name!r}",
                     "{name.__class__.__mro__}", "{{literal}}", "{reward}", "x" * 501]),
)  # fmt: skip
CAMPAIGN_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.one_of(PRINTABLE, st.text(max_size=210), JSON),
    "message": st.one_of(TEMPLATE_TEXTS, JSON),
    "segment": SEGMENTS,
    "send_at": SEND_ATS,
    "holdout_percent": st.one_of(st.integers(min_value=0, max_value=50), JSON),
    "lift_window_days": st.one_of(st.integers(min_value=1, max_value=90), JSON),
    "draft": st.one_of(st.booleans(), JSON),
    "program_id": JSON,
}
VALID_CAMPAIGN = {"name": "Promo", "message": "Hi", "segment": {"preset": "all"}}
CAMPAIGNS = st.one_of(
    # A valid campaign with one or some values replaced, so that every check is reached.
    st.sampled_from(list(CAMPAIGN_FIELDS)).flatmap(
        lambda key: CAMPAIGN_FIELDS[key].map(lambda value: {**VALID_CAMPAIGN, key: value})
    ),
    st.fixed_dictionaries({}, optional=CAMPAIGN_FIELDS).map(lambda c: {**VALID_CAMPAIGN, **c}),
    st.fixed_dictionaries({}, optional=CAMPAIGN_FIELDS),
    JSON,
)


@contextmanager
def rolled_back(shop: Shop) -> Iterator[Session]:
    """A session whose work is thrown away, so every generated example starts equal."""
    with shop.svc.db.sessions() as session:
        try:
            yield session
        finally:
            session.rollback()


@pytest.fixture
def seeded(shop: Shop) -> Shop:
    """A shop with members of several ages, visits, tiers and wallets."""
    ann, ben = shop.enroll_many(["Ann Lee", "Ben"], tokens=[push_token(1), push_token(2)])
    shop.visit(ann, "12.50", at=shop.days_ago(3), location_id=shop.location_id())
    shop.visit(ben, "600", at=shop.days_ago(40))
    shop.enroll("Cat", at=shop.days_ago(800), consent=False)
    return shop


# --- segments --------------------------------------------------------------------------------


@PROPERTY
@given(data=SEGMENTS)
def test_any_json_segment_is_refused_on_its_path_or_counts_on_the_database(
    seeded: Shop, data: Any
) -> None:
    try:
        segment = parse_segment(data)
    except ValidationError as exc:
        assert exc.field is not None
        assert exc.field == "segment" or exc.field.startswith(("segment.", "segment["))
        event("refused")
        return
    event("counted")
    # What is stored and echoed is plain JSON, and reading it back gives the same segment.
    stored = json.loads(json.dumps(segment.definition))
    assert parse_segment(stored) == segment
    with rolled_back(seeded) as session:
        brand_id, now = seeded.brand.brand_id, seeded.clock()
        count = count_segment(session, brand_id, segment, now)
        ids = member_ids_after(session, brand_id, segment, now, after_id=0, limit=10)
        assert 0 <= count <= 3 and len(ids) == count


SEGMENT_PATHS: list[tuple[Any, str]] = [
    ({"field": "last_visit_days", "op": "gt", "value": 1_000_000}, "segment.value"),
    ({"and": [{"preset": "all"}, {"field": "enrolled_days", "op": "lt", "value": 10**9}]},
     "segment.and[1].value"),
    ({"or": [{"and": [{"field": "visits", "op": "in", "value": [1, 2, -3]}]}]},
     "segment.or[0].and[0].value[2]"),
    ({"field": "spend_12m", "op": "gte", "value": Decimal("1e999999")}, "segment.value"),
    ({"field": "tier", "op": "eq", "value": "Go\x00ld"}, "segment.value"),
    ({"field": "points", "op": "gt", "value": 2**64}, "segment.value"),
    ({"field": "wallet", "op": "nope", "value": "apple"}, "segment.op"),
    ({"and": [{"fieldx": "visits", "op": "eq", "value": 1}]}, "segment.and[0]"),
    ({"preset": "whales"}, "segment.preset"),
    ({"and": [{"and": []}] * 101}, "segment.and"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "path"), SEGMENT_PATHS)
def test_a_bad_segment_names_the_path_of_the_bad_value(data: Any, path: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_segment(data)
    assert refused.value.field == path


def test_money_thresholds_are_stored_as_decimal_strings_whatever_json_type_they_came_as() -> None:
    numbers = [Decimal("15.50"), 15, "15.50", 15.5, Decimal("-0")]
    stored = [
        parse_segment({"field": "spend_12m", "op": "gte", "value": n}).definition["value"]
        for n in numbers
    ]
    assert stored == ["15.50", "15", "15.50", "15.5", "0"]
    listed = parse_segment({"field": "lifetime_spend", "op": "in", "value": [Decimal("1.5"), 2]})
    assert listed.definition["value"] == ["1.5", "2"]


def test_a_campaign_with_a_json_number_as_spend_threshold_is_created_and_echoed(
    client: FlaskClient, brand: BrandKeys
) -> None:
    body = (
        '{"name": "Big spenders", "message": "Thanks {name}", "segment": '
        '{"field": "spend_12m", "op": "gte", "value": 100.50}}'
    )
    headers = {**brand.admin, "Content-Type": "application/json"}
    response = client.post("/api/v1/campaigns", data=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["segment"]["value"] == "100.50"
    preview = client.get(
        "/api/v1/segments/preview",
        query_string={"segment": '{"field": "last_visit_days", "op": "gt", "value": 1000000}'},
        headers=brand.admin,
    )
    assert preview.status_code == 422
    assert preview.get_json()["error"]["field"] == "segment.value"


# --- reports ---------------------------------------------------------------------------------


@PROPERTY
@given(pair=DATE_PAIRS)
def test_a_summary_for_any_pair_of_dates_is_a_report_or_a_refusal_of_from_or_to(
    seeded: Shop, pair: tuple[date, date]
) -> None:
    start, end = pair
    with rolled_back(seeded) as session:
        try:
            result = reports.summary(session, seeded.brand.brand_id, start, end)
        except ValidationError as exc:
            assert exc.field in ("from", "to")
            event(f"refused on {exc.field}")
            return
    event("reported")
    assert reports.EARLIEST <= start <= end <= reports.LATEST
    json.dumps(result)


def test_a_summary_far_in_the_future_or_reversed_is_refused_on_its_field(
    client: FlaskClient, brand: BrandKeys
) -> None:
    cases = [
        ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
        ({"from": "2026-01-01", "to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01", "to": "2026-01-01"}, "from"),
        ({"from": "2026-03-09", "to": "2026-03-01"}, "to"),
    ]
    answers = []
    for query, _ in cases:
        response = client.get("/api/v1/reports/summary", query_string=query, headers=brand.admin)
        answers.append((response.status_code, response.get_json()["error"]["field"]))
    assert answers == [(422, field) for _, field in cases]


# --- campaigns -------------------------------------------------------------------------------


@settings(PROPERTY, max_examples=200)
@given(data=CAMPAIGNS)
def test_creating_a_campaign_from_any_json_raises_only_domain_errors(
    seeded: Shop, data: Any
) -> None:
    with rolled_back(seeded) as session:
        try:
            campaign = service.create_campaign(session, seeded.brand.brand_id, data, seeded.ctx())
        except WalletdError as exc:
            event(f"refused on {exc.field}")
            return
        event("created")
        session.flush()
        stats = service.campaign_stats(session, campaign, seeded.clock())
    json.dumps(stats)
    assert stats["send_at"] is not None and len(stats["message"]) <= MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"send_at": "9999-12-31T23:59:59-01:00"}, "send_at"),
        ({"send_at": "0001-01-01T00:00:00+01:00"}, "send_at"),
        ({"send_at": datetime(2026, 3, 11, 12)}, "send_at"),
        ({"holdout_percent": 2**70}, "holdout_percent"),
        ({"lift_window_days": float("nan")}, "lift_window_days"),
        ({"program_id": 2**64}, "program_id"),
        ({"name": "Spring\x00sale"}, "name"),
        ({"message": "Hi {name:>300000000}"}, "message"),
        ({"message": "Hi {name.__class__.__mro__}"}, "message"),
        ({"message": "\ud800"}, "message"),
    ],
)
def test_campaign_values_that_used_to_crash_are_refused_on_their_field(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    data = {"name": "Promo", "message": "Hi", "segment": {"preset": "all"}, **change}
    with rolled_back(shop) as session, pytest.raises(ValidationError) as refused:
        service.create_campaign(session, shop.brand.brand_id, data, shop.ctx())
    assert refused.value.field == field


@PROPERTY
@given(campaign_id=st.one_of(st.integers(), AWKWARD_NUMBERS, JSON))
def test_any_campaign_id_is_a_campaign_or_not_found(seeded: Shop, campaign_id: Any) -> None:
    with rolled_back(seeded) as session, pytest.raises(NotFoundError):
        service.get_campaign(session, seeded.brand.brand_id, campaign_id)


def test_an_aware_datetime_is_accepted_as_send_at(shop: Shop) -> None:
    when = datetime(2026, 3, 10, 15, tzinfo=timezone(timedelta(hours=2)))
    data = {"name": "Promo", "message": "Hi", "segment": {"preset": "all"}, "send_at": when}
    with rolled_back(shop) as session:
        campaign = service.create_campaign(session, shop.brand.brand_id, data, shop.ctx())
        assert campaign.send_at == datetime(2026, 3, 10, 13, tzinfo=UTC)


def test_a_campaign_message_is_personalised_for_each_member(shop: Shop) -> None:
    ann, ben = shop.enroll_many(["Ann Lee", "Ben"], tokens=[push_token(1), push_token(2)])
    data = {"name": "Promo", "message": "Hi {name}: {points} points ({tier}) {{x}}",
            "segment": {"preset": "all"}}  # fmt: skip
    with shop.svc.db.transaction() as session:
        service.create_campaign(session, shop.brand.brand_id, data, shop.ctx())
    shop.fan_out()
    with shop.svc.db.transaction() as session:
        texts = dict(session.execute(select(Card.member_id, Card.message)).tuples().all())
    assert texts == {
        ann: "Hi Ann: 50 points (Silver) {x}",
        ben: "Hi Ben: 50 points (Silver) {x}",
    }


@pytest.mark.parametrize(
    ("message", "kinds"),
    [("Hi {name}", {GOOGLE_MESSAGE}), ("Double points", {GOOGLE_CLASS_MESSAGE})],
)
def test_a_personal_message_to_everyone_goes_to_each_google_card_not_to_the_class(
    shop: Shop, message: str, kinds: set[str]
) -> None:
    member = shop.enroll("Ann")
    shop.save_google(member, at=shop.days_ago(1))
    data = {"name": "Promo", "message": message, "segment": {"preset": "all"}}
    ctx = Context(now=shop.clock(), secret_key="k" * 40, google_enabled=True)
    with shop.svc.db.transaction() as session:
        campaign = service.create_campaign(session, shop.brand.brand_id, data, ctx)
    with shop.svc.db.transaction() as session:
        assert service.claim_due_campaign(session, "w", ctx.now) == campaign.id
    while True:
        with shop.svc.db.transaction() as session:
            if service.fan_out_chunk(session, campaign.id, "w", ctx) == "done":
                break
    with shop.svc.db.transaction() as session:
        written = set(
            session.scalars(
                select(OutboxMessage.kind).where(OutboxMessage.campaign_id == campaign.id)
            ).all()
        )
    assert written & {GOOGLE_MESSAGE, GOOGLE_CLASS_MESSAGE} == kinds


# --- automations -----------------------------------------------------------------------------


AUTOMATION_ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.one_of(st.sampled_from([*automations.KINDS, "anniversary"]), JSON),
    "enabled": JSON,
    "message": st.one_of(
        st.sampled_from(["Hi {name}", "{reward} for {needed}", "{expiring} on {expiry_date}"]),
        TEMPLATE_TEXTS,
        JSON,
    ),
    "delay_days": st.one_of(st.integers(min_value=0, max_value=366), JSON),
    "holdout_percent": st.one_of(st.integers(min_value=0, max_value=51), JSON),
    "program_id": JSON,
}
VALID_AUTOMATION = {"kind": "welcome", "enabled": True, "message": None, "delay_days": None,
                    "holdout_percent": None}  # fmt: skip


@PROPERTY
@given(
    arguments=st.one_of(
        st.sampled_from(list(AUTOMATION_ARGUMENTS)).flatmap(
            lambda key: AUTOMATION_ARGUMENTS[key].map(
                lambda value: {**VALID_AUTOMATION, key: value}
            )
        ),
        st.fixed_dictionaries({}, optional=AUTOMATION_ARGUMENTS).map(
            lambda changes: {**VALID_AUTOMATION, **changes}
        ),
    ),
)
def test_setting_an_automation_from_any_json_raises_only_domain_errors(
    seeded: Shop, arguments: dict[str, Any]
) -> None:
    arguments.setdefault("program_id", seeded.brand.program_id)
    program_id, kind = arguments.pop("program_id"), arguments.pop("kind")
    with rolled_back(seeded) as session:
        try:
            automation = automations.set_automation(
                session, seeded.brand.brand_id, program_id, kind, now=seeded.clock(), **arguments
            )
        except WalletdError as exc:
            event(f"refused on {exc.field}")
            return
        event("set")
        session.flush()
    assert isinstance(automation.enabled, bool) and len(automation.message) <= MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    ("kind", "message", "accepted"),
    [
        ("welcome", "Hi {name}, {points} points, {tier}", True),
        ("welcome", "Only {needed} to go until {reward}", False),
        ("reward_near", "Only {needed} to go until {reward}", True),
        ("points_expiring", "{expiring} expire on {expiry_date}", True),
        ("tier_upgrade", "{expiring} expire on {expiry_date}", False),
        ("welcome", "Hi {name:>300000000}", False),
    ],
)
def test_each_automation_takes_the_placeholders_it_can_fill(
    shop: Shop, kind: str, message: str, accepted: bool
) -> None:
    with rolled_back(shop) as session:
        try:
            automations.set_automation(
                session, shop.brand.brand_id, shop.brand.program_id, kind, enabled=True,
                message=message,
            )  # fmt: skip
        except ValidationError as exc:
            assert (exc.field, accepted) == ("message", False)
            assert "{name}" in exc.message
        else:
            assert accepted


def test_every_default_automation_text_passes_its_own_check(shop: Shop) -> None:
    for kind, default in automations.KINDS.items():
        with rolled_back(shop) as session:
            automations.set_automation(
                session, shop.brand.brand_id, shop.brand.program_id, kind, enabled=True,
                message=default.message,
            )  # fmt: skip


def test_a_stored_format_spec_is_sent_literally_without_building_a_huge_string(shop: Shop) -> None:
    hostile = "Hi {name:>300000000} {name.__class__.__mro__}"
    with shop.svc.db.transaction() as session:
        automations.list_automations(session, shop.brand.program_id)
        # A text saved before templates were checked, written past the validation.
        session.execute(
            update(Automation)
            .where(Automation.program_id == shop.brand.program_id, Automation.kind == "welcome")
            .values(enabled=True, message=hostile)
        )
    (ann,) = shop.enroll_many(["Ann"], tokens=[push_token(1)])
    with shop.svc.db.transaction() as session:
        assert automations.run_automations(session, shop.ctx())["welcome.sent"] == 1
        assert session.scalar(select(Card.message).where(Card.member_id == ann)) == hostile
