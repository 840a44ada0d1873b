"""The pieces behind the pages: translations, language choice, charts and card previews."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from walletd.config import BUNDLED_PASS_TEMPLATES
from walletd.passes.pkpass import load_template
from walletd.passes.view import CardView
from walletd.web.pages import i18n
from walletd.web.pages.charts import daily_bars
from walletd.web.pages.preview import apple_card, google_card, hex_color, readable_on


@pytest.mark.parametrize(
    ("cookie", "accepted", "expected"),
    [
        (None, [("zh-TW", 1.0), ("en", 0.5)], "zh-Hant"),
        (None, [("zh-HK", 1.0)], "zh-Hant"),
        (None, [("fr", 1.0), ("en-GB", 0.8)], "en"),
        (None, [("de", 1.0)], "en"),
        (None, [("en", 0.3), ("zh", 0.9)], "zh-Hant"),
        ("en", [("zh-TW", 1.0)], "en"),
        ("zh-Hant", [], "zh-Hant"),
        ("klingon", [("zh", 1.0)], "zh-Hant"),
    ],
)
def test_language_is_the_switch_or_the_browsers_best(
    cookie: str | None, accepted: list[tuple[str, float]], expected: str
) -> None:
    assert i18n.choose_language(cookie, accepted) == expected


def test_translator_formats_values_and_falls_back_to_english() -> None:
    zh = i18n.translator("zh-Hant")
    assert zh("Welcome, {name}!", name="林") == "歡迎，林！"
    assert zh("not in the catalogue") == "not in the catalogue"
    assert i18n.translator("en")("status:sent") == "Sent"
    assert i18n.translator("en")("Welcome, {name}!", name="Ada") == "Welcome, Ada!"


def test_daily_bars_scale_to_the_largest_day() -> None:
    chart = daily_bars([(date(2026, 3, 1), 0), (date(2026, 3, 2), 5), (date(2026, 3, 3), 10)])
    assert [b.value for b in chart.bars] == [0, 5, 10]
    assert chart.bars[0].height == 0 and chart.bars[2].height == chart.height - 4
    assert chart.bars[1].height == pytest.approx(chart.bars[2].height / 2)
    assert (chart.first, chart.last, chart.total) == ("2026-03-01", "2026-03-03", 15)
    assert daily_bars([]).bars == []


def test_colours_for_the_previews() -> None:
    assert hex_color("rgb(31, 58, 95)") == "#1f3a5f"
    assert readable_on("#ffffff") == "#000000" and readable_on("#1f3a5f") == "#ffffff"


def _view(**changes: object) -> CardView:
    fields: dict[str, object] = {
        "serial_number": "SERIAL0001",
        "authentication_token": "a" * 32,
        "barcode_message": "WD1.SERIAL0001.MAC",
        "barcode_alt_text": "SERIAL01",
        "organization_name": "Acme Coffee",
        "program_name": "Acme Rewards",
        "member_name": "Ada Lovelace",
        "points": 1240,
        "tier": "Gold",
        "background_color": "#1F3A5F",
        "foreground_color": "#FFFFFF",
        "label_color": "#C9D6E8",
        "template": "default",
        "updated_at": datetime(2026, 3, 10, tzinfo=UTC),
        "message": "Double points today",
        "member_since": "2026-01-02",
        "program_id": 7,
    }
    fields.update(changes)
    return CardView(**fields)  # type: ignore[arg-type]


def test_the_apple_preview_lays_out_the_real_pass_json_in_the_readers_language() -> None:
    template = load_template(BUNDLED_PASS_TEMPLATES, "default")
    card = apple_card(_view(), template, language="zh-Hant", web_service_url="http://x/passes/")
    assert card.document["serialNumber"] == "SERIAL0001"
    assert [(f.label, f.value) for f in card.primary] == [("點數", "1,240")]
    assert [(f.key, f.value) for f in card.secondary] == [("member", "Ada Lovelace"),
                                                           ("tier", "Gold")]  # fmt: skip
    assert card.background == "#1f3a5f" and card.qr_data_uri.startswith("data:image/png;base64,")
    assert any(f.value == "Double points today" for f in card.back)
    english = apple_card(_view(tier=None), template, language="en", web_service_url="http://x/")
    assert english.primary[0].label == "Points" and [f.key for f in english.secondary] == ["member"]


def test_the_google_preview_lays_out_the_real_class_and_object() -> None:
    card = google_card(_view(), issuer_id="", logo_uri="http://x/logo.png", language="en")
    assert card.document["loyaltyObject"]["accountName"] == "Ada Lovelace"
    assert card.program_name == "Acme Rewards" and card.issuer_name == "Acme Coffee"
    assert [(f.label, f.value) for f in card.rows] == [("Points", "1,240"), ("Tier", "Gold")]
    assert card.foreground == "#ffffff"
    assert [m.value for m in card.messages] == ["Double points today"]


def test_every_preset_status_automation_and_entry_kind_has_both_texts() -> None:
    from walletd.campaigns.segments import PRESETS
    from walletd.models.campaign import AUTOMATION_KINDS, CAMPAIGN_STATUSES
    from walletd.models.ledger import KINDS

    keys = [f"segment:{p}" for p in PRESETS] + [f"status:{s}" for s in CAMPAIGN_STATUSES]
    keys += [f"automation:{k}" for k in AUTOMATION_KINDS] + list(KINDS)
    en, zh = i18n.translator("en"), i18n.translator("zh-Hant")
    assert [k for k in keys if en(k) == k or zh(k) == k or zh(k) == en(k)] == []
