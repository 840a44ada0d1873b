"""Staff set a program's time zone, quiet hours, caps, refund window and language on the program
page, in English and in Traditional Chinese, and the join page follows the language."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import BrandKeys, make_brand, services_of
from walletd.loyalty.staff import create_staff
from walletd.models import AuditEntry, Program

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"


def _dashboard(
    stack: Stack, browser: Browser, problems: PageProblems, name: str
) -> tuple[Page, BrandKeys]:
    brand = make_brand(stack.app, name)
    svc = services_of(stack.app)
    email = f"owner@{name.lower().replace(' ', '-')}.example"
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, email, PASSWORD, "admin", now=svc.clock())
    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page, brand


def _program(stack: Stack, brand: BrandKeys) -> Program:
    with services_of(stack.app).db.transaction() as session:
        program = session.get_one(Program, brand.program_id)
        session.expunge(program)
        return program


def test_settings_are_saved_from_the_program_page_in_english(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, brand = _dashboard(stack, browser, problems, "Taipei Tea")
    page.goto(f"{stack.url}/dashboard/program")
    page.get_by_label("Time zone").select_option("Asia/Taipei")
    page.get_by_label("Quiet from").fill("21:30")
    page.get_by_label("Quiet until").fill("08:45")
    page.get_by_label("Marketing messages per member per week").fill("2")
    page.get_by_label("Days a cashier may refund a scan").fill("14")
    page.get_by_label("Language of the join and card pages").select_option("zh-Hant")
    page.locator("#f-timezone").scroll_into_view_if_needed()
    screenshot(page, "dashboard-program-settings")
    page.get_by_role("button", name="Save program").click()
    page.get_by_text("Program saved").wait_for()
    program = _program(stack, brand)
    assert program.timezone == "Asia/Taipei"
    assert (program.quiet_start_minute, program.quiet_end_minute) == (21 * 60 + 30, 8 * 60 + 45)
    assert (program.messages_per_week_cap, program.refund_window_days) == (2, 14)
    assert program.default_language == "zh-Hant"
    with services_of(stack.app).db.transaction() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.brand_id == brand.brand_id)
        ).one()
        assert entry.actor_staff_id is not None
        assert entry.changes["quiet_hours"][1] == {"start": "21:30", "end": "08:45"}
    # No quiet hours: both times emptied.
    page.get_by_label("Quiet from").fill("")
    page.get_by_label("Quiet until").fill("")
    page.get_by_role("button", name="Save program").click()
    page.get_by_text("Program saved").wait_for()
    assert _program(stack, brand).quiet_start_minute is None
    # An English browser on the join page gets the program's language.
    visitor = new_phone(browser, problems)
    visitor.goto(f"{stack.url}/join/{brand.program_id}")
    assert visitor.get_by_role("button", name="領取會員卡").is_visible()
    assert problems.errors == []


def test_the_settings_in_traditional_chinese_and_an_error_next_to_its_field(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page, brand = _dashboard(stack, browser, problems, "Tea Garden")
    page.goto(f"{stack.url}/dashboard/program")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url("**/dashboard/program")
    assert page.get_by_text("訊息、收銀與語言").is_visible()
    page.get_by_label("勿擾開始").fill("22:00")
    page.get_by_label("勿擾結束").fill("22:00")
    page.get_by_label("每位會員每週行銷訊息上限").fill("51")
    page.locator("#f-timezone").scroll_into_view_if_needed()
    screenshot(page, "dashboard-program-settings-zh-hant")
    page.locator("form#program-form button[type=submit]").click()
    page.locator("#f-quiet_end-error").wait_for()
    assert "勿擾結束時間必須與開始時間不同" in page.locator("#f-quiet_end-error").inner_text()
    page.locator("#f-quiet_end").scroll_into_view_if_needed()
    screenshot(page, "dashboard-program-settings-error-zh-hant")
    program = _program(stack, brand)
    assert (program.quiet_start_minute, program.messages_per_week_cap) == (21 * 60, 3)
    # A 422 answer is the point here; nothing else may fail.
    assert [e for e in problems.errors if "422" not in e] == []
