"""The neutral view of one loyalty card, from which Apple and Google passes are rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
