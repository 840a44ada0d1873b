"""A customer joins on a phone, sees the card with both wallet buttons, and can find it again."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import IPHONE_UA, PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_enrollment_shows_both_wallet_buttons_with_the_phones_wallet_first(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Bean There")
    page = new_phone(browser, problems, IPHONE_UA)
    page.goto(f"{stack.url}/join/{brand.program_id}")
    screenshot(page, "customer-join")
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("E-mail").fill("grace@example.com")
    page.get_by_label("Birthday").fill("1990-12-09")
    page.get_by_label("Send me offers and news on my card").check()
    page.get_by_role("button", name="Get my card").click()

    page.wait_for_url("**/card/**")
    apple = page.locator("[data-wallet-button=apple]")
    google = page.locator("[data-wallet-button=google]")
    assert apple.is_visible() and google.is_visible()
    assert "Add to Apple Wallet" in apple.inner_text().replace("\n", " ")
    assert "Add to Google Wallet" in google.inner_text()
    assert "prominent" in (apple.get_attribute("class") or "")
    assert "prominent" not in (google.get_attribute("class") or "")
    assert page.locator(".apple-card").is_visible()
    assert "Grace Hopper" in page.locator(".apple-card").inner_text()
    # The QR code image loads from our own server.
    loaded = page.evaluate("document.querySelector('.qr-box img').naturalWidth")
    assert loaded > 0
    screenshot(page, "customer-card-iphone")

    android = new_phone(browser, problems)
    android.goto(page.url)
    assert "prominent" in (
        android.locator("[data-wallet-button=google]").get_attribute("class") or ""
    )
    assert android.locator(".google-card").is_visible()
    screenshot(android, "customer-card-android")
    assert problems.errors == []


def test_a_lost_card_is_found_by_email_and_birthday(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Lost and Found Cafe")
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/join/{brand.program_id}")
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_label("Birthday").fill("1985-12-10")
    page.get_by_role("button", name="Get my card").click()
    page.wait_for_url("**/card/**")
    card_url = page.url

    page.goto(f"{stack.url}/join/{brand.program_id}/recover")
    page.get_by_label("E-mail or phone").fill("ada@example.com")
    page.get_by_label("Birthday").fill("1985-12-11")
    page.get_by_role("button", name="Find my card").click()
    assert page.get_by_text("We found no card with these details.").is_visible()
    screenshot(page, "customer-recover")
    page.get_by_label("Birthday").fill("1985-12-10")
    page.get_by_role("button", name="Find my card").click()
    page.wait_for_url("**/card/**")
    assert page.url == card_url
    assert problems.errors == []


def test_the_page_speaks_traditional_chinese_by_browser_language_and_switch(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Tea House")
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, locale="zh-TW",
        extra_http_headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"},
    )  # fmt: skip
    problems.contexts.append(context)
    page = context.new_page()
    problems.watch(page)
    page.goto(f"{stack.url}/join/{brand.program_id}")
    assert page.locator("html").get_attribute("lang") == "zh-Hant-TW"
    assert page.get_by_role("button", name="領取會員卡").is_visible()
    screenshot(page, "customer-join-zh-hant")
    page.get_by_role("button", name="English").click()
    assert page.get_by_role("button", name="Get my card").is_visible()
    page.reload()
    assert page.get_by_role("button", name="Get my card").is_visible()
    assert problems.errors == []
