"""[email-links] On a phone: ask for the card by e-mail, open the e-mailed link, see the card."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import PageProblems, new_phone, screenshot
from tests.conftest import SECRET
from tests.e2e.conftest import LiveServer
from tests.factories import FrozenClock, enroll, make_brand, services_of
from tests.fakes.smtp_server import RunningRelay, running_relay
from walletd import create_app
from walletd.config import Settings
from walletd.db import utcnow
from walletd.email.sender import email_channel
from walletd.push.dispatcher import Dispatcher

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def relay() -> Iterator[RunningRelay]:
    """A plain relay on loopback (TLS is the e-mail part's tests' business)."""
    with running_relay() as running:
        yield running


def test_a_lost_card_is_found_by_an_emailed_link_that_works_once(
    browser: Browser, problems: PageProblems, relay: RunningRelay, tmp_path: Path,
    sqlite_template: Path,
) -> None:  # fmt: skip
    path = tmp_path / "walletd.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    mail = {"WALLETD_SMTP_URL": relay.url, "WALLETD_EMAIL_FROM": "shop@acme.test"}
    server = LiveServer(Settings(database_url=url, secret_key=SECRET), tmp_path,
                        {"WALLETD_ENV": "test", **mail})  # fmt: skip
    settings = Settings(database_url=url, base_url=server.url, secret_key=SECRET, env="test",
                        instance_path=tmp_path / "instance", smtp_url=relay.url,
                        email_from="shop@acme.test")  # fmt: skip
    app = create_app(settings, clock=FrozenClock())
    try:
        brand = make_brand(app, "Lost and Found Cafe")
        enroll(app.test_client(), brand, name="Ada Lovelace", email="ada@example.com")
        page = new_phone(browser, problems)
        page.goto(f"{server.url}/join/{brand.program_id}/recover")
        page.get_by_label("E-mail or phone").fill("ada@example.com")
        page.get_by_role("button", name="Find my card").click()
        assert page.locator("#recovery-sent").is_visible()
        screenshot(page, "customer-recover-sent")

        svc = services_of(app)
        # The server queued it at the real time: the worker runs on the real clock too.
        Dispatcher(svc.db, [email_channel(settings, svc.db)], clock=utcnow).drain()
        [received] = relay.relay.to("ada@example.com")
        body = received.parsed().get_body(("plain",))
        assert body is not None
        link = re.search(r"http://\S+/recover/\S+", body.get_content())
        assert link is not None

        phone = new_phone(browser, problems)
        phone.goto(link.group(0))
        screenshot(phone, "customer-recovery-link")
        phone.get_by_role("button", name="Show my card").click()
        phone.wait_for_url("**/card/**")
        assert "Ada Lovelace" in phone.content()
        assert problems.errors == []
        phone.goto(link.group(0))  # a second time: refused (a 404 page, so not watched above)
        assert phone.get_by_role("heading", name="This link was used already").is_visible()
    finally:
        server.stop()
        services_of(app).close()
