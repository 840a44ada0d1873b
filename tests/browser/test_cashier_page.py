"""A cashier scans by typing, by a keyboard-wedge scanner, twice by mistake, and while offline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import BrandKeys, make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import LedgerEntry, Member

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _member(stack: Stack, brand: BrandKeys, name: str) -> tuple[int, str]:
    svc = services_of(stack.app)
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        member, card = enroll_member(session, brand.brand_id, Enrollment(name=name), ctx)
        return member.id, card.barcode


def _earns(stack: Stack, member_id: int) -> list[tuple[int, str | None]]:
    with services_of(stack.app).db.transaction() as session:
        rows = session.execute(
            select(LedgerEntry.points, LedgerEntry.idempotency_key).where(
                LedgerEntry.member_id == member_id, LedgerEntry.kind == "earn"
            )
        ).all()
        return [(int(r[0]), r[1]) for r in rows]


def _balance(stack: Stack, member_id: int) -> int:
    with services_of(stack.app).db.transaction() as session:
        return int(session.scalar(select(func.sum(Member.points)).where(Member.id == member_id)))


def _log_in_with_key(page: Page, stack: Stack, brand: BrandKeys) -> None:
    page.goto(f"{stack.url}/cashier")
    page.wait_for_url("**/cashier/login**")
    page.get_by_label("Cashier key").fill(brand.creds.cashier_key)
    page.get_by_role("button", name="Log in with key").click()
    page.wait_for_url("**/cashier")
    page.wait_for_selector("#till[data-ready=yes]")
    assert brand.creds.cashier_key not in page.content()


def test_cashier_types_the_code_sees_the_result_and_a_double_submit_credits_once(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Typed Till")
    member_id, barcode = _member(stack, brand, "Katherine Johnson")
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/cashier/login")
    screenshot(page, "cashier-login")
    _log_in_with_key(page, stack, brand)
    screenshot(page, "cashier-empty")

    page.get_by_label("Card code").fill(barcode.lower())
    page.get_by_label("Amount").fill("200")
    started = time.monotonic()
    page.get_by_label("Amount").press("Enter")
    result = page.locator("#result-card")
    result.wait_for()
    assert time.monotonic() - started < 2.0  # the cashier sees the result in under two seconds
    assert "Katherine Johnson" in result.inner_text()
    assert "+200 points earned" in result.inner_text()
    assert page.locator("#result-balance").inner_text() == "250"
    assert page.locator("#result-tier").inner_text() == "Silver"
    assert page.locator("#rewards").get_by_text("Free coffee").is_visible()
    screenshot(page, "cashier-result")

    # The same card and amount again right away: the first result comes back, nothing is added.
    page.get_by_label("Card code").fill(barcode)
    page.get_by_label("Amount").fill("200")
    page.get_by_role("button", name="Credit points").click()
    page.locator("#result-card.replayed").wait_for()
    assert page.locator("#result-balance").inner_text() == "250"
    assert len(_earns(stack, member_id)) == 1

    # Redeeming a reward, clicked twice, redeems once.
    redeem = page.locator("#rewards button", has_text="Redeem").first
    redeem.dblclick()
    page.get_by_text("Redeemed: Free coffee").wait_for()
    assert page.locator("#result-balance").inner_text() == "100"
    assert _balance(stack, member_id) == 100
    assert problems.errors == []


def test_a_keyboard_wedge_scanner_typing_into_the_amount_field_is_caught(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Scanner Till")
    member_id, barcode = _member(stack, brand, "Dorothy Vaughan")
    svc = services_of(stack.app)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "till@scanner.example", "a long enough pw", "cashier",
                     now=svc.clock())  # fmt: skip
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/cashier/login")
    page.get_by_label("E-mail").fill("till@scanner.example")
    page.get_by_label("Password").fill("a long enough pw")
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/cashier")
    page.wait_for_selector("#till[data-ready=yes]")

    amount = page.get_by_label("Amount")
    amount.fill("12.50")
    amount.focus()
    # A scanner types the whole code in a few milliseconds and presses Enter.
    page.keyboard.type(barcode, delay=2)
    page.keyboard.press("Enter")
    page.locator("#result-card").wait_for()
    assert "+12 points earned" in page.locator("#result-card").inner_text()
    assert [points for points, _ in _earns(stack, member_id)] == [12]

    # With the focus on no field at all, the scanner's keys still land as a card.
    page.get_by_label("Amount").fill("3")
    page.locator("h1").click()
    page.keyboard.type(barcode, delay=2)
    page.keyboard.press("Enter")
    page.get_by_text("+3 points earned").wait_for()
    assert sorted(points for points, _ in _earns(stack, member_id)) == [3, 12]
    assert problems.errors == []


def test_scans_made_offline_wait_on_the_device_and_are_sent_once_when_back_online(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Offline Till")
    member_id, barcode = _member(stack, brand, "Mary Jackson")
    page = new_phone(browser, problems)
    _log_in_with_key(page, stack, brand)

    page.context.set_offline(True)
    page.get_by_label("Card code").fill(barcode)
    page.get_by_label("Amount").fill("30")
    page.get_by_role("button", name="Credit points").click()
    pending = page.locator("#queue li.pending")
    pending.wait_for()
    assert "Pending" in pending.inner_text()
    assert page.locator("#net-status").inner_text().startswith("Offline")
    key = page.evaluate("JSON.parse(localStorage.getItem('walletd.till.queue'))[0].key")
    assert _earns(stack, member_id) == []
    screenshot(page, "cashier-offline-pending")

    page.context.set_offline(False)
    page.locator("#queue li.sent").wait_for()
    assert page.locator("#queue li.pending").count() == 0
    assert _earns(stack, member_id) == [(30, key)]
    # A later flush (timer, reconnect) finds nothing left to send.
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(300)
    assert _earns(stack, member_id) == [(30, key)]
    screenshot(page, "cashier-offline-flushed")
    problems.errors = [e for e in problems.errors if "ERR_INTERNET_DISCONNECTED" not in e]
    assert problems.errors == []
