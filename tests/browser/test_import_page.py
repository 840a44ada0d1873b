"""Staff import members from a CSV on the dashboard: preview, confirm, progress; both languages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.staff import create_staff
from walletd.models import Member

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"
CSV = (
    "external_id,name,email,phone,birthday,marketing_consent,points,tier\n"
    "A-1,Ada Lovelace,ada@example.com,0912 345 678,1990-05-17,yes,120,Gold\n"
    "A-2,Grace Hopper,grace@example.com,,1985-12-09,no,0,\n"
    "A-3,Alan Turing,,+886 912 000 111,,1,3000,VIP\n"
    "A-4,Bad Mail,not-an-address,,,,,\n"
    "A-5,Bad Day,,,1990-02-30,,,Platinum\n"
)


def _log_in(stack: Stack, browser: Browser, problems: PageProblems, email: str) -> Page:
    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page


def _names(stack: Stack, brand_id: int) -> list[str]:
    with services_of(stack.app).db.transaction() as session:
        rows = session.scalars(
            select(Member.name).where(Member.brand_id == brand_id).order_by(Member.name)
        ).all()
        return list(rows)


def test_upload_preview_confirm_and_follow_an_import_in_english_and_chinese(
    stack: Stack, browser: Browser, problems: PageProblems, tmp_path: Path
) -> None:
    brand = make_brand(stack.app, "Import Tea")
    svc = services_of(stack.app)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "owner@import-tea.example", PASSWORD, "admin",
                     now=svc.clock())  # fmt: skip
    path = tmp_path / "members.csv"
    path.write_text(CSV, encoding="utf-8-sig")
    page = _log_in(stack, browser, problems, "owner@import-tea.example")

    page.goto(f"{stack.url}/dashboard/members/import")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Preview import").click()
    page.wait_for_selector("#import-preview")
    assert page.locator("#count-create").inner_text() == "3"
    assert page.locator("#count-errors").inner_text() == "2"
    assert page.locator("#import-errors tbody tr").count() == 3
    assert "not a valid e-mail address" in page.locator("#import-errors").inner_text()
    screenshot(page, "dashboard-import-preview")
    assert _names(stack, brand.brand_id) == []  # nothing before the confirmation

    page.get_by_role("button", name="Import 3 members").click()
    page.wait_for_url("**/dashboard/members/import/*")
    assert "Done" in page.locator("#import-status").inner_text()
    assert page.locator("#count-create").inner_text() == "3"
    screenshot(page, "dashboard-import-done")
    assert _names(stack, brand.brand_id) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]

    # The same file again in Traditional Chinese: found by external id, nothing new.
    page.goto(f"{stack.url}/dashboard/members/import")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_selector("text=匯入會員")
    page.locator("#f-file").set_input_files(str(path))
    page.get_by_role("button", name="預覽匯入").click()
    page.wait_for_selector("#import-preview")
    assert page.locator("#count-unchanged").inner_text() == "3"
    assert "不是有效的電子郵件地址" in page.locator("#import-errors").inner_text()
    screenshot(page, "dashboard-import-preview-zh-hant")
    page.get_by_role("link", name="取消").click()
    page.wait_for_selector("#import-jobs")
    assert "members.csv" in page.locator("#import-jobs").inner_text()
    screenshot(page, "dashboard-import-zh-hant")
    assert problems.errors == []
