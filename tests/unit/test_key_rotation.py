"""Rotating WALLETD_SECRET_KEY: links, barcodes and sessions made with an old key keep working
while it is listed in WALLETD_SECRET_KEY_FALLBACKS; and no link or barcode text raises."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from tests.integration.pages.conftest import log_in, make_staff
from walletd import create_app
from walletd.config import Settings
from walletd.loyalty.barcodes import make_barcode, new_serial, serial_from_barcode
from walletd.passes.certs import write_dev_certs
from walletd.web.links import check_link, link_signature, qr_url

KEY_A = "old-key-Vq3xT9pL2mN8rS4wY7zB1cD5fG6hJ0kQ"
KEY_B = "new-key-Zr8nW2qX5tY9uV3pL7mK1jH4gF6dS0aE"
PURPOSES = ("qr", "pkpass", "page")
# Any text at all: every Unicode character but lone surrogates, up to very long.
ANY_TEXT = st.text(max_size=300) | st.text(min_size=1000, max_size=20_000)
# Small enough to fit a request body (64 KiB even when every character is \uXXXX-escaped).
ANY_BODY_TEXT = st.text(max_size=300) | st.text(min_size=1000, max_size=4000)
# Text shaped like a barcode ("WD1.<letters>.<anything>"), where a naive check meets odd input.
BARCODE_LIKE = st.builds(
    lambda prefix, serial, mac: f"{prefix}.{serial}.{mac}",
    st.sampled_from(["WD1", "wd1", " WD1"]),
    st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=30),
    st.text(max_size=40),
)
LENIENT = examples(max_examples=150, deadline=None)


# --- links and barcodes, without a database -----------------------------------------------------


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_link_made_with_the_old_key_verifies_while_it_is_a_fallback(purpose: str) -> None:
    serial = new_serial()
    sig = link_signature(purpose, serial, KEY_A)

    assert check_link(purpose, serial, sig, (KEY_B, KEY_A))
    assert not check_link(purpose, serial, sig, (KEY_B,))
    assert not check_link(purpose, serial, sig, KEY_B)


def test_new_links_are_always_signed_with_the_current_key() -> None:
    rotated = Settings(
        base_url="https://x.example", secret_key=KEY_B, secret_key_fallbacks=(KEY_A,)
    )
    serial = new_serial()
    sig = urlsplit(qr_url(rotated, serial)).query.removeprefix("sig=")

    assert sig == link_signature("qr", serial, KEY_B)
    assert check_link("qr", serial, sig, KEY_B)
    assert not check_link("qr", serial, sig, KEY_A)


def test_a_barcode_printed_with_the_old_key_still_scans_while_it_is_a_fallback() -> None:
    serial = new_serial()
    printed = make_barcode(serial, KEY_A)

    assert serial_from_barcode(printed, (KEY_B, KEY_A)) == serial
    assert serial_from_barcode(printed.lower(), (KEY_B, KEY_A)) == serial
    assert serial_from_barcode(printed, (KEY_B,)) is None
    assert serial_from_barcode(printed, KEY_B) is None
    # New cards get the new key; old ones keep their text (it is what the phone shows).
    assert make_barcode(serial, KEY_B) != printed


@LENIENT
@given(purpose=st.sampled_from(PURPOSES), serial=ANY_TEXT, sig=ANY_TEXT)
def test_check_link_answers_false_for_any_text_and_never_raises(
    purpose: str, serial: str, sig: str
) -> None:
    assert check_link(purpose, serial, sig, KEY_A) is False
    assert check_link(purpose, serial, sig, (KEY_B, KEY_A)) is False


@LENIENT
@given(purpose=st.sampled_from(PURPOSES), noise=ANY_TEXT, at=st.integers(0, 32))
def test_a_real_link_with_anything_inserted_is_refused(purpose: str, noise: str, at: int) -> None:
    serial = new_serial()
    sig = link_signature(purpose, serial, KEY_A)
    altered = sig[:at] + noise + sig[at:]

    assert check_link(purpose, serial, altered, (KEY_B, KEY_A)) is (altered == sig)
    assert check_link(purpose, serial + noise, sig, (KEY_B, KEY_A)) is (noise == "")


@LENIENT
@given(text=ANY_TEXT | BARCODE_LIKE)
def test_any_text_is_an_unknown_barcode_and_never_raises(text: str) -> None:
    assert serial_from_barcode(text, KEY_A) is None
    assert serial_from_barcode(text, (KEY_B, KEY_A)) is None


@LENIENT
@given(noise=ANY_TEXT, at=st.integers(0, 45))
def test_a_real_barcode_with_anything_inserted_is_refused(noise: str, at: int) -> None:
    serial = new_serial()
    barcode = make_barcode(serial, KEY_A)
    altered = barcode[:at] + noise + barcode[at:]
    # Only what trims and upper-cases back to the real text is the card; "ſ" or "ı" never are.
    expected = serial if altered.strip().upper() == barcode and altered.isascii() else None

    assert serial_from_barcode(altered, (KEY_B, KEY_A)) == expected


def test_letters_that_upper_case_into_ascii_do_not_make_a_barcode() -> None:
    serial = "S" * 24
    barcode = make_barcode(serial, KEY_A)

    assert serial_from_barcode(barcode, KEY_A) == serial
    assert serial_from_barcode(barcode.replace("S", "ſ"), KEY_A) is None  # "ſ".upper() == "S"


def test_fallbacks_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {"WALLETD_SECRET_KEY": KEY_B, "WALLETD_SECRET_KEY_FALLBACKS": f" {KEY_A} ,, other-key "}
    )

    assert settings.secret_key_fallbacks == (KEY_A, "other-key")
    assert settings.secret_keys == (KEY_B, KEY_A, "other-key")
    assert Settings.from_env({}).secret_key_fallbacks == ()


# --- the running app: three generations of the same deployment ----------------------------------


@pytest.fixture
def rotation(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> Iterator[tuple[Flask, Flask, Flask]]:
    """Apps on one database: signed with A; rotated to B keeping A; B after A was dropped."""
    write_dev_certs(settings.apple_cert.parent)
    apps = [
        create_app(settings.with_changes(secret_key=KEY_A), clock=clock),
        create_app(
            settings.with_changes(secret_key=KEY_B, secret_key_fallbacks=(KEY_A,)), clock=clock
        ),
        create_app(settings.with_changes(secret_key=KEY_B), clock=clock),
    ]
    yield apps[0], apps[1], apps[2]
    for app in apps:
        services_of(app).close()


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _copy_session(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("walletd_session")
    assert cookie is not None
    target.set_cookie("walletd_session", cookie.value)


def test_cards_and_sessions_survive_a_rotation_while_the_old_key_is_a_fallback(
    rotation: tuple[Flask, Flask, Flask],
) -> None:
    old, rotated, dropped = rotation
    brand = make_brand(old)
    card = enroll(old.test_client(), brand)["card"]
    page = f"/card/{card['serial_number']}?sig=" + link_signature(
        "page", card["serial_number"], KEY_A
    )
    staff = make_staff(old, brand.brand_id, "owner@acme.example")
    logged_in = old.test_client()
    log_in(logged_in, staff)
    assert logged_in.get("/dashboard").status_code == 200

    after = rotated.test_client()
    assert after.get(page).status_code == 200
    response = scan(after, brand, card["barcode"], "12.50", key=str(uuid.uuid4()))
    assert response.status_code == 201, response.get_data(as_text=True)
    _copy_session(logged_in, after)
    assert after.get("/dashboard").status_code == 200
    # A card enrolled after the rotation is signed with the new key only.
    fresh = enroll(after, brand)["card"]
    assert fresh["barcode"] == make_barcode(fresh["serial_number"], KEY_B)

    later = dropped.test_client()
    assert later.get(page).status_code == 404
    response = scan(later, brand, card["barcode"], "12.50", key=str(uuid.uuid4()))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_card"
    assert scan(later, brand, fresh["barcode"], "1.00", key=str(uuid.uuid4())).status_code == 201
    _copy_session(logged_in, later)
    assert later.get("/dashboard").status_code in (302, 303)


def test_qr_and_pass_links_survive_a_rotation_while_the_old_key_is_a_fallback(
    rotation: tuple[Flask, Flask, Flask],
) -> None:
    old, rotated, dropped = rotation
    brand = make_brand(old)
    card = enroll(old.test_client(), brand)["card"]

    for name in ("qr_url", "apple_pass_url"):
        assert rotated.test_client().get(_local(card[name])).status_code == 200, name
        assert dropped.test_client().get(_local(card[name])).status_code == 404, name


@examples(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sig=ANY_TEXT, path=st.sampled_from(["qr.png", "pass.pkpass"]))
def test_any_signature_on_a_card_link_is_a_404_never_a_500(
    client: FlaskClient, sig: str, path: str
) -> None:
    response = client.get(f"/cards/{new_serial()}/{path}?sig={quote(sig, safe='')}")

    assert response.status_code == 404


@examples(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(barcode=ANY_BODY_TEXT | BARCODE_LIKE)
def test_any_barcode_text_is_an_unknown_card_never_a_500(
    client: FlaskClient, brand: BrandKeys, barcode: str
) -> None:
    response = scan(client, brand, barcode, "1.00", key=str(uuid.uuid4()))
    error = response.get_json()["error"]

    # A blank (or, by the request model, over-long) barcode is invalid input; any other is unknown.
    if (response.status_code, error.get("field")) != (422, "barcode"):
        assert (response.status_code, error["code"]) == (404, "unknown_card")
    if barcode.strip():
        assert response.status_code in (404, 422)
