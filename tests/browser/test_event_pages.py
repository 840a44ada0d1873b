"""Staff create an event automation on the dashboard; an event from the brand's e-shop schedules
it, the worker sends it, and the list shows the outcome, in English and Traditional Chinese."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import BrandKeys, make_brand, services_of
from walletd.jobs import fire_event_automations
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import Program

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"


def _dashboard(
    stack: Stack, browser: Browser, problems: PageProblems, name: str
) -> tuple[Page, BrandKeys, int]:
    """A brand without quiet hours, its admin logged in, and a consenting member's id."""
    brand = make_brand(stack.app, name)
    svc = services_of(stack.app)
    email = f"owner@{name.lower().replace(' ', '-')}.example"
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, email, PASSWORD, "admin", now=svc.clock())
        # Whatever time of day the test runs, the message may go out.
        session.execute(
            update(Program)
            .where(Program.id == brand.program_id)
            .values(quiet_start_minute=None, quiet_end_minute=None)
        )
        member, _card = enroll_member(
            session, brand.brand_id, Enrollment(name="Grace Hopper", marketing_consent=True), ctx
        )
        member_id = member.id
    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page, brand, member_id


def test_an_event_automation_made_on_the_dashboard_reminds_an_abandoned_cart(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, brand, member_id = _dashboard(stack, browser, problems, "Event Tea House")
    page.goto(f"{stack.url}/dashboard/event-automations")
    page.get_by_label("Automation name").fill("Abandoned cart")
    page.get_by_label("Event that starts it").fill("cart_abandoned")
    page.get_by_label("Wait (minutes, at most 43,200 = 30 days)").fill("5")
    page.get_by_label("Events that cancel it").fill("order_placed")
    page.get_by_label("Message on the card").fill("{name}, your {event.items.0.name} is waiting")
    screenshot(page, "dashboard-event-automation-new")
    page.get_by_role("button", name="Save event automation").click()
    page.get_by_text("Event automation saved.").wait_for()

    svc = services_of(stack.app)
    client = stack.app.test_client()
    ten_minutes_ago = (svc.clock() - timedelta(minutes=10)).isoformat()
    body = {"member_id": member_id, "type": "cart_abandoned", "occurred_at": ten_minutes_ago,
            "properties": {"items": [{"name": "Oolong tea"}]}}  # fmt: skip
    answer = client.post("/api/v1/events", json=body, headers=brand.admin)
    assert answer.status_code == 201 and len(answer.get_json()["scheduled"]) == 1
    assert fire_event_automations(svc) == 1

    page.reload()
    row = page.locator("#event-automation-list li").first
    assert "cart_abandoned → after 5 min" in row.inner_text()
    assert "Sent 1, waiting 0" in row.inner_text()
    screenshot(page, "dashboard-event-automations")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url("**/dashboard/event-automations")
    assert "已送出 1" in page.locator("#event-automation-list li").first.inner_text()
    screenshot(page, "dashboard-event-automations-zh-hant")
    page.get_by_role("button", name="關閉").click()
    page.get_by_text("事件自動訊息已關閉。").wait_for()
    assert problems.errors == []
