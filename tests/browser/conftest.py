"""Browser tests: Playwright drives Debian's chromium against a gunicorn server on loopback."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from tests.conftest import POSTGRES_URL, SECRET, truncate_postgres
from tests.e2e.conftest import ROOT, LiveServer
from tests.factories import FrozenClock, services_of
from walletd import create_app
from walletd.config import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PHONE: ViewportSize = {"width": 360, "height": 780}
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


_screenshots = {"keep": True}


def _why_no_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
    return None


@pytest.fixture(scope="package")
def playwright_session() -> Iterator[Playwright]:
    """One Playwright driver for the browser tests (its event loop ends with them), or a skip."""
    reason = _why_no_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless; never a downloaded browser build."""
    launched = playwright_session.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    )
    yield launched
    launched.close()


@dataclass
class Stack:
    """A migrated database, an app on it for direct checks, and a gunicorn server serving it."""

    app: Flask
    server: LiveServer
    db: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    browser: Browser,
) -> Iterator[Stack]:
    """One server per database for the browser tests; each makes its own brand, so they share it."""
    tmp = tmp_path_factory.mktemp(f"browser-{request.param}")
    if request.param == "sqlite":
        path = tmp / "walletd.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        if not POSTGRES_URL:
            pytest.skip("WALLETD_TEST_DATABASE_URL is not set: Postgres tests need a server")
        url = request.getfixturevalue("postgres_migrated")
        truncate_postgres(url)
    server = LiveServer(Settings(database_url=url, secret_key=SECRET), tmp, {"WALLETD_ENV": "test"})
    settings = Settings(
        database_url=url,
        base_url=server.url,
        secret_key=SECRET,
        env="test",
        instance_path=tmp / "instance",
    )
    app = create_app(settings, clock=FrozenClock())
    # Both databases draw the same pages: keep the pictures of one run only (it saves time).
    _screenshots["keep"] = request.param == "sqlite"
    try:
        yield Stack(app, server, request.param)
    finally:
        server.stop()
        services_of(app).close()


class PageProblems:
    """Console errors (CSP violations among them) and failed requests seen by a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.contexts: list[BrowserContext] = []

    def watch(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "response",
            lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )


@pytest.fixture
def problems() -> Iterator[PageProblems]:
    """Collects what went wrong in the browser during a test; closes the test's contexts."""
    watcher = PageProblems()
    yield watcher
    # Closed connections let gunicorn stop at once instead of waiting for idle keep-alives.
    for context in watcher.contexts:
        context.close()


def new_phone(browser: Browser, problems: PageProblems, user_agent: str = ANDROID_UA) -> Page:
    """A fresh phone-sized browsing context and its page."""
    context: BrowserContext = browser.new_context(
        viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
        user_agent=user_agent, locale="en-US",
    )  # fmt: skip
    context.set_default_timeout(10_000)
    problems.contexts.append(context)
    page = context.new_page()
    problems.watch(page)
    return page


def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact, and check nothing overflows 360 px."""
    # A click that navigates returns once the new document has begun to arrive, and a text
    # the old and the new page share (an offer's name in either language) is found at once:
    # wait for the stylesheet and images, or the width is measured of an unstyled page.
    page.wait_for_load_state("load")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if _screenshots["keep"]:
        page.screenshot(path=str(path), full_page=True)
    overflow: Any = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the phone"
    return path
