"""The dashboard's "Is my card up to date?" page and the member page's devices, en and zh-Hant."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, set_timezone
from tests.integration.apple.conftest import (
    IssuedPass,
    WalletDevice,
    library_id,
    purchase,
    push_token,
    settle,
)
from tests.integration.pages.conftest import log_in, make_staff


def _two_devices(app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass) -> None:
    """One device fetches the change right away; the other never asks for it."""
    fetcher = WalletDevice(client, library_id(0xAAAAAA), push_token(1))
    sleeper = WalletDevice(client, library_id(0xBBBBBB), push_token(2))
    for device in (fetcher, sleeper):
        assert device.register(issued).status_code == 201
    purchase(client, brand, issued)
    settle(app)
    assert fetcher.updates(issued).status_code == 200


def test_the_delivery_page_shows_each_programs_shares_in_both_languages(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass, clock: FrozenClock
) -> None:
    _two_devices(app, client, brand, issued)
    clock.advance(hours=2)
    assert client.get("/dashboard/delivery").status_code == 302
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    page = client.get("/dashboard/delivery", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="delivery-programs"' in html and "Is my card up to date?" in html
    assert "<td>2</td>" in html and "<td>50%</td>" in html
    assert 'aria-current="page">Delivery<' in html
    client.set_cookie("walletd_lang", "zh-Hant")
    assert "我的卡片是最新的嗎？" in client.get("/dashboard/delivery").get_data(as_text=True)
    bad = client.get("/dashboard/delivery?from=2026-03-10&to=2026-03-01")
    assert bad.status_code == 422
    assert client.get("/dashboard/delivery?campaign_id=x").status_code == 422
    assert client.get("/dashboard/delivery?campaign_id=999").status_code == 422


def test_the_member_page_shows_each_devices_version_against_the_current_one(
    app: Flask, client: FlaskClient, brand: BrandKeys, issued: IssuedPass
) -> None:
    _two_devices(app, client, brand, issued)
    set_timezone(app, brand, "Asia/Taipei")
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    page = client.get(f"/dashboard/members/{issued.member_id}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="member-devices"' in html
    devices = html[html.index('id="member-devices"') :]
    devices = devices[: devices.index("</section>")]
    assert " CST" in devices and "UTC" not in devices  # times in the shop's zone
    assert "…aaaaaa" in html and "…bbbbbb" in html
    assert "Up to date" in html and "Never fetched" in html
    client.set_cookie("walletd_lang", "zh-Hant")
    html = client.get(f"/dashboard/members/{issued.member_id}").get_data(as_text=True)
    assert "已是最新" in html and "從未取得" in html
