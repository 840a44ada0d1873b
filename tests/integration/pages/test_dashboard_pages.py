"""The dashboard through the test client: overview, members, program editor, campaigns, CSV."""

from __future__ import annotations

import csv
import io

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, enroll, scan, services_of, set_timezone
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.models import Card, Program, Tier


def _program_form(client: FlaskClient, **changes: str) -> dict[str, str]:
    html = client.get("/dashboard/program").get_data(as_text=True)
    import re

    form: dict[str, str] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html):
        form[name] = value
    for name in re.findall(r'<input[^>]*type="checkbox"[^>]*name="([^"]+)"[^>]*checked', html):
        form[name] = "yes"
    for name, value in (("rounding", "floor"), ("tier_basis", "spend"), ("template", "default")):
        form[name] = value
    for key in [k for k in form if k.endswith("-delete")]:
        del form[key]
    form.update(changes)
    return form


def test_the_overview_counts_members_active_and_repeat_customers(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    first = enroll(dashboard, brand, name="One")
    enroll(dashboard, brand, name="Two")
    for key in ("a", "b"):
        assert scan(dashboard, brand, first["card"]["barcode"], "5", key).status_code == 201
    html = dashboard.get("/dashboard").get_data(as_text=True)
    assert '<span class="stat-value" id="stat-members">2</span>' in html
    assert '<span class="stat-value" id="stat-active">1</span>' in html
    assert '<span class="stat-value" id="stat-repeat">100%</span>' in html
    assert html.count("<rect ") >= 60  # two charts of 30 days


def test_members_are_searched_and_points_adjusted_with_a_reason(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    ada = enroll(dashboard, brand, name="Ada Lovelace", email="ada@example.com")
    enroll(dashboard, brand, name="Alan Turing")
    html = dashboard.get("/dashboard/members?q=ADA@").get_data(as_text=True)
    assert "Ada Lovelace" in html and "Alan Turing" not in html
    token = csrf_of(dashboard, f"/dashboard/members/{ada['id']}")
    refused = dashboard.post(
        f"/dashboard/members/{ada['id']}/adjust",
        data={"csrf_token": token, "points": "10", "reason": ""},
    )
    assert refused.status_code == 422
    assert 'id="f-reason-error"' in refused.get_data(as_text=True)
    done = dashboard.post(
        f"/dashboard/members/{ada['id']}/adjust",
        data={"csrf_token": token, "points": "-20", "reason": "wrong scan"},
    )
    assert done.status_code == 303
    page = dashboard.get(f"/dashboard/members/{ada['id']}").get_data(as_text=True)
    assert '<dd id="member-points">30</dd>' in page and "wrong scan" in page


def test_the_program_editor_saves_and_refreshes_every_card(
    app: Flask, dashboard: FlaskClient, brand: BrandKeys
) -> None:
    enroll(dashboard, brand)
    enroll(dashboard, brand, name="Second")
    svc = services_of(app)
    with svc.db.transaction() as session:
        tags_before = sorted(c.update_tag for c in session.scalars(select(Card)))
    form = _program_form(
        dashboard,
        name="Acme Club",
        points_per_unit="1.5",
        background_color="#112233",
        **{"tier-1-name": "Gold+", "tier-3-name": "Diamond", "tier-3-threshold": "5000",
           "tier-3-multiplier": "2", "reward-0-active": ""},
    )  # fmt: skip
    form["csrf_token"] = csrf_of(dashboard, "/dashboard/program")
    response = dashboard.post("/dashboard/program", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert "2 cards will refresh" in dashboard.get("/dashboard/program").get_data(as_text=True)
    with svc.db.transaction() as session:
        program = session.get_one(Program, brand.program_id)
        assert (program.name, program.background_color) == ("Acme Club", "#112233")
        tiers = session.scalars(select(Tier).where(Tier.program_id == program.id)).all()
        assert sorted(t.name for t in tiers) == ["Diamond", "Gold+", "Silver", "VIP"]
        tags_after = sorted(c.update_tag for c in session.scalars(select(Card)))
        assert all(a > b for a, b in zip(tags_after, tags_before, strict=True))


def test_program_errors_are_shown_next_to_the_field(dashboard: FlaskClient) -> None:
    form = _program_form(dashboard, **{"points_per_unit": "lots", "tier-0-name": "Silver"})
    form["csrf_token"] = csrf_of(dashboard, "/dashboard/program")
    response = dashboard.post("/dashboard/program", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="f-points_per_unit-error"' in html and 'value="lots"' in html
    form = _program_form(dashboard, **{"tier-1-name": "silver"})
    form["csrf_token"] = csrf_of(dashboard, "/dashboard/program")
    html = dashboard.post("/dashboard/program", data=form).get_data(as_text=True)
    assert "two tiers have the same name" in html


def test_campaign_audience_preview_creation_and_cancel(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    enroll(dashboard, brand, marketing_consent=True)
    enroll(dashboard, brand, name="No consent")
    token = csrf_of(dashboard, "/dashboard/campaigns")
    base = {"csrf_token": token, "name": "Spring", "message": "Double points!"}
    preview = dashboard.post(
        "/dashboard/campaigns", data={**base, "preset": "subscribed_only", "action": "preview"}
    )
    assert preview.status_code == 200
    assert "members are in this audience now" in preview.get_data(as_text=True)
    bad = dashboard.post(
        "/dashboard/campaigns", data={**base, "segment_json": "{oops", "action": "preview"}
    )
    assert bad.status_code == 422 and 'id="f-segment-error"' in bad.get_data(as_text=True)
    created = dashboard.post(
        "/dashboard/campaigns",
        data={**base, "preset": "all", "send_at": "2026-03-20T09:30", "action": "create"},
    )
    assert created.status_code == 303
    page = dashboard.get(created.headers["Location"]).get_data(as_text=True)
    assert "Scheduled" in page and "2026-03-20T09:30:00+00:00" in page
    cancel = dashboard.post(created.headers["Location"] + "/cancel", data={"csrf_token": token})
    assert cancel.status_code == 303
    assert "Cancelled" in dashboard.get(created.headers["Location"]).get_data(as_text=True)


def test_automations_are_switched_on_and_refused_texts_shown(dashboard: FlaskClient) -> None:
    token = csrf_of(dashboard, "/dashboard/automations")
    on = dashboard.post(
        "/dashboard/automations/birthday",
        data={"csrf_token": token, "enabled": "yes", "message": "Happy birthday {name}!",
              "delay_days": "0"},
    )  # fmt: skip
    assert on.status_code == 303
    html = dashboard.get("/dashboard/automations").get_data(as_text=True)
    assert "Happy birthday {name}!" in html
    refused = dashboard.post(
        "/dashboard/automations/win_back",
        data={"csrf_token": token, "message": "x", "delay_days": "9999"},
    )
    assert refused.status_code == 422 and 'id="f-win_back-delay-error"' in refused.get_data(
        as_text=True
    )
    assert (
        dashboard.post("/dashboard/automations/nonsense", data={"csrf_token": token}).status_code
        == 404
    )


def test_members_and_ledger_export_as_csv_without_formulas(
    dashboard: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(dashboard, brand, name='=HYPERLINK("http://evil")', email="a@b.io")
    scan(dashboard, brand, member["card"]["barcode"], "12.50", "k1")
    members = dashboard.get("/dashboard/export/members.csv")
    assert members.mimetype == "text/csv"
    assert "attachment" in members.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(members.get_data(as_text=True))))
    assert rows[0]["name"].startswith("'=HYPERLINK")
    assert (rows[0]["points"], rows[0]["lifetime_spend"]) == ("62", "12.50")
    ledger = list(csv.DictReader(io.StringIO(dashboard.get("/dashboard/export/ledger.csv")
                                             .get_data(as_text=True))))  # fmt: skip
    assert [(r["kind"], r["points"]) for r in ledger] == [("bonus", "50"), ("earn", "12")]


def test_the_poster_carries_the_enrollment_link(dashboard: FlaskClient, brand: BrandKeys) -> None:
    html = dashboard.get("/dashboard/poster").get_data(as_text=True)
    assert f"http://walletd.test/join/{brand.program_id}" in html
    assert 'src="data:image/png;base64,' in html


def test_anonymous_visitors_are_sent_to_the_login(client: FlaskClient) -> None:
    for path in ("/dashboard", "/dashboard/program", "/dashboard/export/ledger.csv"):
        response = client.get(path)
        assert response.status_code == 302 and "/dashboard/login" in response.headers["Location"]


def test_keys_and_staff_pages_say_when_in_the_programs_time_zone(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    set_timezone(app, brand, "Asia/Taipei")
    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], "5", "k1").status_code == 201
    dashboard = app.test_client()
    log_in(dashboard, make_staff(app, brand.brand_id, "owner@example.com", "admin"))
    # The clock reads 12:00 UTC: 8:00 PM in Taipei, where the shop reads its keys' last use.
    for path in ("/dashboard/keys", "/dashboard/staff"):
        html = dashboard.get(path).get_data(as_text=True)
        assert "Mar 10, 2026 8:00\u202fPM CST" in html or "Mar 10, 2026 8:00 PM CST" in html, path
        assert "12:00" not in html, path
