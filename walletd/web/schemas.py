"""Request and response models of the JSON routes: each validates, documents and serialises."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

# Primary keys are INTEGER columns (see walletd.web.endpoint.MAX_ID).
MAX_ID = 2**31 - 1
# One operation may move at most this many points (the ledger enforces the same bound).
MAX_POINTS = 10_000_000

Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0)]


def Text(max_length: int, min_length: int = 0) -> Any:  # noqa: N802 - reads like a type
    """A JSON string of bounded length (no coercion from numbers)."""
    return Annotated[
        str,
        StringConstraints(strict=True, min_length=min_length, max_length=max_length),
    ]


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: object) -> object:
    """Only YYYY-MM-DD (pydantic alone would also take timestamps and ISO week dates)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("must be a real date as YYYY-MM-DD") from exc


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date"}, mode="validation"),
]


def _amount(value: object) -> object:
    """A decimal as a JSON number or string; its form and range are the ledger's to judge, per
    currency (it knows the minor unit and the program's ceiling)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal number or a decimal string")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("must be a decimal such as 12.50")
    return value


# Typed Any for pydantic so that it never converts the value: int(Decimal("1e999999999")) alone
# would take minutes. `_amount` has checked the type.
Amount = Annotated[
    Any,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 40, "pattern": "^[0-9]{1,12}(\\.[0-9]{1,4})?$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a positive decimal amount, as a string (preferred) or a number",
        },
        mode="validation",
    ),
]


# Times as `datetime.isoformat()` writes them ("+00:00"), as the first round's answers did.
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


class Request(BaseModel):
    """A request body or query; unknown fields are ignored, as clients of the first round expect."""

    model_config = ConfigDict(extra="ignore")


class Reply(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="ignore")


# --- members -----------------------------------------------------------------------------------


MemberLanguage = Annotated[
    Literal["en", "zh-Hant"],
    Field(
        description="the language of the member's messages; null: the program's default "
        "language, then English"
    ),
]


class MemberCreate(Request):
    """Enroll a member; the card comes with the answer."""

    name: Text(200, 1)  # type: ignore[valid-type]
    email: Text(320) | None = None  # type: ignore[valid-type]
    phone: Text(32) | None = None  # type: ignore[valid-type]
    birthday: IsoDate | None = None
    marketing_consent: StrictBool = False
    referral_code: Text(16) | None = None  # type: ignore[valid-type]
    program_id: Id | None = None
    language: MemberLanguage | None = None
    # [email]
    send_card_email: StrictBool = Field(
        default=False,
        description="e-mail the member their card (needs an e-mail and e-mail on: else 409 "
        "email_disabled, no_email or email_bouncing, and nobody is enrolled)",
    )


class CardOut(Reply):
    """The member's wallet card and its links."""

    serial_number: str
    barcode: str = Field(description="the exact text encoded in the card's QR code")
    qr_url: str = Field(description="absolute URL of the QR code PNG (signed link)")
    apple_pass_url: str = Field(description="absolute URL of the signed .pkpass (signed link)")
    google_save_url: str | None = Field(description="Google Wallet save link, null when off")


class MemberOut(Reply):
    """A member of the caller's brand."""

    id: int
    program_id: int
    name: str
    email: str | None
    phone: str | None
    birthday: date | None
    marketing_consent: bool
    language: str | None = Field(
        default=None, description="the member's language; null: the program's default language"
    )
    referral_code: str
    points: int
    tier: str | None
    visits: int
    created_at: Timestamp
    card: CardOut


class ActorOut(Reply):
    """Who did it: a staff account (its e-mail) or an API key (its prefix and name)."""

    type: Literal["staff", "key"] | None = Field(description="null: walletd itself (a bonus...)")
    id: int | None
    label: str


class LedgerEntryOut(Reply):
    """One ledger entry."""

    id: int
    kind: str
    points: int
    amount: str | None
    currency: str | None
    reason: str | None
    created_at: Timestamp
    expires_at: Timestamp | None
    location_id: int | None = None
    actor: ActorOut | None = Field(default=None, description="who made the entry")


class LedgerOut(Reply):
    """A member's ledger, newest first."""

    entries: list[LedgerEntryOut]


class AdjustmentCreate(Request):
    """A staff correction of a member's points."""

    points: Annotated[StrictInt, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Text(200, 1)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _non_zero(self) -> AdjustmentCreate:
        if self.points == 0:
            raise ValueError("points must not be zero")
        return self


class AdjustmentOut(Reply):
    """The adjustment's entry and the new balance."""

    entry_id: int
    member_id: int
    balance: int


class MessageCreate(Request):
    """A message for the back of the member's cards."""

    message: Text(500, 1)  # type: ignore[valid-type]
    expires_at: Text(40) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="ISO 8601 with an offset, within a year; the message leaves the card then",
    )
    expires_in_days: Annotated[StrictInt, Field(ge=1, le=365)] | None = Field(
        default=None, description="instead of expires_at: the message leaves the card after N days"
    )


class MessageQueued(Reply):
    """The message is on the cards; pushes are queued."""

    member_id: int
    message_id: str
    status: Literal["queued"]


# --- scans and redemptions ---------------------------------------------------------------------


class ScanCreate(Request):
    """A checkout: the card's barcode text and the amount paid."""

    # Any text: a forged or foreign barcode is 404 unknown_card, not a malformed request.
    barcode: Text(65_536, 1)  # type: ignore[valid-type]
    amount: Amount
    currency: Text(16) | None = Field(  # type: ignore[valid-type]
        default=None, description="ISO 4217 code of the program's currency (any case)"
    )
    location_id: Id | None = None
    coupons: list[Text(65_536, 1)] | None = Field(  # type: ignore[valid-type]
        default=None,
        max_length=10,
        description="barcodes of the member's coupons to redeem in the same transaction",
    )


class PromotionApplied(Reply):
    """A promotion that multiplied a scan."""

    id: int
    name: str
    multiplier: str = Field(description="a decimal string, e.g. 2 or 1.5")


class StampCard(Reply):
    """The member's stamp card after a scan (0 again once a full card issued its offer)."""

    count: int
    of: int


class ScanOut(Reply):
    """The points a scan earned and the member's new balance."""

    scan_id: int
    member_id: int
    points_earned: int
    balance: int
    tier: str | None
    amount: str
    currency: str | None
    member_discount_percent: str = Field(
        default="0", description="the member's tier discount for this purchase, a decimal string"
    )
    promotions: list[PromotionApplied] = Field(default_factory=list)
    stamps: StampCard | None = None
    coupons: list[dict[str, Any]] = Field(
        default_factory=list, description="the coupons redeemed with this scan"
    )


class ReversalOut(Reply):
    """A refund: the points taken back and the new balance."""

    scan_id: int
    member_id: int
    points_reversed: int
    balance: int
    reversal_id: int


class RedemptionCreate(Request):
    """Redeem a number of points or a reward by id (exactly one of them)."""

    barcode: Text(65_536, 1)  # type: ignore[valid-type]
    points: Annotated[StrictInt, Field(ge=1, le=MAX_POINTS)] | None = None
    reward_id: Id | None = None

    @model_validator(mode="after")
    def _one_of(self) -> RedemptionCreate:
        if (self.points is None) == (self.reward_id is None):
            raise ValueError("give either points or reward_id")
        return self


class RedemptionOut(Reply):
    """The points redeemed and the new balance."""

    redemption_id: int
    member_id: int
    points_redeemed: int
    balance: int
    reward: str | None


# --- campaigns, segments, automations, reports -------------------------------------------------

Segment = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": 'a preset {"preset": NAME} or a tree of {"and": [...]}, {"or": [...]} '
            'and {"field", "op", "value"} conditions',
        }
    ),
]


# Per-language message texts (issue 13): each member reads their language's text, else the
# program's default language's, else `message`.
Messages = Annotated[
    dict[
        Literal["en", "zh-Hant"],
        Annotated[str, StringConstraints(strict=True, max_length=500)],
    ],
    Field(
        description='texts per language, such as {"zh-Hant": "…"}: a member reads the text of '
        "their language, else of the program's default language, else `message`; the same "
        "placeholders and length as `message`"
    ),
]


class CampaignCreate(Request):
    """A message for a segment, sent at a time (or kept as a draft)."""

    name: Text(200, 1)  # type: ignore[valid-type]
    message: Text(500, 1)  # type: ignore[valid-type]
    segment: Segment
    send_at: Text(40) | None = Field(  # type: ignore[valid-type]
        default=None, description="ISO 8601 with an offset; now when absent"
    )
    holdout_percent: Annotated[StrictInt, Field(ge=0, le=50)] | None = None
    lift_window_days: Annotated[StrictInt, Field(ge=1, le=90)] | None = None
    program_id: Id | None = None
    draft: StrictBool | None = None
    offer_id: Id | None = Field(
        default=None, description="an active offer: each recipient gets its coupon with the message"
    )
    message_expires_in_days: Annotated[StrictInt, Field(ge=1, le=365)] | None = Field(
        default=None, description="the message leaves each card N days after the campaign starts"
    )
    messages: Messages | None = None
    email_fallback: StrictBool | None = Field(
        default=None,
        description="members without an installed card who consented get the message by e-mail",
    )  # [email-campaigns]


# [email-campaigns]
class ChannelProgress(Reply):
    """A campaign's deliveries on one wallet channel."""

    queued: int
    sent: int
    failed: int
    cancelled: int


class EmailProgress(ChannelProgress):
    """A campaign's e-mails: failed means given up after retries, bounced refused for good."""

    bounced: int


class ChannelsProgress(Reply):
    """A campaign's deliveries per channel."""

    apple: ChannelProgress
    google: ChannelProgress
    email: EmailProgress


class CampaignOut(Reply):
    """A campaign's state and counts."""

    id: int
    name: str
    message: str
    messages: dict[str, str] = Field(default_factory=dict, description="texts per language")
    segment: dict[str, Any]
    status: Literal["draft", "scheduled", "sending", "sent", "cancelled"]
    send_at: Timestamp | None
    deferred_reason: str | None
    holdout_percent: int
    offer_id: int | None = None
    message_expires_in_days: int | None = None
    email_fallback: bool = False  # [email-campaigns]
    by_channel: ChannelsProgress | None = None  # [email-campaigns]
    segment_size: int | None
    recipients: int
    holdout: int
    skipped: int
    skipped_by_reason: dict[str, int]
    delivered: int
    failed: int
    pending: int
    cancelled_deliveries: int
    started_at: Timestamp | None
    fanned_out_at: Timestamp | None
    expected_finish_at: Timestamp | None
    created_by: ActorOut | None = Field(default=None, description="who created the campaign")


class CampaignList(Reply):
    """The brand's campaigns, newest first."""

    campaigns: list[CampaignOut]


class LiftGroup(Reply):
    """Visits and spend of one group in the lift window."""

    members: int
    returned: int
    return_rate: float | None
    visits_per_member: float | None
    spend_per_member: str | None
    coupon_redemptions: int = Field(description="coupons the group redeemed in the window")
    redemptions_per_member: float | None


class ChannelLift(Reply):
    """Recipients and holdout of one channel, and how many of each came back in the window."""

    members: int
    returned: int
    holdout_members: int
    holdout_returned: int


class Lift(Reply):
    """Recipients against the holdout group."""

    window_days: int
    recipients: LiftGroup
    holdout: LiftGroup
    visit_lift: float | None = None
    spend_lift: float | None = None
    extra_visits: float | None = None
    by_channel: dict[str, ChannelLift] = Field(
        default_factory=dict,
        description="per channel (wallet, email): members reached and held out, and who returned",
    )  # [email-campaigns]


class CampaignReport(Reply):
    """A campaign's lift over its holdout group."""

    id: int
    name: str
    status: str
    lift: Lift


class SegmentQuery(Request):
    """A segment as JSON text in the query string."""

    segment: Text(20_000, 1)  # type: ignore[valid-type]


class SegmentCount(Reply):
    """How many members a segment holds now."""

    count: int
    segment: dict[str, Any]


class ReportQuery(Request):
    """A period of days, both ends included."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDate = Field(alias="from")
    end: IsoDate = Field(alias="to")


class SummaryQuery(ReportQuery):
    """A period of days, optionally at one location only."""

    location_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="only scans at this location: transactions, revenue, AOV"
    )


class CampaignMessages(Reply):
    """Messages of one campaign in the period."""

    id: int
    name: str
    sent: int
    lift: Lift


class AutomationMessages(Reply):
    """Messages of one automation in the period."""

    id: int
    kind: str
    enabled: bool
    sent: int
    lift: Lift


class MessageReport(Reply):
    """Messages sent per campaign and per automation, each with its lift."""

    campaigns: list[CampaignMessages]
    automations: list[AutomationMessages]


class WalletCounts(Reply):
    """Cards installed per wallet."""

    apple: int
    google: int


class Summary(Reply):
    """Members, activity, repeat rate, returning share, AOV, installed cards, message lift."""

    model_config = ConfigDict(populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    currency: str
    members: int
    new_members: int
    active_members: int
    repeat_customer_rate: float | None
    transactions: int
    returning_share_of_transactions: float | None
    revenue: str
    revenue_from_returning: str
    aov_new: str | None
    aov_returning: str | None
    cards_installed: WalletCounts
    messages: MessageReport


class AutomationUpdate(Request):
    """Switch an automation on or off; change its message, delay or holdout."""

    enabled: StrictBool
    message: Text(500) | None = None  # type: ignore[valid-type]
    delay_days: Annotated[StrictInt, Field(ge=0, le=365)] | None = None
    holdout_percent: Annotated[StrictInt, Field(ge=0, le=50)] | None = None
    # An active offer of the program issued with the message; null takes it off, absent keeps it.
    offer_id: Id | None = None
    # Null takes the per-language texts off, absent keeps them.
    messages: Messages | None = None
    # [email-campaigns] Members without an installed card get the message by e-mail.
    email_fallback: StrictBool | None = None


class AutomationOut(Reply):
    """One automation of a program."""

    id: int
    kind: str
    enabled: bool
    message: str | None
    messages: dict[str, str] = Field(default_factory=dict, description="texts per language")
    delay_days: int | None
    holdout_percent: int
    offer_id: int | None
    email_fallback: bool = False  # [email-campaigns]


class AutomationList(Reply):
    """A program's automations."""

    automations: list[AutomationOut]


# --- public routes ------------------------------------------------------------------------------


class Health(Reply):
    """Whether the database answers."""

    status: Literal["ok", "unavailable"]


class Readiness(Health):
    """Whether this instance can serve: database, schema and a live worker."""

    failing: dict[str, str] | None = Field(
        default=None, description="each failing check (database, schema, worker) and why"
    )


class SignedLinkQuery(Request):
    """The signature of a card link."""

    model_config = ConfigDict(extra="ignore")

    # Any text is taken: a wrong or malformed signature answers 404, like a missing card.
    sig: Annotated[
        str,
        StringConstraints(strict=True),
        WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}),
    ] = ""


class PassesQuery(Request):
    """Apple's `passesUpdatedSince`: the `lastUpdated` tag a device got before."""

    model_config = ConfigDict(extra="ignore")

    # Any text: an unreadable tag lists every registered serial (Wallet recovers by itself).
    passesUpdatedSince: (  # noqa: N815 - Apple's name
        Annotated[
            str,
            StringConstraints(strict=True),
            WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,19}$"}),
        ]
        | None
    ) = None


class UpdatedSerials(Reply):
    """The serial numbers of a device's passes changed since its last tag."""

    serialNumbers: list[str]  # noqa: N815 - Apple's name
    lastUpdated: str  # noqa: N815 - Apple's name


class PushTokenBody(BaseModel):
    """Apple's registration body."""

    model_config = ConfigDict(extra="ignore")

    pushToken: Annotated[  # noqa: N815 - Apple's name
        str, StringConstraints(strict=True, pattern=r"^[0-9A-Fa-f]{1,200}$")
    ]


class DeviceLogs(BaseModel):
    """Apple's device log body."""

    model_config = ConfigDict(extra="ignore")

    # Documentation: the service stores at most 50 lines of 2,000 characters and skips the rest.
    logs: list[Text(2000)] = Field(max_length=50)  # type: ignore[valid-type]


class IntermediateSigningKey(BaseModel):
    """Google's intermediate key, signed by one of its root keys."""

    signedKey: str  # noqa: N815 - Google's name
    signatures: list[str]


class GoogleCallback(BaseModel):
    """A save or delete callback, signed by Google (ECv2SigningOnly)."""

    signature: str
    intermediateSigningKey: IntermediateSigningKey  # noqa: N815 - Google's name
    protocolVersion: Literal["ECv2SigningOnly"]  # noqa: N815 - Google's name
    signedMessage: str  # noqa: N815 - Google's name


class GoogleCallbackResult(Reply):
    """What a verified callback changed."""

    status: Literal["recorded", "duplicate", "unknown_object"]
