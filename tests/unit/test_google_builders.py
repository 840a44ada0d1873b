"""Google Wallet class/object bodies and save JWTs, checked against the discovery schemas."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.google_wallet import (
    DEFAULT_ISSUER_ID,
    GoogleWalletFake,
    iter_issues,
    validate_body,
)
from walletd.passes import google
from walletd.passes.view import CardView

ISSUER = DEFAULT_ISSUER_ID
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_view(**changes: Any) -> CardView:
    view = CardView(
        serial_number="3f2a9c1e-7b4d-4e8a-9d2f-1a2b3c4d5e6f",
        authentication_token="t" * 32,
        barcode_message="WALLETD:3f2a9c1e",
        barcode_alt_text="3F2A 9C1E",
        organization_name="Bean There",
        program_name="Bean Club",
        member_name="Jane Doe",
        points=1240,
        tier="Gold",
        background_color="#1A2B3C",
        foreground_color="#FFFFFF",
        label_color="#EEEEEE",
        template="default",
        updated_at=NOW,
        message="Double points this weekend",
        message_id="promo-2026-05",
        program_id=7,
        brand_id=3,
    )
    return dataclasses.replace(view, **changes)


def assert_valid(schema: str, body: object, *, partial: bool = False) -> None:
    issues = validate_body(schema, body, partial=partial)
    assert not issues, "\n".join(iter_issues(issues))


def make_class(**changes: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "issuer_id": ISSUER,
        "program_id": 7,
        "program_name": "Bean Club",
        "issuer_name": "Bean There",
        "background_color": "#1A2B3C",
        "logo_uri": "https://cards.example.com/static/logo.png",
        "callback_url": "https://cards.example.com/google/callbacks",
    }
    kwargs.update(changes)
    return google.build_loyalty_class(**kwargs)


@pytest.fixture(scope="module")
def issuer_fake() -> GoogleWalletFake:
    # Not started: only the source of a freshly generated service-account key.
    return GoogleWalletFake()


@pytest.fixture(scope="module")
def service_account(issuer_fake: GoogleWalletFake) -> dict[str, str]:
    return issuer_fake.credentials_info


def test_ids_are_deterministic_issuer_prefixed_ascii() -> None:
    assert google.class_id(ISSUER, 7) == f"{ISSUER}.program-7"
    assert google.class_id(ISSUER, 7, "v2") == f"{ISSUER}.program-7-v2"
    assert google.object_id(ISSUER, "abc-123") == google.object_id(ISSUER, "abc-123")
    assert google.object_id(ISSUER, "abc-123") == f"{ISSUER}.card-abc-123"


@pytest.mark.parametrize("serial", ["jané", "a b", "a/b", "", "x@example.com"])
def test_object_id_refuses_characters_google_rejects(serial: str) -> None:
    with pytest.raises(ValueError):
        google.object_id(ISSUER, serial)


def test_ids_refuse_a_non_numeric_issuer() -> None:
    with pytest.raises(ValueError):
        google.class_id("issuer", 1)
    with pytest.raises(ValueError):
        google.object_id("١٢٣", "abc")  # Arabic-Indic digits pass str.isdigit(), not Google


def test_object_id_carries_no_member_data() -> None:
    view = make_view()
    body = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=google.class_id(ISSUER, 7))
    assert "Jane" not in body["id"]
    assert body["id"] == google.object_id(ISSUER, view.serial_number)


def test_class_body_passes_discovery_validation() -> None:
    body = make_class()
    assert_valid("LoyaltyClass", body)
    assert body["reviewStatus"] == "UNDER_REVIEW"
    assert body["hexBackgroundColor"] == "#1a2b3c"
    assert body["programLogo"]["sourceUri"]["uri"] == "https://cards.example.com/static/logo.png"
    assert body["callbackOptions"] == {"url": "https://cards.example.com/google/callbacks"}
    assert body["multipleDevicesAndHoldersAllowedStatus"] == "ONE_USER_ALL_DEVICES"


def test_class_body_without_callback_or_with_homepage_is_valid() -> None:
    body = make_class(callback_url=None, homepage_uri="https://bean.example.com")
    assert_valid("LoyaltyClass", body)
    assert "callbackOptions" not in body
    assert body["homepageUri"] == {"uri": "https://bean.example.com"}


def test_class_body_uses_the_given_labels() -> None:
    labels = google.LoyaltyLabels(
        points="積分", tier="等級", account_id="會員編號", account_name="會員", language="zh-Hant"
    )
    body = make_class(labels=labels)
    assert_valid("LoyaltyClass", body)
    assert body["accountIdLabel"] == "會員編號"
    assert body["programLogo"]["contentDescription"]["defaultValue"]["language"] == "zh-Hant"


@pytest.mark.parametrize("color", ["1a2b3c", "#12345", "#GGGGGG", "red"])
def test_class_body_refuses_a_bad_colour(color: str) -> None:
    with pytest.raises(ValueError):
        make_class(background_color=color)


def test_object_body_passes_discovery_validation() -> None:
    view = make_view(locations=((25.03, 121.56), (25.04, 121.57)))
    cid = google.class_id(ISSUER, 7)
    body = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=cid)
    assert_valid("LoyaltyObject", body)
    assert body["classId"] == cid
    assert body["state"] == "ACTIVE"
    assert body["accountId"] == view.serial_number
    assert body["accountName"] == "Jane Doe"
    assert body["loyaltyPoints"] == {"label": "Points", "balance": {"int": 1240}}
    assert body["secondaryLoyaltyPoints"] == {"label": "Tier", "balance": {"string": "Gold"}}
    assert body["barcode"] == {
        "type": "QR_CODE",
        "value": "WALLETD:3f2a9c1e",
        "alternateText": "3F2A 9C1E",
    }
    assert body["messages"] == [
        {
            "id": "promo-2026-05",
            "header": "Bean There",
            "body": "Double points this weekend",
            "messageType": "TEXT",
        }
    ]
    assert body["merchantLocations"][0] == {"latitude": 25.03, "longitude": 121.56}
    assert "hexBackgroundColor" not in body  # LoyaltyObject has no such field


def test_object_body_without_tier_or_message_is_minimal_and_valid() -> None:
    view = make_view(tier=None, message=None, message_id=None)
    body = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=google.class_id(ISSUER, 7))
    assert_valid("LoyaltyObject", body)
    assert "secondaryLoyaltyPoints" not in body
    assert "messages" not in body
    assert "merchantLocations" not in body


def test_object_message_without_id_gets_a_stable_one() -> None:
    view = make_view(message_id=None)
    cid = google.class_id(ISSUER, 7)
    first = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=cid)
    again = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=cid)
    assert first["messages"][0]["id"] == again["messages"][0]["id"]
    assert_valid("LoyaltyObject", first)


def test_object_keeps_at_most_ten_merchant_locations() -> None:
    view = make_view(locations=tuple((float(i), float(i)) for i in range(12)))
    body = google.build_loyalty_object(view, issuer_id=ISSUER, class_id=google.class_id(ISSUER, 7))
    assert len(body["merchantLocations"]) == 10
    assert_valid("LoyaltyObject", body)


def test_object_refuses_points_beyond_int32() -> None:
    with pytest.raises(ValueError):
        google.build_loyalty_object(
            make_view(points=2**31), issuer_id=ISSUER, class_id=google.class_id(ISSUER, 7)
        )


def test_points_patch_replaces_whole_balances_and_notifies_only_when_asked() -> None:
    quiet = google.points_patch(make_view(points=950), notify=False)
    loud = google.points_patch(make_view(points=950), notify=True)
    assert quiet == {
        "loyaltyPoints": {"label": "Points", "balance": {"int": 950}},
        "secondaryLoyaltyPoints": {"label": "Tier", "balance": {"string": "Gold"}},
    }
    assert loud == {**quiet, "notifyPreference": "NOTIFY_ON_UPDATE"}
    assert_valid("LoyaltyObject", quiet, partial=True)
    assert_valid("LoyaltyObject", loud, partial=True)


def test_points_patch_deletes_a_lost_tier() -> None:
    body = google.points_patch(make_view(tier=None), notify=False)
    assert body["secondaryLoyaltyPoints"] is None
    assert_valid("LoyaltyObject", body, partial=True)


def test_add_message_body_picks_the_notifying_type_only_on_request() -> None:
    loud = google.add_message_body("m-1", "Hello", "Free coffee today", notify=True)
    quiet = google.add_message_body("m-1", "Hello", "Free coffee today", notify=False)
    assert loud["message"]["messageType"] == "TEXT_AND_NOTIFY"
    assert quiet["message"]["messageType"] == "TEXT"
    assert loud["message"]["id"] == "m-1"
    assert_valid("AddMessageRequest", loud)
    assert_valid("AddMessageRequest", quiet)


def _verify_rs256(token: str, key: rsa.RSAPublicKey) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, sig = token.split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key.verify(decode(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(decode(head)), json.loads(decode(body))


def test_save_jwt_is_a_signed_skinny_token(
    service_account: dict[str, str], issuer_fake: GoogleWalletFake
) -> None:
    cid = google.class_id(ISSUER, 7)
    oid = google.object_id(ISSUER, "abc-123")
    token = google.save_jwt(
        credentials_info=service_account,
        issuer_id=ISSUER,
        object_id=oid,
        class_id=cid,
        origins=["https://cards.example.com"],
        now=NOW,
    )
    header, claims = _verify_rs256(token, issuer_fake.public_key)
    assert header == {"typ": "JWT", "alg": "RS256", "kid": service_account["private_key_id"]}
    assert claims == {
        "iss": service_account["client_email"],
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(NOW.timestamp()),
        "origins": ["https://cards.example.com"],
        "payload": {"loyaltyObjects": [{"id": oid, "classId": cid}]},
    }
    assert google.save_url(token) == f"https://pay.google.com/gp/v/save/{token}"


def test_save_jwt_stays_under_1800_characters_with_long_ids(
    service_account: dict[str, str],
) -> None:
    cid = google.class_id(ISSUER, 2**31, "x" * 40)
    oid = google.object_id(ISSUER, "s" * 80)
    token = google.save_jwt(
        credentials_info=service_account,
        issuer_id=ISSUER,
        object_id=oid,
        class_id=cid,
        origins=["https://cards.example.com", "https://www.bean-there-coffee.example.com"],
        now=NOW,
    )
    assert len(token) < 1800


def test_save_jwt_refuses_to_make_a_link_browsers_would_truncate(
    service_account: dict[str, str],
) -> None:
    with pytest.raises(ValueError, match="1800"):
        google.save_jwt(
            credentials_info=service_account,
            issuer_id=ISSUER,
            object_id=google.object_id(ISSUER, "abc"),
            class_id=google.class_id(ISSUER, 7),
            origins=[f"https://shop{i}.example.com" for i in range(40)],
            now=NOW,
        )


def test_save_jwt_refuses_foreign_ids_and_naive_time(service_account: dict[str, str]) -> None:
    args: dict[str, Any] = {
        "credentials_info": service_account,
        "issuer_id": ISSUER,
        "object_id": google.object_id(ISSUER, "abc"),
        "class_id": google.class_id(ISSUER, 7),
        "origins": [],
        "now": NOW,
    }
    with pytest.raises(ValueError):
        google.save_jwt(**{**args, "object_id": "1234.card-abc"})
    with pytest.raises(ValueError):
        google.save_jwt(**{**args, "now": datetime(2026, 5, 1)})


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"hexBackgroundColour": "#fff"}, "resource.hexBackgroundColour"),
        ({"loyaltyPoints": {"balance": {"int": "800"}}}, "resource.loyaltyPoints.balance.int"),
        ({"state": "BOGUS"}, "resource.state"),
        ({"state": "active"}, "resource.state"),  # legacy alias, refused in strict mode
        ({"barcode": {"type": "QR"}}, "resource.barcode.type"),
        (
            {"loyaltyPoints": {"balance": {"int": 1, "string": "x"}}},
            "resource.loyaltyPoints.balance",
        ),
        ({"messages": [{"header": "h", "body": "b"}] * 11}, "resource.messages"),
        ({"classReference": {}}, "resource.classReference"),
    ],
)
def test_fake_validator_catches_what_google_refuses(body: dict[str, Any], path: str) -> None:
    issues = validate_body("LoyaltyObject", body, partial=True)
    assert path in [i.path for i in issues], list(iter_issues(issues))


def test_fake_validator_requires_what_discovery_only_describes() -> None:
    issues = validate_body("LoyaltyObject", {"accountId": "1"})
    assert {i.path for i in issues} == {"resource.id", "resource.classId", "resource.state"}
    issues = validate_body("LoyaltyClass", {"id": f"{ISSUER}.x", "reviewStatus": "UNDER_REVIEW"})
    assert {"resource.issuerName", "resource.programName", "resource.programLogo"} <= {
        i.path for i in issues
    }
