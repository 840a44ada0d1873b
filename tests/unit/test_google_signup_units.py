"""The pieces of sign-up from Google Wallet that need no server: reading what Google shares, and
save links that carry the whole object when it fits."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes.google_wallet import DEFAULT_ISSUER_ID, GoogleWalletFake
from walletd.loyalty.google_prefill import decode_shared_data, prefill_values
from walletd.passes import google

ISSUER = DEFAULT_ISSUER_ID
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _encoded(value: object, *, urlsafe: bool = False, padded: bool = True) -> str:
    raw = json.dumps(value).encode("utf-8")
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode("ascii")
    return text if padded else text.rstrip("=")


@pytest.fixture(scope="module")
def service_account() -> Iterator[dict[str, str]]:
    with GoogleWalletFake() as fake:
        yield fake.credentials_info


def test_shared_data_is_read_in_any_base64_flavour() -> None:
    value = {"firstName": "Zoë", "lastName": "Ōta"}
    for text in (
        _encoded(value),
        _encoded(value, urlsafe=True),
        _encoded(value, padded=False),
    ):
        assert decode_shared_data(text) == value


def test_undecodable_shared_data_reads_as_nothing() -> None:
    for text in ("", "%%%", "A" * 9000, _encoded([1, 2]), _encoded("text"), "e30"):
        assert decode_shared_data(text) == {}  # never raises
    assert decode_shared_data(_encoded({})) == {}


def test_key_spellings_map_to_the_form_and_other_data_is_dropped() -> None:
    for first, last, email, phone in (
        ("firstName", "lastName", "email", "phone"),
        ("FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE"),
        ("first_name", "last_name", "emailAddress", "phoneNumber"),
    ):
        shared = _encoded(
            {first: "Ada", last: "Lovelace", email: "ada@example.com", phone: "+44 20 7946 0958",
             "zipcode": "SW1A 1AA", "addressLine1": "1 Street"}
        )  # fmt: skip
        assert prefill_values({"SharedDataType": shared}) == {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0958",
        }


def test_implausible_values_do_not_prefill() -> None:
    shared = _encoded(
        {"firstName": "x" * 201, "email": "not-an-address", "phone": "call me", "lastName": 7}
    )
    assert prefill_values({"SharedDataType": shared}) == {}
    assert prefill_values({"firstName": "Ada\u0000"}) == {}


def test_plain_parameters_prefill_too() -> None:
    assert prefill_values({"first_name": " Ada ", "email": "ada@example.com", "x": "y"}) == {
        "name": "Ada",
        "email": "ada@example.com",
    }


def test_a_save_link_carries_the_object_when_it_fits_and_only_ids_otherwise(
    service_account: dict[str, str],
) -> None:
    cid = google.class_id(ISSUER, 7)
    oid = google.object_id(ISSUER, "abc-123")
    args: dict[str, Any] = {
        "credentials_info": service_account,
        "issuer_id": ISSUER,
        "object_id": oid,
        "class_id": cid,
        "origins": ["https://cards.example.com"],
        "now": NOW,
    }
    face = {"id": oid, "classId": cid, "state": "ACTIVE", "accountName": "Ada"}

    def payload(token: str) -> object:
        claims = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["payload"]

    assert payload(google.save_jwt(**args, object_body=face)) == {"loyaltyObjects": [face]}
    huge = {**face, "accountName": "A" * 2000}
    skinny = google.save_jwt(**args, object_body=huge)
    assert len(skinny) < google.MAX_SAVE_JWT_LENGTH
    assert payload(skinny) == {"loyaltyObjects": [{"id": oid, "classId": cid}]}
    with pytest.raises(ValueError, match="not the object"):
        google.save_jwt(**args, object_body={**face, "id": f"{ISSUER}.card-other"})


def test_the_save_link_object_is_the_cards_face_only() -> None:
    body = {"id": "1.a", "classId": "1.b", "state": "ACTIVE", "messages": [], "barcode": {},
            "linksModuleData": {}, "merchantLocations": []}  # fmt: skip
    assert google.save_link_object(body) == {
        "id": "1.a",
        "classId": "1.b",
        "state": "ACTIVE",
        "barcode": {},
    }
