"""The cashier scans a card with the phone's camera (a fake camera showing the card's QR code)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from tests.browser.conftest import CHROMIUM, PageProblems, Stack, new_phone, screenshot
from tests.factories import make_brand, services_of
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.passes.qr import qr_png

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright


def write_y4m(path: Path, text: str, width: int = 640, height: int = 480) -> None:
    """A one-frame Y4M video of the QR code of `text`, for Chromium's fake camera."""
    code = Image.open(io.BytesIO(qr_png(text, 8))).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(code, ((width - code.width) // 2, (height - code.height) // 2))
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    header = f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + frame.tobytes() + chroma + chroma)


def test_the_camera_reads_the_cards_qr_code_and_credits_it(
    stack: Stack, playwright_session: Playwright, problems: PageProblems, tmp_path: Path
) -> None:
    brand = make_brand(stack.app, "Camera Cafe")
    svc = services_of(stack.app)
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        _, card = enroll_member(session, brand.brand_id, Enrollment(name="Hedy Lamarr"), ctx)
        barcode = card.barcode
    video = tmp_path / "qr.y4m"
    write_y4m(video, barcode)
    browser: Browser = playwright_session.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )  # fmt: skip
    try:
        page = new_phone(browser, problems)
        page.context.grant_permissions(["camera"], origin=stack.url)
        page.goto(f"{stack.url}/cashier/login")
        page.get_by_label("Cashier key").fill(brand.creds.cashier_key)
        page.get_by_role("button", name="Log in with key").click()
        page.wait_for_selector("#till[data-ready=yes]")
        page.get_by_label("Amount").fill("8")
        page.get_by_role("button", name="Camera", exact=True).click()
        page.locator("#result-card").wait_for(timeout=15_000)
        assert "Hedy Lamarr" in page.locator("#result-card").inner_text()
        assert "+8 points earned" in page.locator("#result-card").inner_text()
        assert page.locator("#camera").is_hidden()
        screenshot(page, "cashier-camera-result")
        for context in problems.contexts:
            context.close()
        problems.contexts.clear()
    finally:
        browser.close()
    assert problems.errors == []
