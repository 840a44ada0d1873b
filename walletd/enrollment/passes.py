"""The personalizable store card: a pass with personalization.json, its logo and the nfc
dictionary, signed like every other pass (no Flask, no database)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

from walletd.enrollment.settings import FIELD_NAMES
from walletd.passes.pkpass import PassTemplate, ZipPart, css_rgb, join_zip
from walletd.passes.signing import ManifestSigner

# Apple: the sign-up sheet's logo is 150 x 40 points, written at 1x, @2x and @3x.
LOGO_POINTS = (150, 40)
SCALES = (1, 2, 3)


@dataclass(frozen=True)
class EnrollmentPassView:
    """Everything one personalizable pass shows; no ORM objects."""

    serial_number: str
    authentication_token: str
    organization_name: str
    program_name: str
    template: str
    background_color: str  # "#RRGGBB"
    foreground_color: str
    label_color: str
    required_fields: tuple[str, ...]  # API names: name, email, phone, postal_code
    description: str
    terms: str | None
    nfc: Mapping[str, Any]  # {"message", "encryption_public_key", "requires_authentication"}
    created_at: datetime


def personalization_json(view: EnrollmentPassView) -> dict[str, Any]:
    """Apple's personalization.json: the fields the sheet asks, the description and terms."""
    document: dict[str, Any] = {
        "requiredPersonalizationFields": [FIELD_NAMES[name] for name in view.required_fields],
        "description": view.description,
    }
    if view.terms:
        document["termsAndConditions"] = view.terms
    return document


def render_enrollment_pass_json(
    view: EnrollmentPassView,
    *,
    pass_type_id: str,
    team_id: str,
    web_service_url: str,
    template: PassTemplate,
) -> dict[str, Any]:
    """pass.json of the personalizable store card (no barcode: there is no member yet)."""
    skeleton = template.skeleton_document()
    static = skeleton.pop("storeCard", {})
    nfc: dict[str, Any] = {
        "message": view.nfc["message"],
        "encryptionPublicKey": view.nfc["encryption_public_key"],
    }
    if view.nfc.get("requires_authentication"):
        nfc["requiresAuthentication"] = True
    back: list[dict[str, Any]] = [{"key": "enrollment_description", "value": view.description}]
    if view.terms:
        back.append({"key": "enrollment_terms", "value": view.terms})
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": pass_type_id,
        "serialNumber": view.serial_number,
        "teamIdentifier": team_id,
        "organizationName": view.organization_name,
        "description": f"{view.organization_name} {view.program_name}",
        "logoText": view.organization_name,
        "backgroundColor": css_rgb(view.background_color),
        "foregroundColor": css_rgb(view.foreground_color),
        "labelColor": css_rgb(view.label_color),
        "webServiceURL": web_service_url,
        "authenticationToken": view.authentication_token,
        "nfc": nfc,
        "storeCard": {
            "primaryFields": [{"key": "program", "value": view.program_name}],
            "backFields": back + list(static.get("backFields", [])),
        },
    }
    if static.get("headerFields"):
        document["storeCard"]["headerFields"] = list(static["headerFields"])
    for key, value in skeleton.items():
        document.setdefault(key, value)
    return document


@functools.lru_cache(maxsize=32)
def _logo_images(logos: tuple[tuple[int, bytes], ...]) -> tuple[tuple[str, bytes], ...]:
    """personalizationLogo PNGs at each scale: the template's logo, centred, on transparency."""
    images = []
    for scale, logo in logos:
        width, height = LOGO_POINTS[0] * scale, LOGO_POINTS[1] * scale
        canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
        with Image.open(io.BytesIO(logo)) as source:
            mark = source.convert("RGBA")
        mark.thumbnail((width, height), Image.Resampling.LANCZOS)
        canvas.paste(mark, ((width - mark.width) // 2, (height - mark.height) // 2), mark)
        out = io.BytesIO()
        canvas.save(out, format="PNG", optimize=True)
        suffix = "" if scale == 1 else f"@{scale}x"
        images.append((f"personalizationLogo{suffix}.png", out.getvalue()))
    return tuple(images)


def personalization_logos(template: PassTemplate) -> tuple[tuple[str, bytes], ...]:
    """The sign-up sheet's logo files, drawn from the template's logo (or icon)."""
    logos = []
    for scale in SCALES:
        suffix = "" if scale == 1 else f"@{scale}x"
        data = template.files.get(f"logo{suffix}.png") or template.files.get(f"icon{suffix}.png")
        if data is not None:
            logos.append((scale, data))
    return _logo_images(tuple(logos))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def build_enrollment_pkpass(
    view: EnrollmentPassView,
    *,
    signer: ManifestSigner,
    template: PassTemplate,
    web_service_url: str,
) -> bytes:
    """Render, hash, sign and zip one personalizable pass."""
    document = render_enrollment_pass_json(
        view,
        pass_type_id=signer.pass_type_id,
        team_id=signer.team_id,
        web_service_url=web_service_url,
        template=template,
    )
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    files: dict[str, bytes] = dict(template.files)
    files["pass.json"] = encode(document).encode("utf-8")
    files["personalization.json"] = encode(personalization_json(view)).encode("utf-8")
    files.update(personalization_logos(template))
    manifest = json.dumps(
        {name: _sha1(data) for name, data in files.items()}, sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    signature = signer.sign(manifest)
    files["manifest.json"] = manifest
    files["signature"] = signature
    stamp = _dos_stamp(view.created_at)
    part = ZipPart.of(sorted(files.items()), offset=0, stamp=stamp, deflate=True)
    return join_zip(part)


def _dos_stamp(moment: datetime) -> tuple[int, int]:
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    day = (max(moment.year - 1980, 0) << 9) | (moment.month << 5) | moment.day
    return time, day
