"""Staff build and issue an offer, the member sees the coupon on the card, the till redeems it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from tests.browser.conftest import IPHONE_UA, PageProblems, Stack, new_phone, screenshot
from tests.factories import BrandKeys, make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.staff import create_staff
from walletd.models import Coupon

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

PASSWORD = "staff password 123"


def _shows(locator: Locator, text: str) -> None:
    """The live preview shows `text`, waiting for its script: the page's deferred script may
    run after the test has filled the form (it then draws from the filled values)."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(text)


def _brand(stack: Stack, name: str) -> tuple[BrandKeys, str, str, str]:
    """A brand with a staff account and a member with an e-mail: (keys, staff, member, card)."""
    brand = make_brand(stack.app, name)
    svc = services_of(stack.app)
    email = f"owner@{name.lower().replace(' ', '-')}.example"
    member_email = f"grace@{name.lower().replace(' ', '-')}.example"
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, email, PASSWORD, "admin", now=svc.clock())
        enrollment = Enrollment(name="Grace Hopper", email=member_email)
        _member, card = enroll_member(session, brand.brand_id, enrollment, ctx)
        serial = card.serial_number
    return brand, email, member_email, serial


def _dashboard(stack: Stack, browser: Browser, problems: PageProblems, email: str) -> Page:
    page = new_phone(browser, problems)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{stack.url}/dashboard/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url("**/dashboard")
    return page


def _till(stack: Stack, browser: Browser, problems: PageProblems, brand: BrandKeys) -> Page:
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/cashier/login")
    page.get_by_label("Cashier key").fill(brand.creds.cashier_key)
    page.get_by_role("button", name="Log in with key").click()
    page.wait_for_url("**/cashier")
    page.wait_for_selector("#till[data-ready=yes]")
    return page


def _coupons(stack: Stack, brand: BrandKeys) -> list[tuple[str, str, str]]:
    with services_of(stack.app).db.transaction() as session:
        rows = session.execute(
            select(Coupon.code, Coupon.barcode, Coupon.status)
            .where(Coupon.brand_id == brand.brand_id)
            .order_by(Coupon.id)
        ).all()
        return [(r[0], r[1], r[2]) for r in rows]


def _card_path(stack: Stack, serial: str) -> str:
    with stack.app.test_request_context():
        from walletd.web.pages.customer import card_page_url

        return card_page_url(serial)


def test_build_issue_see_on_the_card_redeem_at_the_till_and_report(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand, email, member_email, serial = _brand(stack, "Coupon Bakery")
    page = _dashboard(stack, browser, problems, email)
    page.get_by_role("link", name="Offers").first.click()
    page.wait_for_url("**/dashboard/offers")
    page.get_by_role("link", name="New offer").click()

    preview = page.locator(".preview-pane [data-bind=headline]")
    assert preview.inner_text() == "10% off"
    page.get_by_label("Offer name").fill("Welcome treat")
    page.get_by_label("Kind").select_option("amount_off")
    page.get_by_label("Value (percent, USD or points)").fill("5")
    _shows(preview, "USD 5 off")  # the preview follows the form
    _shows(page.locator(".preview-pane [data-bind=offer_name]"), "Welcome treat")
    page.get_by_label("Silver").fill("7")
    page.get_by_label("Minimum spend (USD)").fill("20")
    page.get_by_label("Terms").fill("One coupon per visit.")
    _shows(page.locator(".preview-pane [data-bind=back-terms]"), "One coupon per visit.")
    screenshot(page, "dashboard-offer-new")
    page.get_by_role("button", name="Save offer").click()
    page.get_by_text("Offer saved.").wait_for()

    page.get_by_label("Member number or e-mail").fill(member_email)
    page.get_by_role("button", name="Issue to this member").click()
    page.get_by_text("issued to Grace Hopper").wait_for()
    page.goto(f"{stack.url}/dashboard/offers")
    row = page.locator("#offer-list tbody tr").first
    assert "Welcome treat" in row.inner_text() and "Active" in row.inner_text()
    screenshot(page, "dashboard-offers")
    ((code, _barcode, status),) = _coupons(stack, brand)
    assert status == "active"

    phone = new_phone(browser, problems, IPHONE_UA)
    phone.goto(f"{stack.url}{_card_path(stack, serial)}")
    coupons = phone.locator("#coupons")
    # Grace is a Silver member: her coupon has the Silver value.
    assert "USD 7 off" in coupons.inner_text() and code in coupons.inner_text()
    href = coupons.locator("[data-wallet-button=apple-coupon]").get_attribute("href") or ""
    assert "/pass.pkpass?sig=" in href
    screenshot(phone, "customer-card-coupons")

    till = _till(stack, browser, problems, brand)
    with services_of(stack.app).db.transaction() as session:
        from walletd.models import Card

        card_barcode = session.scalars(select(Card.barcode).where(Card.serial_number == serial))
        barcode = card_barcode.one()
    till.get_by_label("Card code").fill(barcode)
    till.get_by_label("Amount").fill("30")
    till.get_by_label("Amount").press("Enter")
    till.locator("#coupons").wait_for()
    assert "Welcome treat" in till.locator("#coupons").inner_text()
    assert till.locator("#coupon-amount").input_value() == "30"
    button = till.get_by_role("button", name="Redeem coupon")
    button.dblclick()  # a double click redeems once: the key was made with the button
    till.locator("#coupon-result").wait_for()
    assert till.locator("#coupon-result").inner_text() == "Take off USD 7.00"
    assert "Coupon redeemed: Welcome treat" in till.locator("#result-card").inner_text()
    screenshot(till, "cashier-coupon-redeemed")
    assert [c[2] for c in _coupons(stack, brand)] == ["redeemed"]

    page.goto(f"{stack.url}/dashboard/offers")
    page.get_by_role("link", name="Welcome treat").click()
    assert page.locator("#stat-issued").inner_text() == "1"
    assert page.locator("#stat-redeemed").inner_text() == "1"
    assert page.locator("#stat-rate").inner_text() == "100.0%"
    assert page.locator("#stat-discount").inner_text() == "7.00"
    assert page.locator("#stat-revenue").inner_text() == "30.00"
    screenshot(page, "dashboard-offer-report")
    assert problems.errors == []


def test_the_builder_in_traditional_chinese_and_a_scanned_coupon_redeemed_directly(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand, email, member_email, serial = _brand(stack, "Tea House")
    page = _dashboard(stack, browser, problems, email)
    page.goto(f"{stack.url}/dashboard/offers/new")
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url("**/dashboard/offers/new")
    assert page.get_by_role("heading", name="新增優惠").is_visible()
    page.get_by_label("優惠名稱").fill("珍珠奶茶買一送一")
    page.get_by_label("類型").select_option("free_item")
    page.locator("#f-item").fill("珍珠奶茶")
    _shows(page.locator(".preview-pane [data-bind=headline]"), "珍珠奶茶")
    screenshot(page, "dashboard-offer-new-zh-hant")
    page.get_by_role("button", name="儲存優惠").click()
    page.get_by_text("優惠已儲存。").wait_for()
    page.get_by_label("會員編號或電子郵件").fill(member_email)
    page.get_by_role("button", name="發給這位會員").click()
    page.locator(".flash").get_by_text("Grace Hopper").wait_for()

    ((_code, barcode, _status),) = _coupons(stack, brand)
    phone = new_phone(browser, problems, user_agent=IPHONE_UA)
    phone.goto(f"{stack.url}{_card_path(stack, serial)}")
    phone.get_by_role("button", name="繁體中文").click()
    phone.get_by_role("heading", name="您的優惠券").wait_for()  # the offer name is not translated
    assert phone.get_by_text("珍珠奶茶買一送一").last.is_visible()
    screenshot(phone, "customer-card-coupons-zh-hant")
    till = _till(stack, browser, problems, brand)
    till.get_by_role("button", name="繁體中文").click()
    till.wait_for_selector("#till[data-ready=yes]")
    till.locator("#barcode").fill(barcode.lower())
    till.locator("#scan-submit").click()
    till.locator("#coupon-result").wait_for()
    assert "珍珠奶茶" in till.locator("#coupon-result").inner_text()
    screenshot(till, "cashier-coupon-redeemed-zh-hant")
    assert [c[2] for c in _coupons(stack, brand)] == ["redeemed"]
    assert problems.errors == []


def test_a_promotion_built_with_its_card_preview_in_english_and_traditional_chinese(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    _brand_keys, email, _member_email, _serial = _brand(stack, "Promo Cafe")
    page = _dashboard(stack, browser, problems, email)
    page.get_by_role("link", name="Promotions").first.click()
    page.wait_for_url("**/dashboard/promotions")
    shown = page.locator(".preview-pane [data-bind=promotion]")
    assert shown.inner_text() == "Member day"
    page.locator("#f-name").fill("Double points Tuesday")
    _shows(shown, "Double points Tuesday")  # follows the form as it is typed
    page.locator("#f-multiplier").fill("2")
    page.locator("#f-weekday-2").check()
    screenshot(page, "dashboard-promotion-new")
    page.locator("#promotion-form button[type=submit]").first.click()
    page.wait_for_url("**/dashboard/promotions")
    assert page.locator("#promotion-list").inner_text().count("Double points Tuesday") == 1
    page.get_by_role("button", name="繁體中文").click()
    page.wait_for_url("**/dashboard/promotions")
    assert page.locator(".preview-pane [data-bind=promotion]").inner_text() == "會員日"
    page.locator("#f-name").fill("週二會員日")
    _shows(page.locator(".preview-pane [data-bind=promotion]"), "週二會員日")
    screenshot(page, "dashboard-promotion-new-zh-hant")
    assert problems.errors == []


def test_an_admin_voids_a_members_coupon_from_the_member_page(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    from tests.factories import issue_coupon
    from walletd.models import Member

    brand, email, member_email, _serial = _brand(stack, "Void Cafe")
    with services_of(stack.app).db.transaction() as session:
        member_id = session.scalars(select(Member.id).where(Member.email == member_email)).one()
    coupon = issue_coupon(stack.app.test_client(), brand, member_id, name="Free cookie")
    page = _dashboard(stack, browser, problems, email)
    page.goto(f"{stack.url}/dashboard/members/{member_id}")
    row = page.locator(f"#member-coupons tr[data-coupon='{coupon['id']}']")
    assert "Free cookie" in row.inner_text() and "active" in row.inner_text()
    row.get_by_label(f"Why void {coupon['code']}?").fill("issued to the wrong member")
    row.get_by_role("button", name="Void").click()
    page.get_by_text("Coupon voided").wait_for()
    assert "void" in page.locator(f"tr[data-coupon='{coupon['id']}'] .coupon-status").inner_text()
    assert [c[2] for c in _coupons(stack, brand)] == ["void"]
    page.set_viewport_size({"width": 360, "height": 800})
    page.get_by_role("button", name="繁體中文").click()
    page.get_by_role("heading", name="優惠券", exact=True).wait_for()
    assert "已作廢" in page.locator(f"tr[data-coupon='{coupon['id']}'] .coupon-status").inner_text()
    screenshot(page, "dashboard-member-coupons-zh-hant")
    assert problems.errors == []
