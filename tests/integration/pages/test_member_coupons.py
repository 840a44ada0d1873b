"""The member page's coupons panel: every state, as the till sees it, and voiding one with a
reason; the void route refuses without CSRF, without a reason, and for another member or brand."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, issue_coupon, make_brand, services_of
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.models import AuditEntry, Coupon


def _void(dashboard: FlaskClient, member_id: int, coupon_id: int, **form: str) -> Any:
    path = f"/dashboard/members/{member_id}/coupons/{coupon_id}/void"
    token = csrf_of(dashboard, f"/dashboard/members/{member_id}")
    return dashboard.post(path, data={"csrf_token": token, **form})


def _status(app: Flask, coupon_id: int) -> str:
    with services_of(app).db.sessions() as session:
        return session.scalars(select(Coupon.status).where(Coupon.id == coupon_id)).one()


def test_the_panel_lists_each_state_and_an_admin_voids_an_active_coupon(
    app: Flask, client: FlaskClient, brand: BrandKeys, dashboard: FlaskClient, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    empty = dashboard.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert 'id="no-member-coupons"' in empty
    late = issue_coupon(client, brand, member["id"], name="Soon gone", valid_days=1)
    clock.advance(days=2)
    keep = issue_coupon(client, brand, member["id"], name="Birthday treat")
    html = dashboard.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert "Soon gone" in html and "Birthday treat" in html
    assert f'data-coupon="{late["id"]}"' in html and late["code"] in html
    # The expired one (before the nightly job) has no void form; the active one has.
    assert f"/coupons/{late['id']}/void" not in html
    assert f"/coupons/{keep['id']}/void" in html

    done = _void(dashboard, member["id"], keep["id"], reason="given twice by mistake")
    assert done.status_code == 303 and done.headers["Location"].endswith("#coupons")
    assert _status(app, keep["id"]) == "void"
    html = dashboard.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert "Coupon voided" in html and f"/coupons/{keep['id']}/void" not in html
    with services_of(app).db.sessions() as session:
        voided = select(AuditEntry).where(AuditEntry.action == "coupon.voided")
        entry = session.scalars(voided).one()
        assert entry.actor_staff_id is not None and entry.target_id == keep["id"]
        assert entry.changes is not None
        assert entry.changes["reason"] == [None, "given twice by mistake"]

    again = _void(dashboard, member["id"], keep["id"], reason="again")
    assert again.status_code == 303
    shown = dashboard.get(again.headers["Location"]).get_data(as_text=True)
    assert "this coupon was voided" in shown


def test_voiding_needs_a_reason_csrf_and_the_members_own_coupon_of_the_brand(
    app: Flask, client: FlaskClient, brand: BrandKeys, dashboard: FlaskClient
) -> None:
    member = enroll(client, brand)
    other_member = enroll(client, brand, name="Grace Hopper")
    coupon = issue_coupon(client, brand, member["id"])
    for reason in ("", "   ", "x" * 201, "tab\tin it"):
        refused = _void(dashboard, member["id"], coupon["id"], reason=reason)
        assert refused.status_code == 303
    shown = dashboard.get(refused.headers["Location"]).get_data(as_text=True)
    assert "reason must be 1 to 200 printable characters" in shown
    assert _void(dashboard, member["id"], coupon["id"], reason="nul\x00").status_code == 400
    no_csrf = dashboard.post(
        f"/dashboard/members/{member['id']}/coupons/{coupon['id']}/void", data={"reason": "r"}
    )
    assert no_csrf.status_code in (400, 403)
    # Another member's URL, another brand's admin, forged ids: not found, nothing changes.
    assert _void(dashboard, other_member["id"], coupon["id"], reason="r").status_code == 404
    for forged in (0, 2**31, 10**30):
        assert _void(dashboard, member["id"], forged, reason="r").status_code == 404
    other = make_brand(app, "Other Cafe")
    theirs = app.test_client()
    log_in(theirs, make_staff(app, other.brand_id, "boss@other.example", "admin"))
    assert _void(theirs, member["id"], coupon["id"], reason="mine").status_code == 404
    cashier = app.test_client()
    log_in(cashier, make_staff(app, brand.brand_id, "till@example.com", "cashier"), "cashier")
    refused = cashier.post(
        f"/dashboard/members/{member['id']}/coupons/{coupon['id']}/void",
        data={"csrf_token": csrf_of(cashier, "/cashier"), "reason": "r"},
    )
    assert refused.status_code in (302, 303, 403)
    assert _status(app, coupon["id"]) == "active"
