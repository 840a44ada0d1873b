"""The card as the wallets draw it, from the real pass.json and Google object, for HTML previews."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from walletd.passes.google import build_loyalty_class, build_loyalty_object, class_id
from walletd.passes.pkpass import PassTemplate, render_pass_json
from walletd.passes.qr import qr_png
from walletd.passes.view import CardView

_RGB = re.compile(r"rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)")
# Placeholders: the preview never reaches Apple or Google, it only has to look like the card.
PREVIEW_PASS_TYPE_ID = "pass.preview.walletd"
PREVIEW_TEAM_ID = "PREVIEW000"
PREVIEW_ISSUER_ID = "3388000000000000000"


@dataclass(frozen=True)
class Field:
    """A label and value as drawn on the card."""

    key: str
    label: str
    value: str


@dataclass(frozen=True)
class AppleCard:
    """A store card as Wallet on iPhone lays it out."""

    logo_text: str
    background: str
    foreground: str
    label_color: str
    header: list[Field]
    primary: list[Field]
    secondary: list[Field]
    back: list[Field]
    barcode_alt: str
    qr_data_uri: str
    template: str
    document: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class GoogleCard:
    """A loyalty card as Google Wallet lays it out."""

    issuer_name: str
    program_name: str
    background: str
    foreground: str
    account_name: str
    account_id: str
    rows: list[Field]
    barcode_alt: str
    qr_data_uri: str
    logo_uri: str
    messages: list[Field]
    document: dict[str, Any] = field(repr=False)


def hex_color(css: str) -> str:
    """#rrggbb from the `rgb(r, g, b)` that pass.json carries (or a hex colour as is)."""
    match = _RGB.fullmatch(css.strip())
    if match is None:
        return css
    return "#" + "".join(f"{min(int(part), 255):02x}" for part in match.groups())


def readable_on(background: str) -> str:
    """Black or white text, whichever reads better on the colour (as Google Wallet chooses)."""
    value = background.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    red, green, blue = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    luminance = 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
    return "#000000" if luminance > 0.179 else "#ffffff"


def qr_data_uri(text: str, box_size: int = 6) -> str:
    """A data: URI of the QR code PNG (allowed by the pages' img-src)."""
    return "data:image/png;base64," + base64.b64encode(qr_png(text, box_size)).decode("ascii")


def _value(raw: Any, strings: Mapping[str, str], number_style: str | None) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return f"{raw:,}" if number_style == "PKNumberStyleDecimal" else str(raw)
    text = str(raw)
    return strings.get(text, text)


def _fields(
    section: list[dict[str, Any]] | None, strings: Mapping[str, str], locale_date: str
) -> list[Field]:
    result = []
    for item in section or []:
        label = str(item.get("label", ""))
        value = item.get("value", "")
        if item.get("dateStyle") and isinstance(value, str):
            value = value[:10]
        result.append(
            Field(
                str(item["key"]),
                strings.get(label, label),
                _value(value, strings, item.get("numberStyle")),
            )
        )
    return result


def apple_card(
    view: CardView, template: PassTemplate, *, language: str, web_service_url: str
) -> AppleCard:
    """The pass.json of the card, laid out as a store card."""
    document = render_pass_json(
        view,
        pass_type_id=PREVIEW_PASS_TYPE_ID,
        team_id=PREVIEW_TEAM_ID,
        web_service_url=web_service_url,
        template=template,
    )
    folder = f"{language}.lproj" if f"{language}.lproj" in template.strings else "en.lproj"
    strings = template.strings.get(folder) or next(iter(template.strings.values()))
    store = document["storeCard"]
    assert isinstance(store, dict)
    barcode = document["barcodes"][0]  # type: ignore[index]
    return AppleCard(
        logo_text=str(document.get("logoText", "")),
        background=hex_color(str(document["backgroundColor"])),
        foreground=hex_color(str(document["foregroundColor"])),
        label_color=hex_color(str(document["labelColor"])),
        header=_fields(store.get("headerFields"), strings, language),
        primary=_fields(store.get("primaryFields"), strings, language),
        secondary=_fields(
            (store.get("secondaryFields") or []) + (store.get("auxiliaryFields") or []),
            strings,
            language,
        ),
        back=_fields(store.get("backFields"), strings, language),
        barcode_alt=str(barcode.get("altText", "")),
        qr_data_uri=qr_data_uri(str(barcode["message"])),
        template=view.template,
        document=document,
    )


GOOGLE_LABELS = {
    "en": {"Points": "Points", "Tier": "Tier", "Member": "Member", "Member ID": "Member ID"},
    "zh-Hant": {"Points": "點數", "Tier": "等級", "Member": "會員", "Member ID": "會員編號"},
}


def google_card(view: CardView, *, issuer_id: str, logo_uri: str, language: str) -> GoogleCard:
    """The Google loyalty class and object of the card, laid out as Google Wallet shows them."""
    issuer = issuer_id or PREVIEW_ISSUER_ID
    klass = build_loyalty_class(
        issuer_id=issuer,
        program_id=view.program_id,
        program_name=view.program_name,
        issuer_name=view.organization_name,
        background_color=view.background_color,
        logo_uri=logo_uri,
    )
    obj = build_loyalty_object(view, issuer_id=issuer, class_id=class_id(issuer, view.program_id))
    labels = GOOGLE_LABELS.get(language, GOOGLE_LABELS["en"])
    rows = [
        Field(
            "points",
            labels.get(obj["loyaltyPoints"]["label"], obj["loyaltyPoints"]["label"]),
            f"{obj['loyaltyPoints']['balance']['int']:,}",
        )
    ]
    secondary = obj.get("secondaryLoyaltyPoints")
    if secondary:
        rows.append(
            Field(
                "tier",
                labels.get(secondary["label"], secondary["label"]),
                secondary["balance"]["string"],
            )
        )
    background = str(klass["hexBackgroundColor"])
    return GoogleCard(
        issuer_name=str(klass["issuerName"]),
        program_name=str(klass["programName"]),
        background=background,
        foreground=readable_on(background),
        account_name=str(obj["accountName"]),
        account_id=str(obj["accountId"]),
        rows=rows,
        barcode_alt=str(obj["barcode"].get("alternateText", "")),
        qr_data_uri=qr_data_uri(str(obj["barcode"]["value"])),
        logo_uri=logo_uri,
        messages=[
            Field(str(m["id"]), str(m["header"]), str(m["body"])) for m in obj.get("messages", [])
        ],
        document={"loyaltyClass": klass, "loyaltyObject": obj},
    )
