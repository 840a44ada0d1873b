"""The neutral view of one loyalty card, from which Apple and Google passes are rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# What an erased member's card says instead of their messages (walletd/privacy/erasure.py).
CLOSED_MESSAGE = "This card has been closed"


@dataclass(frozen=True)
class CouponLine:
    """One active coupon as the back of the member's loyalty card lists it."""

    name: str
    code: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class MessageLine:
    """One brand message on the card, with when it was sent."""

    id: str  # stable id (Google message id)
    text: str
    sent_at: datetime  # aware, in the program's time zone


@dataclass(frozen=True)
class StoreView:
    """A shop near which the card comes up on the lock screen."""

    latitude: float
    longitude: float
    relevant_text: str


@dataclass(frozen=True)
class CouponView:
    """What a coupon's own pass shows; colours, images and barcode come from the CardView."""

    offer_name: str
    offer_kind: str  # percent_off | amount_off | free_item | bonus_points
    value: Decimal | None  # percent, major currency units or points, resolved for the tier
    item: str | None
    currency: str
    code: str  # typed at a till when the barcode cannot be scanned
    status: str  # active | redeemed | expired | void
    expires_at: datetime | None  # aware UTC
    terms: str | None = None
    min_spend: str | None = None  # plain decimal in the program's currency, e.g. "20.00"


@dataclass(frozen=True)
class CardView:
    """Everything a wallet needs to draw one member's card; no ORM objects, no Flask."""

    serial_number: str  # [A-Za-z0-9._-], immutable for the life of the card
    authentication_token: str  # >= 16 chars, immutable (Apple authenticationToken)
    barcode_message: str  # exact text encoded in the QR code
    barcode_alt_text: str  # short human-readable text under the code
    organization_name: str  # the brand's name
    program_name: str
    member_name: str
    points: int
    tier: str | None  # current tier name, None when the program has no tiers
    background_color: str  # "#RRGGBB"
    foreground_color: str  # "#RRGGBB"
    label_color: str  # "#RRGGBB"
    template: str  # folder name under pass_templates/
    updated_at: datetime  # aware UTC; the card's last change (Last-Modified)
    message: str | None = None  # latest brand message, shown on the back of the card
    message_id: str | None = None  # stable id of that message (Google message id)
    member_since: str | None = None  # ISO date of enrollment
    program_id: int = 0
    brand_id: int = 0
    locations: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    # The brand's stores (at most ten) with their lock-screen text, and Apple's maxDistance in
    # metres; the Google class carries the same stores as merchantLocations.
    stores: tuple[StoreView, ...] = field(default_factory=tuple)
    max_distance: int | None = None
    kind: str = "loyalty"  # "coupon": render `coupon` as a coupon-style pass
    coupon: CouponView | None = None
    stamps: tuple[int, int] | None = None  # (collected, per reward) when the stamp card is on
    benefits: str | None = None  # the tier's benefits text
    promotion: str | None = None  # the name of a promotion running now
    coupons: tuple[CouponLine, ...] = field(default_factory=tuple)  # active coupons
    # The messages on the card, newest first (the first is `message`); empty for a card whose
    # only message predates card_messages.
    messages: tuple[MessageLine, ...] = field(default_factory=tuple)
    # The member was erased: Apple shows the pass voided, Google the object INACTIVE.
    voided: bool = False
    # The signed card page at its promotional-messages switch (the back of the pass links it).
    manage_url: str | None = None
    # A signed link rating the member's latest visit while it is unrated (walletd.feedback).
    feedback_url: str | None = None
