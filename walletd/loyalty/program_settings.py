"""A program's settings as the API reads and changes them: one partial update, audited, that
updates the cards only when something a card shows has changed."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.email import senders as email_senders  # [email]
from walletd.enrollment import settings as enrollment_settings  # [enrollment]
from walletd.errors import N_, ValidationError
from walletd.loyalty import discovery, programs  # [google-signup] discovery
from walletd.loyalty.brands import get_program
from walletd.loyalty.context import Context
from walletd.loyalty.money import format_minor
from walletd.loyalty.programs import RewardChange, TierChange
from walletd.models import Program
from walletd.models.program import LANGUAGES, ROUNDING_RULES, TIER_BASES

MAX_WEEKLY_CAP = 50
MAX_REFUND_WINDOW_DAYS = 365
MAX_POINTS_PER_SCAN = 10_000_000
BONUSES = ("welcome_bonus", "birthday_bonus", "referral_bonus_referrer", "referral_bonus_referee")
COLORS = ("background_color", "foreground_color", "label_color")
# What only campaigns and tills read: changing these must not push every card of the program.
NOT_ON_CARDS = frozenset({"quiet_hours", "weekly_message_cap", "refund_window_days"})
NOT_ON_CARDS |= {"apple_enrollment"}  # [enrollment] only new enrollment passes carry it
# What the Google class carries: a change marks it for the next class sync.
ON_GOOGLE_CLASS = frozenset({"name", "template", *COLORS})
ON_GOOGLE_CLASS |= discovery.FIELDS  # [google-signup]
NOT_ON_CARDS |= discovery.FIELDS - discovery.ON_CARDS  # [google-signup]
FIELDS = frozenset(
    {
        "name", "timezone", "quiet_hours", "weekly_message_cap", "points_per_unit", "rounding",
        "max_points_per_scan", "tier_basis", *BONUSES, "referral_min_purchase",
        "points_expiry_months", "tiers", "rewards", "refund_window_days", "default_language",
        "template", *COLORS,
    }
)  # fmt: skip
FIELDS |= {"apple_enrollment"}  # [enrollment]
FIELDS |= {"email"}  # [email] the program's sender (no card shows it)
NOT_ON_CARDS |= {"email"}  # [email]
FIELDS |= discovery.FIELDS  # [google-signup]
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_TIER_FIELD = re.compile(r"^tier-(\d+)-(name|threshold|multiplier|discount|benefits)$")
_REWARD_FIELD = re.compile(r"^reward-(\d+)-(name|cost)$")
_API_NAMES = {"discount": "member_discount_percent", "cost": "cost_points"}


@dataclass(frozen=True)
class SettingsUpdate:
    """What a settings change did: the program, the fields changed, and the cards touched."""

    program: Program
    changed: tuple[str, ...]
    cards_touched: int


@functools.cache
def _zone_names() -> frozenset[str]:
    # Read once: the list comes from the file system (or tzdata) and never changes in a process.
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone this server knows, sorted (for a choice in a form)."""
    return tuple(sorted(_zone_names()))


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this server knows ("Asia/Taipei")."""
    return name in _zone_names()


def parse_clock(text: str, field: str) -> int:
    """ "HH:MM" (24 h) as minutes after midnight."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError("must be a time of day as HH:MM (00:00 to 23:59)", field=field)
    return int(match.group(1)) * 60 + int(match.group(2))


def clock_text(minute: int) -> str:
    """Minutes after midnight as "HH:MM"."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_quiet_hours(value: Mapping[str, str] | None) -> tuple[int, int] | None:
    """{"start": "21:00", "end": "09:00"} as minutes, None for no quiet hours; start = end is
    refused (it would mean either none or all day)."""
    if value is None:
        return None
    start = parse_clock(value.get("start", ""), "quiet_hours.start")
    end = parse_clock(value.get("end", ""), "quiet_hours.end")
    if start == end:
        raise ValidationError(
            "quiet hours must end at another time than they start; null means none",
            field="quiet_hours.end",
        )
    return start, end


def quiet_hours_of(program: Program) -> dict[str, str] | None:
    """The program's quiet hours as the API shows them, or None."""
    start, end = program.quiet_start_minute, program.quiet_end_minute
    if start is None or end is None or start == end:
        return None
    return {"start": clock_text(start), "end": clock_text(end)}


def _decimal_text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def settings_of(session: Session, program: Program) -> dict[str, Any]:
    """Every setting of a program as JSON values (what GET answers and the audit log compares)."""
    tiers = [
        {
            "id": t.id,
            "name": t.name,
            "threshold": programs.threshold_text(program, t.threshold),
            "multiplier": _decimal_text(t.multiplier),
            "member_discount_percent": _decimal_text(t.member_discount_percent),
            "benefits": t.benefits,
        }
        for t in programs.program_tiers(session, program.id)
    ]
    rewards = [
        {"id": r.id, "name": r.name, "cost_points": r.cost_points, "active": r.active}
        for r in programs.program_rewards(session, program.id)
    ]
    min_spend = program.stamps_min_spend_minor
    return {
        "id": program.id,
        "name": program.name,
        "currency": program.currency,
        "timezone": program.timezone,
        "quiet_hours": quiet_hours_of(program),
        "weekly_message_cap": program.messages_per_week_cap,
        "points_per_unit": _decimal_text(program.points_per_unit),
        "rounding": program.rounding,
        "max_points_per_scan": program.max_points_per_scan,
        "tier_basis": program.tier_basis,
        **{key: getattr(program, key) for key in BONUSES},
        "referral_min_purchase": programs.referral_min_purchase_text(program),
        "referral_offer_id": program.referral_offer_id,
        "points_expiry_months": program.points_expiry_months,
        "refund_window_days": program.refund_window_days,
        "default_language": program.default_language,
        "template": program.template,
        **{key: getattr(program, key) for key in COLORS},
        "tiers": tiers,
        "rewards": rewards,
        "stamps": {
            "enabled": program.stamps_enabled,
            "per_reward": program.stamps_per_reward,
            "min_spend": None if min_spend is None else format_minor(min_spend, program.currency),
            "offer_id": program.stamps_offer_id,
        },
        "updated_at": program.updated_at,
        "apple_enrollment": enrollment_settings.settings_of(session, program.id),  # [enrollment]
        "email": email_senders.settings_of(session, program.id),  # [email]
        **discovery.settings_of(session, program.id),  # [google-signup]
    }


def update_program_settings(
    session: Session,
    actor: Actor,
    program_id: int,
    changes: Mapping[str, Any],
    ctx: Context,
    *,
    templates: Sequence[str],
) -> SettingsUpdate:
    """Apply some settings (absent ones stay); audit what changed; touch the cards if they show it.

    `changes` holds API values: text for decimals and amounts, lists of dicts for tiers and
    rewards, {"start", "end"} or None for quiet hours.
    """
    unknown = set(changes) - FIELDS
    if unknown:
        raise ValidationError("not a program setting", field=sorted(unknown)[0])
    program = get_program(session, actor.brand_id, program_id)
    before = settings_of(session, program)
    _apply_scalars(program, changes, templates)
    discovery.apply_settings(session, program, changes, ctx)  # [google-signup]
    if "email" in changes:  # [email]
        email_senders.apply_settings(session, program, changes["email"] or {}, ctx.now)
    if "apple_enrollment" in changes:  # [enrollment]
        enrollment_settings.apply_settings(session, program, changes["apple_enrollment"], ctx.now)
    if "tier_basis" in changes and changes["tier_basis"] != program.tier_basis:
        if "tiers" not in changes and before["tiers"]:
            # Stored thresholds are minor units or points: they mean nothing in the other basis.
            raise ValidationError(
                "changing the tier basis needs the tiers with thresholds in the new basis",
                field="tier_basis",
            )
    basis = str(changes.get("tier_basis", program.tier_basis))
    if "tiers" in changes:
        _replace_tiers(session, program, basis, changes["tiers"])
    if "tier_basis" in changes:
        program.tier_basis = basis
    if "rewards" in changes:
        _upsert_rewards(session, program, changes["rewards"])
    session.flush()
    session.expire_all()  # tiers and rewards are read again for the comparison
    after = settings_of(session, program)
    diff = {
        key: [before[key], after[key]]
        for key in sorted(changes)
        if before.get(key) != after.get(key)
    }
    touched = 0
    if diff:
        program.updated_at = ctx.now
        if ON_GOOGLE_CLASS & diff.keys():
            program.google_class_synced_at = None
        record(session, actor, "program.updated", "program", program.id, now=ctx.now, changes=diff)
        session.flush()
        if diff.keys() - NOT_ON_CARDS:
            touched = programs.touch_program_cards(session, program.id, ctx)
    return SettingsUpdate(program=program, changed=tuple(diff), cards_touched=touched)


# The settings the dashboard's program form adds to the editor's fields.
FORM_SETTINGS = frozenset(
    {"timezone", "quiet_hours", "weekly_message_cap", "max_points_per_scan",
     "refund_window_days", "default_language"}
)  # fmt: skip


def save_program_form(
    session: Session,
    actor: Actor,
    program_id: int,
    form: programs.ProgramChanges,
    settings: Mapping[str, Any],
    ctx: Context,
    *,
    templates: Sequence[str],
) -> int:
    """The dashboard's program form: the editor's fields and `settings`, audited as one change;
    returns how many cards were touched (none when only quiet hours, caps or the window moved)."""
    unknown = set(settings) - FORM_SETTINGS
    if unknown:
        raise ValidationError("not a program setting", field=sorted(unknown)[0])
    program = get_program(session, actor.brand_id, program_id)
    before = settings_of(session, program)
    programs.update_program(
        session, actor.brand_id, program.id, form, ctx, templates=templates, touch=False
    )
    _apply_scalars(program, settings, templates)
    session.flush()
    session.expire_all()
    after = settings_of(session, program)
    diff = {
        key: [value, after[key]]
        for key, value in before.items()
        if key != "updated_at" and value != after[key]
    }
    if not diff:
        return 0
    record(session, actor, "program.updated", "program", program.id, now=ctx.now, changes=diff)
    session.flush()
    return (
        programs.touch_program_cards(session, program.id, ctx) if diff.keys() - NOT_ON_CARDS else 0
    )


def _apply_scalars(program: Program, changes: Mapping[str, Any], templates: Sequence[str]) -> None:
    if "name" in changes:
        name = str(changes["name"]).strip()
        if not 1 <= len(name) <= 200:
            raise ValidationError("name must be 1 to 200 characters", field="name")
        program.name = name
    if "timezone" in changes:
        zone = changes["timezone"]
        if not isinstance(zone, str) or not is_time_zone(zone):
            raise ValidationError(
                "timezone must be an IANA time zone such as Asia/Taipei", field="timezone"
            )
        program.timezone = zone
    if "quiet_hours" in changes:
        window = parse_quiet_hours(changes["quiet_hours"])
        program.quiet_start_minute, program.quiet_end_minute = window or (None, None)
    if "weekly_message_cap" in changes:
        program.messages_per_week_cap = _bounded(
            changes["weekly_message_cap"], "weekly_message_cap", 0, MAX_WEEKLY_CAP
        )
    if "points_per_unit" in changes:
        program.points_per_unit = programs.parse_decimal(
            str(changes["points_per_unit"]), "points_per_unit",
            low=Decimal(0), high=programs.MAX_RATE,
        )  # fmt: skip
    if "rounding" in changes:
        if changes["rounding"] not in ROUNDING_RULES:
            raise ValidationError("rounding must be floor, half_up or ceil", field="rounding")
        program.rounding = changes["rounding"]
    if "max_points_per_scan" in changes:
        cap = changes["max_points_per_scan"]
        program.max_points_per_scan = (
            None if cap is None else _bounded(cap, "max_points_per_scan", 1, MAX_POINTS_PER_SCAN)
        )
    if "tier_basis" in changes and changes["tier_basis"] not in TIER_BASES:
        raise ValidationError("tier basis must be spend or points", field="tier_basis")
    for key in BONUSES:
        if key in changes:
            setattr(program, key, _bounded(changes[key], key, 0, programs.MAX_BONUS))
    if "referral_min_purchase" in changes:
        program.referral_min_purchase_minor = programs.parse_money(
            program, str(changes["referral_min_purchase"]), "referral_min_purchase",
            high=Decimal(10**9),
        )  # fmt: skip
    if "points_expiry_months" in changes:
        months = changes["points_expiry_months"]
        program.points_expiry_months = (
            None if months is None else _bounded(months, "points_expiry_months", 1, 120)
        )
    if "refund_window_days" in changes:
        program.refund_window_days = _bounded(
            changes["refund_window_days"], "refund_window_days", 0, MAX_REFUND_WINDOW_DAYS
        )
    if "default_language" in changes:
        if changes["default_language"] not in (*LANGUAGES, None):
            raise ValidationError(
                "default language must be en, zh-Hant or null", field="default_language"
            )
        program.default_language = changes["default_language"]
    if "template" in changes:
        if changes["template"] not in templates:
            raise ValidationError("template is not a known card design", field="template")
        program.template = changes["template"]
    for key in COLORS:
        if key in changes:
            setattr(program, key, programs.parse_color(str(changes[key]), key))


def _bounded(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(
            N_("{field} must be a whole number from {low} to {high}"),
            field=field,
            params={"field": field, "low": low, "high": f"{high:,}"},
        )
    return value


def _api_field(form_field: str | None) -> str | None:
    """The programs module names form fields ("tier-0-discount"); the API names paths."""
    if form_field is None:
        return None
    for pattern, plural in ((_TIER_FIELD, "tiers"), (_REWARD_FIELD, "rewards")):
        match = pattern.match(form_field)
        if match:
            return f"{plural}.{match.group(1)}.{_API_NAMES.get(match.group(2), match.group(2))}"
    return form_field


def _replace_tiers(
    session: Session, program: Program, basis: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """The tiers become exactly `rows`: listed ids are changed, new rows added, the rest removed
    (their members lose the tier until their next scan, as in the dashboard)."""
    changes: list[TierChange] = []
    for index, row in enumerate(rows):
        name = str(row.get("name", ""))
        if not name.strip():
            raise ValidationError("tier name must not be blank", field=f"tiers.{index}.name")
        changes.append(
            TierChange(
                id=row.get("id"),
                name=name,
                threshold=str(row.get("threshold", "")),
                multiplier=str(row.get("multiplier", "1")),
                member_discount_percent=str(row.get("member_discount_percent") or "0"),
                benefits=str(row.get("benefits") or ""),
            )
        )
    listed = {row.id for row in changes if row.id is not None}
    removed = [
        TierChange(id=tier.id, name="", threshold="", multiplier="", delete=True)
        for tier in programs.program_tiers(session, program.id)
        if tier.id not in listed
    ]
    try:
        programs.apply_tiers(session, program, basis, [*changes, *removed])
    except ValidationError as exc:
        raise ValidationError(exc.message, field=_api_field(exc.field)) from None


def _upsert_rewards(session: Session, program: Program, rows: Sequence[Mapping[str, Any]]) -> None:
    """Listed rewards are changed (by id) or added; unlisted ones stay as they are."""
    changes: list[RewardChange] = []
    for index, row in enumerate(rows):
        name = str(row.get("name", ""))
        if not name.strip():
            raise ValidationError("reward name must not be blank", field=f"rewards.{index}.name")
        changes.append(
            RewardChange(
                id=row.get("id"),
                name=name,
                cost_points=str(row.get("cost_points", "")),
                active=bool(row.get("active", True)),
            )
        )
    try:
        programs.apply_rewards(session, program, changes)
    except ValidationError as exc:
        raise ValidationError(exc.message, field=_api_field(exc.field)) from None
