"""Google Wallet loyalty class/object bodies and the "Add to Google Wallet" save link; no I/O."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.auth import crypt, jwt

from walletd.passes.view import CardView

JsonDict = dict[str, Any]

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"
# Google: links longer than this get truncated by browsers, mail clients and QR encoders.
MAX_SAVE_JWT_LENGTH = 1800
# LoyaltyPointsBalance.int is an int32 in the discovery document.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# Google rejects more than ten merchant locations on an object.
_MAX_MERCHANT_LOCATIONS = 10

_ISSUER_RE = re.compile(r"^[0-9]+$")
# Written out instead of \w, which also matches non-ASCII letters that Google refuses in ids.
_ID_PART_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class LoyaltyLabels:
    """Per-locale labels drawn on the Google card (Google's recommended maximum lengths apply)."""

    points: str = "Points"  # <= 9 characters
    tier: str = "Tier"  # <= 9 characters
    account_id: str = "Member ID"  # <= 15 characters
    account_name: str = "Member"  # <= 15 characters
    language: str = "en-US"  # BCP 47 tag of these texts


DEFAULT_LABELS = LoyaltyLabels()


def _check_issuer(issuer_id: str) -> None:
    if not _ISSUER_RE.fullmatch(issuer_id):
        raise ValueError(f"Google issuer id must be numeric, got {issuer_id!r}")


def _check_part(name: str, value: str) -> None:
    if not _ID_PART_RE.fullmatch(value):
        # Refused rather than rewritten: rewriting could map two cards onto one Google object.
        raise ValueError(f"{name} must match [A-Za-z0-9._-]+, got {value!r}")


def class_id(issuer_id: str, program_id: int, suffix: str = "") -> str:
    """Return the deterministic Google class id of one loyalty program."""
    _check_issuer(issuer_id)
    if program_id < 0:
        raise ValueError("program_id must not be negative")
    cid = f"{issuer_id}.program-{program_id}"
    if suffix:
        _check_part("suffix", suffix)
        cid = f"{cid}-{suffix}"
    return cid


def object_id(issuer_id: str, serial_number: str) -> str:
    """Return the deterministic Google object id of one card, from its serial (no member data)."""
    _check_issuer(issuer_id)
    _check_part("serial_number", serial_number)
    return f"{issuer_id}.card-{serial_number}"


def _localized(text: str, language: str) -> JsonDict:
    return {"defaultValue": {"language": language, "value": text}}


def _color(value: str) -> str:
    if not _COLOR_RE.fullmatch(value):
        raise ValueError(f"colour must be #rgb or #rrggbb, got {value!r}")
    return value.lower()


def build_loyalty_class(
    *,
    issuer_id: str,
    program_id: int,
    program_name: str,
    issuer_name: str,
    background_color: str,
    logo_uri: str,
    callback_url: str | None = None,
    suffix: str = "",
    homepage_uri: str | None = None,
    labels: LoyaltyLabels = DEFAULT_LABELS,
) -> JsonDict:
    """Return the LoyaltyClass body shared by every card of one program."""
    body: JsonDict = {
        "id": class_id(issuer_id, program_id, suffix),
        "issuerName": issuer_name,
        "programName": program_name,
        "programLogo": {
            "sourceUri": {"uri": logo_uri},
            "contentDescription": _localized(program_name, labels.language),
        },
        # The only value that makes the class usable at once; approved classes must keep
        # receiving it on every update or Google rejects the update.
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": _color(background_color),
        # A loyalty card belongs to one member: once saved, other Google accounts cannot take it.
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
        "accountIdLabel": labels.account_id,
        "accountNameLabel": labels.account_name,
    }
    if callback_url:
        body["callbackOptions"] = {"url": callback_url}
    if homepage_uri:
        body["homepageUri"] = {"uri": homepage_uri}
    return body


def _points(view: CardView, labels: LoyaltyLabels) -> JsonDict:
    if not _INT32_MIN <= view.points <= _INT32_MAX:
        raise ValueError(f"points {view.points} do not fit Google's int32 balance")
    return {"label": labels.points, "balance": {"int": view.points}}


def _tier(view: CardView, labels: LoyaltyLabels) -> JsonDict | None:
    if not view.tier:
        return None
    # LoyaltyObject has no per-member rewardsTier, so the tier rides in the second balance slot.
    return {"label": labels.tier, "balance": {"string": view.tier}}


def _message_id(view: CardView) -> str:
    if view.message_id:
        return view.message_id
    # A stable id lets a re-sent message replace itself instead of piling up (max 10 kept).
    digest = hashlib.sha256((view.message or "").encode("utf-8")).hexdigest()[:16]
    return f"msg-{digest}"


def object_messages(view: CardView) -> list[JsonDict]:
    """The card's messages as the object's `messages`, newest first (all of them in a PATCH)."""
    # Plain TEXT: inserting or re-syncing a card must not spend the 3-a-day notification budget.
    if view.messages:
        return [
            {
                "id": line.id,
                "header": view.organization_name,
                "body": line.text,
                "messageType": "TEXT",
            }
            for line in view.messages
        ]
    if not view.message:
        return []
    return [
        {
            "id": _message_id(view),
            "header": view.organization_name,
            "body": view.message,
            "messageType": "TEXT",
        }
    ]


def build_loyalty_object(
    view: CardView,
    *,
    issuer_id: str,
    class_id: str,
    labels: LoyaltyLabels = DEFAULT_LABELS,
) -> JsonDict:
    """Return the LoyaltyObject body of one member's card."""
    body: JsonDict = {
        "id": object_id(issuer_id, view.serial_number),
        "classId": class_id,
        # An erased member's object is finished: Google moves it to the expired passes.
        "state": "INACTIVE" if view.voided else "ACTIVE",
        "accountId": view.serial_number,
        "accountName": view.member_name,
        "loyaltyPoints": _points(view, labels),
        "barcode": {
            "type": "QR_CODE",
            "value": view.barcode_message,
            "alternateText": view.barcode_alt_text,
        },
    }
    tier = _tier(view, labels)
    if tier is not None:
        body["secondaryLoyaltyPoints"] = tier
    messages = object_messages(view)
    if messages:
        body["messages"] = messages
    if view.locations and not view.voided:
        body["merchantLocations"] = [
            {"latitude": lat, "longitude": lon}
            for lat, lon in view.locations[:_MAX_MERCHANT_LOCATIONS]
        ]
    if view.manage_url and not view.voided:
        body["linksModuleData"] = {
            "uris": [{"uri": view.manage_url, "description": "Manage messages", "id": "manage"}]
        }
    return body


def points_patch(
    view: CardView, notify: bool, *, labels: LoyaltyLabels = DEFAULT_LABELS
) -> JsonDict:
    """Return the PATCH body that replaces the card's balances, optionally notifying the holder."""
    body: JsonDict = {
        # Whole objects, same balance subtype every time, so a merge never leaves a stale subtype.
        "loyaltyPoints": _points(view, labels),
        # null deletes the field in a PATCH: a member who lost their tier must not keep showing it.
        "secondaryLoyaltyPoints": _tier(view, labels),
    }
    if view.voided:
        # An erased member's card: finished, and no name left on it.
        body["state"] = "INACTIVE"
        body["accountName"] = ""
        body["messages"] = []
    if notify:
        # Ephemeral and top-level on the object: it applies only to the PATCH that carries it.
        body["notifyPreference"] = "NOTIFY_ON_UPDATE"
    return body


def add_message_body(message_id: str, header: str, body: str, notify: bool) -> JsonDict:
    """Return an addMessage request; notify=True also pushes it (3 per pass per 24 h)."""
    return {
        "message": {
            "id": message_id,
            "header": header,
            "body": body,
            "messageType": "TEXT_AND_NOTIFY" if notify else "TEXT",
        }
    }


@functools.lru_cache(maxsize=8)
def _signer(private_key: str, key_id: str | None) -> Any:
    # Parsing and checking an RSA key costs milliseconds; a worker signs with the same key all day.
    return crypt.RSASigner.from_string(private_key, key_id)  # type: ignore[no-untyped-call]


def save_jwt(
    *,
    credentials_info: Mapping[str, str],
    issuer_id: str,
    object_id: str,
    class_id: str,
    origins: Sequence[str],
    now: datetime,
    object_body: Mapping[str, Any] | None = None,
) -> str:
    """Return a signed skinny save JWT for an object that was already inserted over REST.

    With `object_body` (the object's id, class id and face), the JWT carries the whole object
    while it stays under the length limit, so Google creates it if the worker has not yet; an
    object Google already has is saved as it is.
    """
    if object_body is not None:
        if (object_body.get("id"), object_body.get("classId")) != (object_id, class_id):
            raise ValueError("object_body is not the object named by object_id and class_id")
        fat = _signed_save_jwt(credentials_info, issuer_id, object_id, class_id, origins, now,
                               dict(object_body))  # fmt: skip
        if len(fat) < MAX_SAVE_JWT_LENGTH:
            return fat
    return _signed_save_jwt(credentials_info, issuer_id, object_id, class_id, origins, now, None)


def _signed_save_jwt(
    credentials_info: Mapping[str, str],
    issuer_id: str,
    object_id: str,
    class_id: str,
    origins: Sequence[str],
    now: datetime,
    object_body: JsonDict | None,
) -> str:
    _check_issuer(issuer_id)
    for name, value in (("object_id", object_id), ("class_id", class_id)):
        if not value.startswith(f"{issuer_id}."):
            raise ValueError(f"{name} {value!r} does not belong to issuer {issuer_id}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if "private_key" not in credentials_info or "client_email" not in credentials_info:
        raise ValueError("credentials_info is not a service-account key")
    claims = {
        "iss": credentials_info["client_email"],
        "aud": "google",
        "typ": "savetowallet",
        # google-auth's encode() adds no iat; Google's JWT reference lists it as required.
        "iat": int(now.timestamp()),
        "origins": list(origins),
        # Usually only ids: the full object would push the link past the 1800-character limit.
        "payload": {"loyaltyObjects": [object_body or {"id": object_id, "classId": class_id}]},
    }
    signer = _signer(credentials_info["private_key"], credentials_info.get("private_key_id"))
    token = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    text = token.decode("ascii") if isinstance(token, bytes) else str(token)
    if object_body is None and len(text) >= MAX_SAVE_JWT_LENGTH:
        raise ValueError(f"save JWT is {len(text)} characters, over {MAX_SAVE_JWT_LENGTH}")
    return text


# The object's face: enough for Google to create the object from a save link, nothing more.
_SAVE_LINK_FIELDS = ("id", "classId", "state", "accountId", "accountName", "loyaltyPoints",
                     "secondaryLoyaltyPoints", "barcode")  # fmt: skip


def save_link_object(body: Mapping[str, Any]) -> JsonDict:
    """The part of a LoyaltyObject body a save JWT carries (no messages, links or locations)."""
    return {key: body[key] for key in _SAVE_LINK_FIELDS if key in body}


def save_url(token: str) -> str:
    """Return the "Add to Google Wallet" link for a signed save JWT."""
    return f"{SAVE_URL_PREFIX}{token}"


# -- offers: one offerClass per offer, one offerObject per coupon, linked into the loyalty card --

# Google's OfferObject.state for each Coupon.status: a finished coupon leaves the loyalty card and
# moves to the holder's "Expired passes" list.
OFFER_STATES: Mapping[str, str] = {
    "active": "ACTIVE",
    "redeemed": "COMPLETED",
    "expired": "EXPIRED",
    "void": "INACTIVE",
}


def offer_class_id(issuer_id: str, offer_id: int) -> str:
    """Return the deterministic Google offerClass id of one offer."""
    _check_issuer(issuer_id)
    if offer_id < 0:
        raise ValueError("offer_id must not be negative")
    return f"{issuer_id}.offer-{offer_id}"


def offer_object_id(issuer_id: str, coupon_id: int) -> str:
    """Return the deterministic Google offerObject id of one coupon (no member data)."""
    _check_issuer(issuer_id)
    if coupon_id < 0:
        raise ValueError("coupon_id must not be negative")
    return f"{issuer_id}.coupon-{coupon_id}"


def offer_state(coupon_status: str) -> str:
    """Return the OfferObject state of a coupon status (KeyError for an unknown status)."""
    return OFFER_STATES[coupon_status]


def _google_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("datetimes sent to Google must be timezone-aware")
    # With an explicit offset the instant is the same for every holder, wherever they are.
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def build_offer_class(
    *,
    issuer_id: str,
    offer_id: int,
    title: str,
    provider: str,
    background_color: str,
    logo_uri: str,
    fine_print: str | None = None,
    language: str = "en-US",
) -> JsonDict:
    """Return the OfferClass body shared by every coupon of one offer."""
    body: JsonDict = {
        "id": offer_class_id(issuer_id, offer_id),
        "issuerName": provider,
        "title": title,
        "provider": provider,
        "redemptionChannel": "INSTORE",
        # As for loyalty classes: usable at once, and required on every update of an approved one.
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": _color(background_color),
        "titleImage": {
            "sourceUri": {"uri": logo_uri},
            "contentDescription": _localized(provider, language),
        },
        # A coupon is one member's: once saved, other Google accounts cannot take it.
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
    }
    if fine_print:
        body["finePrint"] = fine_print
    return body


def build_offer_object(
    *,
    issuer_id: str,
    offer_id: int,
    coupon_id: int,
    status: str,
    barcode: str,
    code: str,
    expires_at: datetime | None,
    value_text: str | None = None,
) -> JsonDict:
    """Return the OfferObject body of one coupon, in the state its status maps to."""
    body: JsonDict = {
        "id": offer_object_id(issuer_id, coupon_id),
        "classId": offer_class_id(issuer_id, offer_id),
        "state": offer_state(status),
        "barcode": {"type": "QR_CODE", "value": barcode, "alternateText": code},
    }
    if expires_at is not None:
        # Google also moves the object to EXPIRED itself once `end` passes.
        body["validTimeInterval"] = {"end": {"date": _google_datetime(expires_at)}}
    if value_text:
        # The value resolved for the member's tier can differ from the class's title.
        body["textModulesData"] = [{"id": "value", "header": "Your offer", "body": value_text}]
    return body


def modify_linked_offers_body(*, add: Sequence[str] = (), remove: Sequence[str] = ()) -> JsonDict:
    """Return a loyaltyObject.modifyLinkedOfferObjects request adding and removing offer ids."""
    changes: JsonDict = {}
    if add:
        changes["addLinkedOfferObjectIds"] = list(add)
    if remove:
        changes["removeLinkedOfferObjectIds"] = list(remove)
    return {"linkedOfferObjectIds": changes}
