"""A member turns promotional messages off and on from the card page (en, zh-Hant), and an admin
erases a member from the dashboard after confirming; screenshots of both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import IPHONE_UA, PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import Member

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PASSWORD = "staff password 123"


def _card_path(stack: Stack, serial: str) -> str:
    with stack.app.test_request_context():
        from walletd.web.pages.customer import card_page_url

        return card_page_url(serial)


def _consent(stack: Stack, member_id: int) -> bool:
    with services_of(stack.app).db.transaction() as session:
        return session.get_one(Member, member_id).marketing_consent


def test_the_member_switches_messages_and_the_admin_erases_the_member(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Tea Garden")
    svc = services_of(stack.app)
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "owner@tea.example", PASSWORD, "admin",
                     now=svc.clock())  # fmt: skip
        enrollment = Enrollment(name="Mei Lin", email="mei@tea.example", marketing_consent=True)
        member, card = enroll_member(session, brand.brand_id, enrollment, ctx)
        member_id, serial = member.id, card.serial_number
    card_path = _card_path(stack, serial)

    phone = new_phone(browser, problems, IPHONE_UA)
    phone.goto(f"{stack.url}{card_path}")
    switch = phone.locator("form.consent-form")
    assert switch.get_attribute("data-consent") == "on"
    switch.scroll_into_view_if_needed()
    screenshot(phone, "card-consent-on-en")
    phone.get_by_role("button", name="Stop promotional messages").click()
    phone.locator("#consent-saved").wait_for()
    assert phone.locator("form.consent-form").get_attribute("data-consent") == "off"
    assert not _consent(stack, member_id)
    screenshot(phone, "card-consent-off-en")

    phone.get_by_role("button", name="繁體中文").click()
    phone.get_by_role("heading", name="優惠訊息").wait_for()
    screenshot(phone, "card-consent-off-zh-Hant")
    phone.get_by_role("button", name="接收優惠訊息").click()
    phone.locator("#consent-saved").wait_for()
    assert "已儲存您的選擇。" in phone.locator("#consent-saved").inner_text()
    assert _consent(stack, member_id)
    screenshot(phone, "card-consent-on-zh-Hant")

    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill("owner@tea.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    page.goto(f"{stack.url}/dashboard/members/{member_id}")
    page.locator("#erase-link").click()
    page.wait_for_url(f"**/dashboard/members/{member_id}/erase")
    screenshot(page, "dashboard-erase-member-en")
    page.get_by_role("button", name="Erase member").click()
    page.locator("#erase-error").wait_for()
    page.get_by_role("button", name="繁體中文").click()
    page.get_by_role("heading", name="清除 Mei Lin？").wait_for()
    page.get_by_label("我了解此動作無法復原").check()
    screenshot(page, "dashboard-erase-member-zh-Hant")
    page.get_by_role("button", name="清除會員").click()
    page.wait_for_url("**/dashboard/members")
    assert "Mei Lin" not in page.locator("main").inner_text()

    # The member's card page is gone with them.
    gone = phone.goto(f"{stack.url}{card_path}")
    assert gone is not None and gone.status == 404
    assert "Mei Lin" not in phone.content()
    # Expected: the unticked confirmation (422) and the erased member's card page (404), each
    # reported as a response and as a console line.
    expected = (f"/dashboard/members/{member_id}/erase", f"/card/{serial}")
    unexpected = [
        e
        for e in problems.errors
        if not any(p in e for p in expected)
        and not e.startswith("Failed to load resource: the server responded with a status of 4")
    ]
    assert unexpected == [], unexpected
    assert len(problems.errors) <= 4
