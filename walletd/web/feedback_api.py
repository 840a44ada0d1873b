"""The feedback report under /api/v1 (admin keys): how members rated their visits."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from flask import Blueprint
from pydantic import Field

from walletd.feedback import LATEST_COMMENTS, feedback_report
from walletd.web.auth import principal
from walletd.web.deps import run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.schemas import MAX_ID, Reply, ReportQuery, Timestamp

bp = Blueprint("feedback_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)

Average = Annotated[
    str | None,
    Field(description="the mean rating with two decimals, such as 4.25; null without answers"),
]


class FeedbackQuery(ReportQuery):
    """A period of days (UTC, both ends included), optionally at one location only."""

    location_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        default=None, description="only the visits at this location"
    )


class LocationRatings(Reply):
    """The answers about visits at one location (null: visits without a location)."""

    location_id: int | None
    name: str | None
    count: int
    average: Average


class RatingPoint(Reply):
    """The answers of one day or one week (from its Monday)."""

    start: date
    count: int
    average: Average


class RatingSeries(Reply):
    """Answers over time: by day for up to 31 days, by week beyond."""

    unit: Literal["day", "week"]
    points: list[RatingPoint]


class FeedbackComment(Reply):
    """One answer with a comment."""

    id: int
    scan_id: int
    member_id: int
    location_id: int | None
    rating: int
    comment: str
    language: str
    created_at: Timestamp


class FeedbackReport(Reply):
    """How members rated their visits in the period."""

    count: int = Field(description="answers in the period")
    average: Average
    distribution: dict[str, int] = Field(description='answers per rating, "1" to "5"')
    by_location: list[LocationRatings]
    over_time: RatingSeries
    latest_comments: list[FeedbackComment] = Field(
        description=f"the newest answers with a comment, at most {LATEST_COMMENTS}"
    )


@bp.get("/reports/feedback")
@endpoint(
    "Ratings of visits: count, average, distribution, by location, over time, latest comments",
    tag="reports",
    roles=ADMIN,
    query=FeedbackQuery,
    response=FeedbackReport,
)
def report(query: FeedbackQuery) -> dict[str, Any]:
    """How members rated their visits in a period, at every location or one."""
    brand_id = principal().brand_id
    location_id = query.location_id
    return run_in_transaction(
        lambda s: feedback_report(s, brand_id, query.start, query.end, location_id=location_id)
    )
