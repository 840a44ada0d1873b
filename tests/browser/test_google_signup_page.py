"""Sign-up from Google Wallet in chromium: Google's web view posts the shared data, the join form
comes up prefilled, and the visitor joins with one tap."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _shared_data(data: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(data).encode("utf-8")).decode("ascii")


def test_google_wallets_post_prefills_the_join_form_and_the_visitor_joins(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Wallet Tea")
    page = new_phone(browser, problems)
    shared = _shared_data(
        {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com", "zip": "x"}
    )
    # What Google Wallet's web view does: a form-encoded POST to the sign-up website.
    page.set_content(
        f'<form method="post" action="{stack.url}/join/{brand.program_id}/google">'
        f'<input type="hidden" name="SharedDataType" value="{shared}">'
        '<input type="hidden" name="unknown" value="ignored"></form>'
    )
    with page.expect_navigation():
        page.locator("form").evaluate("form => form.submit()")

    assert page.get_by_label("Name").input_value() == "Grace Hopper"
    assert page.get_by_label("E-mail").input_value() == "grace@example.com"
    assert page.get_by_label("Phone").input_value() == ""
    assert page.locator("#from-google").is_visible()
    screenshot(page, "customer-join-from-google")

    page.get_by_role("button", name="Get my card").click()

    # Google Wallet is not configured on this server: the card page, never an error.
    page.wait_for_url("**/card/**")
    assert "Grace Hopper" in page.content()
    assert problems.errors == []


def test_a_sign_up_link_with_garbage_still_shows_an_empty_form(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    brand = make_brand(stack.app, "Garbage Tea")
    page = new_phone(browser, problems)
    page.goto(f"{stack.url}/join/{brand.program_id}/google?SharedDataType=%25%25notbase64")

    assert page.get_by_label("Name").input_value() == ""
    assert page.get_by_role("button", name="Get my card").is_visible()
    assert problems.errors == []
