"""Request and response models of the offers, coupons and promotions routes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StrictInt, model_validator

from walletd.web.schemas import Amount, Id, Reply, Request, Text, Timestamp

OfferKind = Literal["percent_off", "amount_off", "free_item", "bonus_points"]
CouponStatus = Literal["active", "redeemed", "expired", "void"]
ValidDays = Annotated[StrictInt, Field(ge=1, le=3650)]
PerMemberLimit = Annotated[StrictInt, Field(ge=1, le=1000)]
TierValues = Annotated[
    dict[str, Amount],
    Field(
        max_length=50, description='the value for members of a tier, by tier name: {"Gold": "15"}'
    ),
]

# --- offers --------------------------------------------------------------------------------------


class OfferCreate(Request):
    """An offer: what each coupon issued from it gives, to whom and for how long."""

    program_id: Id | None = Field(default=None, description="the brand's first program if absent")
    name: Text(200, 1)  # type: ignore[valid-type]
    kind: OfferKind
    value: Amount | None = Field(
        default=None,
        description="percent (0 < v <= 100), amount off in the currency, or bonus points; "
        "absent for free_item",
    )
    item: Text(200) | None = Field(default=None, description="the free item")  # type: ignore[valid-type]
    tier_values: TierValues | None = None
    min_spend: Amount | None = Field(default=None, description="minimum purchase, a decimal")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    valid_days: ValidDays | None = Field(default=None, description="days a coupon lasts")
    per_member_limit: PerMemberLimit | None = None
    terms: Text(2000) | None = None  # type: ignore[valid-type]


class OfferUpdate(Request):
    """Change some fields of an offer; null clears an optional one. Issued coupons keep theirs."""

    name: Text(200, 1) | None = None  # type: ignore[valid-type]
    kind: OfferKind | None = None
    value: Amount | None = None
    item: Text(200) | None = None  # type: ignore[valid-type]
    tier_values: TierValues | None = None
    min_spend: Amount | None = None
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    valid_days: ValidDays | None = None
    per_member_limit: PerMemberLimit | None = None
    terms: Text(2000) | None = None  # type: ignore[valid-type]


class OfferOut(Reply):
    """An offer of the caller's brand."""

    id: int
    program_id: int
    name: str
    kind: str
    value: str | None = Field(description="a decimal string; null for free_item")
    item: str | None
    tier_values: dict[str, str] | None
    min_spend: str | None
    valid_from: Timestamp | None
    valid_until: Timestamp | None
    valid_days: int | None
    per_member_limit: int | None
    terms: str | None
    status: str = Field(description="active or archived")
    created_at: Timestamp
    updated_at: Timestamp


class OfferList(Reply):
    """The brand's offers, newest first."""

    offers: list[OfferOut]


class OfferIssueCreate(Request):
    """Issue an offer to one member now, or to a segment by a batch job (exactly one of them)."""

    member_id: Id | None = None
    segment: dict[str, Any] | None = Field(
        default=None, description="a segment definition, as campaigns take"
    )

    @model_validator(mode="after")
    def _one_of(self) -> OfferIssueCreate:
        if (self.member_id is None) == (self.segment is None):
            raise ValueError("give either member_id or segment")
        return self


class CouponOut(Reply):
    """One member's coupon."""

    id: int
    offer_id: int
    member_id: int
    code: str = Field(description="10 characters a cashier can type")
    barcode: str = Field(description="the exact text encoded in the coupon's QR code")
    status: str = Field(description="active, redeemed, expired or void")
    value: str | None = Field(description="the value for the member's tier, a decimal string")
    issued_at: Timestamp
    expires_at: Timestamp | None
    redeemed_at: Timestamp | None
    apple_pass_url: str | None = Field(description="absolute URL of the coupon's signed .pkpass")


class OfferIssueOut(Reply):
    """The coupon issued to a member (null when not issued), or the queued segment issue."""

    issued: bool
    coupon: CouponOut | None = None
    issue_id: int | None = None
    status: str | None = None


class CouponList(Reply):
    """A member's coupons, newest first."""

    coupons: list[CouponOut]


class CouponQuery(Request):
    """Filter a member's coupons by state."""

    status: CouponStatus | None = None


class CouponVoidCreate(Request):
    """Why an admin voids a coupon; kept in the audit log."""

    reason: Text(200, 1) = Field(description="why, e.g. issued to the wrong member")  # type: ignore[valid-type]


class CouponRedemptionCreate(Request):
    """A coupon scanned (or its code typed) at a till, with the purchase amount."""

    barcode: Text(65_536, 1) = Field(description="the coupon's barcode text or its code")  # type: ignore[valid-type]
    amount: Amount | None = Field(
        default=None, description="the purchase; needed for percent_off and a minimum spend"
    )


class CouponRedemptionOut(Reply):
    """What the till takes off or gives: a discount, bonus points or a free item."""

    coupon_id: int
    member_id: int
    kind: str
    discount: str | None = Field(default=None, description="a decimal string; never above amount")
    points_awarded: int | None = None
    item: str | None = None


class OfferReport(Reply):
    """How an offer performs."""

    offer_id: int
    currency: str
    issued: int
    redeemed: int
    expired: int
    redemption_rate: float | None = Field(description="redeemed / issued; null when none issued")
    discount_given: str = Field(description="sum of discounts, a decimal string")
    revenue: str = Field(description="sum of the purchases the coupons were redeemed with")
    points_awarded: int
