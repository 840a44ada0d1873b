"""The delivery report under /api/v1 (admin keys): did card changes reach the phones."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from flask import Blueprint
from pydantic import ConfigDict, Field

from walletd.delivery.report import DEFAULT_STALE_MINUTES, delivery_report
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.schemas import MAX_ID, IsoDate, Reply, Request, Timestamp

bp = Blueprint("delivery_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
# A device behind for longer than this after a change "stopped fetching"; at most 30 days.
MAX_STALE_MINUTES = 43_200

Share = Annotated[
    float | None,
    Field(
        description="a share from 0 to 1 with four decimals; null when there is nothing to count"
    ),
]


class DeliveryQuery(Request):
    """Cards changed in a period of days (UTC, both ends included; default the last 30 days)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDate | None = Field(default=None, alias="from", description="first day")
    end: IsoDate | None = Field(default=None, alias="to", description="last day (default today)")
    program_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="only this program's cards"
    )
    campaign_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="only the cards whose current version this campaign made"
    )
    stale_after_minutes: int = Field(
        default=DEFAULT_STALE_MINUTES,
        ge=1,
        le=MAX_STALE_MINUTES,
        description="a device still behind this long after a change has stopped fetching",
    )


class Shares(Reply):
    """The share of installed cards that had the change within 1 minute, 10 minutes, 1 hour."""

    within_1m: Share
    within_10m: Share
    within_1h: Share


class StoppedDevices(Reply):
    """Devices behind for longer than stale_after_minutes, by how long since they last fetched."""

    count: int
    under_1_day: int
    days_1_to_7: int
    days_7_to_30: int
    over_30_days: int


class AppleDelivery(Reply):
    """Apple devices (one per device and card) holding cards changed in the period."""

    installed: int = Field(description="registrations: a card on one device")
    cards: int = Field(description="distinct cards among them")
    up_to_date: int = Field(description="devices that have the card's current version")
    behind: int
    within_1m: int
    within_10m: int
    within_1h: int
    share: Shares
    stopped: StoppedDevices


class GoogleDelivery(Reply):
    """Google objects of cards changed in the period, and the save/delete callbacks."""

    saved: int = Field(description="cards in a Google wallet (saved, not deleted since)")
    up_to_date: int = Field(description="saved objects written at or after the change")
    within_1m: int
    within_10m: int
    within_1h: int
    share: Shares
    saves: int = Field(description="save callbacks in the period")
    deletions: int = Field(description="delete callbacks in the period")
    update_failures: int = Field(description="object writes that failed for good in the period")


class RefusalCount(Reply):
    """Refused pushes with one status and reason."""

    status: int | None
    reason: str
    count: int


class ApnsRefused(Reply):
    """Pushes APNs refused in the period, counted per card they announced."""

    total: int
    gone: int = Field(description="410: the device no longer has the pass")
    by_reason: list[RefusalCount]


class DeliveryGroup(Reply):
    """Delivery of one program's or one campaign's changes."""

    id: int
    name: str
    installed: int = Field(description="Apple registrations plus saved Google objects")
    up_to_date: int
    share: Shares
    apple: AppleDelivery
    google: GoogleDelivery
    apns_refused: ApnsRefused


class DeliveryReport(Reply):
    """Per program and per campaign: did each card's latest change reach the phones, how fast."""

    model_config = ConfigDict(populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    stale_after_minutes: int
    generated_at: Timestamp
    programs: list[DeliveryGroup]
    campaigns: list[DeliveryGroup]


@bp.get("/reports/delivery")
@endpoint(
    "Delivery health: installed cards up to date within 1 min, 10 min, 1 h of a change, "
    "devices that stopped fetching, Google saves and deletions, pushes APNs refused",
    tag="reports",
    roles=ADMIN,
    query=DeliveryQuery,
    response=DeliveryReport,
)
def report(query: DeliveryQuery) -> dict[str, Any]:
    """Delivery health per program and per campaign (default: the last 30 days)."""
    brand_id = principal().brand_id
    now = context().now
    return run_in_transaction(
        lambda s: delivery_report(
            s,
            brand_id,
            now=now,
            start=query.start,
            end=query.end,
            program_id=query.program_id,
            campaign_id=query.campaign_id,
            stale_after_minutes=query.stale_after_minutes,
        )
    )
