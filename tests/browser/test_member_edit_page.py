"""Staff correct a member on the dashboard, in English and Traditional Chinese; a customer who
joins again with a known e-mail is led to card recovery."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORD = "staff password 123"


def _brand(stack: Stack, name: str) -> tuple[int, str, int]:
    """A brand with a staff account and two members: (program id, staff e-mail, Grace's id)."""
    brand = make_brand(stack.app, name)
    svc = services_of(stack.app)
    slug = name.lower().replace(" ", "-")
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, f"owner@{slug}.example", PASSWORD, "admin",
                     now=svc.clock())  # fmt: skip
        enroll_member(session, brand.brand_id, Enrollment(name="Ada Lovelace",
                      email=f"ada@{slug}.example"), ctx)  # fmt: skip
        grace, _card = enroll_member(
            session, brand.brand_id, Enrollment(name="Grace Hopper", marketing_consent=True), ctx
        )
        grace_id = grace.id
    return brand.program_id, f"owner@{slug}.example", grace_id


def _dashboard(stack: Stack, browser: Browser, problems: PageProblems, email: str) -> Page:
    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page


def test_staff_correct_a_member_and_a_taken_email_names_its_member(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    program_id, email, grace_id = _brand(stack, "Edit Cafe")
    page = _dashboard(stack, browser, problems, email)
    page.goto(f"{stack.url}/dashboard/members")
    page.get_by_role("link", name="Grace Hopper").click()
    page.wait_for_url(f"**/dashboard/members/{grace_id}")
    form = page.locator("#edit-member")
    form.get_by_label("Name", exact=True).fill("Grace Brewster Hopper")
    form.get_by_label("E-mail").fill("ADA@edit-cafe.example")
    form.get_by_label("Phone").fill("0912 345 678")
    form.get_by_role("button", name="Save details").click()
    form.get_by_text("Another member already has this e-mail or phone.").wait_for()
    assert form.get_by_label("Name", exact=True).input_value() == "Grace Brewster Hopper"
    screenshot(page, "dashboard-member-edit-taken")
    form.get_by_role("link", name="Open the member who has it").wait_for()
    form.get_by_label("E-mail").fill("grace@edit-cafe.example")
    form.get_by_label("Birthday").fill("1906-12-09")
    form.get_by_label("Offers and news").uncheck()
    form.get_by_role("button", name="Save details").click()
    page.get_by_text("Details saved.").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "Grace Brewster Hopper"
    facts = page.locator("dl.facts").inner_text()
    assert "grace@edit-cafe.example" in facts and "+886912345678" in facts
    screenshot(page, "dashboard-member-edit")

    customer = new_phone(browser, problems)
    customer.goto(f"{stack.url}/join/{program_id}")
    customer.get_by_label("Name").fill("Grace again")
    customer.get_by_label("E-mail").fill("grace@edit-cafe.example")
    customer.get_by_role("button", name="Get my card").click()
    known = customer.locator("#known-member")
    known.wait_for()
    screenshot(customer, "customer-join-known-member")
    known.get_by_role("link", name="Find my card").click()
    customer.wait_for_url(f"**/join/{program_id}/recover")
    # The 409 of the refused join is the one error response the browser saw.
    assert [e for e in problems.errors if "409" not in e] == []


def test_the_correction_form_in_traditional_chinese_shows_its_errors_next_to_the_field(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    _program_id, email, grace_id = _brand(stack, "Tea Edit")
    page = _dashboard(stack, browser, problems, email)
    page.goto(f"{stack.url}/dashboard/members/{grace_id}")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url(f"**/dashboard/members/{grace_id}")
    form = page.locator("#edit-member")
    assert form.get_by_role("heading", name="修正會員資料").is_visible()
    form.locator("#f-phone").fill("12")
    form.get_by_role("button", name="儲存資料").click()
    form.get_by_text("電話號碼格式不正確").wait_for()
    screenshot(page, "dashboard-member-edit-zh-hant")
    form.locator("#f-phone").fill("+886 912 000 111")
    form.locator("#f-name").fill("葛麗絲")
    form.get_by_role("button", name="儲存資料").click()
    page.get_by_text("資料已儲存。").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "葛麗絲"
    assert [e for e in problems.errors if "422" not in e] == []
