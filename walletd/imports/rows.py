"""Reading an import file: CSV or JSON in, validated member rows or row errors out.

Nothing here touches the database: a row is checked on its own (formats, ranges, a tier name the
program has) and against the rows before it (one external id, e-mail or phone per file).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from walletd.errors import N_, ValidationError
from walletd.loyalty.members import find_phone, normalise_email

FIELDS = (
    "external_id",
    "name",
    "email",
    "phone",
    "birthday",
    "marketing_consent",
    "points",
    "tier",
)
# How people write the columns in spreadsheets ("E-mail", "Marketing consent").
ALIASES = {"e_mail": "email", "consent": "marketing_consent", "mobile": "phone"}
KEYS = ("external_id", "email", "phone")
MAX_ROWS = 200_000
MAX_POINTS = 10**9
MAX_CELL = 400
# Same pattern as enrollment (walletd.loyalty.members) so both accept the same addresses.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"\+?[0-9]{1,12}")
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})

# Every message a row can get; the dashboard shows them translated (walletd/web/pages/texts.py).
NAME_INVALID = "name must be 1 to 200 characters"
NAME_REQUIRED = "a new member needs a name"
EMAIL_INVALID = "not a valid e-mail address"
PHONE_INVALID = "not a valid phone number"
BIRTHDAY_INVALID = "not a date as YYYY-MM-DD"
BIRTHDAY_RANGE = "birthday must be a past date after 1900"
CONSENT_INVALID = "use true or false (yes/no, 1/0)"
POINTS_INVALID = "points must be a whole number from 0 to 1000000000"
TIER_UNKNOWN = "the program has no tier of this name"
EXTERNAL_ID_INVALID = "external id must be 1 to 100 characters without / or control characters"
KEY_REQUIRED = "a row needs an external id, an e-mail or a phone"
DUPLICATE_EXTERNAL_ID = "this external id is already on an earlier row"
DUPLICATE_EMAIL = "this e-mail is already on an earlier row"
DUPLICATE_PHONE = "this phone is already on an earlier row"
ROW_SHAPE = "the row has more cells than the header"
ROW_NOT_OBJECT = "a member must be an object"
EMAIL_TAKEN = "another member already has this e-mail"
PHONE_TAKEN = "another member already has this phone"
EXTERNAL_ID_CONFLICT = "the member found has another external id"
CELL_TOO_LONG = "the value is too long"
MESSAGES = (
    NAME_INVALID, NAME_REQUIRED, EMAIL_INVALID, PHONE_INVALID, BIRTHDAY_INVALID, BIRTHDAY_RANGE,
    CONSENT_INVALID, POINTS_INVALID, TIER_UNKNOWN, EXTERNAL_ID_INVALID, KEY_REQUIRED,
    DUPLICATE_EXTERNAL_ID, DUPLICATE_EMAIL, DUPLICATE_PHONE, ROW_SHAPE, ROW_NOT_OBJECT,
    EMAIL_TAKEN, PHONE_TAKEN, EXTERNAL_ID_CONFLICT, CELL_TOO_LONG,
)  # fmt: skip


@dataclass(frozen=True)
class RowError:
    """One problem of one row: the row number, the field (or "row") and a fixed message."""

    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The error as the API and the job's stored list show it."""
        return {"row": self.row, "field": self.field, "message": self.message}


class FileError(ValidationError):
    """The file as a whole cannot be read (encoding, header, size); no row is looked at."""

    code = "invalid_import_file"


@dataclass
class Seen:
    """The keys of the rows read so far: a file names each member once."""

    external_ids: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)


def _has_control_characters(text: str) -> bool:
    # Lone surrogates (JSON can spell "\ud800") cannot be stored as UTF-8: refused like NUL.
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) < 0xE000 for ch in text)


def _text(value: object) -> str | None:
    """A cell as text; empty and null cells are "not given" (an import never clears a field)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if not isinstance(value, str):
        return ""  # lists and objects: never a valid value of any field
    value = value.strip()
    return value or None


def _consent(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _points(raw: object, text: str) -> int | None:
    if isinstance(raw, Decimal) or (isinstance(raw, str) and not _DIGITS.fullmatch(text)):
        return None
    try:
        points = int(text)
    except ValueError:
        return None
    return points if 0 <= points <= MAX_POINTS else None


def _birthday(text: str, today: date) -> tuple[date | None, str | None]:
    if not _DATE.fullmatch(text):
        return None, BIRTHDAY_INVALID
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None, BIRTHDAY_INVALID
    if not date(1900, 1, 1) <= day <= today:
        return None, BIRTHDAY_RANGE
    return day, None


def parse_row(
    raw: object,
    row: int,
    *,
    today: date,
    region: str,
    tiers: Mapping[str, str],
    seen: Seen,
) -> tuple[dict[str, Any] | None, list[RowError]]:
    """A row's given fields, normalised (as JSON values), or every error the row has.

    `tiers` maps lower-cased tier names to the program's spelling. Never raises: anything a file
    can hold becomes a row error.
    """
    if not isinstance(raw, Mapping):
        return None, [RowError(row, "row", ROW_NOT_OBJECT)]
    errors: list[RowError] = []
    values: dict[str, Any] = {}

    def fail(name: str, message: str) -> None:
        errors.append(RowError(row, name, message))

    for name in FIELDS:
        text = _text(raw.get(name))
        if text is None:
            continue
        if len(text) > MAX_CELL or (_has_control_characters(text) and name != "name"):
            fail(name, CELL_TOO_LONG if len(text) > MAX_CELL else _invalid(name))
            continue
        if name == "name":
            if len(text) > 200 or _has_control_characters(text):
                fail(name, NAME_INVALID)
            else:
                values[name] = text
        elif name == "external_id":
            if len(text) > 100 or "/" in text:
                fail(name, EXTERNAL_ID_INVALID)
            else:
                values[name] = text
        elif name == "email":
            email = normalise_email(text)
            if len(email) > 320 or not _EMAIL.match(email):
                fail(name, EMAIL_INVALID)
            else:
                values[name] = email
        elif name == "phone":
            phone = find_phone(text, region)
            if phone is None:
                fail(name, PHONE_INVALID)
            else:
                values[name] = phone
        elif name == "birthday":
            day, problem = _birthday(text, today)
            if problem is not None:
                fail(name, problem)
            else:
                values[name] = day.isoformat() if day else None
        elif name == "marketing_consent":
            consent = _consent(text)
            if consent is None:
                fail(name, CONSENT_INVALID)
            else:
                values[name] = consent
        elif name == "points":
            points = _points(raw.get(name), text)
            if points is None:
                fail(name, POINTS_INVALID)
            else:
                values[name] = points
        elif name == "tier":
            tier = tiers.get(text.lower())
            if tier is None:
                fail(name, TIER_UNKNOWN)
            else:
                values[name] = tier
    if not errors and not any(key in values for key in KEYS):
        fail("row", KEY_REQUIRED)
    if errors:
        return None, errors
    duplicates = (
        ("external_id", seen.external_ids, DUPLICATE_EXTERNAL_ID),
        ("email", seen.emails, DUPLICATE_EMAIL),
        ("phone", seen.phones, DUPLICATE_PHONE),
    )
    for name, keys, message in duplicates:
        if name in values and values[name] in keys:
            fail(name, message)
    if errors:
        return None, errors
    for name, keys, _message in duplicates:
        if name in values:
            keys.add(values[name])
    values["row"] = row
    return values, []


def _invalid(name: str) -> str:
    return {
        "external_id": EXTERNAL_ID_INVALID,
        "email": EMAIL_INVALID,
        "phone": PHONE_INVALID,
        "birthday": BIRTHDAY_INVALID,
        "marketing_consent": CONSENT_INVALID,
        "points": POINTS_INVALID,
        "tier": TIER_UNKNOWN,
    }.get(name, NAME_INVALID)


def _column(title: str) -> str:
    name = re.sub(r"[\s\-]+", "_", title.strip().lower())
    return ALIASES.get(name, name)


def _decode(data: bytes) -> str:
    try:
        # utf-8-sig drops the byte-order mark spreadsheet programs put first.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileError("the file is not UTF-8 text", field="file") from None


def read_csv(data: bytes) -> Iterator[tuple[int, object]]:
    """(row number, cells by field) of a CSV file with a header row; the header is row 1."""
    text = _decode(data)
    if "\x00" in text:
        raise FileError("the file holds NUL characters; it is not a CSV text file", field="file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise FileError("the file is empty; the first row must name the columns", field="file")
        columns = [_column(cell) for cell in header]
        unknown = [c for c in columns if c not in FIELDS]
        if unknown:
            raise FileError(
                f"unknown column {unknown[0][:40]!r}; columns are " + ", ".join(FIELDS),
                field="file",
            )
        if len(set(columns)) != len(columns):
            raise FileError("a column is named twice", field="file")
        if not any(key in columns for key in KEYS):
            raise FileError("a column external_id, email or phone is required", field="file")
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, often at the end of a file
            if number - 1 > MAX_ROWS:
                raise FileError(
                    N_("at most {max_rows} rows in one file"),
                    field="file",
                    params={"max_rows": MAX_ROWS},
                )
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
                yield number, None
                continue
            yield number, dict(zip(columns, cells, strict=False))
    except csv.Error as exc:
        raise FileError(
            N_("the CSV cannot be read: {reason}"), field="file", params={"reason": str(exc)}
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(data: bytes) -> Iterator[tuple[int, object]]:
    """(row number, member) of `{"members": [...]}` or a list; the first member is row 1."""
    try:
        document = json.loads(_decode(data), parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise FileError("the JSON is nested too deeply", field="file") from None
    except ValueError as exc:
        raise FileError(
            N_("the file is not valid JSON: {reason}"), field="file", params={"reason": str(exc)}
        ) from None
    members = document.get("members") if isinstance(document, dict) else document
    if not isinstance(members, list):
        raise FileError('send {"members": [...]} or a list of members', field="file")
    if len(members) > MAX_ROWS:
        raise FileError(
            N_("at most {max_rows} rows in one file"),
            field="file",
            params={"max_rows": MAX_ROWS},
        )
    yield from enumerate(members, start=1)


def read_file(data: bytes, media_type: str) -> Iterator[tuple[int, object]]:
    """The rows of an import file by its media type (text/csv or application/json)."""
    if media_type == "application/json":
        return read_json(data)
    if media_type in ("text/csv", "application/csv", "text/plain"):
        return read_csv(data)
    raise FileError("send the file as text/csv or application/json", field="file")
