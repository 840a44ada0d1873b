"""Dashboard: "Is my card up to date?" (the delivery report) and the member page's devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.delivery.devices import DeviceVersion, RefusedPush, member_devices, member_refusals
from walletd.delivery.report import DEFAULT_DAYS, delivery_report
from walletd.errors import NotFoundError, ValidationError
from walletd.models import Campaign, Member
from walletd.web.deps import context, run_in_transaction
from walletd.web.pages import dashboard
from walletd.web.pages.dashboard import me, staff_only
from walletd.web.pages.render import _, error_text, render


@dataclass(frozen=True)
class DevicesPanel:
    """The member page's panel: each device's version of the card, and refused pushes."""

    devices: list[DeviceVersion]
    refusals: list[RefusedPush]


def devices_panel(session: Session, member: Member) -> DevicesPanel:
    """What the member page shows about the member's devices."""
    return DevicesPanel(member_devices(session, member.id), member_refusals(session, member.id))


def _day(text: str, default: date, field: str, errors: dict[str, str]) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        errors[field] = _("Enter a date as YYYY-MM-DD.")
        return default


@dashboard.bp.get("/delivery")
@staff_only
def delivery_page() -> Any:
    """Per program and campaign: cards up to date after a change, stopped devices, refusals."""
    viewer = me()
    now = context().now
    errors: dict[str, str] = {}
    today = now.date()
    start = _day(request.args.get("from", ""), today - timedelta(days=DEFAULT_DAYS - 1), "from",
                 errors)  # fmt: skip
    end = _day(request.args.get("to", ""), today, "to", errors)
    campaign_text = request.args.get("campaign_id", "")
    digits = campaign_text.isascii() and campaign_text.isdigit() and len(campaign_text) <= 9
    campaign_id = int(campaign_text) if digits and int(campaign_text) > 0 else None
    if campaign_text and campaign_id is None:
        errors["campaign_id"] = _("Choose a campaign from the list.")

    def work(session: Session) -> tuple[dict[str, Any] | None, list[tuple[int, str]]]:
        choices = [
            (int(i), str(n))
            for i, n in session.execute(
                select(Campaign.id, Campaign.name)
                .where(Campaign.brand_id == viewer.brand_id)
                .order_by(Campaign.id.desc())
                .limit(200)
            ).all()
        ]
        if errors:
            return None, choices
        try:
            found = delivery_report(session, viewer.brand_id, now=now, start=start, end=end,
                                    campaign_id=campaign_id)  # fmt: skip
        except ValidationError as exc:
            errors[exc.field or "from"] = error_text(exc)
            return None, choices
        except NotFoundError:
            errors["campaign_id"] = _("Choose a campaign from the list.")
            return None, choices
        return found, choices

    report, campaigns = run_in_transaction(work)
    values = {"from": start.isoformat(), "to": end.isoformat(), "campaign_id": campaign_text[:12]}
    return render("dashboard/delivery.html", 422 if errors else 200, report=report,
                  campaigns=campaigns, values=values, errors=errors)  # fmt: skip
