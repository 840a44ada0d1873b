"""What Google Wallet hands the join page at sign-up, read into the join form's values.

Google Wallet opens the program's sign-up website in a web view with a POST
(application/x-www-form-urlencoded, UTF-8) whose parameter `SharedDataType` is a Base64-encoded
JSON object of the data the user agreed to share. The key spelling is read loosely
(`firstName`, `FIRST_NAME` and `first_name` are one key) and the same keys are also read as plain
parameters, so a test link or a later change of Google's encoding still prefills. Nothing here is
trusted: values only prefill the form, which goes through the normal checks when it is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

PARAMETER = "SharedDataType"
# A few hundred bytes in practice; anything much larger is not Google's.
MAX_ENCODED = 8192
_LIMITS = {"name": 200, "email": 320, "phone": 32}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^[0-9+()\-. ]{3,32}$")
# Google's field (in any spelling, squeezed to lower-case letters and digits) -> the form's part.
_KEYS = {
    "firstname": "first_name",
    "givenname": "first_name",
    "lastname": "last_name",
    "familyname": "last_name",
    "email": "email",
    "emailaddress": "email",
    "phone": "phone",
    "phonenumber": "phone",
}


def _squeeze(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def decode_shared_data(encoded: str) -> dict[str, Any]:
    """The JSON object inside `SharedDataType`, or {} when it is not one (never raises)."""
    text = encoded.strip()
    if not text or len(text) > MAX_ENCODED:
        return {}
    padded = text + "=" * (-len(text) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decoder(padded.encode("ascii"))
            value = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeError):
            continue
        if isinstance(value, dict):
            return value
    return {}


def _clean(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    if not text or len(text) > limit or not text.isprintable():
        return None
    return text


def prefill_values(parameters: Mapping[str, str]) -> dict[str, str]:
    """The join form's values (name, email, phone) from what Google Wallet sent; unknown
    parameters, undecodable data and implausible values are left out."""
    found: dict[str, object] = {}
    shared = decode_shared_data(parameters.get(PARAMETER, ""))
    for source in (parameters, shared):
        for key, value in source.items():
            part = _KEYS.get(_squeeze(str(key)))
            if part is not None and part not in found:
                found[part] = value
    values: dict[str, str] = {}
    first = _clean(found.get("first_name"), _LIMITS["name"])
    last = _clean(found.get("last_name"), _LIMITS["name"])
    name = " ".join(part for part in (first, last) if part)
    if name and len(name) <= _LIMITS["name"]:
        values["name"] = name
    email = _clean(found.get("email"), _LIMITS["email"])
    if email and _EMAIL.match(email):
        values["email"] = email
    phone = _clean(found.get("phone"), _LIMITS["phone"])
    if phone and _PHONE.match(phone):
        values["phone"] = phone
    return values
