"""An admin adds a store, issues a till key bound to it and invites a cashier, who sets a
password with the link and lands on the till; in English and in Traditional Chinese."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.staff import create_staff

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"


def _dashboard(stack: Stack, browser: Browser, problems: PageProblems, name: str) -> Page:
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
    return page


def test_stores_keys_and_staff_in_english_and_an_invitee_sets_a_password(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page = _dashboard(stack, browser, problems, "Store Admin")
    page.get_by_role("link", name="Locations").first.click()
    page.wait_for_url("**/dashboard/locations")
    page.get_by_label("Location name").fill("Xinyi store")
    page.get_by_label("Address").fill("No. 7, Xinyi Rd, Taipei")
    page.get_by_label("Latitude").fill("25.033964")
    page.get_by_label("Longitude").fill("121.564472")
    page.locator("#location-form button[type=submit]").click()
    page.get_by_text("Location saved.").wait_for()
    assert "Xinyi store" in page.locator("#location-list").inner_text()
    screenshot(page, "dashboard-locations")

    page.get_by_role("link", name="API keys").first.click()
    page.wait_for_url("**/dashboard/keys")
    page.get_by_label("Key name").fill("Till 1")
    page.get_by_label("Location").select_option(label="Xinyi store")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key-value").inner_text()
    assert key.startswith("wd_c_")
    assert "Never" in page.locator("#key-list").inner_text()
    screenshot(page, "dashboard-keys")

    page.get_by_role("link", name="Staff").first.click()
    page.wait_for_url("**/dashboard/staff")
    page.get_by_label("E-mail").fill("till@store-admin.example")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#new-link-value").inner_text()
    assert "/dashboard/set-password/" in link
    assert "Invited" in page.locator("#staff-list").inner_text()
    screenshot(page, "dashboard-staff")

    invitee = new_phone(browser, problems)
    invitee.goto(link)
    invitee.get_by_label("New password").fill("a long new password")
    invitee.get_by_label("The same password again").fill("a long new password")
    screenshot(invitee, "dashboard-set-password")
    invitee.get_by_role("button", name="Save password and log in").click()
    invitee.wait_for_url("**/cashier")
    invitee.wait_for_selector("#till[data-ready=yes]")
    assert problems.errors == []


def test_stores_keys_and_staff_in_traditional_chinese(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    page = _dashboard(stack, browser, problems, "Tea Admin")
    page.goto(f"{stack.url}/dashboard/locations")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url("**/dashboard/locations")
    assert page.get_by_role("heading", name="據點", exact=True).is_visible()
    page.locator("#f-name").fill("信義門市")
    page.locator("#f-timezone").fill("Asia/Taipei")
    page.get_by_role("button", name="儲存據點").click()
    page.get_by_text("據點已儲存。").wait_for()
    screenshot(page, "dashboard-locations-zh-hant")
    page.get_by_role("link", name="API 金鑰").first.click()
    page.wait_for_url("**/dashboard/keys")
    page.locator("#f-name").fill("收銀台 1")
    page.get_by_role("button", name="建立金鑰").click()
    assert page.locator("#new-key-value").inner_text().startswith("wd_c_")
    screenshot(page, "dashboard-keys-zh-hant")
    page.get_by_role("link", name="員工").first.click()
    page.wait_for_url("**/dashboard/staff")
    page.locator("#f-email").fill("clerk@tea-admin.example")
    page.get_by_role("button", name="邀請", exact=True).click()
    page.locator("#new-link-value").wait_for()
    assert "已邀請" in page.locator("#staff-list").inner_text()
    screenshot(page, "dashboard-staff-zh-hant")
    assert problems.errors == []
