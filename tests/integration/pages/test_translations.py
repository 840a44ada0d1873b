"""Pages in Traditional Chinese: texts from the catalogs, locale formats, translated errors."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, enroll, scan, set_timezone
from tests.integration.pages.conftest import csrf_of
from tests.integration.pages.test_dashboard_pages import _program_form


def test_a_chinese_page_has_chinese_texts_and_chinese_number_money_and_date_formats(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(dashboard, brand, name="林小姐")
    assert scan(dashboard, brand, member["card"]["barcode"], "1234.50", "k1").status_code == 201
    dashboard.set_cookie("walletd_lang", "zh-Hant")
    html = dashboard.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert 'lang="zh-Hant-TW"' in html and "消費" in html  # the ledger kind "earn"
    assert "2026年3月10日" in html  # the FrozenClock's day, written the Taiwanese way
    assert "US$1,234.50" in html  # CLDR zh_Hant_TW names the US dollar US$
    assert "+1,234" in html  # points earned, signed and grouped
    english = dashboard.get(f"/dashboard/members/{member['id']}", headers={"Cookie": ""})
    assert english.status_code == 200


def test_an_error_with_params_is_shown_translated_on_a_chinese_page(
    dashboard: FlaskClient,
) -> None:
    dashboard.set_cookie("walletd_lang", "zh-Hant")
    form = _program_form(dashboard, weekly_message_cap="99")
    form["csrf_token"] = csrf_of(dashboard, "/dashboard/program")
    response = dashboard.post("/dashboard/program", data=form)
    assert response.status_code == 422
    assert "每週訊息上限必須是 0 到 50 的整數" in response.get_data(as_text=True)
    dashboard.set_cookie("walletd_lang", "en")
    form["csrf_token"] = csrf_of(dashboard, "/dashboard/program")
    english = dashboard.post("/dashboard/program", data=form).get_data(as_text=True)
    assert "weekly_message_cap must be a whole number from 0 to 50" in english


def test_a_count_on_a_page_takes_the_plural_form_of_the_language(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    enroll(dashboard, brand, marketing_consent=True)
    token = csrf_of(dashboard, "/dashboard/campaigns")
    form = {"csrf_token": token, "name": "Spring", "message": "Hi", "action": "preview",
            "preset": "subscribed_only"}  # fmt: skip
    html = dashboard.post("/dashboard/campaigns", data=form).get_data(as_text=True)
    assert "1 member is in this audience now." in html
    enroll(dashboard, brand, name="Second", marketing_consent=True)
    html = dashboard.post("/dashboard/campaigns", data=form).get_data(as_text=True)
    assert "2 members are in this audience now." in html
    dashboard.set_cookie("walletd_lang", "zh-Hant")
    html = dashboard.post("/dashboard/campaigns", data=form).get_data(as_text=True)
    assert "目前此對象共有 2 位會員。" in html


def test_the_ledger_times_are_in_the_programs_time_zone(
    app: Flask, dashboard: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(dashboard, brand)
    assert scan(dashboard, brand, member["card"]["barcode"], "5", "k1").status_code == 201
    set_timezone(app, brand, "Asia/Taipei")
    html = dashboard.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert "Mar 10, 2026 8:00\u202fPM CST" in html  # the FrozenClock's noon UTC, in Taipei
