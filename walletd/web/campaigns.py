"""Campaigns, segments, automations and reports under /api/v1 (admin keys)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.orm import Session

from walletd.campaigns import automations, reports, service
from walletd.campaigns.segments import count_segment, parse_segment
from walletd.errors import ValidationError
from walletd.loyalty.brands import get_program
from walletd.models import Automation
from walletd.web.auth import principal, require_role
from walletd.web.deps import context, json_body, json_response, run_in_transaction

bp = Blueprint("campaigns", __name__, url_prefix="/api/v1")


@bp.post("/campaigns")
@require_role("admin")
def create_campaign() -> Response:
    """Create a scheduled campaign (or a draft)."""
    data = json_body()
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        campaign = service.create_campaign(session, brand_id, data, context())
        return service.campaign_stats(session, campaign, context().now)

    return json_response(run_in_transaction(work), 201)


@bp.get("/campaigns")
@require_role("admin")
def list_campaigns() -> Response:
    """The brand's campaigns, newest first, with their counts."""
    brand_id = principal().brand_id

    def work(session: Session) -> list[dict[str, Any]]:
        now = context().now
        return [
            service.campaign_stats(session, c, now)
            for c in service.list_campaigns(session, brand_id)
        ]

    return jsonify({"campaigns": run_in_transaction(work)})


@bp.get("/campaigns/<int:campaign_id>")
@require_role("admin")
def show_campaign(campaign_id: int) -> Response:
    """Recipients, delivered, failed, skipped and the expected finish time."""
    brand_id = principal().brand_id
    return jsonify(
        run_in_transaction(
            lambda s: service.campaign_stats(
                s, service.get_campaign(s, brand_id, campaign_id), context().now
            )
        )
    )


@bp.post("/campaigns/<int:campaign_id>/cancel")
@require_role("admin")
def cancel_campaign(campaign_id: int) -> Response:
    """Cancel before or during sending; nothing more is sent."""
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        campaign = service.cancel_campaign(session, brand_id, campaign_id, context())
        return service.campaign_stats(session, campaign, context().now)

    return jsonify(run_in_transaction(work))


@bp.post("/campaigns/<int:campaign_id>/schedule")
@require_role("admin")
def schedule_campaign(campaign_id: int) -> Response:
    """Schedule a draft."""
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        campaign = service.schedule_campaign(session, brand_id, campaign_id, context())
        return service.campaign_stats(session, campaign, context().now)

    return jsonify(run_in_transaction(work))


@bp.get("/campaigns/<int:campaign_id>/report")
@require_role("admin")
def campaign_report(campaign_id: int) -> Response:
    """Visits and spend of recipients against the holdout group: the campaign's lift."""
    brand_id = principal().brand_id
    return jsonify(
        run_in_transaction(
            lambda s: reports.campaign_report(s, service.get_campaign(s, brand_id, campaign_id))
        )
    )


@bp.get("/segments/preview")
@require_role("admin")
def preview_segment() -> Response:
    """How many members a segment holds now."""
    raw = request.args.get("segment")
    if raw is None or len(raw) > 20_000:
        raise ValidationError("segment is required as a JSON query parameter", field="segment")
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise ValidationError("segment is not valid JSON", field="segment") from exc
    segment = parse_segment(data)
    brand_id = principal().brand_id
    count = run_in_transaction(lambda s: count_segment(s, brand_id, segment, context().now))
    return jsonify({"count": count, "segment": segment.definition})


def _date(name: str) -> date:
    value = request.args.get(name)
    if value is None:
        raise ValidationError(f"{name} is required (YYYY-MM-DD)", field=name)
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a date as YYYY-MM-DD", field=name) from exc
    if parsed.isoformat() != value:
        raise ValidationError(f"{name} must be a date as YYYY-MM-DD", field=name)
    return parsed


@bp.get("/reports/summary")
@require_role("admin")
def report_summary() -> Response:
    """Members, activity, repeat rate, returning share, AOV, installed cards, message lift."""
    start, end = _date("from"), _date("to")
    brand_id = principal().brand_id
    return jsonify(run_in_transaction(lambda s: reports.summary(s, brand_id, start, end)))


def _automation_body(a: Automation) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "enabled": a.enabled,
        "message": a.message,
        "delay_days": a.delay_days,
        "holdout_percent": a.holdout_percent,
    }


@bp.get("/programs/<int:program_id>/automations")
@require_role("admin")
def list_automations(program_id: int) -> Response:
    """The program's automations and whether each is on."""
    brand_id = principal().brand_id

    def work(session: Session) -> list[dict[str, Any]]:
        get_program(session, brand_id, program_id)
        return [_automation_body(a) for a in automations.list_automations(session, program_id)]

    return jsonify({"automations": run_in_transaction(work)})


@bp.put("/programs/<int:program_id>/automations/<kind>")
@require_role("admin")
def update_automation(program_id: int, kind: str) -> Response:
    """Switch an automation on or off, change its message, delay or holdout."""
    data = json_body()
    enabled = data.get("enabled")
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", field="enabled")
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        automation = automations.set_automation(
            session, brand_id, program_id, kind, enabled=enabled,
            message=data.get("message"), delay_days=data.get("delay_days"),
            holdout_percent=data.get("holdout_percent"), now=context().now,
        )  # fmt: skip
        return _automation_body(automation)

    return jsonify(run_in_transaction(work))
