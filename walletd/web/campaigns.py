"""Campaigns, segments, automations and reports under /api/v1 (admin keys)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy.orm import Session

from walletd.campaigns import automations, reports, service
from walletd.campaigns.segments import count_segment, parse_segment
from walletd.errors import ValidationError
from walletd.loyalty.brands import get_program
from walletd.models import Automation
from walletd.web.auth import principal
from walletd.web.deps import context, decode_json, run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.errors import ApiError
from walletd.web.schemas import (
    AutomationList,
    AutomationOut,
    AutomationUpdate,
    CampaignCreate,
    CampaignList,
    CampaignOut,
    CampaignReport,
    SegmentCount,
    SegmentQuery,
    Summary,
    SummaryQuery,
)

bp = Blueprint("campaigns", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)


@bp.post("/campaigns")
@endpoint(
    "Create a campaign (scheduled, or a draft)",
    tag="campaigns",
    roles=ADMIN,
    body=CampaignCreate,
    response=CampaignOut,
    status=201,
)
def create_campaign(body: CampaignCreate) -> dict[str, Any]:
    """Create a scheduled campaign (or a draft)."""
    data = body.model_dump(exclude_unset=True)
    brand_id = principal().brand_id
    actor = principal().actor

    def work(session: Session) -> dict[str, Any]:
        campaign = service.create_campaign(session, brand_id, data, context(), actor=actor)
        return service.campaign_stats(session, campaign, context().now)

    return run_in_transaction(work)


@bp.get("/campaigns")
@endpoint(
    "List the brand's campaigns, newest first", tag="campaigns", roles=ADMIN, response=CampaignList
)
def list_campaigns() -> dict[str, Any]:
    """The brand's campaigns, newest first, with their counts."""
    brand_id = principal().brand_id

    def work(session: Session) -> list[dict[str, Any]]:
        now = context().now
        return [
            service.campaign_stats(session, c, now)
            for c in service.list_campaigns(session, brand_id)
        ]

    return {"campaigns": run_in_transaction(work)}


@bp.get("/campaigns/<int:campaign_id>")
@endpoint(
    "A campaign's recipients, deliveries, skips and expected finish",
    tag="campaigns",
    roles=ADMIN,
    response=CampaignOut,
)
def show_campaign(campaign_id: int) -> dict[str, Any]:
    """Recipients, delivered, failed, skipped and the expected finish time."""
    brand_id = principal().brand_id
    return run_in_transaction(
        lambda s: service.campaign_stats(
            s, service.get_campaign(s, brand_id, campaign_id), context().now
        )
    )


@bp.post("/campaigns/<int:campaign_id>/cancel")
@endpoint(
    "Cancel a campaign; nothing more is sent", tag="campaigns", roles=ADMIN, response=CampaignOut
)
def cancel_campaign(campaign_id: int) -> dict[str, Any]:
    """Cancel before or during sending; nothing more is sent."""
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        campaign = service.cancel_campaign(session, brand_id, campaign_id, context())
        return service.campaign_stats(session, campaign, context().now)

    return run_in_transaction(work)


@bp.post("/campaigns/<int:campaign_id>/schedule")
@endpoint("Schedule a draft", tag="campaigns", roles=ADMIN, response=CampaignOut)
def schedule_campaign(campaign_id: int) -> dict[str, Any]:
    """Schedule a draft."""
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        campaign = service.schedule_campaign(session, brand_id, campaign_id, context())
        return service.campaign_stats(session, campaign, context().now)

    return run_in_transaction(work)


@bp.get("/campaigns/<int:campaign_id>/report")
@endpoint(
    "Lift of recipients over the holdout group",
    tag="campaigns",
    roles=ADMIN,
    response=CampaignReport,
)
def campaign_report(campaign_id: int) -> dict[str, Any]:
    """Visits and spend of recipients against the holdout group: the campaign's lift."""
    brand_id = principal().brand_id
    return run_in_transaction(
        lambda s: reports.campaign_report(s, service.get_campaign(s, brand_id, campaign_id))
    )


@bp.get("/segments/preview")
@endpoint(
    "Count the members of a segment",
    tag="segments",
    roles=ADMIN,
    query=SegmentQuery,
    response=SegmentCount,
)
def preview_segment(query: SegmentQuery) -> dict[str, Any]:
    """How many members a segment holds now."""
    try:
        data = decode_json(query.segment, what="segment")
    except ApiError as exc:
        raise ValidationError(exc.message, field="segment") from exc
    segment = parse_segment(data)
    brand_id = principal().brand_id
    count = run_in_transaction(lambda s: count_segment(s, brand_id, segment, context().now))
    return {"count": count, "segment": segment.definition}


@bp.get("/reports/summary")
@endpoint(
    "Members, activity, repeat rate, returning share, AOV, installed cards, message lift",
    tag="reports",
    roles=ADMIN,
    query=SummaryQuery,
    response=Summary,
)
def report_summary(query: SummaryQuery) -> dict[str, Any]:
    """Members, activity, repeat rate, returning share, AOV, installed cards, message lift."""
    brand_id = principal().brand_id
    location_id = query.location_id
    return run_in_transaction(
        lambda s: reports.summary(s, brand_id, query.start, query.end, location_id=location_id)
    )


def _automation_body(a: Automation) -> AutomationOut:
    return AutomationOut(
        id=a.id,
        kind=a.kind,
        enabled=a.enabled,
        message=a.message,
        messages=a.messages or {},
        delay_days=a.delay_days,
        holdout_percent=a.holdout_percent,
        offer_id=a.offer_id,
        email_fallback=a.email_fallback,  # [email-campaigns]
    )


@bp.get("/programs/<int:program_id>/automations")
@endpoint("The program's automations", tag="automations", roles=ADMIN, response=AutomationList)
def list_automations(program_id: int) -> AutomationList:
    """The program's automations and whether each is on."""
    brand_id = principal().brand_id

    def work(session: Session) -> list[AutomationOut]:
        get_program(session, brand_id, program_id)
        return [_automation_body(a) for a in automations.list_automations(session, program_id)]

    return AutomationList(automations=run_in_transaction(work))


@bp.put("/programs/<int:program_id>/automations/<token:kind>")
@endpoint(
    "Switch an automation on or off, change its message, delay, holdout or offer",
    tag="automations",
    roles=ADMIN,
    body=AutomationUpdate,
    response=AutomationOut,
)
def update_automation(program_id: int, kind: str, body: AutomationUpdate) -> AutomationOut:
    """Switch an automation on or off, change its message, delay or holdout."""
    brand_id = principal().brand_id

    def work(session: Session) -> AutomationOut:
        automation = automations.set_automation(
            session, brand_id, program_id, kind, enabled=body.enabled,
            message=body.message, delay_days=body.delay_days,
            holdout_percent=body.holdout_percent, now=context().now,
            offer_id=body.offer_id if "offer_id" in body.model_fields_set else automations.UNSET,
            messages=body.messages if "messages" in body.model_fields_set else automations.UNSET,
            email=body.email_fallback,  # [email-campaigns]
        )  # fmt: skip
        return _automation_body(automation)

    return run_in_transaction(work)
