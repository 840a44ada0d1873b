"""Card serials and the signed barcode text carried by the QR code."""

from __future__ import annotations

import string
from typing import Any

import pytest

from walletd.loyalty.barcodes import (
    PREFIX,
    make_barcode,
    new_auth_token,
    new_serial,
    serial_from_barcode,
)

SECRET = "unit-test-secret-key-0123456789abcdef"
OTHER_SECRET = "another-secret-key-0123456789abcdef!"
QR_ALPHANUMERIC = set(string.digits + string.ascii_uppercase + " $%*+-./:")


def _replace_char(text: str, index: int) -> str:
    """The text with one character swapped for a different one of the same alphabet."""
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


def test_barcode_round_trips_to_its_serial() -> None:
    serial = new_serial()
    assert serial_from_barcode(make_barcode(serial, SECRET), SECRET) == serial


def test_barcode_has_prefix_serial_and_mac() -> None:
    serial = new_serial()
    prefix, middle, mac = make_barcode(serial, SECRET).split(".")
    assert prefix == PREFIX
    assert middle == serial
    assert mac


def test_barcode_is_deterministic_for_a_serial_and_secret() -> None:
    serial = new_serial()
    assert make_barcode(serial, SECRET) == make_barcode(serial, SECRET)
    assert make_barcode(serial, SECRET) != make_barcode(serial, OTHER_SECRET)


def test_lowercase_barcode_is_accepted() -> None:
    serial = new_serial()
    assert serial_from_barcode(make_barcode(serial, SECRET).lower(), SECRET) == serial


def test_barcode_with_surrounding_whitespace_is_accepted() -> None:
    serial = new_serial()
    assert serial_from_barcode(f"  {make_barcode(serial, SECRET)}\n", SECRET) == serial


@pytest.mark.parametrize("index", [0, 5, 23])
def test_barcode_with_an_altered_serial_is_refused(index: int) -> None:
    serial = new_serial()
    mac = make_barcode(serial, SECRET).split(".")[2]
    altered = _replace_char(serial, index)
    assert serial_from_barcode(f"{PREFIX}.{altered}.{mac}", SECRET) is None


@pytest.mark.parametrize("index", [0, 7, -1])
def test_barcode_with_an_altered_mac_is_refused(index: int) -> None:
    serial = new_serial()
    mac = make_barcode(serial, SECRET).split(".")[2]
    altered = _replace_char(mac, index % len(mac))
    assert serial_from_barcode(f"{PREFIX}.{serial}.{altered}", SECRET) is None


def test_barcode_with_a_truncated_mac_is_refused() -> None:
    barcode = make_barcode(new_serial(), SECRET)
    assert serial_from_barcode(barcode[:-1], SECRET) is None


def test_barcode_signed_with_another_secret_is_refused() -> None:
    assert serial_from_barcode(make_barcode(new_serial(), OTHER_SECRET), SECRET) is None


@pytest.mark.parametrize("prefix", ["WD2", "WD", "XX1", "", "WD1WD1"])
def test_barcode_with_a_wrong_prefix_is_refused(prefix: str) -> None:
    serial = new_serial()
    mac = make_barcode(serial, SECRET).split(".")[2]
    assert serial_from_barcode(f"{prefix}.{serial}.{mac}", SECRET) is None


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "WD1", "WD1..", "WD1.ABC", "...", "WD1.A-B.C", "https://example.com/x", "\x00"],
)
def test_garbage_is_refused(text: str) -> None:
    assert serial_from_barcode(text, SECRET) is None


def test_barcode_with_extra_parts_is_refused() -> None:
    barcode = make_barcode(new_serial(), SECRET)
    assert serial_from_barcode(f"{barcode}.X", SECRET) is None


def test_very_long_text_is_refused() -> None:
    barcode = make_barcode(new_serial(), SECRET)
    assert serial_from_barcode(barcode + " " * 200, SECRET) is None
    assert serial_from_barcode("A" * 1_000_000, SECRET) is None


@pytest.mark.parametrize("value", [None, 123, b"WD1.A.B", ["WD1"]])
def test_values_that_are_not_text_are_refused(value: Any) -> None:
    assert serial_from_barcode(value, SECRET) is None


def test_qr_payload_uses_only_qr_alphanumeric_characters() -> None:
    for _ in range(200):
        barcode = make_barcode(new_serial(), SECRET)
        assert set(barcode) <= set(string.ascii_uppercase + string.digits + ".")
        assert set(barcode) <= QR_ALPHANUMERIC
        assert "=" not in barcode


def test_serials_are_unique_and_uppercase_base32() -> None:
    serials = {new_serial() for _ in range(500)}
    assert len(serials) == 500
    for serial in serials:
        assert serial.isalnum()
        assert serial == serial.upper()


def test_auth_tokens_are_long_and_unique() -> None:
    tokens = {new_auth_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) >= 32 for token in tokens)
