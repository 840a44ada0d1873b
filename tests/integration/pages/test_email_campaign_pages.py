"""[email-campaigns] The dashboard switches the e-mail fallback of campaigns and automations and
shows a campaign's deliveries per channel."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import BrandKeys
from tests.integration.pages.conftest import csrf_of


def test_a_campaign_created_on_the_dashboard_can_fall_back_to_email(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    token = csrf_of(dashboard, "/dashboard/campaigns")
    created = dashboard.post(
        "/dashboard/campaigns",
        data={"csrf_token": token, "name": "Spring", "message": "Double points!",
              "preset": "all", "email_fallback": "yes", "action": "create"},
    )  # fmt: skip
    assert created.status_code == 303
    campaign_id = int(created.headers["Location"].rsplit("/", 1)[1])
    shown = dashboard.get(f"/api/v1/campaigns/{campaign_id}", headers=brand.admin).get_json()
    assert shown["email_fallback"] is True
    page = dashboard.get(created.headers["Location"]).get_data(as_text=True)
    assert 'id="campaign-channels"' in page and 'id="channel-email"' in page


def test_an_automation_saved_on_the_dashboard_keeps_its_email_fallback(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    token = csrf_of(dashboard, "/dashboard/automations")
    form = {"csrf_token": token, "enabled": "yes", "message": "Happy birthday {name}!"}
    on = dashboard.post("/dashboard/automations/birthday", data={**form, "email_fallback": "yes"})
    assert on.status_code == 303
    listed = dashboard.get(
        f"/api/v1/programs/{brand.program_id}/automations", headers=brand.admin
    ).get_json()["automations"]
    assert {a["kind"]: a["email_fallback"] for a in listed}["birthday"] is True
    html = dashboard.get("/dashboard/automations").get_data(as_text=True)
    assert 'id="f-birthday-email" name="email_fallback" value="yes" checked' in html

    off = dashboard.post("/dashboard/automations/birthday", data=form)
    assert off.status_code == 303
    listed = dashboard.get(
        f"/api/v1/programs/{brand.program_id}/automations", headers=brand.admin
    ).get_json()["automations"]
    assert {a["kind"]: a["email_fallback"] for a in listed}["birthday"] is False
