"""Request and response models of the program settings and rewards routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from walletd.loyalty import program_settings
from walletd.loyalty.programs import MAX_BONUS, MAX_REWARDS, MAX_TIERS
from walletd.web.discovery_schemas import (  # [google-signup]
    GoogleSignupIn,
    GoogleSignupOut,
    MaxDistance,
    RelevantText,
)
from walletd.web.email_schemas import EmailSenderIn, EmailSenderOut  # [email]
from walletd.web.enrollment_schemas import AppleEnrollmentIn, AppleEnrollmentOut  # [enrollment]
from walletd.web.schemas import MAX_ID, Amount, Id, Reply, Request, Text, Timestamp

Clock = Annotated[
    str,
    StringConstraints(strict=True, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    Field(description="a local time of day, HH:MM on a 24-hour clock", examples=["21:00"]),
]
Bonus = Annotated[StrictInt, Field(ge=0, le=MAX_BONUS)]
Color = Annotated[
    str, StringConstraints(strict=True, pattern=r"^#[0-9A-Fa-f]{6}$"), Field(examples=["#1F3A5F"])
]


def _known_zone(name: str) -> str:
    if not program_settings.is_time_zone(name):
        raise ValueError("must be an IANA time zone such as Asia/Taipei")
    return name


TimeZone = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=64),
    AfterValidator(_known_zone),
    Field(description="an IANA time zone name", examples=["Asia/Taipei"]),
]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str, *, max_length: int | None = None) -> Any:
    """A field that may be left out but is never null (its Python default only marks absence)."""
    return Field(
        default=None,
        description=description,
        max_length=max_length,
        json_schema_extra=_no_default,
    )


class Strict(Request):
    """A body whose unknown fields are refused (a typo must not look like a saved setting)."""

    model_config = ConfigDict(extra="forbid")


class QuietHours(Strict):
    """Local times (in the program's time zone) between which no message is sent; may wrap."""

    start: Clock = Field(description="first quiet minute (inclusive)")
    end: Clock = Field(description="end of the quiet hours (exclusive); not equal to start")

    @field_validator("end")
    @classmethod
    def _not_start(cls, end: str, info: ValidationInfo) -> str:
        if info.data.get("start") == end:
            raise ValueError("must differ from start; send null for no quiet hours")
        return end


class TierIn(Strict):
    """One tier; without an id it is added."""

    id: Id | None = Field(default=None, description="an existing tier to change")
    name: Text(64, 1)  # type: ignore[valid-type]
    threshold: Amount = Field(
        description="spend in the last 12 months (a decimal in the currency) or points, "
        "as tier_basis says"
    )
    multiplier: Amount = Field(description="points multiplier, 1 to 10")
    member_discount_percent: Amount | None = Field(default=None, description="0 to 100")
    benefits: Text(500) | None = None  # type: ignore[valid-type]


class RewardIn(Strict):
    """One reward; without an id it is added. Rewards are switched off, never deleted."""

    id: Id | None = Field(default=None, description="an existing reward to change")
    name: Text(200, 1)  # type: ignore[valid-type]
    cost_points: Annotated[StrictInt, Field(ge=1, le=10_000_000)]
    active: StrictBool = True


def _unique_ids(rows: list[TierIn] | list[RewardIn] | None) -> None:
    ids = [row.id for row in rows or () if row.id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError("the same id is listed twice")


class ProgramUpdate(Strict):
    """Change some settings; absent fields stay as they are, null means "none" where allowed."""

    name: Text(200, 1) = absent("the program's name")  # type: ignore[valid-type]
    timezone: TimeZone = absent("quiet hours and member days follow this zone")
    quiet_hours: QuietHours | None = Field(
        default=None, description='{"start": "21:00", "end": "09:00"}; null for none'
    )
    weekly_message_cap: Annotated[StrictInt, Field(ge=0, le=50)] = absent(
        "marketing messages a member may get per 7 days; 0 for none"
    )
    points_per_unit: Amount = absent("points per one unit of the currency, 0 to 1000")
    rounding: Literal["floor", "half_up", "ceil"] = absent("how points are rounded")
    max_points_per_scan: Annotated[StrictInt, Field(ge=1, le=10_000_000)] | None = Field(
        default=None, description="null for no ceiling"
    )
    tier_basis: Literal["spend", "points"] = absent(
        "what reaches a tier; changing it needs the tiers too"
    )
    welcome_bonus: Bonus = absent("points on joining")
    birthday_bonus: Bonus = absent("points on the birthday")
    referral_bonus_referrer: Bonus = absent("points for the member who invites")
    referral_bonus_referee: Bonus = absent("points for the invited member")
    referral_min_purchase: Amount = absent(
        "the first purchase (in the currency) that pays the referral bonuses"
    )
    points_expiry_months: Annotated[StrictInt, Field(ge=1, le=120)] | None = Field(
        default=None, description="null: points never expire"
    )
    tiers: list[TierIn] = absent("the full list: tiers left out are removed", max_length=MAX_TIERS)
    rewards: list[RewardIn] = absent(
        "rewards to change (by id) or add; those left out stay", max_length=MAX_REWARDS
    )
    refund_window_days: Annotated[StrictInt, Field(ge=0, le=365)] = absent(
        "days after a scan in which a cashier key may still reverse it"
    )
    default_language: Literal["en", "zh-Hant"] | None = Field(
        default=None,
        description="the join and card pages' language unless the visitor chose one with the "
        "switch; null lets the browser decide",
    )
    template: Text(64, 1) = absent("a card design folder of pass_templates/")  # type: ignore[valid-type]
    background_color: Color = absent("the card's background")
    foreground_color: Color = absent("the card's text")
    label_color: Color = absent("the card's labels")
    apple_enrollment: AppleEnrollmentIn = absent(  # [enrollment]
        "Apple rewards enrollment (sign-up sheet in Wallet); enabling it needs nfc"
    )
    email: EmailSenderIn = absent(  # [email]
        "who the program's e-mails come from (name, address, reply-to); replaces the setting"
    )
    google_signup: GoogleSignupIn = absent(  # [google-signup]
        "sign-up from Google Wallet (discoverable program); needs Google Wallet configured"
    )
    location_relevant_text: RelevantText | None = Field(  # [google-signup]
        default=None,
        description="what the lock screen says near a store; null: each store's own name",
    )
    location_max_distance: MaxDistance | None = Field(  # [google-signup]
        default=None,
        description="Apple's maxDistance in metres around each store (Wallet keeps the smaller "
        "of it and its own default); null: Wallet's default",
    )

    @field_validator("tiers", "rewards")
    @classmethod
    def _ids_once(cls, rows: list[TierIn] | list[RewardIn]) -> list[TierIn] | list[RewardIn]:
        _unique_ids(rows)
        return rows


class TierOut(Reply):
    """A tier of the program."""

    id: int
    name: str
    threshold: str = Field(description="a decimal in the currency, or points, per tier_basis")
    multiplier: str
    member_discount_percent: str
    benefits: str | None


class RewardOut(Reply):
    """A reward members can redeem points for."""

    id: int
    program_id: int
    name: str
    cost_points: int
    active: bool


class ProgramRewardOut(Reply):
    """A reward, as listed in its program."""

    id: int
    name: str
    cost_points: int
    active: bool


class StampsOut(Reply):
    """The stamp card settings (changed with PUT /api/v1/programs/{id}/stamps)."""

    enabled: bool
    per_reward: int
    min_spend: str | None
    offer_id: int | None


class QuietHoursOut(Reply):
    """Quiet hours in the program's local time."""

    start: str
    end: str


class ProgramOut(Reply):
    """A program's settings."""

    id: int
    name: str
    currency: str
    timezone: str
    quiet_hours: QuietHoursOut | None
    weekly_message_cap: int
    points_per_unit: str
    rounding: str
    max_points_per_scan: int | None
    tier_basis: str
    welcome_bonus: int
    birthday_bonus: int
    referral_bonus_referrer: int
    referral_bonus_referee: int
    referral_min_purchase: str
    referral_offer_id: int | None
    points_expiry_months: int | None
    refund_window_days: int
    default_language: str | None
    template: str
    background_color: str
    foreground_color: str
    label_color: str
    tiers: list[TierOut]
    rewards: list[ProgramRewardOut]
    stamps: StampsOut
    updated_at: Timestamp
    apple_enrollment: AppleEnrollmentOut  # [enrollment]
    email: EmailSenderOut  # [email]
    google_signup: GoogleSignupOut  # [google-signup]
    location_relevant_text: str | None  # [google-signup]
    location_max_distance: int | None  # [google-signup]


class RewardQuery(Request):
    """Filter the rewards by program."""

    program_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="only this program's rewards"
    )


class RewardList(Reply):
    """The brand's rewards, by program, cheapest first."""

    rewards: list[RewardOut]
