"""Segments as data (presets and and/or filter trees), evaluated as SQL on the members table."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from walletd.errors import ValidationError
from walletd.loyalty.money import minor_unit_exponent
from walletd.models import Card, LedgerEntry, Member, Program, Registration, Tier
from walletd.models.ledger import is_visit

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in")
# A segment is one SQL WHERE clause built per request: its size is bounded so that one brand's
# admin cannot make the database (shared by every brand) plan a giant query.
MAX_DEPTH = 6
MAX_LEAVES = 50
MAX_NODES = 100  # conditions, groups and presets together
MAX_IN = 100
MAX_DAYS = 36_500  # a hundred years: older than any member, still far from the calendar's end
MAX_POINTS = 10**12
MAX_VISITS = 10**9
# Primary keys are INTEGER on Postgres, where SQLAlchemy casts each bound id to the column's type:
# a larger id is an error there (and names nothing anyway).
MAX_ID = 2**31 - 1
MAX_TIER_NAME = 64
# Amounts: under a trillion in the currency's major unit, at most six decimals (no currency has
# more than three minor digits), so the stored text and the minor-unit integer stay small.
MAX_AMOUNT_DIGITS = 12
MAX_AMOUNT_DECIMALS = 6
_AMOUNT_TEXT = re.compile(rf"[0-9]{{1,{MAX_AMOUNT_DIGITS}}}(\.[0-9]{{1,{MAX_AMOUNT_DECIMALS}}})?")

# RFM groups in plain terms (recency = days since the last visit, frequency = visits):
# champions came in the last 30 days and 5+ times; loyal came in the last 60 days and 3+ times
# (and are not champions); at risk came 2+ times but not for 61-120 days; sleeping not for 120+.
PRESETS: dict[str, Any] = {
    "all": {"and": []},
    "subscribed_only": {"field": "visits", "op": "eq", "value": 0},
    "one_purchase": {"field": "visits", "op": "eq", "value": 1},
    "three_or_more": {"field": "visits", "op": "gte", "value": 3},
    "champions": {
        "and": [
            {"field": "last_visit_days", "op": "lte", "value": 30},
            {"field": "visits", "op": "gte", "value": 5},
        ]
    },
    "loyal": {
        "and": [
            {"field": "last_visit_days", "op": "lte", "value": 60},
            {"field": "visits", "op": "gte", "value": 3},
            {
                "or": [
                    {"field": "last_visit_days", "op": "gt", "value": 30},
                    {"field": "visits", "op": "lt", "value": 5},
                ]
            },
        ]
    },
    "at_risk": {
        "and": [
            {"field": "visits", "op": "gte", "value": 2},
            {"field": "last_visit_days", "op": "gt", "value": 60},
            {"field": "last_visit_days", "op": "lte", "value": 120},
        ]
    },
    "sleeping": {
        "and": [
            {"field": "visits", "op": "gte", "value": 1},
            {"field": "last_visit_days", "op": "gt", "value": 120},
        ]
    },
    "birthday_this_month": {"field": "birthday_month", "op": "eq", "value": "current"},
}


@dataclass(frozen=True)
class Segment:
    """A validated segment definition (the stored JSON)."""

    definition: dict[str, Any]

    @property
    def is_everyone(self) -> bool:
        """True when the segment is the whole program (one class-level Google message)."""
        return self.definition in ({"preset": "all"}, {"and": []})


def _fail(message: str, path: str) -> ValidationError:
    return ValidationError(message, field=path)


def _int(value: object, path: str, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{name} takes a whole number from {low} to {high}", path)
    return value


def _amount(value: object, path: str, name: str) -> str:
    """A non-negative amount as its decimal text: what is stored is plain JSON, never a Decimal."""
    refusal = _fail(
        f"{name} takes an amount from 0 to {10**MAX_AMOUNT_DIGITS - 1} with at most "
        f'{MAX_AMOUNT_DECIMALS} decimals, as a string such as "25.50" or a number',
        path,
    )
    if isinstance(value, str):
        if not _AMOUNT_TEXT.fullmatch(value):
            raise refusal
        amount = Decimal(value)
    elif isinstance(value, bool):
        raise refusal
    elif isinstance(value, int):
        if not 0 <= value < 10**MAX_AMOUNT_DIGITS:
            raise refusal
        return str(value)
    elif isinstance(value, Decimal | float):
        # A float's shortest repr is the number the client wrote (15.5, not 15.4999...).
        amount = Decimal(repr(value)) if isinstance(value, float) else value
        if not amount.is_finite():
            raise refusal
        exponent = amount.as_tuple().exponent
        if (
            amount < 0
            or (amount and amount.adjusted() >= MAX_AMOUNT_DIGITS)
            or (isinstance(exponent, int) and exponent < -MAX_AMOUNT_DECIMALS)
        ):
            raise refusal
    else:
        raise refusal
    # `+ 0` turns -0 into 0; the exponent checks above keep the fixed-point text short.
    return format(amount + 0, "f")


def _tier_name(value: object, path: str) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_TIER_NAME
        or any(unicodedata.category(char) in ("Cc", "Cs") for char in value)
    ):
        raise _fail(f"tier takes a tier name of 1 to {MAX_TIER_NAME} characters", path)
    return value


FIELD_OPS: dict[str, tuple[str, ...]] = {
    "tier": ("eq", "ne", "in"),
    "points": OPS,
    "spend_12m": OPS,
    "lifetime_spend": OPS,
    "visits": OPS,
    "last_visit_days": OPS,
    "enrolled_days": OPS,
    "birthday_month": OPS,
    "marketing_consent": ("eq", "ne"),
    "wallet": ("eq", "ne", "in"),
    "location": ("eq", "in"),
}
WALLETS = ("apple", "google", "any", "none")


def _check_value(field: str, value: object, path: str) -> Any:
    """The value in its stored form (amounts as text), or a ValidationError on `path`."""
    if field == "tier":
        return _tier_name(value, path)
    if field == "points":
        return _int(value, path, field, 0, MAX_POINTS)
    if field == "visits":
        return _int(value, path, field, 0, MAX_VISITS)
    if field in ("last_visit_days", "enrolled_days"):
        return _int(value, path, field, 0, MAX_DAYS)
    if field == "location":
        return _int(value, path, "location (a location id)", 1, MAX_ID)
    if field in ("spend_12m", "lifetime_spend"):
        return _amount(value, path, field)
    if field == "birthday_month":
        if isinstance(value, str) and value == "current":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
            raise _fail('birthday_month takes "current" or a month number from 1 to 12', path)
        return value
    if field == "marketing_consent":
        if not isinstance(value, bool):
            raise _fail("marketing_consent takes true or false", path)
        return value
    # wallet
    if not isinstance(value, str) or value not in WALLETS:
        raise _fail(f"wallet takes one of {', '.join(WALLETS)}", path)
    return value


@dataclass
class _Budget:
    nodes: int = 0
    leaves: int = 0


def _validate(node: object, path: str, depth: int, budget: _Budget) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise _fail(f"segments nest at most {MAX_DEPTH} levels", path)
    if not isinstance(node, dict):
        raise _fail("each segment node must be an object", path)
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise _fail(f"a segment has at most {MAX_NODES} nodes", path)
    if set(node) == {"preset"}:
        preset = node["preset"]
        if not isinstance(preset, str) or preset not in PRESETS:
            raise _fail(f"unknown preset; use one of {', '.join(PRESETS)}", f"{path}.preset")
        return {"preset": preset}
    for key in ("and", "or"):
        if set(node) == {key}:
            children = node[key]
            if not isinstance(children, list) or len(children) > MAX_NODES:
                raise _fail(f"{key} takes a list of at most {MAX_NODES} nodes", f"{path}.{key}")
            return {
                key: [
                    _validate(child, f"{path}.{key}[{i}]", depth + 1, budget)
                    for i, child in enumerate(children)
                ]
            }
    if set(node) != {"field", "op", "value"}:
        raise _fail('a condition is {"field", "op", "value"}; groups are {"and": [...]}', path)
    field, op, value = node["field"], node["op"], node["value"]
    if not isinstance(field, str) or field not in FIELD_OPS:
        raise _fail(f"unknown field; fields: {', '.join(FIELD_OPS)}", f"{path}.field")
    if not isinstance(op, str) or op not in FIELD_OPS[field]:
        raise _fail(f"{field} takes the operators {', '.join(FIELD_OPS[field])}", f"{path}.op")
    budget.leaves += 1
    if budget.leaves > MAX_LEAVES:
        raise _fail(f"a segment has at most {MAX_LEAVES} conditions", path)
    if op != "in":
        return {"field": field, "op": op, "value": _check_value(field, value, f"{path}.value")}
    if not isinstance(value, list) or not 0 < len(value) <= MAX_IN:
        raise _fail(f"in takes a list of 1 to {MAX_IN} values", f"{path}.value")
    items = [_check_value(field, item, f"{path}.value[{i}]") for i, item in enumerate(value)]
    return {"field": field, "op": op, "value": items}


def parse_segment(data: object) -> Segment:
    """Validate a segment definition from a request; the definition returned is plain JSON.

    Every refusal is a ValidationError whose field is the path of the bad part, such as
    `segment.and[1].value`.
    """
    return Segment(_validate(data, "segment", 0, _Budget()))


@dataclass(frozen=True)
class _Env:
    now: datetime
    exponent: int
    brand_id: int


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    comparisons: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
        "eq": lambda c, v: c == v,
        "ne": lambda c, v: c != v,
        "lt": lambda c, v: c < v,
        "lte": lambda c, v: c <= v,
        "gt": lambda c, v: c > v,
        "gte": lambda c, v: c >= v,
    }
    if op == "in":
        return column.in_(value)  # type: ignore[no-any-return]
    return comparisons[op](column, value)


def _days_ago(column: Any, op: str, days: Any, now: datetime) -> ColumnElement[bool]:
    """`whole days since column` op `days`, as comparisons on the timestamp (NULL never matches)."""

    def before(n: int) -> datetime:
        # Definitions are validated to MAX_DAYS; a stored one from before stays in range too.
        return now - timedelta(days=min(int(n), MAX_DAYS + 1))

    if op == "in":
        return or_(false(), *(_days_ago(column, "eq", d, now) for d in days))
    conditions: dict[str, ColumnElement[bool]] = {
        "gt": column <= before(days + 1),
        "gte": column <= before(days),
        "lt": column > before(days),
        "lte": column > before(days + 1),
        "eq": and_(column > before(days + 1), column <= before(days)),
    }
    if op == "ne":
        return and_(column.is_not(None), not_(conditions["eq"]))
    return conditions[op]


def _holds(amount: int, op: str, value: Any) -> bool:
    """The comparison evaluated in Python, for a member who spent `amount`."""
    if op == "in":
        return amount in value
    results: dict[str, bool] = {
        "eq": amount == value, "ne": amount != value, "lt": amount < value,
        "lte": amount <= value, "gt": amount > value, "gte": amount >= value,
    }  # fmt: skip
    return results[op]


def _spend_12m(op: str, value: Any, env: _Env) -> ColumnElement[bool]:
    """Spend in the last 365 days compared with `value`, from one grouped pass over the ledger.

    A sum per member (a correlated subquery) costs an index probe per member: seconds over a
    million. Members without purchases spent 0, so when 0 satisfies the comparison the segment
    is everyone except the spenders whose total does not.
    """
    total = func.coalesce(func.sum(LedgerEntry.amount_minor), 0)
    spenders = (
        select(LedgerEntry.member_id)
        .where(
            LedgerEntry.brand_id == env.brand_id,
            LedgerEntry.kind.in_(("earn", "reversal")),
            LedgerEntry.created_at >= env.now - timedelta(days=365),
        )
        .group_by(LedgerEntry.member_id)
    )
    if _holds(0, op, value):
        return Member.id.not_in(spenders.having(not_(_compare(total, op, value))))
    return Member.id.in_(spenders.having(_compare(total, op, value)))


def _wallet(value: str) -> ColumnElement[bool]:
    apple = exists(
        select(Registration.id)
        .join(Card, Card.id == Registration.card_id)
        .where(Card.member_id == Member.id, Card.kind == "loyalty")
    )
    google = exists(
        select(Card.id).where(
            Card.member_id == Member.id,
            Card.kind == "loyalty",
            Card.google_saved_at.is_not(None),
            or_(Card.google_deleted_at.is_(None), Card.google_deleted_at < Card.google_saved_at),
        )
    )
    return {
        "apple": apple,
        "google": google,
        "any": or_(apple, google),
        "none": and_(not_(apple), not_(google)),
    }[value]


def _leaf(node: dict[str, Any], env: _Env) -> ColumnElement[bool]:
    field, op, value = node["field"], node["op"], node["value"]
    if field == "tier":
        names = value if op == "in" else [value]
        tier_ids = select(Tier.id).where(Tier.name.in_(names))
        matched: ColumnElement[bool] = Member.tier_id.in_(tier_ids)
        return and_(Member.tier_id.is_not(None), not_(matched)) if op == "ne" else matched
    if field in ("points", "visits"):
        return _compare(getattr(Member, field), op, value)
    if field in ("spend_12m", "lifetime_spend"):

        def minor(v: Any) -> int:
            return int(Decimal(str(v)).scaleb(env.exponent))

        amount = [minor(v) for v in value] if op == "in" else minor(value)
        if field == "spend_12m":
            return _spend_12m(op, amount, env)
        return _compare(Member.lifetime_spend_minor, op, amount)
    if field == "last_visit_days":
        return _days_ago(Member.last_visit_at, op, value, env.now)
    if field == "enrolled_days":
        return _days_ago(Member.created_at, op, value, env.now)
    if field == "birthday_month":

        def month(v: Any) -> int:
            return env.now.month if v == "current" else int(v)

        column = func.extract("month", Member.birthday)
        return and_(
            Member.birthday.is_not(None),
            _compare(column, op, [month(v) for v in value] if op == "in" else month(value)),
        )
    if field == "marketing_consent":
        return _compare(Member.marketing_consent, op, value)
    if field == "wallet":
        values = value if op == "in" else [value]
        matched = or_(*(_wallet(v) for v in values))
        return not_(matched) if op == "ne" else matched
    # location: visited that location
    locations = value if op == "in" else [value]
    return exists(
        select(LedgerEntry.id).where(
            LedgerEntry.member_id == Member.id,
            LedgerEntry.kind == "earn",
            is_visit(),  # a purchase refunded in full was no visit
            LedgerEntry.location_id.in_(locations),
        )
    )


def _condition(node: dict[str, Any], env: _Env) -> ColumnElement[bool]:
    if "preset" in node:
        return _condition(PRESETS[node["preset"]], env)
    if "and" in node:
        return and_(true(), *(_condition(child, env) for child in node["and"]))
    if "or" in node:
        return or_(false(), *(_condition(child, env) for child in node["or"]))
    return _leaf(node, env)


def segment_condition(
    session: Session, brand_id: int, segment: Segment, now: datetime, program_id: int | None = None
) -> ColumnElement[bool]:
    """The WHERE clause on `members` that selects the segment within a brand (or program)."""
    currency = session.scalar(
        select(Program.currency).where(Program.brand_id == brand_id).order_by(Program.id).limit(1)
    )
    env = _Env(now=now, exponent=minor_unit_exponent(currency or "USD"), brand_id=brand_id)
    # An erased member is in no segment: no campaign counts or reaches them (walletd/privacy).
    scope: ColumnElement[bool] = and_(Member.brand_id == brand_id, Member.erased_at.is_(None))
    if program_id is not None:
        scope = and_(scope, Member.program_id == program_id)
    return and_(scope, _condition(segment.definition, env))


def count_segment(
    session: Session, brand_id: int, segment: Segment, now: datetime, program_id: int | None = None
) -> int:
    """How many members the segment holds now (one SQL count, no rows loaded)."""
    condition = segment_condition(session, brand_id, segment, now, program_id)
    return int(session.scalar(select(func.count()).select_from(Member).where(condition)) or 0)


def member_ids_after(
    session: Session,
    brand_id: int,
    segment: Segment,
    now: datetime,
    *,
    after_id: int,
    limit: int,
    program_id: int | None = None,
) -> list[int]:
    """The next chunk of the segment's member ids in id order (keyset pagination)."""
    condition = segment_condition(session, brand_id, segment, now, program_id)
    return list(
        session.scalars(
            select(Member.id)
            .where(condition, Member.id > after_id)
            .order_by(Member.id)
            .limit(limit)
        ).all()
    )
