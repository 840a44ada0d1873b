"""A member rates visits on the signed page (English, then Traditional Chinese by the visitor's
choice), and the brand's admin reads the ratings on the dashboard in both languages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import select

from tests.browser.conftest import IPHONE_UA, PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd import feedback
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import LedgerEntry
from walletd.web import links

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser

PASSWORD = "staff password 123"


def _visit(stack: Stack, cashier_key: str, barcode: str, location_id: int, key: str) -> str:
    """A scan through the running server (its own clock); the signed path of its rating page."""
    response = httpx.post(
        f"{stack.url}/api/v1/scans",
        json={"barcode": barcode, "amount": "18.50", "location_id": location_id},
        headers={"Authorization": f"Bearer {cashier_key}", "Idempotency-Key": key},
    )
    assert response.status_code == 201, response.text
    scan_id = int(response.json()["scan_id"])
    svc = services_of(stack.app)
    with svc.db.transaction() as session:
        visited = session.scalars(select(LedgerEntry.created_at).where(LedgerEntry.id == scan_id))
        expires = feedback.link_expiry(visited.one())
    url = links.feedback_url(stack.url, svc.settings.secret_key, scan_id, expires)
    return url[len(stack.url) :]


def test_a_member_rates_visits_and_the_dashboard_shows_the_ratings(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Harbour Diner")
    svc = services_of(stack.app)
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "owner@harbour.example", PASSWORD, "admin",
                     now=svc.clock())  # fmt: skip
        _member, card = enroll_member(session, brand.brand_id, Enrollment(name="Mei Lin"), ctx)
        barcode = card.barcode
    made = httpx.post(
        f"{stack.url}/api/v1/locations",
        json={"name": "Harbour Street"},
        headers={"Authorization": f"Bearer {brand.creds.admin_key}"},
    )
    assert made.status_code == 201, made.text
    shop = int(made.json()["id"])
    first = _visit(stack, brand.creds.cashier_key, barcode, shop, f"{stack.db}-fb-1")
    second = _visit(stack, brand.creds.cashier_key, barcode, shop, f"{stack.db}-fb-2")

    phone = new_phone(browser, problems, IPHONE_UA)
    phone.goto(f"{stack.url}{first}")
    assert "Harbour Street" in phone.locator("#visit").inner_text()
    screenshot(phone, "feedback-page-en")
    phone.get_by_label("4 of 5 · Very good").check()
    phone.get_by_label("Anything you want to tell us?").fill("Friendly staff, long queue.")
    phone.get_by_role("button", name="Send my answer").click()
    phone.locator("#feedback-thanks").wait_for()
    assert "You rated this visit 4 of 5." in phone.locator("#feedback").inner_text()
    screenshot(phone, "feedback-thanks-en")

    # The visitor's own choice of language, on the page itself; the form works by keyboard.
    phone.goto(f"{stack.url}{second}")
    phone.get_by_role("button", name="繁體中文").click()
    phone.get_by_role("heading", name="為這次消費評分").wait_for()
    screenshot(phone, "feedback-page-zh-Hant")
    phone.get_by_label("2 分（滿分 5 分） · 不太滿意").focus()
    phone.keyboard.press("Space")
    phone.get_by_label("有什麼想告訴我們的嗎？").fill("餐點有點冷。")
    phone.get_by_role("button", name="送出我的回覆").click()
    phone.locator("#feedback-thanks").wait_for()
    screenshot(phone, "feedback-thanks-zh-Hant")

    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill("owner@harbour.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    page.get_by_role("link", name="Feedback").click()
    page.wait_for_url("**/dashboard/feedback")
    assert page.locator("#feedback-count").inner_text() == "2"
    assert page.locator("#feedback-average").inner_text() == "3.00"
    assert "Harbour Street" in page.locator("#feedback-locations").inner_text()
    assert "餐點有點冷。" in page.locator("#feedback-comments").inner_text()
    screenshot(page, "dashboard-feedback-en")
    page.get_by_role("button", name="繁體中文").click()
    page.get_by_role("heading", name="顧客評分").wait_for()
    screenshot(page, "dashboard-feedback-zh-Hant")
    assert problems.errors == []
