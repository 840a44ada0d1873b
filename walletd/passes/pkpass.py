"""Build, sign and check Apple Wallet packages (.pkpass: store cards, coupons) from a CardView."""

from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import json
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from walletd.passes.signing import (
    ManifestSigner,
    inspect_signature,
    read_pass_type_id,
    read_team_id,
)
from walletd.passes.view import CardView, CouponView

PKPASS_MIME = "application/vnd.apple.pkpass"

# Label keys and change messages the renderer writes; every template's pass.strings defines them.
POINTS_LABEL = "points_label"
MEMBER_LABEL = "member_label"
TIER_LABEL = "tier_label"
MESSAGE_LABEL = "message_label"
MEMBER_SINCE_LABEL = "member_since_label"
# Change messages are keyed by their English text: pass.json itself then always contains %@
# (validators check it), and a language without the key falls back to readable English.
POINTS_CHANGED = "You now have %@ points"
TIER_CHANGED = "You are now %@"
# The brand message is its own notification text, so nothing needs translating.
MESSAGE_CHANGED = "%@"
RENDERER_STRING_KEYS = frozenset(
    {
        POINTS_LABEL,
        MEMBER_LABEL,
        TIER_LABEL,
        MESSAGE_LABEL,
        MEMBER_SINCE_LABEL,
        POINTS_CHANGED,
        TIER_CHANGED,
    }
)
# Labels the renderer uses only when a template defines them (templates written before offers
# existed stay valid; their fields then go without a label, or with English text as the value).
STAMPS_LABEL = "stamps_label"
BENEFITS_LABEL = "benefits_label"
PROMOTION_LABEL = "promotion_label"
COUPONS_LABEL = "coupons_label"
OFFER_LABEL = "offer_label"
EXPIRES_LABEL = "expires_label"
CODE_LABEL = "code_label"
STATUS_LABEL = "status_label"
TERMS_LABEL = "terms_label"
MIN_SPEND_LABEL = "min_spend_label"
# The back field linking the card page's promotional-messages switch (optional in a template).
MANAGE_LABEL = "manage_label"
# The back field linking the rating page of the member's last visit (optional in a template;
# without it the label is this English text).
FEEDBACK_LABEL = "feedback_label"
FEEDBACK_TEXT = "Rate your last visit"
STAMPS_CHANGED = "Stamps: %@"
COUPON_STATUS_CHANGED = "Coupon: %@"
OFFER_KIND_LABELS = {
    "percent_off": "percent_off_label",
    "amount_off": "amount_off_label",
    "free_item": "free_item_label",
    "bonus_points": "bonus_points_label",
}
# A coupon's status is shown as a localisable value: the key when the template defines it.
COUPON_STATUS_TEXT = {
    "active": ("coupon_active", "Active"),
    "redeemed": ("coupon_redeemed", "Redeemed"),
    "expired": ("coupon_expired", "Expired"),
    "void": ("coupon_void", "Void"),
}
OPTIONAL_STRING_KEYS = frozenset(
    {
        STAMPS_LABEL,
        BENEFITS_LABEL,
        PROMOTION_LABEL,
        COUPONS_LABEL,
        OFFER_LABEL,
        EXPIRES_LABEL,
        CODE_LABEL,
        STATUS_LABEL,
        TERMS_LABEL,
        MIN_SPEND_LABEL,
        STAMPS_CHANGED,
        COUPON_STATUS_CHANGED,
        *OFFER_KIND_LABELS.values(),
        *(key for key, _ in COUPON_STATUS_TEXT.values()),
    }
)
# Field keys owned by the renderer; a template's static fields must use other keys. (A coupon
# pass carries none of the template's static fields, so its own keys need no reserving.)
RENDERER_FIELD_KEYS = frozenset(
    {
        "points",
        "member",
        "tier",
        "message",
        "member_since",
        "stamps",
        "promotion",
        "tier_benefits",
        "active_coupons",
        "feedback",
    }
)
# The loyalty card's back lists at most this many active coupons (soonest to expire first).
MAX_LISTED_COUPONS = 10

PASS_STYLES = ("boardingPass", "coupon", "eventTicket", "generic", "storeCard")
FIELD_SECTIONS = (
    "headerFields",
    "primaryFields",
    "secondaryFields",
    "auxiliaryFields",
    "backFields",
    "additionalInfoFields",
)
# Templates may add static fields only where they cannot crowd out the renderer's: the front of
# a store card holds one primary field and at most four secondary plus auxiliary fields.
STATIC_FIELD_SECTIONS = ("headerFields", "backFields")
BARCODE_FORMATS = frozenset(
    {
        "PKBarcodeFormatQR",
        "PKBarcodeFormatPDF417",
        "PKBarcodeFormatAztec",
        "PKBarcodeFormatCode128",
    }
)
REQUIRED_PASS_KEYS = (
    "formatVersion",
    "passTypeIdentifier",
    "serialNumber",
    "teamIdentifier",
    "organizationName",
    "description",
)
# iOS silently rejects a pass without icon.png; validators also fail a missing icon@2x.png.
REQUIRED_FILES = ("pass.json", "manifest.json", "signature", "icon.png", "icon@2x.png")

_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX_COLOR = re.compile(r"#([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})")
_RGB_COLOR = re.compile(r"rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)")
_SHA1_HEX = re.compile(r"[0-9a-f]{40}")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_LOCATIONS = 10

JsonObject = dict[str, Any]
# Compact UTF-8 JSON; one shared encoder spares building a new one for every pass.
_PASS_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class TemplateError(Exception):
    """A pass template folder is missing pieces or is inconsistent."""


class TemplateNotFoundError(TemplateError):
    """No pass template of that name exists."""


class PassRenderError(ValueError):
    """The card's data cannot be turned into a pass iOS would accept."""


# --- pass.strings -------------------------------------------------------------------------------

_STRINGS_TOKEN = re.compile(
    r"""\s+|/\*.*?\*/|//[^\n]*|"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)"\s*;""",
    re.DOTALL,
)
_STRINGS_ESCAPE = re.compile(r"\\(U[0-9A-Fa-f]{4}|u[0-9A-Fa-f]{4}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}


def decode_strings(data: bytes) -> str:
    """Decode a pass.strings file written as UTF-16 (with BOM) or UTF-8."""
    # Apple recommends UTF-16 for non-ASCII text; hand-edited files are often UTF-8.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if len(escape) == 5:  # \Uxxxx or \uxxxx
            return chr(int(escape[1:], 16))
        return _SIMPLE_ESCAPES.get(escape, escape)

    return _STRINGS_ESCAPE.sub(replace, text)


def parse_strings(data: bytes) -> dict[str, str]:
    """Parse Apple's `"key" = "value";` format, raising ValueError on anything else."""
    text = decode_strings(data)
    entries: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _STRINGS_TOKEN.match(text, position)
        if match is None:
            line = text.count("\n", 0, position) + 1
            raise ValueError(f"unparseable pass.strings at line {line}")
        if match.group(1) is not None:
            key = _unescape(match.group(1))
            if key in entries:
                raise ValueError(f"duplicate key {key!r} in pass.strings")
            entries[key] = _unescape(match.group(2))
        position = match.end()
    return entries


# --- ZIP writing --------------------------------------------------------------------------------
# zipfile re-deflates every image and builds header objects for every member of every pass, which
# costs more than the RSA signature. Template files never change, so their whole part of the
# archive (records, data and central-directory entries, from offset 0) is laid out once at load;
# a build packs only pass.json, manifest.json and signature behind it. Those three are stored, not
# deflated: deflating them saves about 1.4 kB of a ~58 kB package (PNGs dominate) but costs a
# fifth of the time an RSA signature takes.

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")
_END_RECORD = struct.Struct("<IHHHHIIH")
_VERSION = 20  # ZIP 2.0: deflate, no ZIP64
_MADE_BY_UNIX = (3 << 8) | _VERSION
_REGULAR_FILE_0644 = 0o100644 << 16
_UTF8_NAMES = 0x0800
# Template files carry a fixed date so the same template always yields the same bytes.
_TEMPLATE_STAMP = (0, (0 << 9) | (1 << 5) | 1)  # 1980-01-01 00:00, the earliest ZIP date


@dataclass(frozen=True)
class ZipPart:
    """Consecutive archive members laid out from a known offset, ready to be concatenated."""

    records: bytes  # local headers and data
    directory: bytes  # their central-directory entries
    count: int

    @classmethod
    def of(
        cls,
        files: Iterable[tuple[str, bytes]],
        *,
        offset: int,
        stamp: tuple[int, int],
        deflate: bool,
    ) -> ZipPart:
        """Lay `files` out starting `offset` bytes into the archive, deflating text if asked."""
        time, day = stamp
        records: list[bytes] = []
        directory: list[bytes] = []
        count = 0
        for name, data in files:
            raw_name = name.encode("utf-8")
            flags = 0 if raw_name.isascii() else _UTF8_NAMES
            method, payload = _compress(name, data) if deflate else (zipfile.ZIP_STORED, data)
            sizes = (zlib.crc32(data), len(payload), len(data), len(raw_name))
            local = _LOCAL_HEADER.pack(0x04034B50, _VERSION, flags, method, time, day, *sizes, 0)
            records += (local, raw_name, payload)
            directory += (
                _CENTRAL_HEADER.pack(
                    0x02014B50,
                    _MADE_BY_UNIX,
                    _VERSION,
                    flags,
                    method,
                    time,
                    day,
                    *sizes,
                    0,  # extra field length
                    0,  # comment length
                    0,  # disk number
                    0,  # internal attributes
                    _REGULAR_FILE_0644,
                    offset,
                ),
                raw_name,
            )
            offset += len(local) + len(raw_name) + len(payload)
            count += 1
        return cls(b"".join(records), b"".join(directory), count)


def _compress(name: str, data: bytes) -> tuple[int, bytes]:
    # PNG data is already deflated; compressing it again buys about one percent.
    if _is_png(name):
        return zipfile.ZIP_STORED, data
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as ZIP expects
    deflated = compressor.compress(data) + compressor.flush()
    if len(deflated) < len(data):
        return zipfile.ZIP_DEFLATED, deflated
    return zipfile.ZIP_STORED, data


def join_zip(*parts: ZipPart) -> bytes:
    """Return the archive made of `parts`, which must have been laid out back to back."""
    records = sum(len(part.records) for part in parts)
    directory = sum(len(part.directory) for part in parts)
    count = sum(part.count for part in parts)
    end = _END_RECORD.pack(0x06054B50, 0, 0, count, count, directory, records, 0)
    # One join, so the ~58 kB of images are copied once per pass, not once per concatenation.
    return b"".join([*(part.records for part in parts), *(part.directory for part in parts), end])


# --- templates ----------------------------------------------------------------------------------


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def _serialise_manifest(hashes: Mapping[str, str]) -> bytes:
    return json.dumps(hashes, sort_keys=True, separators=(",", ":")).encode("ascii")


def _is_png(name: str) -> bool:
    return name.endswith(".png")


def _allowed_template_file(parts: tuple[str, ...]) -> bool:
    if len(parts) == 1:
        return parts[0] == "pass.json" or _is_png(parts[0])
    return (
        len(parts) == 2
        and parts[0].endswith(".lproj")
        and (parts[1] == "pass.strings" or _is_png(parts[1]))
    )


def _fields(document: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """Yield (section, field) for every field dictionary of every pass style in `document`."""
    for style in PASS_STYLES:
        sections = document.get(style)
        if not isinstance(sections, Mapping):
            continue
        for section in FIELD_SECTIONS:
            fields = sections.get(section)
            if isinstance(fields, list):
                for field in fields:
                    if isinstance(field, Mapping):
                        yield section, field


@dataclass(frozen=True)
class PassTemplate:
    """A template folder held in memory: file bytes and SHA-1s, so a build hashes only pass.json."""

    name: str
    skeleton: bytes  # the template's pass.json; parsed afresh per render so no state is shared
    files: Mapping[str, bytes]  # archive path -> bytes, every file except pass.json
    hashes: Mapping[str, str]  # archive path -> lowercase hex SHA-1
    strings: Mapping[str, Mapping[str, str]]  # "en.lproj" -> key -> text
    # Laid out once at load: the archive's template members and the manifest around pass.json.
    zip_part: ZipPart = dataclasses.field(repr=False)
    manifest_head: bytes = dataclasses.field(repr=False)
    manifest_tail: bytes = dataclasses.field(repr=False)

    @classmethod
    def from_directory(cls, directory: Path, name: str | None = None) -> PassTemplate:
        """Read and validate a template folder."""
        if not (directory / "pass.json").is_file():
            raise TemplateNotFoundError(f"no pass template at {directory}")
        files: dict[str, bytes] = {}
        skeleton = b""
        for path in sorted(directory.rglob("*")):
            parts = path.relative_to(directory).parts
            # Finder and editors leave .DS_Store and swap files; they must never reach a pass.
            if any(part.startswith(".") for part in parts) or not path.is_file():
                continue
            if not _allowed_template_file(parts):
                raise TemplateError(f"{path}: not a pass.json, PNG image or .lproj/pass.strings")
            data = path.read_bytes()
            archive_name = "/".join(parts)
            if archive_name == "pass.json":
                skeleton = data
            else:
                files[archive_name] = data
        strings = _validate_template(directory, skeleton, files)
        hashes = {path: _sha1(data) for path, data in files.items()}
        # Serialise the manifest once with a placeholder (no hex digest can equal it), so each
        # pass only splices in the SHA-1 of its pass.json.
        placeholder = "x" * 40
        manifest = _serialise_manifest({**hashes, "pass.json": placeholder})
        head, tail = manifest.split(placeholder.encode("ascii"))
        return cls(
            name=name or directory.name,
            skeleton=skeleton,
            files=MappingProxyType(files),
            hashes=MappingProxyType(hashes),
            strings=MappingProxyType(
                {folder: MappingProxyType(table) for folder, table in strings.items()}
            ),
            zip_part=ZipPart.of(files.items(), offset=0, stamp=_TEMPLATE_STAMP, deflate=True),
            manifest_head=head,
            manifest_tail=tail,
        )

    def manifest(self, pass_json: bytes) -> bytes:
        """Return manifest.json for a package of this template and `pass_json`."""
        return self.manifest_head + _sha1(pass_json).encode("ascii") + self.manifest_tail

    def skeleton_document(self) -> JsonObject:
        """Return a fresh, mutable copy of the template's pass.json."""
        document: JsonObject = json.loads(self.skeleton)
        return document


def _validate_template(
    directory: Path, skeleton: bytes, files: Mapping[str, bytes]
) -> dict[str, dict[str, str]]:
    try:
        document = json.loads(skeleton)
    except ValueError as error:
        raise TemplateError(f"{directory}/pass.json: {error}") from error
    if not isinstance(document, dict):
        raise TemplateError(f"{directory}/pass.json must hold a JSON object")
    for required in ("icon.png", "icon@2x.png"):
        if required not in files:
            raise TemplateError(f"{directory}: {required} is required")
    for path, data in files.items():
        if _is_png(path) and not data.startswith(_PNG_SIGNATURE):
            raise TemplateError(f"{directory}/{path} is not a PNG file")

    other_styles = [style for style in PASS_STYLES if style != "storeCard" and style in document]
    if other_styles:
        raise TemplateError(f"{directory}/pass.json: a store card cannot also be {other_styles}")
    store_card = document.get("storeCard", {})
    if not isinstance(store_card, dict):
        raise TemplateError(f"{directory}/pass.json: storeCard must be an object")
    for section, fields in store_card.items():
        if section not in STATIC_FIELD_SECTIONS:
            raise TemplateError(
                f"{directory}/pass.json: static fields may only go in {STATIC_FIELD_SECTIONS}"
            )
        if not isinstance(fields, list) or not all(
            isinstance(field, dict) and "key" in field and "value" in field for field in fields
        ):
            raise TemplateError(f"{directory}/pass.json: {section} must list fields with key+value")
    static_keys = [field["key"] for _, field in _fields(document)]
    clashes = sorted(set(static_keys) & RENDERER_FIELD_KEYS)
    if clashes or len(static_keys) != len(set(static_keys)):
        raise TemplateError(f"{directory}/pass.json: duplicate or reserved field keys {clashes}")

    strings: dict[str, dict[str, str]] = {}
    for path, data in files.items():
        if path.endswith("/pass.strings"):
            try:
                strings[path.split("/")[0]] = parse_strings(data)
            except (ValueError, UnicodeDecodeError) as error:
                raise TemplateError(f"{directory}/{path}: {error}") from error
    if not strings:
        raise TemplateError(f"{directory}: needs at least one <lang>.lproj/pass.strings")
    needed = set(RENDERER_STRING_KEYS) | _localizable_keys(document)
    reference_folder, reference = next(iter(sorted(strings.items())))
    for folder, table in strings.items():
        if table.keys() != reference.keys():
            raise TemplateError(
                f"{directory}: {folder} and {reference_folder} define different keys: "
                f"{sorted(table.keys() ^ reference.keys())}"
            )
        missing = sorted(needed - table.keys())
        if missing:
            raise TemplateError(f"{directory}/{folder}/pass.strings lacks {missing}")
    return strings


def _localizable_keys(document: Mapping[str, Any]) -> set[str]:
    """Return the label and change-message strings of every field, which must be strings keys."""
    keys: set[str] = set()
    for _, field in _fields(document):
        for attribute in ("label", "changeMessage"):
            value = field.get(attribute)
            if isinstance(value, str) and value and value != MESSAGE_CHANGED:
                keys.add(value)
    return keys


_cache: dict[tuple[Path, str], PassTemplate] = {}
_cache_lock = threading.Lock()


def load_template(root: Path, name: str) -> PassTemplate:
    """Return the template `root/name`, read once per process and cached."""
    # The name comes from a program's settings; a strict pattern rules out "../" and friends.
    if not _TEMPLATE_NAME.fullmatch(name):
        raise TemplateNotFoundError(f"invalid pass template name {name!r}")
    # Keyed by the root as given: the lookup runs for every pass and must not touch the disk.
    key = (root, name)
    template = _cache.get(key)
    if template is None:
        with _cache_lock:
            template = _cache.get(key)
            if template is None:
                template = PassTemplate.from_directory(root / name, name)
                _cache[key] = template
    return template


def clear_template_cache() -> None:
    """Forget every loaded template, so edited folders are read again."""
    with _cache_lock:
        _cache.clear()


def list_templates(root: Path) -> list[str]:
    """Return the names of the template folders under `root` (not validated)."""
    if not root.is_dir():
        return []
    return sorted(
        path.name
        for path in root.iterdir()
        if _TEMPLATE_NAME.fullmatch(path.name) and (path / "pass.json").is_file()
    )


# --- pass.json ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def css_rgb(color: str) -> str:
    """Convert "#RRGGBB" to the "rgb(r, g, b)" form pass.json wants."""
    match = _HEX_COLOR.fullmatch(color)
    if match is None:
        raise PassRenderError(f"colour {color!r} is not #RRGGBB")
    red, green, blue = (int(part, 16) for part in match.groups())
    return f"rgb({red}, {green}, {blue})"


def _message_history(view: CardView) -> list[JsonObject]:
    """The newest message's date, then the earlier messages, each under its date, newest first.

    Unlabelled, so a template needs no new strings; the newest message itself stays the
    `message` field, whose changeMessage is what the lock screen shows.
    """
    if not view.messages:
        return []
    newest, *earlier = view.messages
    fields: list[JsonObject] = [
        {
            "key": "message_date",
            # A W3C time with its offset: iOS shows it in the reader's locale and time zone.
            "value": newest.sent_at.replace(microsecond=0).isoformat(),
            "dateStyle": "PKDateStyleMedium",
            "timeStyle": "PKDateStyleShort",
        }
    ]
    if earlier:
        lines = [f"{line.sent_at.date().isoformat()} · {line.text}" for line in earlier]
        fields.append({"key": "earlier_messages", "value": "\n\n".join(lines)})
    return fields


def _member_since_field(member_since: str) -> JsonObject:
    field: JsonObject = {"key": "member_since", "label": MEMBER_SINCE_LABEL}
    try:
        joined = date.fromisoformat(member_since[:10])
    except ValueError:
        # Not a date we can read: show it as typed rather than fail the whole pass.
        field["value"] = member_since
        return field
    # A W3C date with a zone lets iOS format it for the reader's locale; ignoresTimeZone keeps
    # the calendar day from shifting west of UTC.
    field["value"] = f"{joined.isoformat()}T00:00:00Z"
    field["dateStyle"] = "PKDateStyleMedium"
    field["timeStyle"] = "PKDateStyleNone"
    field["ignoresTimeZone"] = True
    return field


def _check_view(view: CardView) -> None:
    if not _SERIAL.fullmatch(view.serial_number):
        raise PassRenderError("serialNumber must be 1-64 of [A-Za-z0-9._-]")
    if len(view.authentication_token) < 16:
        raise PassRenderError("authenticationToken must be at least 16 characters")
    try:
        view.barcode_message.encode("iso-8859-1")
    except UnicodeEncodeError as error:
        raise PassRenderError("barcode message must be ISO-8859-1 text") from error


def render_pass_json(
    view: CardView,
    *,
    pass_type_id: str,
    team_id: str,
    web_service_url: str,
    template: PassTemplate,
) -> dict[str, object]:
    """Return the pass.json document for `view`: a store card, or a coupon's own pass."""
    _check_view(view)
    if view.kind == "coupon":
        if view.coupon is None:
            raise PassRenderError("a coupon pass needs its coupon")
        return _render_coupon(
            view,
            view.coupon,
            pass_type_id=pass_type_id,
            team_id=team_id,
            web_service_url=web_service_url,
            template=template,
        )
    document = template.skeleton_document()
    static_sections = document.pop("storeCard", {})

    points: JsonObject = {
        "key": "points",
        "label": POINTS_LABEL,
        # A JSON number with a number style lets iOS group digits for the reader ("1,240").
        "value": view.points,
        "numberStyle": "PKNumberStyleDecimal",
        "changeMessage": POINTS_CHANGED,
    }
    member: JsonObject = {"key": "member", "label": MEMBER_LABEL, "value": view.member_name}
    secondary: list[JsonObject] = [member]
    if view.promotion:
        secondary.append(
            _labelled(template, {"key": "promotion", "value": view.promotion}, PROMOTION_LABEL)
        )
    auxiliary: list[JsonObject] = []
    if view.tier:
        auxiliary.append(
            {"key": "tier", "label": TIER_LABEL, "value": view.tier, "changeMessage": TIER_CHANGED}
        )
    if view.stamps is not None:
        collected, needed = view.stamps
        stamps = _labelled(
            template, {"key": "stamps", "value": f"{collected}/{needed}"}, STAMPS_LABEL
        )
        if _defines(template, STAMPS_CHANGED):
            stamps["changeMessage"] = STAMPS_CHANGED
        auxiliary.append(stamps)
    # The message field is present even when empty: iOS announces a change only for a field it
    # already had, so a field that first appeared with the first message would arrive silently.
    back: list[JsonObject] = [
        {
            "key": "message",
            "label": MESSAGE_LABEL,
            "value": view.message or "",
            "changeMessage": MESSAGE_CHANGED,
        }
    ]
    back.extend(_message_history(view))
    if view.benefits:
        back.append(
            _labelled(template, {"key": "tier_benefits", "value": view.benefits}, BENEFITS_LABEL)
        )
    if view.coupons:
        lines = []
        for line in view.coupons[:MAX_LISTED_COUPONS]:
            until = f" · {line.expires_at.date().isoformat()}" if line.expires_at else ""
            lines.append(f"{line.name} · {line.code}{until}")
        back.append(
            _labelled(template, {"key": "active_coupons", "value": "\n".join(lines)}, COUPONS_LABEL)
        )
    if view.member_since:
        back.append(_member_since_field(view.member_since))
    if view.manage_url and not view.voided:
        # iOS turns a URL in a back field into a link; the label is translated when defined.
        back.append(_labelled(template, {"key": "manage", "value": view.manage_url}, MANAGE_LABEL))
    if view.feedback_url and not view.voided:
        rate: JsonObject = {"key": "feedback", "value": view.feedback_url}
        rate["label"] = FEEDBACK_LABEL if _defines(template, FEEDBACK_LABEL) else FEEDBACK_TEXT
        back.append(rate)

    barcode: JsonObject = {
        "format": "PKBarcodeFormatQR",
        "message": view.barcode_message,
        "messageEncoding": "iso-8859-1",
    }
    if view.barcode_alt_text:
        barcode["altText"] = view.barcode_alt_text

    rendered: dict[str, object] = {
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
        "barcodes": [barcode],
        "webServiceURL": web_service_url,
        "authenticationToken": view.authentication_token,
        "storeCard": {
            section: section_fields
            for section, section_fields in (
                ("headerFields", list(static_sections.get("headerFields", []))),
                ("primaryFields", [points]),
                ("secondaryFields", secondary),
                ("auxiliaryFields", auxiliary),
                ("backFields", back + list(static_sections.get("backFields", []))),
            )
            if section_fields
        },
    }
    rendered.update(_store_keys(view))  # [google-signup]
    if view.voided:
        # The member was erased: Wallet greys the pass out and stops offering its barcode.
        rendered["voided"] = True
        rendered.pop("locations", None)
        rendered.pop("maxDistance", None)  # [google-signup]
    # Static keys of the skeleton (sharingProhibited, …) fill in around the card's own data.
    for key, value in document.items():
        rendered.setdefault(key, value)
    return rendered


def _store_keys(view: CardView) -> dict[str, object]:
    """`locations` (at most ten, each with its lock-screen text) and `maxDistance`."""
    if view.stores:
        keys: dict[str, object] = {
            "locations": [
                {
                    "latitude": store.latitude,
                    "longitude": store.longitude,
                    "relevantText": store.relevant_text,
                }
                for store in view.stores[:_MAX_LOCATIONS]
            ]
        }
        if view.max_distance is not None:
            keys["maxDistance"] = view.max_distance
        return keys
    if view.locations:
        return {
            "locations": [
                {"latitude": latitude, "longitude": longitude}
                for latitude, longitude in view.locations[:_MAX_LOCATIONS]
            ]
        }
    return {}


def _defines(template: PassTemplate, key: str) -> bool:
    """True when every pass.strings of the template has `key` (validation keeps them equal)."""
    return bool(template.strings) and all(key in table for table in template.strings.values())


def _labelled(template: PassTemplate, field: JsonObject, label: str) -> JsonObject:
    """The field with `label` when the template can translate it; unlabelled otherwise."""
    if _defines(template, label):
        field["label"] = label
    return field


def _w3c(moment: datetime) -> str:
    """An aware time as the W3C date-time pass.json wants, in UTC, to the second."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _coupon_value_field(template: PassTemplate, coupon: CouponView) -> JsonObject:
    """The coupon's headline: 15 %, 5.00 off in the currency, a free item, or bonus points."""
    field: JsonObject = {"key": "offer"}
    value = coupon.value
    if coupon.offer_kind == "percent_off" and value is not None:
        # A fraction with the percent style lets iOS write "15%" the reader's way.
        field["value"] = float(value / 100)
        field["numberStyle"] = "PKNumberStylePercent"
    elif coupon.offer_kind == "amount_off" and value is not None:
        field["value"] = float(value)
        field["currencyCode"] = coupon.currency
    elif coupon.offer_kind == "bonus_points" and value is not None:
        field["value"] = int(value)
        field["numberStyle"] = "PKNumberStyleDecimal"
    else:
        field["value"] = coupon.item or coupon.offer_name
    return _labelled(template, field, OFFER_KIND_LABELS.get(coupon.offer_kind, OFFER_LABEL))


def _render_coupon(
    view: CardView,
    coupon: CouponView,
    *,
    pass_type_id: str,
    team_id: str,
    web_service_url: str,
    template: PassTemplate,
) -> dict[str, object]:
    """The pass.json of one coupon: style `coupon`, expiring, voided once it cannot be used."""
    document = template.skeleton_document()
    # The template's static fields describe the loyalty card, not a coupon: leave them out.
    document.pop("storeCard", None)
    status_key, status_english = COUPON_STATUS_TEXT.get(coupon.status, (None, coupon.status))
    status: JsonObject = {
        "key": "status",
        "value": status_key if status_key and _defines(template, status_key) else status_english,
    }
    _labelled(template, status, STATUS_LABEL)
    if _defines(template, COUPON_STATUS_CHANGED):
        status["changeMessage"] = COUPON_STATUS_CHANGED
    secondary: list[JsonObject] = [
        _labelled(template, {"key": "offer_name", "value": coupon.offer_name}, OFFER_LABEL)
    ]
    if coupon.expires_at is not None:
        secondary.append(
            _labelled(
                template,
                {
                    "key": "expires",
                    "value": _w3c(coupon.expires_at),
                    "dateStyle": "PKDateStyleMedium",
                    "timeStyle": "PKDateStyleShort",
                },
                EXPIRES_LABEL,
            )
        )
    auxiliary = [_labelled(template, {"key": "code", "value": coupon.code}, CODE_LABEL), status]
    back: list[JsonObject] = []
    if coupon.min_spend:
        back.append(
            _labelled(
                template,
                {
                    "key": "min_spend",
                    "value": float(Decimal(coupon.min_spend)),
                    "currencyCode": coupon.currency,
                },
                MIN_SPEND_LABEL,
            )
        )
    if coupon.terms:
        back.append(_labelled(template, {"key": "terms", "value": coupon.terms}, TERMS_LABEL))
    back.append({"key": "member", "label": MEMBER_LABEL, "value": view.member_name})

    barcode: JsonObject = {
        "format": "PKBarcodeFormatQR",
        "message": view.barcode_message,
        "messageEncoding": "iso-8859-1",
        "altText": coupon.code,
    }
    rendered: dict[str, object] = {
        "formatVersion": 1,
        "passTypeIdentifier": pass_type_id,
        "serialNumber": view.serial_number,
        "teamIdentifier": team_id,
        "organizationName": view.organization_name,
        "description": f"{view.organization_name} {coupon.offer_name}",
        "logoText": view.organization_name,
        "backgroundColor": css_rgb(view.background_color),
        "foregroundColor": css_rgb(view.foreground_color),
        "labelColor": css_rgb(view.label_color),
        "barcodes": [barcode],
        "webServiceURL": web_service_url,
        "authenticationToken": view.authentication_token,
        # Redeemed, expired and void coupons move to Wallet's expired section and cannot be used.
        "voided": coupon.status != "active" or view.voided,
        "coupon": {
            "primaryFields": [_coupon_value_field(template, coupon)],
            "secondaryFields": secondary,
            "auxiliaryFields": auxiliary,
            "backFields": back,
        },
    }
    if coupon.expires_at is not None:
        rendered["expirationDate"] = _w3c(coupon.expires_at)
    if coupon.status == "active" and not view.voided:
        # [google-signup] a used or expired coupon must not come up at the store.
        rendered.update(_store_keys(view))
    for key, value in document.items():
        rendered.setdefault(key, value)
    return rendered


# --- the package --------------------------------------------------------------------------------


def _dos_time(moment: datetime) -> tuple[int, int]:
    """Return (time, date) in the MS-DOS format ZIP headers use, in UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    moment = max(moment.replace(tzinfo=None), datetime(1980, 1, 1))  # ZIP cannot go earlier
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    day = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    return time, day


def build_pkpass(
    view: CardView, *, signer: ManifestSigner, template: PassTemplate, web_service_url: str
) -> bytes:
    """Render, hash, sign and zip one pass (a store card or a coupon)."""
    document = render_pass_json(
        view,
        pass_type_id=signer.pass_type_id,
        team_id=signer.team_id,
        web_service_url=web_service_url,
        template=template,
    )
    pass_json = _PASS_ENCODER.encode(document).encode("utf-8")
    # The manifest is serialised once and these exact bytes are both signed and packaged.
    manifest = template.manifest(pass_json)
    signature = signer.sign(manifest)
    dynamic = ZipPart.of(
        (("pass.json", pass_json), ("manifest.json", manifest), ("signature", signature)),
        offset=len(template.zip_part.records),
        stamp=_dos_time(view.updated_at),
        deflate=False,
    )
    return join_zip(template.zip_part, dynamic)


# --- checking a package -------------------------------------------------------------------------


# Besides BadZipFile, zipfile raises NotImplementedError for unknown versions and methods,
# RuntimeError for encrypted members and zlib.error for corrupt deflate data.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
)


def verify_pkpass(data: bytes, *, require_https: bool = False) -> list[str]:
    """Return the problems that would make iOS reject this .pkpass (empty when none found)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (*_ZIP_ERRORS, zipfile.BadZipFile) as error:
        return [f"not a ZIP archive: {error}"]
    with archive:
        problems: list[str] = []
        contents: dict[str, bytes] = {}
        for info in archive.infolist():
            name = info.filename
            if name.endswith("/"):
                problems.append(f"archive has a directory entry {name!r}")
                continue
            if any(part.startswith(".") or part == "__MACOSX" for part in name.split("/")):
                problems.append(f"archive has a hidden/metadata file {name!r}")
            if name in contents:
                problems.append(f"archive has {name!r} twice")
            try:
                contents[name] = archive.read(info)
            except _ZIP_ERRORS as error:
                problems.append(f"cannot read {name!r}: {error}")
    for required in REQUIRED_FILES:
        if required not in contents:
            problems.append(f"{required} is missing from the archive root")

    manifest = _check_manifest(contents, problems)
    document = _load_json_object(contents, "pass.json", problems)
    if document is not None:
        _check_pass_json(document, problems, require_https=require_https)
        _check_strings(document, contents, problems)
    if manifest is not None and "signature" in contents:
        _check_signature(contents["signature"], contents["manifest.json"], document, problems)
    return problems


def _load_json_object(
    contents: Mapping[str, bytes], name: str, problems: list[str]
) -> JsonObject | None:
    if name not in contents:
        return None
    try:
        document = json.loads(contents[name].decode("utf-8"))
    except ValueError as error:
        problems.append(f"{name} is not UTF-8 JSON: {error}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{name} is not a JSON object")
        return None
    return document


def _check_manifest(contents: Mapping[str, bytes], problems: list[str]) -> JsonObject | None:
    manifest = _load_json_object(contents, "manifest.json", problems)
    if manifest is None:
        return None
    listed = set(manifest)
    packaged = set(contents) - {"manifest.json", "signature"}
    for name in sorted(packaged - listed):
        problems.append(f"{name} is in the archive but not in manifest.json")
    for name in sorted(listed - packaged):
        problems.append(f"manifest.json lists {name} but the archive lacks it")
    for name in sorted(listed & packaged):
        digest = manifest[name]
        if not isinstance(digest, str) or not _SHA1_HEX.fullmatch(digest):
            problems.append(f"manifest.json entry for {name} is not a lowercase hex SHA-1")
        elif digest != _sha1(contents[name]):
            problems.append(f"manifest hash mismatch for {name}")
    return manifest


def _check_pass_json(document: JsonObject, problems: list[str], *, require_https: bool) -> None:
    for key in REQUIRED_PASS_KEYS:
        if key not in document:
            problems.append(f"pass.json lacks {key}")
    version = document.get("formatVersion")
    if "formatVersion" in document and (type(version) is not int or version != 1):
        problems.append("pass.json formatVersion must be the number 1")
    styles = [style for style in PASS_STYLES if style in document]
    if len(styles) != 1:
        problems.append(f"pass.json must have exactly one pass style, found {styles}")

    barcodes = document.get("barcodes")
    if "barcode" in document and barcodes is None:
        problems.append("pass.json uses the deprecated 'barcode'; use a 'barcodes' array")
    if barcodes is not None:
        if not isinstance(barcodes, list):
            problems.append("pass.json barcodes must be an array")
        else:
            for barcode in barcodes:
                if not isinstance(barcode, dict) or barcode.get("format") not in BARCODE_FORMATS:
                    problems.append(f"pass.json has an unsupported barcode {barcode!r}")
                elif not barcode.get("messageEncoding") or "message" not in barcode:
                    problems.append("every barcode needs message and messageEncoding")

    token, url = document.get("authenticationToken"), document.get("webServiceURL")
    if (token is None) != (url is None):
        problems.append("webServiceURL and authenticationToken must be present together")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        problems.append("authenticationToken must be a string of at least 16 characters")
    if require_https and isinstance(url, str) and not url.startswith("https://"):
        problems.append("webServiceURL must use https:// in production")

    for color_key in ("backgroundColor", "foregroundColor", "labelColor"):
        color = document.get(color_key)
        if color is not None and not (
            isinstance(color, str)
            and (match := _RGB_COLOR.fullmatch(color))
            and all(int(part) <= 255 for part in match.groups())
        ):
            problems.append(f"pass.json {color_key} must be rgb(r, g, b)")

    seen: set[str] = set()
    for section, field in _fields(document):
        field_key = field.get("key")
        if not isinstance(field_key, str):
            problems.append(f"a field in {section} has no key")
            continue
        if field_key in seen:
            problems.append(f"field key {field_key!r} is used more than once")
        seen.add(field_key)
        if "value" not in field:
            problems.append(f"field {field_key!r} has no value")
        change = field.get("changeMessage")
        if change is not None and (not isinstance(change, str) or "%@" not in change):
            problems.append(f"field {field_key!r} has a changeMessage without %@")


def _check_strings(
    document: JsonObject, contents: Mapping[str, bytes], problems: list[str]
) -> None:
    tables: dict[str, dict[str, str]] = {}
    for name, data in contents.items():
        path = PurePosixPath(name)
        if path.name == "pass.strings" and path.parent.name.endswith(".lproj"):
            try:
                tables[name] = parse_strings(data)
            except (ValueError, UnicodeDecodeError) as error:
                problems.append(f"{name}: {error}")
    if not tables:
        return
    used = _localizable_keys(document)
    first_name, first = next(iter(sorted(tables.items())))
    for name, table in sorted(tables.items()):
        if table.keys() != first.keys():
            problems.append(f"{name} and {first_name} define different keys")
        for key in sorted(used - table.keys()):
            problems.append(f"{name} lacks the key {key!r} used in pass.json")
        for _, field in _fields(document):
            change = field.get("changeMessage")
            if isinstance(change, str) and change in table and "%@" not in table[change]:
                problems.append(f"{name}: translation of {change!r} lacks %@")


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_signature(
    signature: bytes, manifest: bytes, document: JsonObject | None, problems: list[str]
) -> None:
    info = inspect_signature(signature, manifest)
    problems.extend(info.problems)
    if info.signer is None:
        return
    try:
        _check_signer(info.signer, info.certificates, document, problems)
    except Exception as error:
        # inspect_signature parsed the certificates already; this guards whatever cryptography
        # still parses lazily, so a damaged package yields a report, never a crash.
        problems.append(f"an embedded certificate is malformed: {error}")


def _check_signer(
    signer: x509.Certificate,
    certificates: Iterable[x509.Certificate],
    document: JsonObject | None,
    problems: list[str],
) -> None:
    issuers = [cert for cert in certificates if cert.subject == signer.issuer]
    if not issuers:
        problems.append("signature does not include the WWDR intermediate that issued the signer")
    elif not any(_issued_by(signer, issuer) for issuer in issuers):
        problems.append("the signer certificate does not verify with the embedded intermediate")
    if document is not None:
        if read_pass_type_id(signer) != document.get("passTypeIdentifier"):
            problems.append("passTypeIdentifier does not match the signing certificate")
        if read_team_id(signer) != document.get("teamIdentifier"):
            problems.append("teamIdentifier does not match the signing certificate's OU")
