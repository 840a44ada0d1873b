"""[email-links] Without WALLETD_SMTP_URL the pages say e-mail is off and work as before."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import BrandKeys, enroll, services_of
from tests.integration.pages.conftest import csrf_of, make_staff
from walletd.models import Email
from walletd.models.campaign import StaffPasswordToken


def test_the_forgotten_password_page_says_no_email_is_sent(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    make_staff(app, brand.brand_id, "owner@acme.example")
    login = client.get("/dashboard/login").get_data(as_text=True)
    assert 'href="/dashboard/forgot-password"' in login
    page = client.get("/dashboard/forgot-password")
    assert page.status_code == 200 and "This server sends no e-mail" in page.get_data(True)
    token = csrf_of(client, "/dashboard/forgot-password")
    sent = client.post(
        "/dashboard/forgot-password", data={"csrf_token": token, "email": "owner@acme.example"}
    )
    assert sent.status_code == 200 and "This server sends no e-mail" in sent.get_data(True)
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(StaffPasswordToken)) == 0


def test_recovery_by_email_still_needs_the_birthday_when_email_is_off(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    enroll(client, brand, email="ada@example.com")
    path = f"/join/{brand.program_id}/recover"
    token = csrf_of(client, path)
    response = client.post(path, data={"csrf_token": token, "contact": "ada@example.com"})
    assert response.status_code == 422
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Email)) == 0


def test_an_api_invitation_is_not_emailed_when_email_is_off(
    client: FlaskClient, brand: BrandKeys
) -> None:
    invited = client.post(
        "/api/v1/staff", json={"email": "till@acme.example", "role": "cashier"},
        headers=brand.admin,
    )  # fmt: skip
    assert invited.status_code == 201 and invited.get_json()["emailed"] is False


def test_the_forgotten_password_page_is_translated(client: FlaskClient) -> None:
    page = client.get("/dashboard/forgot-password", headers={"Accept-Language": "zh-TW"})
    html = page.get_data(as_text=True)
    assert "忘記密碼？" in html and "此伺服器不寄送電子郵件" in html
