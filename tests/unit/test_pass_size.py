"""A pass is downloaded by every device after every change: the default one stays small."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from walletd.passes.pkpass import build_pkpass, load_template
from walletd.passes.signing import PassSigner
from walletd.passes.view import CardView, CouponLine, MessageLine

# A million-device refresh is 30 GB at this size: keep the default pass under it.
MAX_PASS_BYTES = 30 * 1024
# Images a store card shows, at Apple's three scales; anything else in a template is unused.
STORE_CARD_IMAGES = {
    f"{name}{scale}.png" for name in ("icon", "logo", "strip") for scale in ("", "@2x", "@3x")
}


def _busy(view: CardView) -> CardView:
    """A card carrying everything the back of a pass can show: the largest realistic pass.json."""
    sent = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    return dataclasses.replace(
        view,
        message="Double points every Wednesday in March — 三月每週三雙倍點數",
        message_id="m3",
        messages=tuple(
            MessageLine(id=f"m{i}", text=f"Message {i}: 新品上市，會員九折 " * 3, sent_at=sent)
            for i in range(3)
        ),
        coupons=tuple(
            CouponLine(name=f"Free latte {i} 免費拿鐵", code=f"CPN{i:05d}", expires_at=sent)
            for i in range(5)
        ),
        stamps=(7, 10),
        benefits="Member prices on every drink, a birthday coupon, 10% off beans",
        promotion="Spring double points",
        manage_url="https://walletd.example/cards/01HZX3K7Q9V2ABCDEF?sig=" + "a" * 43,
        feedback_url="https://walletd.example/feedback/01HZX3K7Q9V2ABCDEF?sig=" + "b" * 43,
        locations=tuple((25.03 + i / 100, 121.56 + i / 100) for i in range(10)),
    )


def test_default_pass_with_all_three_scales_is_at_most_30_kb(
    card_view: CardView, signer: PassSigner, templates_root: Path
) -> None:
    data = build_pkpass(
        _busy(card_view),
        signer=signer,
        template=load_template(templates_root, "default"),
        web_service_url="https://walletd.example/passes/",
    )
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert STORE_CARD_IMAGES <= names
    assert len(data) <= MAX_PASS_BYTES, f"the default pass is {len(data)} bytes"


def test_bundled_templates_hold_no_unused_files(templates_root: Path) -> None:
    for template in ("default", "mono"):
        folder = templates_root / template
        files = {p.name for p in folder.iterdir() if p.is_file()}
        assert files - {"pass.json"} <= STORE_CARD_IMAGES, template
        for lproj in (p for p in folder.iterdir() if p.is_dir()):
            assert {p.name for p in lproj.iterdir()} == {"pass.strings"}, lproj
