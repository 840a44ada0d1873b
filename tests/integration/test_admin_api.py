"""Locations, API keys and staff accounts through the API: isolation, roles, guards, audit."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from walletd.models import AuditEntry, Campaign

LOCATION = {
    "name": "Xinyi store",
    "address": "No. 7, Xinyi Rd, Taipei",
    "latitude": "25.0339639",
    "longitude": 121.5644722,
    "timezone": "Asia/Taipei",
}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _audit(app: Flask, brand_id: int) -> list[tuple[str, str, str]]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.brand_id == brand_id).order_by(AuditEntry.id)
        ).all()
        return [(r.action, r.target_type, r.actor_label) for r in rows]


def _location(client: FlaskClient, brand: BrandKeys, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/v1/locations", json={**LOCATION, **fields}, headers=brand.admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def _key(client: FlaskClient, brand: BrandKeys, **fields: Any) -> dict[str, Any]:
    body = {"role": "cashier", "name": "Till 1", **fields}
    response = client.post("/api/v1/api-keys", json=body, headers=brand.admin)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


# --- locations ----------------------------------------------------------------------------------


def test_locations_are_created_listed_changed_and_deleted_with_audit(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    created = _location(client, brand)
    assert created["latitude"] == "25.033964" and created["longitude"] == "121.564472"
    assert created["timezone"] == "Asia/Taipei"
    listed = client.get("/api/v1/locations", headers=brand.admin).get_json()["locations"]
    assert [loc["name"] for loc in listed] == ["Main store", "Xinyi store"]
    changed = client.patch(
        f"/api/v1/locations/{created['id']}",
        headers=brand.admin,
        json={"latitude": None, "longitude": None, "timezone": None},
    )
    assert changed.status_code == 200
    assert changed.get_json()["latitude"] is None and changed.get_json()["timezone"] is None
    assert (
        client.delete(f"/api/v1/locations/{created['id']}", headers=brand.admin).status_code == 204
    )
    assert (
        client.patch(
            f"/api/v1/locations/{created['id']}", json={"name": "x"}, headers=brand.admin
        ).status_code
        == 404
    )
    actions = [a for a, t, _label in _audit(app, brand.brand_id) if t == "location"]
    assert actions == ["location.created", "location.updated", "location.deleted"]
    assert all(label.startswith("wd_a_") for _a, _t, label in _audit(app, brand.brand_id))


BAD_LOCATIONS = [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "A", "address": "x" * 501}, "address"),
    ({"name": "A", "latitude": "91", "longitude": "0"}, "latitude"),
    ({"name": "A", "latitude": "0", "longitude": -180.5}, "longitude"),
    ({"name": "A", "latitude": "10"}, "longitude"),
    ({"name": "A", "latitude": "NaN", "longitude": "1"}, "latitude"),
    ({"name": "A", "latitude": True, "longitude": "1"}, "latitude"),
    ({"name": "A", "timezone": "Mars/Olympus"}, "timezone"),
]


def test_bad_locations_are_422_with_the_field_and_change_nothing(
    client: FlaskClient, brand: BrandKeys
) -> None:
    for body, field in BAD_LOCATIONS:
        response = client.post("/api/v1/locations", json=body, headers=brand.admin)
        assert response.status_code == 422, (body, response.get_json())
        assert field in str(response.get_json()["error"]), body
    main = client.get("/api/v1/locations", headers=brand.admin).get_json()["locations"]
    assert len(main) == 1
    half = client.patch(
        f"/api/v1/locations/{main[0]['id']}", json={"latitude": "1"}, headers=brand.admin
    )
    assert half.status_code == 422 and half.get_json()["error"]["field"] == "longitude"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    latitude=st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.integers(),
        st.floats(),
    )
)
def test_any_latitude_is_stored_in_range_or_refused_with_the_field(
    client: FlaskClient, brand: BrandKeys, latitude: Any
) -> None:
    value = str(latitude) if not isinstance(latitude, str | int) else latitude
    body = {"name": "Generated", "latitude": value, "longitude": "0"}
    response = client.post("/api/v1/locations", json=body, headers=brand.admin)
    assert response.status_code in (201, 422), response.get_data(as_text=True)
    if response.status_code == 201:
        assert -90 <= float(response.get_json()["latitude"]) <= 90
    else:
        assert "latitude" in str(response.get_json()["error"])


def test_a_location_with_a_live_key_bound_cannot_be_deleted(
    client: FlaskClient, brand: BrandKeys
) -> None:
    location = _location(client, brand)
    key = _key(client, brand, location_id=location["id"])
    refused = client.delete(f"/api/v1/locations/{location['id']}", headers=brand.admin)
    assert refused.status_code == 409
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=brand.admin).status_code == 204
    assert (
        client.delete(f"/api/v1/locations/{location['id']}", headers=brand.admin).status_code == 204
    )


# --- isolation and roles ------------------------------------------------------------------------


def test_another_brands_locations_keys_and_staff_are_404(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Tea")
    location = _location(client, other)
    key = _key(client, other)
    staff = client.post(
        "/api/v1/staff", json={"email": "x@other.example", "role": "admin"}, headers=other.admin
    ).get_json()
    h = brand.admin
    assert (
        client.patch(
            f"/api/v1/locations/{location['id']}", json={"name": "x"}, headers=h
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/locations/{location['id']}", headers=h).status_code == 404
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=h).status_code == 404
    assert (
        client.patch(f"/api/v1/staff/{staff['id']}", json={"name": "x"}, headers=h).status_code
        == 404
    )
    assert client.delete(f"/api/v1/staff/{staff['id']}", headers=h).status_code == 404
    # Another brand's location named in a key, a scan or a report is not one of ours.
    bad_key = client.post(
        "/api/v1/api-keys",
        headers=h,
        json={"role": "cashier", "name": "t", "location_id": location["id"]},
    )
    assert bad_key.status_code == 422 and bad_key.get_json()["error"]["field"] == "location_id"
    report = client.get(
        f"/api/v1/reports/summary?from=2026-03-01&to=2026-03-10&location_id={location['id']}",
        headers=h,
    )
    assert report.status_code == 422
    lists = [
        client.get(p, headers=h).get_json()
        for p in ("/api/v1/locations", "/api/v1/api-keys", "/api/v1/staff")
    ]
    assert [loc["name"] for loc in lists[0]["locations"]] == ["Main store"]
    assert all(k["name"] != "Till 1" for k in lists[1]["api_keys"])
    assert lists[2]["staff"] == []


ROUTES = [
    ("post", "/api/v1/locations"),
    ("get", "/api/v1/locations"),
    ("patch", "/api/v1/locations/1"),
    ("delete", "/api/v1/locations/1"),
    ("post", "/api/v1/api-keys"),
    ("get", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/1"),
    ("post", "/api/v1/staff"),
    ("get", "/api/v1/staff"),
    ("patch", "/api/v1/staff/1"),
    ("delete", "/api/v1/staff/1"),
]


def test_cashier_keys_are_403_and_no_key_401_on_every_route(
    client: FlaskClient, brand: BrandKeys
) -> None:
    for method, path in ROUTES:
        as_cashier = getattr(client, method)(path, json={}, headers=brand.cashier)
        assert as_cashier.status_code == 403, (method, path)
        anonymous = getattr(client, method)(path, json={})
        assert anonymous.status_code == 401, (method, path)


# --- API keys -----------------------------------------------------------------------------------


def test_a_key_is_shown_once_works_records_its_last_use_and_stops_on_revocation(
    client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    created = _key(client, brand, role="admin", name="Back office")
    assert created["key"].startswith("wd_a_") and created["prefix"] == created["key"][:10]
    assert created["last_used_at"] is None
    listed = client.get("/api/v1/api-keys", headers=brand.admin).get_json()["api_keys"]
    assert all("key" not in k for k in listed)
    assert created["key"] not in str(listed)
    new = _bearer(created["key"])
    assert client.get("/api/v1/locations", headers=new).status_code == 200
    first_use = clock()
    clock.advance(seconds=30)
    client.get("/api/v1/locations", headers=new)  # within the minute: not written again

    def last_used() -> str | None:
        keys = client.get("/api/v1/api-keys", headers=brand.admin).get_json()["api_keys"]
        return next(k["last_used_at"] for k in keys if k["id"] == created["id"])  # type: ignore[no-any-return]

    assert last_used() == first_use.isoformat()
    clock.advance(seconds=31)
    client.get("/api/v1/locations", headers=new)
    assert last_used() == clock().isoformat()
    assert (
        client.delete(f"/api/v1/api-keys/{created['id']}", headers=brand.admin).status_code == 204
    )
    assert client.get("/api/v1/locations", headers=new).status_code == 401
    assert (
        client.delete(f"/api/v1/api-keys/{created['id']}", headers=brand.admin).status_code == 204
    )


def test_the_last_live_admin_key_cannot_be_revoked_but_a_key_may_revoke_itself(
    client: FlaskClient, brand: BrandKeys
) -> None:
    keys = client.get("/api/v1/api-keys", headers=brand.admin).get_json()["api_keys"]
    initial = next(k for k in keys if k["role"] == "admin")
    refused = client.delete(f"/api/v1/api-keys/{initial['id']}", headers=brand.admin)
    assert refused.status_code == 409
    second = _key(client, brand, role="admin", name="Second admin")
    # The initial key revokes itself: allowed, since another admin key is live.
    assert (
        client.delete(f"/api/v1/api-keys/{initial['id']}", headers=brand.admin).status_code == 204
    )
    assert client.get("/api/v1/api-keys", headers=brand.admin).status_code == 401
    last = client.delete(f"/api/v1/api-keys/{second['id']}", headers=_bearer(second["key"]))
    assert last.status_code == 409


def test_bad_keys_are_422_with_the_field(client: FlaskClient, brand: BrandKeys) -> None:
    for body, field in [
        ({"role": "owner", "name": "x"}, "role"),
        ({"role": "cashier", "name": ""}, "name"),
        ({"role": "cashier", "name": "x" * 201}, "name"),
        ({"role": "cashier", "name": "x", "location_id": 2**31}, "location_id"),
        ({"role": "cashier", "name": "x", "location_id": 999}, "location_id"),
    ]:
        response = client.post("/api/v1/api-keys", json=body, headers=brand.admin)
        assert response.status_code == 422, body
        assert field in str(response.get_json()["error"]), body


# --- scans at a location, reports by location ---------------------------------------------------


def test_scans_happen_at_the_named_or_the_keys_location_and_reports_filter_by_it(
    client: FlaskClient, brand: BrandKeys
) -> None:
    xinyi = _location(client, brand)
    till = _key(client, brand, location_id=xinyi["id"])
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    main_id = client.get("/api/v1/locations", headers=brand.admin).get_json()["locations"][0]["id"]
    assert scan(client, brand, barcode, "10.00", "s1", location_id=main_id).status_code == 201
    at_till = client.post(
        "/api/v1/scans",
        json={"barcode": barcode, "amount": "30.00"},
        headers={**_bearer(till["key"]), "Idempotency-Key": "s2"},
    )
    assert at_till.status_code == 201
    assert scan(client, brand, barcode, "5.00", "s3").status_code == 201  # nowhere in particular
    wrong = scan(client, brand, barcode, "5.00", "s4", location_id=987654)
    assert wrong.status_code == 422 and wrong.get_json()["error"]["field"] == "location_id"
    entries = client.get(f"/api/v1/members/{member['id']}/ledger", headers=brand.admin).get_json()[
        "entries"
    ]
    earns = {e["amount"]: e["location_id"] for e in entries if e["kind"] == "earn"}
    assert earns == {"10.00": main_id, "30.00": xinyi["id"], "5.00": None}
    period = "/api/v1/reports/summary?from=2026-03-01&to=2026-03-31"
    everywhere = client.get(period, headers=brand.admin).get_json()
    at_xinyi = client.get(f"{period}&location_id={xinyi['id']}", headers=brand.admin).get_json()
    at_main = client.get(f"{period}&location_id={main_id}", headers=brand.admin).get_json()
    assert (everywhere["transactions"], everywhere["revenue"]) == (3, "45.00")
    assert (at_xinyi["transactions"], at_xinyi["revenue"]) == (1, "30.00")
    assert at_xinyi["aov_returning"] == "30.00" and at_xinyi["aov_new"] is None
    assert (at_main["transactions"], at_main["aov_new"]) == (1, "10.00")
    assert client.get(f"{period}&location_id=abc", headers=brand.admin).status_code == 422


# --- actors -------------------------------------------------------------------------------------


def test_ledger_entries_and_campaigns_name_their_actor(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    till = _key(client, brand, name="Till 1")
    client.post(
        "/api/v1/scans",
        json={"barcode": member["card"]["barcode"], "amount": "3"},
        headers={**_bearer(till["key"]), "Idempotency-Key": "a1"},
    )
    client.post(
        f"/api/v1/members/{member['id']}/adjustments",
        headers=brand.admin,
        json={"points": 5, "reason": "goodwill"},
    )
    entries = client.get(f"/api/v1/members/{member['id']}/ledger", headers=brand.admin).get_json()[
        "entries"
    ]
    actors = {e["kind"]: e["actor"] for e in entries}
    assert actors["earn"] == {"type": "key", "id": till["id"], "label": f"{till['prefix']}… Till 1"}
    assert actors["adjust"]["type"] == "key"
    assert actors["adjust"]["label"].endswith("initial admin key")
    assert actors["bonus"] is None  # the welcome bonus: walletd itself
    campaign = client.post(
        "/api/v1/campaigns",
        headers=brand.admin,
        json={"name": "Hello", "message": "Hi", "segment": {"preset": "all"}, "draft": True},
    ).get_json()
    assert campaign["created_by"]["type"] == "key"
    assert campaign["created_by"]["label"].endswith("initial admin key")
    with services_of(app).db.transaction() as session:
        row = session.get_one(Campaign, campaign["id"])
        assert row.created_by_api_key_id is not None and row.created_by_staff_id is None
