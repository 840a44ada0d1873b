"""/docs draws the API reference from /openapi.json under the strict CSP: no console error and
no content-security-policy violation, even after opening an operation; a screenshot of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import SCREENSHOTS, PageProblems, Stack

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Every violation the page sees, also the ones a viewer might swallow without logging.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
SCAN_SUMMARY = "Credit a checkout scan"


def test_docs_page_renders_the_operations_without_csp_violations(
    stack: Stack, browser: Browser, problems: PageProblems
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(15_000)
    problems.contexts.append(context)
    page = context.new_page()
    problems.watch(page)
    page.add_init_script(RECORD_VIOLATIONS)
    version = stack.app.test_client().get("/openapi.json").get_json()["info"]["version"]

    page.goto(f"{stack.url}/docs")
    assert page.title() == "walletd API reference"
    assert page.locator("#api-version").inner_text() == version
    assert page.get_by_role("link", name="Back to the dashboard").get_attribute("href") == (
        "/dashboard"
    )
    operation = page.locator(".opblock", has_text=SCAN_SUMMARY).first
    operation.get_by_text(SCAN_SUMMARY).click()
    # Opened: its request body schema is drawn (the viewer's inline styles go through the CSSOM).
    operation.locator(".opblock-body").get_by_text("Request body").first.wait_for()
    assert page.locator(".opblock-tag").count() > 10, "every tag of the document is drawn"
    if stack.db == "sqlite":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "docs.png"))

    violations: Any = page.evaluate("window.cspViolations")
    assert violations == []
    assert problems.errors == []
