"""A coupon's own Apple pass (style `coupon`), its updates, and the loyalty card's offers fields.

Coupons are made here with the models (an Offer, a Coupon and its Card of kind "coupon") and
announced with `coupon_changed`, the hook every coupon state change calls.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from werkzeug.http import parse_date

from tests.factories import BrandKeys, FrozenClock, scan, services_of
from tests.fakes.apns_server import ApnsFakeServer
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    issue_pass,
    library_id,
    local,
    pass_json_of,
    push_token,
    settle,
)
from walletd.config import Settings
from walletd.jobs import campaign_step
from walletd.loyalty.barcodes import new_auth_token, new_serial
from walletd.loyalty.context import Context
from walletd.models import Card, Coupon, Member, Offer, Program, Promotion, Tier
from walletd.offers.codes import make_coupon_barcode, new_coupon_code
from walletd.offers.wallets import coupon_changed
from walletd.passes.certs import DevCertPaths
from walletd.passes.pkpass import verify_pkpass
from walletd.web import links
from walletd.worker import build_dispatcher

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class CouponPass:
    """A coupon as the test made it, and its pass as Wallet downloaded it."""

    coupon_id: int
    code: str
    barcode: str
    issued: IssuedPass
    package: bytes


def _ctx(app: Flask) -> Context:
    svc = services_of(app)
    return Context(now=svc.clock(), secret_key=svc.settings.secret_key)


def make_coupon(
    app: Flask,
    brand: BrandKeys,
    member_id: int,
    *,
    name: str = "Birthday treat",
    kind: str = "percent_off",
    value: Decimal | None = Decimal("15"),
    item: str | None = None,
    terms: str | None = "One per visit. Not valid with other offers.",
    min_spend_minor: int | None = 2000,
    expires_in: timedelta | None = timedelta(days=30),
) -> tuple[int, int]:
    """An offer, one member's coupon of it and the coupon's pass card; (coupon id, card id)."""
    svc = services_of(app)
    ctx = _ctx(app)
    with svc.db.transaction() as session:
        offer = Offer(
            brand_id=brand.brand_id,
            program_id=brand.program_id,
            name=name,
            kind=kind,
            value=value,
            item=item,
            terms=terms,
            min_spend_minor=min_spend_minor,
        )
        session.add(offer)
        session.flush()
        serial = new_serial()
        barcode = make_coupon_barcode(serial, ctx.secret_key)
        card = Card(
            brand_id=brand.brand_id,
            member_id=member_id,
            kind="coupon",
            serial_number=serial,
            auth_token=new_auth_token(),
            barcode=barcode,
            update_tag=0,
            updated_at=ctx.now.replace(microsecond=0),
            created_at=ctx.now,
        )
        session.add(card)
        session.flush()
        coupon = Coupon(
            brand_id=brand.brand_id,
            offer_id=offer.id,
            member_id=member_id,
            card_id=card.id,
            code=new_coupon_code(),
            barcode=barcode,
            value=value,
            occasion=f"test:{serial}",
            issued_at=ctx.now,
            expires_at=ctx.now + expires_in if expires_in is not None else None,
        )
        session.add(coupon)
        session.flush()
        coupon_changed(session, coupon, ctx)
        return coupon.id, card.id


def download_coupon(
    client: FlaskClient, settings: Settings, app: Flask, card_id: int
) -> CouponPass:
    """Fetch a coupon's pass through its signed link, like the card page's wallet button."""
    with services_of(app).db.transaction() as session:
        card = session.get(Card, card_id)
        assert card is not None
        coupon = session.scalars(select(Coupon).where(Coupon.card_id == card_id)).one()
        serial, member_id, code, barcode, coupon_id = (
            card.serial_number,
            card.member_id,
            coupon.code,
            coupon.barcode,
            coupon.id,
        )
    response = client.get(local(links.apple_pass_url(settings, serial)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/vnd.apple.pkpass"
    document = pass_json_of(response.data)
    issued = IssuedPass(
        member_id=member_id,
        barcode=barcode,
        serial=document["serialNumber"],
        pass_type_id=document["passTypeIdentifier"],
        auth_token=document["authenticationToken"],
        web_service_url=document["webServiceURL"],
        pass_json=document,
    )
    return CouponPass(coupon_id, code, barcode, issued, response.data)


def set_coupon_status(app: Flask, coupon_id: int, status: str) -> None:
    """Change a coupon's state the way redemption, expiry and voiding do, hook included."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None
        coupon.status = status
        if status == "redeemed":
            coupon.redeemed_at = svc.clock()
        coupon_changed(session, coupon, _ctx(app))


def card_row(app: Flask, serial: str) -> tuple[int, str | None]:
    """A card's update tag and message."""
    with services_of(app).db.transaction() as session:
        card = session.scalars(select(Card).where(Card.serial_number == serial)).one()
        return int(card.update_tag), card.message


def fields_of(document: dict[str, Any], style: str) -> dict[str, dict[str, Any]]:
    """Every field of a pass by key."""
    sections = document[style]
    return {field["key"]: field for section in sections.values() for field in section}


def archive_files(package: bytes) -> dict[str, bytes]:
    """The files of a package by name."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- the coupon pass ---------------------------------------------------------------------------


def test_a_coupon_downloads_as_a_signed_coupon_pass_with_the_offer_on_it(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    _, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    document = made.issued.pass_json

    assert verify_pkpass(made.package) == []
    assert "coupon" in document and "storeCard" not in document
    assert document["voided"] is False
    assert document["expirationDate"] == "2026-04-09T12:00:00Z"  # 30 days after the clock
    assert document["barcodes"] == [
        {
            "format": "PKBarcodeFormatQR",
            "message": made.barcode,
            "messageEncoding": "iso-8859-1",
            "altText": made.code,
        }
    ]
    fields = fields_of(document, "coupon")
    assert fields["offer"]["value"] == pytest.approx(0.15)
    assert fields["offer"]["numberStyle"] == "PKNumberStylePercent"
    assert fields["offer_name"]["value"] == "Birthday treat"
    assert fields["expires"]["value"] == "2026-04-09T12:00:00Z"
    assert fields["code"]["value"] == made.code
    assert fields["status"]["value"] == "coupon_active"
    assert fields["terms"]["value"] == "One per visit. Not valid with other offers."
    assert (fields["min_spend"]["value"], fields["min_spend"]["currencyCode"]) == (20.0, "USD")
    # A coupon is its own pass: own serial and token, same web service as the loyalty card.
    assert made.issued.serial != issued.serial
    assert made.issued.auth_token != issued.auth_token
    assert made.issued.web_service_url == issued.web_service_url
    # The program's look: the loyalty card's colours, logo text and images.
    for key in ("backgroundColor", "foregroundColor", "labelColor", "logoText", "organizationName"):
        assert document[key] == issued.pass_json[key]
    loyalty_files = archive_files(client.get(local_pass_url(settings, issued.serial)).data)
    coupon_files = archive_files(made.package)
    for name in ("icon.png", "icon@2x.png", "logo.png", "strip.png"):
        assert coupon_files[name] == loyalty_files[name]


def local_pass_url(settings: Settings, serial: str) -> str:
    """The signed download path of any card."""
    return local(links.apple_pass_url(settings, serial))


@pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")
def test_openssl_verifies_a_coupon_pass_signature_up_to_the_dev_root(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    issued: IssuedPass,
    dev_certs: DevCertPaths,
    tmp_path: Path,
) -> None:
    _, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(io.BytesIO(made.package)) as archive:
        archive.extractall(folder)
    assert OPENSSL is not None
    result = subprocess.run(
        [
            OPENSSL, "cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(folder / "signature"), "-content", str(folder / "manifest.json"),
            "-CAfile", str(dev_certs.ca_path), "-purpose", "any", "-out", str(folder / "out"),
        ],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (folder / "out").read_bytes() == (folder / "manifest.json").read_bytes()


_OFFERS = st.one_of(
    st.tuples(st.just("percent_off"), st.decimals(min_value=1, max_value=100, places=2)),
    st.tuples(st.just("amount_off"), st.decimals(min_value="0.01", max_value=10000, places=2)),
    st.tuples(st.just("bonus_points"), st.integers(min_value=1, max_value=10**6).map(Decimal)),
    st.tuples(st.just("free_item"), st.none()),
)
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
).filter(lambda text: text.strip() != "")


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offer=_OFFERS,
    name=_TEXT,
    terms=st.none() | _TEXT,
    item=_TEXT,
    min_spend=st.none() | st.integers(min_value=1, max_value=10**9),
    expires_in=st.none()
    | st.integers(min_value=1, max_value=3 * 365 * 24).map(lambda hours: timedelta(hours=hours)),
    status=st.sampled_from(["active", "redeemed", "expired", "void"]),
)
def test_every_kind_of_coupon_makes_a_package_ios_accepts(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    issued: IssuedPass,
    offer: tuple[str, Decimal | None],
    name: str,
    terms: str | None,
    item: str,
    min_spend: int | None,
    expires_in: timedelta | None,
    status: str,
) -> None:
    kind, value = offer
    coupon_id, card_id = make_coupon(
        app,
        brand,
        issued.member_id,
        name=name,
        kind=kind,
        value=value,
        item=item if kind == "free_item" else None,
        terms=terms,
        min_spend_minor=min_spend,
        expires_in=expires_in,
    )
    if status != "active":
        set_coupon_status(app, coupon_id, status)
    made = download_coupon(client, settings, app, card_id)
    document = made.issued.pass_json
    assert verify_pkpass(made.package) == []
    assert document["voided"] is (status != "active")
    assert ("expirationDate" in document) is (expires_in is not None)
    fields = fields_of(document, "coupon")
    assert fields["offer_name"]["value"] == name
    if kind == "free_item":
        assert fields["offer"]["value"] == item
    assert ("terms" in fields) is bool(terms)


def test_a_coupon_of_an_unknown_serial_or_bad_signature_is_not_served(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    _, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    signed = local_pass_url(settings, made.issued.serial)
    assert client.get(signed.replace("sig=", "sig=0")).status_code == 404
    other = local_pass_url(
        settings.with_changes(secret_key="another-secret-key-" * 3), made.issued.serial
    )
    assert client.get(other).status_code == 404


# --- the web service and pushes ----------------------------------------------------------------


def test_a_redeemed_coupon_is_pushed_and_updates_to_voided_then_answers_304(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    issued: IssuedPass,
    apns: ApnsFakeServer,
    clock: FrozenClock,
) -> None:
    coupon_id, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    phone = WalletDevice(client, library_id(7), push_token(7))
    assert phone.register(made.issued).status_code == 201
    settle(app)
    listed = phone.updates(made.issued)
    assert listed.status_code == 200
    assert listed.get_json()["serialNumbers"] == [made.issued.serial]
    since = listed.get_json()["lastUpdated"]
    first = phone.latest(made.issued)
    assert first.status_code == 200
    modified = first.headers["Last-Modified"]
    assert phone.latest(made.issued, if_modified_since=modified).status_code == 304

    clock.advance(minutes=5)
    set_coupon_status(app, coupon_id, "redeemed")
    assert build_dispatcher(services_of(app)).drain() >= 1
    assert push_token(7) in {request.path.rsplit("/", 1)[-1] for request in apns.requests}

    settle(app)
    changed = phone.updates(made.issued, since)
    assert changed.status_code == 200
    assert changed.get_json()["serialNumbers"] == [made.issued.serial]
    fresh = phone.latest(made.issued, if_modified_since=modified)
    assert fresh.status_code == 200
    document = pass_json_of(fresh.data)
    assert verify_pkpass(fresh.data) == []
    assert document["voided"] is True
    assert fields_of(document, "coupon")["status"]["value"] == "coupon_redeemed"
    assert fields_of(document, "coupon")["status"]["changeMessage"] == "Coupon: %@"
    for key in ("serialNumber", "passTypeIdentifier", "authenticationToken", "webServiceURL"):
        assert document[key] == made.issued.pass_json[key]
    newer = parse_date(fresh.headers["Last-Modified"])
    older = parse_date(modified)
    assert newer is not None and older is not None and newer > older
    again = phone.latest(made.issued, if_modified_since=fresh.headers["Last-Modified"])
    assert again.status_code == 304


def test_a_coupon_pass_refuses_the_loyalty_cards_token(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    _, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    phone = WalletDevice(client, library_id(8), push_token(8))
    wrong = {"Authorization": f"ApplePass {issued.auth_token}"}
    assert phone.latest(made.issued, headers=wrong).status_code == 401
    assert phone.register(made.issued, headers=wrong).status_code == 401


def test_through_the_api_an_issued_coupon_downloads_and_its_redemption_voids_it(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    issued: IssuedPass,
    apns: ApnsFakeServer,
    clock: FrozenClock,
) -> None:
    offer = client.post(
        "/api/v1/offers",
        json={"name": "Welcome", "kind": "amount_off", "value": "5.00", "valid_days": 14},
        headers=brand.admin,
    )
    assert offer.status_code == 201, offer.get_data(as_text=True)
    offer_id = offer.get_json()["id"]
    given_ = client.post(
        f"/api/v1/offers/{offer_id}/issue",
        json={"member_id": issued.member_id},
        headers=brand.admin,
    )
    assert given_.status_code == 201, given_.get_data(as_text=True)
    listed = client.get(f"/api/v1/members/{issued.member_id}/coupons", headers=brand.admin)
    assert listed.status_code == 200, listed.get_data(as_text=True)
    (coupon,) = listed.get_json()["coupons"]

    response = client.get(local(coupon["apple_pass_url"]))
    assert response.status_code == 200
    assert verify_pkpass(response.data) == []
    document = pass_json_of(response.data)
    assert document["voided"] is False
    assert document["barcodes"][0]["message"] == coupon["barcode"]
    assert document["barcodes"][0]["altText"] == coupon["code"]
    assert document["expirationDate"] == "2026-03-24T12:00:00Z"
    offer_field = fields_of(document, "coupon")["offer"]
    assert (offer_field["value"], offer_field["currencyCode"]) == (5.0, "USD")
    loyalty = pass_json_of(client.get(local_pass_url(app_settings(app), issued.serial)).data)
    assert coupon["code"] in fields_of(loyalty, "storeCard")["active_coupons"]["value"]

    made = IssuedPass(
        member_id=issued.member_id,
        barcode=coupon["barcode"],
        serial=document["serialNumber"],
        pass_type_id=document["passTypeIdentifier"],
        auth_token=document["authenticationToken"],
        web_service_url=document["webServiceURL"],
        pass_json=document,
    )
    phone = WalletDevice(client, library_id(9), push_token(9))
    assert phone.register(made).status_code == 201
    modified = phone.latest(made).headers["Last-Modified"]
    clock.advance(minutes=1)
    redeemed = client.post(
        "/api/v1/coupons/redemptions",
        json={"barcode": coupon["barcode"], "amount": "20.00"},
        headers={**brand.cashier, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert redeemed.status_code == 201, redeemed.get_data(as_text=True)
    assert build_dispatcher(services_of(app)).drain() >= 1
    assert push_token(9) in {request.path.rsplit("/", 1)[-1] for request in apns.requests}
    fresh = phone.latest(made, if_modified_since=modified)
    assert fresh.status_code == 200
    assert pass_json_of(fresh.data)["voided"] is True
    loyalty = pass_json_of(client.get(local_pass_url(app_settings(app), issued.serial)).data)
    assert "active_coupons" not in fields_of(loyalty, "storeCard")


def app_settings(app: Flask) -> Settings:
    """The running app's settings."""
    return services_of(app).settings


# --- kind filters: coupon passes are not loyalty cards -----------------------------------------


_MEMBER_CHANGES = st.lists(
    st.sampled_from(["scan", "adjust", "message", "reverse"]), min_size=1, max_size=4
)


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=_MEMBER_CHANGES, points=st.integers(min_value=1, max_value=500))
def test_no_change_to_the_member_touches_their_coupon_pass(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    issued: IssuedPass,
    changes: list[str],
    points: int,
) -> None:
    _, card_id = make_coupon(app, brand, issued.member_id)
    made = download_coupon(client, settings, app, card_id)
    coupon_before = card_row(app, made.issued.serial)
    loyalty_tag = card_row(app, issued.serial)[0]
    for change in changes:
        if change == "scan" or change == "reverse":
            key = uuid.uuid4().hex
            response = scan(client, brand, issued.barcode, "12.00", key)
            assert response.status_code == 201, response.get_data(as_text=True)
            if change == "reverse":
                scan_id = response.get_json()["scan_id"]
                reversed_ = client.post(
                    f"/api/v1/scans/{scan_id}/reversal",
                    headers={**brand.admin, "Idempotency-Key": uuid.uuid4().hex},
                )
                assert reversed_.status_code == 201, reversed_.get_data(as_text=True)
        elif change == "adjust":
            response = client.post(
                f"/api/v1/members/{issued.member_id}/adjustments",
                json={"points": points, "reason": "goodwill"},
                headers={**brand.admin, "Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.get_data(as_text=True)
        else:
            response = client.post(
                f"/api/v1/members/{issued.member_id}/message",
                json={"message": f"Hello {points}"},
                headers=brand.admin,
            )
            assert response.status_code == 202, response.get_data(as_text=True)
    assert card_row(app, made.issued.serial) == coupon_before
    assert card_row(app, issued.serial)[0] > loyalty_tag


def test_the_member_api_and_card_lookups_name_the_loyalty_card_not_a_newer_coupon(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass
) -> None:
    make_coupon(app, brand, issued.member_id)
    response = client.get(f"/api/v1/members/{issued.member_id}", headers=brand.admin)
    assert response.status_code == 200
    assert response.get_json()["card"]["barcode"] == issued.barcode


def test_a_campaign_messages_loyalty_cards_only_and_coupon_passes_do_not_count_as_installed(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, apns: ApnsFakeServer
) -> None:
    # Ada has her loyalty card in Wallet and a coupon pass on the same phone; Bob only has a
    # coupon pass in Wallet: he must count as "no card installed".
    ada = issue_pass(client, brand, "Ada")
    bob = issue_pass(client, brand, "Bob")
    with services_of(app).db.transaction() as session:
        session.execute(update(Member).values(marketing_consent=True))
    phone = WalletDevice(client, library_id(1), push_token(1))
    other = WalletDevice(client, library_id(2), push_token(2))
    assert phone.register(ada).status_code == 201
    ada_coupon = download_coupon(client, settings, app, make_coupon(app, brand, ada.member_id)[1])
    bob_coupon = download_coupon(client, settings, app, make_coupon(app, brand, bob.member_id)[1])
    assert phone.register(ada_coupon.issued).status_code == 201
    assert other.register(bob_coupon.issued).status_code == 201
    before = {
        serial: card_row(app, serial)[0]
        for serial in (ada_coupon.issued.serial, bob_coupon.issued.serial)
    }

    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Spring",
            "message": "Double points this week!",
            "segment": {"preset": "all"},
        },
        headers=brand.admin,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    campaign_id = created.get_json()["id"]
    held: set[int] = set()
    while campaign_step(services_of(app), "worker-a", held) or held:
        pass
    shown = client.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin).get_json()
    assert (shown["recipients"], shown["skipped"]) == (1, 1)
    assert shown["skipped_by_reason"] == {"no_card_installed": 1}

    assert card_row(app, ada.serial)[1] == "Double points this week!"
    assert card_row(app, bob.serial)[1] is None
    for serial in (ada_coupon.issued.serial, bob_coupon.issued.serial):
        tag, message = card_row(app, serial)
        assert message is None
        assert tag == before[serial]


def test_a_coupon_pass_in_wallet_does_not_put_its_member_in_the_installed_segment(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings
) -> None:
    ada = issue_pass(client, brand, "Ada")
    bob = issue_pass(client, brand, "Bob")
    bob_coupon = download_coupon(client, settings, app, make_coupon(app, brand, bob.member_id)[1])
    assert WalletDevice(client, library_id(1), push_token(1)).register(ada).status_code == 201
    other = WalletDevice(client, library_id(2), push_token(2))
    assert other.register(bob_coupon.issued).status_code == 201
    with services_of(app).db.transaction() as session:
        session.execute(
            update(Card).where(Card.member_id == bob.member_id).values(google_saved_at=None)
        )
        session.execute(
            update(Card)
            .where(Card.serial_number == bob_coupon.issued.serial)
            .values(google_saved_at=services_of(app).clock())
        )
    counts = {}
    for wallet in ("apple", "google", "any", "none"):
        segment = json.dumps({"field": "wallet", "op": "eq", "value": wallet})
        preview = client.get(
            "/api/v1/segments/preview", query_string={"segment": segment}, headers=brand.admin
        )
        assert preview.status_code == 200, preview.get_data(as_text=True)
        counts[wallet] = preview.get_json()["count"]
    assert counts == {"apple": 1, "google": 0, "any": 1, "none": 1}
    summary = client.get(
        "/api/v1/reports/summary",
        query_string={"from": "2026-03-01", "to": "2026-03-31"},
        headers=brand.admin,
    )
    assert summary.status_code == 200, summary.get_data(as_text=True)
    assert summary.get_json()["cards_installed"] == {"apple": 1, "google": 0}


# --- the loyalty card's offers fields ----------------------------------------------------------


def test_the_loyalty_card_shows_stamps_benefits_a_promotion_and_active_coupons(
    app: Flask,
    client: FlaskClient,
    brand: BrandKeys,
    settings: Settings,
    issued: IssuedPass,
    clock: FrozenClock,
) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        session.execute(
            update(Program)
            .where(Program.id == brand.program_id)
            .values(stamps_enabled=True, stamps_per_reward=10)
        )
        member = session.get(Member, issued.member_id)
        assert member is not None and member.tier_id is not None
        member.stamps = 7
        session.execute(
            update(Tier).where(Tier.id == member.tier_id).values(benefits="10% off every drink")
        )
        today = clock.now.date()
        session.add_all(
            [
                Promotion(
                    brand_id=brand.brand_id, program_id=brand.program_id,
                    name="Member day", multiplier=Decimal("2"),
                    weekdays=[today.isoweekday()],
                ),
                # Ended yesterday, for another weekday, or only at one shop: not on the card.
                Promotion(
                    brand_id=brand.brand_id, program_id=brand.program_id, name="Gone",
                    multiplier=Decimal("5"), ends_on=today - timedelta(days=1),
                ),
                Promotion(
                    brand_id=brand.brand_id, program_id=brand.program_id, name="Other day",
                    multiplier=Decimal("4"), weekdays=[today.isoweekday() % 7 + 1],
                ),
                Promotion(
                    brand_id=brand.brand_id, program_id=brand.program_id, name="One shop",
                    multiplier=Decimal("3"), location_ids=[1],
                ),
            ]
        )  # fmt: skip
    make_coupon(app, brand, issued.member_id, name="Free cookie", kind="free_item", value=None)
    used, _ = make_coupon(app, brand, issued.member_id, name="Used one")
    set_coupon_status(app, used, "redeemed")
    make_coupon(app, brand, issued.member_id, name="Expired by time", expires_in=timedelta(0))

    response = client.get(local_pass_url(settings, issued.serial))
    assert response.status_code == 200
    assert verify_pkpass(response.data) == []
    document = pass_json_of(response.data)
    fields = fields_of(document, "storeCard")
    assert fields["stamps"]["value"] == "7/10"
    assert fields["stamps"]["label"] == "stamps_label"
    assert fields["tier_benefits"]["value"] == "10% off every drink"
    assert fields["promotion"]["value"] == "Member day"
    listed = fields["active_coupons"]["value"]
    assert "Free cookie" in listed
    assert "Used one" not in listed and "Expired by time" not in listed
    front = [
        f for s in ("secondaryFields", "auxiliaryFields") for f in document["storeCard"].get(s, [])
    ]
    assert len(front) <= 4


def test_without_stamps_benefits_promotions_or_coupons_the_loyalty_card_is_unchanged(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    fields = fields_of(issued.pass_json, "storeCard")
    assert not {"stamps", "tier_benefits", "promotion", "active_coupons"} & set(fields)


def test_a_coupon_change_moves_the_loyalty_cards_tag_so_its_back_is_refetched(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    before = card_row(app, issued.serial)[0]
    coupon_id, _ = make_coupon(app, brand, issued.member_id, name="Welcome")
    middle = card_row(app, issued.serial)[0]
    assert middle > before
    set_coupon_status(app, coupon_id, "void")
    assert card_row(app, issued.serial)[0] > middle
    document = pass_json_of(client.get(local_pass_url(settings, issued.serial)).data)
    assert "active_coupons" not in fields_of(document, "storeCard")


def test_a_promotion_ending_today_still_shows_and_dates_follow_the_program_zone(
    app: Flask, client: FlaskClient, brand: BrandKeys, settings: Settings, issued: IssuedPass
) -> None:
    # 12:00 UTC on 10 March is 01:00 on 11 March in Auckland (+13:00).
    with services_of(app).db.transaction() as session:
        session.execute(
            update(Program)
            .where(Program.id == brand.program_id)
            .values(timezone="Pacific/Auckland")
        )
        session.add(
            Promotion(
                brand_id=brand.brand_id, program_id=brand.program_id, name="Anniversary",
                multiplier=Decimal("3"), starts_on=date(2026, 3, 11), ends_on=date(2026, 3, 11),
            )
        )  # fmt: skip
    # The promotion is not a card change by itself; a coupon (any change) refreshes the card.
    make_coupon(app, brand, issued.member_id, expires_in=timedelta(hours=1))
    document = pass_json_of(client.get(local_pass_url(settings, issued.serial)).data)
    fields = fields_of(document, "storeCard")
    assert fields["promotion"]["value"] == "Anniversary"
    assert "2026-03-11" in fields["active_coupons"]["value"]
