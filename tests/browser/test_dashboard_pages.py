"""Brand staff log in, see the overview, find a member, edit the program and start a campaign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import Campaign, Program

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"


def _logged_in(
    stack: Stack, browser: Browser, problems: PageProblems, name: str
) -> tuple[Page, int]:
    brand = make_brand(stack.app, name)
    svc = services_of(stack.app)
    email = f"owner@{name.lower().replace(' ', '-')}.example"
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, email, PASSWORD, "admin", now=svc.clock())
        for person in ("Ada Lovelace", "Alan Turing", "Edsger Dijkstra"):
            enroll_member(session, brand.brand_id, Enrollment(name=person, email=None), ctx)
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/dashboard")
    page.wait_for_url("**/dashboard/login**")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page, brand.brand_id


def test_staff_log_in_see_the_overview_and_adjust_a_members_points(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, _ = _logged_in(stack, browser, problems, "Overview Bakery")
    assert page.locator("#stat-members").inner_text() == "3"
    assert page.locator("svg.bars").count() == 2
    screenshot(page, "dashboard-overview")

    page.get_by_role("link", name="Members").first.click()
    page.get_by_label("Search by name, e-mail, phone, referral code or number").fill("turing")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Alan Turing").click()
    page.get_by_label("Points to add (negative to take away)").fill("25")
    page.get_by_label("Reason").fill("coffee spilled")
    page.get_by_role("button", name="Adjust", exact=True).click()
    page.get_by_text("Points adjusted.").wait_for()
    assert page.locator("#member-points").inner_text() == "75"
    assert "coffee spilled" in page.locator("#ledger").inner_text()
    screenshot(page, "dashboard-member")

    page.goto(f"{stack.url}/dashboard/poster")
    assert page.locator(".poster-qr").is_visible()
    screenshot(page, "dashboard-poster")
    assert problems.errors == []


def test_program_edit_previews_live_and_saves(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, brand_id = _logged_in(stack, browser, problems, "Design Studio")
    page.goto(f"{stack.url}/dashboard/program")
    screenshot(page, "dashboard-program")
    apple = page.locator(".preview-pane .apple-card")
    page.locator("#f-background_color").fill("#aa3300")
    page.get_by_label("Program name").fill("Studio Club")
    assert apple.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(170, 51, 0)"
    assert page.locator(".preview-pane [data-bind=program]").inner_text() == "Studio Club"
    page.get_by_label("Points per USD 1 spent").fill("2")
    page.locator("#f-tier-1-name").fill("Platinum")
    assert page.locator(".preview-pane .apple-card [data-bind=tier]").inner_text() == "Platinum"
    page.get_by_role("button", name="Save program").click()
    page.get_by_text("Program saved").wait_for()
    screenshot(page, "dashboard-program-saved")
    with services_of(stack.app).db.transaction() as session:
        program = session.scalars(select(Program).where(Program.brand_id == brand_id)).one()
        assert (program.name, program.background_color) == ("Studio Club", "#AA3300")
        assert program.points_per_unit == Decimal(2)
    # The saved preview is drawn by the server from the new pass.json.
    assert apple.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(170, 51, 0)"
    assert problems.errors == []


def test_staff_preview_a_segment_and_create_a_campaign(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, brand_id = _logged_in(stack, browser, problems, "Campaign Corner")
    page.goto(f"{stack.url}/dashboard/campaigns")
    page.get_by_label("Name", exact=True).fill("Spring offer")
    page.get_by_label("Message on the card").fill("Double points this weekend!")
    page.get_by_label("Who gets it").select_option("all")
    page.get_by_role("button", name="Preview audience").click()
    assert page.locator("#segment-size").inner_text().startswith("3 members")
    screenshot(page, "dashboard-campaign-new")
    # The server runs on the real clock; a month ahead is always a valid send time.
    send_at = (datetime.now(UTC) + timedelta(days=30)).replace(second=0, microsecond=0)
    page.get_by_label("Send at (program time zone UTC)").fill(send_at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_text("Campaign created.").wait_for()
    assert page.locator("#campaign-status").inner_text() == "Scheduled"
    screenshot(page, "dashboard-campaign")
    with services_of(stack.app).db.transaction() as session:
        campaign = session.scalars(select(Campaign).where(Campaign.brand_id == brand_id)).one()
        assert campaign.status == "scheduled"
        assert campaign.send_at == send_at

    page.goto(f"{stack.url}/dashboard/automations")
    section = page.locator("#automation-birthday")
    section.get_by_label("Switched on").check()
    section.get_by_role("button", name="Save").click()
    page.get_by_text("Automation saved.").wait_for()
    assert page.locator("#automation-birthday .pill").inner_text() == "On"
    screenshot(page, "dashboard-automations")
    assert problems.errors == []
