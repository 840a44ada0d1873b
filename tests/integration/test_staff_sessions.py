"""Staff accounts end to end: invitation link, password, sessions that end at once, the last
admin guard, the dashboard pages for keys, staff and locations, and actors on the member page."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan
from tests.integration.pages.conftest import Staff, csrf_of, log_in, make_staff

OWNER = "owner@acme.example"


def _invite(client: FlaskClient, brand: BrandKeys, email: str, role: str = "cashier") -> dict:  # type: ignore[type-arg]
    response = client.post(
        "/api/v1/staff", json={"email": email, "role": role, "name": "Lin"}, headers=brand.admin
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def _path(url: str) -> str:
    return url.removeprefix("http://walletd.test")


def _set_password(client: FlaskClient, path: str, password: str, confirm: str | None = None) -> int:
    token = csrf_of(client, path)
    response = client.post(
        path,
        data={
            "csrf_token": token,
            "password": password,
            "confirm": password if confirm is None else confirm,
        },
    )
    return response.status_code


def _staff_id(client: FlaskClient, brand: BrandKeys, email: str) -> int:
    rows = client.get("/api/v1/staff", headers=brand.admin).get_json()["staff"]
    return next(r["id"] for r in rows if r["email"] == email)  # type: ignore[no-any-return]


def test_an_invitee_sets_a_password_once_and_is_logged_in(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    api = app.test_client()
    invited = _invite(api, brand, "till@acme.example")
    assert invited["status"] == "invited" and invited["role"] == "cashier"
    path = _path(invited["set_password_url"])
    assert re.fullmatch(r"/dashboard/set-password/[A-Za-z0-9_-]{43}", path)
    browser = app.test_client()
    assert browser.get(path).status_code == 200
    assert _set_password(browser, path, "long enough password", "another password!") == 422
    assert _set_password(browser, path, "short") == 422  # the link still works after these
    # Not yet usable: an invited account cannot log in with any password.
    stranger = app.test_client()
    token = csrf_of(stranger, "/cashier/login")
    refused = stranger.post(
        "/cashier/login",
        data={"csrf_token": token, "email": "till@acme.example", "password": "!unset"},
    )
    assert refused.status_code == 401
    assert _set_password(browser, path, "long enough password") == 303
    assert browser.get("/cashier").status_code == 200  # logged in by the link
    assert browser.get("/dashboard/staff").status_code == 403  # a cashier, not an admin
    # Used once: the same link is refused, on GET and on POST.
    again = app.test_client()
    assert again.get(path).status_code == 404
    assert _set_password(browser, path, "yet another password") == 404
    log_in(
        app.test_client(),
        Staff("till@acme.example", "long enough password", brand.brand_id),
        "cashier",
    )
    rows = api.get("/api/v1/staff", headers=brand.admin).get_json()["staff"]
    assert [r["status"] for r in rows] == ["active"]
    # An expired link is refused too.
    late = _invite(api, brand, "late@acme.example")
    clock.advance(hours=72, seconds=1)
    assert app.test_client().get(_path(late["set_password_url"])).status_code == 404


def test_disabling_or_changing_the_role_ends_sessions_at_once(app: Flask, brand: BrandKeys) -> None:
    api = app.test_client()
    make_staff(app, brand.brand_id, OWNER)  # so that the clerk is not the last admin below
    clerk = make_staff(app, brand.brand_id, "clerk@acme.example", role="cashier")
    session = app.test_client()
    log_in(session, clerk, "cashier")
    assert session.get("/cashier").status_code == 200
    clerk_id = _staff_id(api, brand, clerk.email)
    disabled = api.patch(f"/api/v1/staff/{clerk_id}", json={"disabled": True}, headers=brand.admin)
    assert disabled.status_code == 200 and disabled.get_json()["status"] == "disabled"
    assert session.get("/cashier").status_code == 302  # logged out on the next request
    token = csrf_of(session, "/cashier/login")
    wrong = session.post(
        "/cashier/login",
        data={"csrf_token": token, "email": clerk.email, "password": clerk.password},
    )
    assert wrong.status_code == 401  # the same answer as a wrong password
    api.patch(f"/api/v1/staff/{clerk_id}", json={"disabled": False}, headers=brand.admin)
    log_in(session, clerk, "cashier")
    assert session.get("/cashier").status_code == 200
    promoted = api.patch(f"/api/v1/staff/{clerk_id}", json={"role": "admin"}, headers=brand.admin)
    assert promoted.get_json()["role"] == "admin"
    assert session.get("/cashier").status_code == 302
    # A name change alone keeps the session.
    log_in(session, clerk, "dashboard")
    api.patch(f"/api/v1/staff/{clerk_id}", json={"name": "Clerk Lin"}, headers=brand.admin)
    assert session.get("/dashboard/staff").status_code == 200
    # Removed: logged out too.
    assert api.delete(f"/api/v1/staff/{clerk_id}", headers=brand.admin).status_code == 204
    assert session.get("/dashboard/staff").status_code == 302


def test_the_last_admin_cannot_be_demoted_disabled_or_removed(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    make_staff(app, brand.brand_id, OWNER)
    owner_id = _staff_id(client, brand, OWNER)
    for method, body in (
        ("patch", {"role": "cashier"}),
        ("patch", {"disabled": True}),
        ("delete", None),
    ):
        response = getattr(client, method)(
            f"/api/v1/staff/{owner_id}", json=body, headers=brand.admin
        )
        assert response.status_code == 409, (method, body)
    # An invited admin who has not chosen a password does not count as a second admin.
    _invite(client, brand, "next@acme.example", role="admin")
    assert client.delete(f"/api/v1/staff/{owner_id}", headers=brand.admin).status_code == 409
    make_staff(app, brand.brand_id, "second@acme.example")
    assert (
        client.patch(
            f"/api/v1/staff/{owner_id}", json={"role": "cashier"}, headers=brand.admin
        ).status_code
        == 200
    )
    duplicate = client.post(
        "/api/v1/staff", json={"email": "SECOND@acme.example", "role": "admin"}, headers=brand.admin
    )
    assert duplicate.status_code == 409 and duplicate.get_json()["error"]["field"] == "email"
    bad = client.post(
        "/api/v1/staff", json={"email": "not an address", "role": "admin"}, headers=brand.admin
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "email"
    nul = client.post(
        "/api/v1/staff",
        json={"email": "a\u0000b@acme.example", "role": "admin"},
        headers=brand.admin,
    )
    assert nul.status_code == 422


def test_dashboard_pages_for_keys_staff_and_locations(app: Flask, brand: BrandKeys) -> None:
    owner = make_staff(app, brand.brand_id, OWNER)
    page = app.test_client()
    log_in(page, owner)
    for path in ("/dashboard/keys", "/dashboard/staff", "/dashboard/locations"):
        assert page.get(path).status_code == 200, path
    csrf = csrf_of(page, "/dashboard/keys")
    created = page.post(
        "/dashboard/keys",
        data={"csrf_token": csrf, "name": "Till 9", "role": "cashier", "location_id": ""},
    )
    assert created.status_code == 200
    key = re.search(r'id="new-key-value">(wd_c_[^<]+)<', created.get_data(as_text=True))
    assert key is not None
    assert key.group(1) not in page.get("/dashboard/keys").get_data(as_text=True)  # shown once
    assert (
        app.test_client()
        .get("/api/v1/members/1", headers={"Authorization": f"Bearer {key.group(1)}"})
        .status_code
        == 403
    )  # a live cashier key
    invited = page.post(
        "/dashboard/staff",
        data={"csrf_token": csrf, "email": "new@acme.example", "role": "cashier"},
    )
    assert "/dashboard/set-password/" in invited.get_data(as_text=True)
    located = page.post(
        "/dashboard/locations",
        data={"csrf_token": csrf, "name": "Xinyi", "latitude": "25.03", "longitude": ""},
    )
    assert located.status_code == 422  # both coordinates or neither
    made = page.post("/dashboard/locations", data={"csrf_token": csrf, "name": "Xinyi"})
    assert made.status_code == 303
    # Another brand's ids are 404 on the pages too.
    other = make_brand(app, "Other Tea")
    other_key = (
        app.test_client()
        .post("/api/v1/api-keys", json={"role": "cashier", "name": "x"}, headers=other.admin)
        .get_json()
    )
    assert (
        page.post(
            f"/dashboard/keys/{other_key['id']}/revoke", data={"csrf_token": csrf}
        ).status_code
        == 404
    )
    # Cashier staff and key logins are refused on these pages.
    clerk = make_staff(app, brand.brand_id, "clerk@acme.example", role="cashier")
    cashier = app.test_client()
    log_in(cashier, clerk, "cashier")
    for path in ("/dashboard/keys", "/dashboard/staff", "/dashboard/locations"):
        assert cashier.get(path).status_code == 403, path
    token = csrf_of(cashier, "/dashboard/keys")  # a 403 page still carries the session's token
    assert (
        cashier.post(
            "/dashboard/keys", data={"csrf_token": token, "name": "x", "role": "admin"}
        ).status_code
        == 403
    )


def test_the_member_page_names_who_made_each_entry(app: Flask, brand: BrandKeys) -> None:
    owner = make_staff(app, brand.brand_id, OWNER)
    helper = make_staff(app, brand.brand_id, "helper@acme.example")
    api = app.test_client()
    member = enroll(api, brand)
    assert scan(api, brand, member["card"]["barcode"], "4.00", "k1").status_code == 201
    page = app.test_client()
    log_in(page, helper)
    csrf = csrf_of(page, "/dashboard")
    adjusted = page.post(
        f"/dashboard/members/{member['id']}/adjust",
        data={"csrf_token": csrf, "points": "7", "reason": "goodwill"},
    )
    assert adjusted.status_code == 303
    # The helper leaves; the owner still sees who made the adjustment.
    assert (
        api.delete(
            f"/api/v1/staff/{_staff_id(api, brand, helper.email)}", headers=brand.admin
        ).status_code
        == 204
    )
    log_in(page, owner)
    html = page.get(f"/dashboard/members/{member['id']}").get_data(as_text=True)
    assert "by helper@acme.example" in html
    assert f"by key {brand.creds.cashier_key[:10]}… initial cashier key" in html
    entries = api.get(f"/api/v1/members/{member['id']}/ledger", headers=brand.admin).get_json()
    adjust = next(e for e in entries["entries"] if e["kind"] == "adjust")
    assert adjust["actor"]["type"] == "staff" and adjust["actor"]["label"] == "helper@acme.example"
