"""Bringing members in: CSV and JSON files, dry runs, idempotent re-runs, jobs that resume."""

from __future__ import annotations

import io
import json
import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, services_of
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd.audit import Actor
from walletd.imports import service
from walletd.imports.rows import FIELDS, FileError, RowError, Seen, parse_row, read_file
from walletd.jobs import member_import_step
from walletd.loyalty import ledger
from walletd.models import AuditEntry, Card, LedgerEntry, Member, MemberImport, MemberImportChunk

URL = "/api/v1/members/imports"
CSV = (
    "external_id,name,email,phone,birthday,marketing_consent,points,tier\n"
    "A-1,Ada Lovelace,ADA@example.com,0912 345 678,1990-05-17,yes,120,Gold\n"
    "A-2,Grace Hopper,grace@example.com,,1985-12-09,no,0,\n"
    "A-3,Alan Turing,,+886 912 000 111,,1,3000,vip\n"
)


def post_file(
    client: FlaskClient, brand: BrandKeys, body: bytes | str, media: str = "text/csv", **query: Any
) -> Any:
    """POST a file to the import route with query options."""
    data = body.encode() if isinstance(body, str) else body
    params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items()}
    return client.post(
        URL, data=data, query_string=params, headers={**brand.admin, "Content-Type": media}
    )


def members_of(app: Flask, brand: BrandKeys) -> list[Member]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(
            select(Member).where(Member.brand_id == brand.brand_id).order_by(Member.id)
        ).all()
        session.expunge_all()
        return list(rows)


def by_external_id(app: Flask, brand: BrandKeys) -> dict[str | None, Member]:
    return {m.external_id: m for m in members_of(app, brand)}


def openings(app: Flask, member_id: int) -> list[LedgerEntry]:
    with services_of(app).db.transaction() as session:
        rows = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.member_id == member_id, LedgerEntry.kind == "opening"
            )
        ).all()
        session.expunge_all()
        return list(rows)


def test_a_dry_run_reports_counts_and_row_errors_and_creates_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    body = (
        CSV
        + "A-4,Bad Mail,not-an-address,,,,,\n"  # row 5
        + "A-5,Bad Day,,,1990-02-30,,,\n"  # row 6
        + "A-6,Negative,,,,,-5,\n"  # row 7
        + "A-7,No Tier,,,,,,Platinum\n"  # row 8
        + "A-1,Twice,twice@example.com,,,,,\n"  # row 9: A-1 is on row 2
        + "A-8,,eight@example.com,,,,,\n"  # row 10: new members need a name
    )
    response = post_file(client, brand, body, dry_run=True)
    assert response.status_code == 200, response.get_json()
    out = response.get_json()
    assert out["status"] == "dry_run" and out["id"] is None
    assert (out["total"], out["would_create"], out["would_update"]) == (9, 3, 0)
    assert (out["unchanged"], out["skipped"], out["errors"]) == (0, 6, 6)
    assert [(e["row"], e["field"]) for e in out["row_errors"]] == [
        (5, "email"), (6, "birthday"), (7, "points"), (8, "tier"), (9, "external_id"),
        (10, "name"),
    ]  # fmt: skip
    assert "earlier row" in out["row_errors"][4]["message"]
    assert members_of(app, brand) == []
    with services_of(app).db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(MemberImport)) == 0


def test_a_csv_import_creates_members_cards_and_opening_balances_once(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    response = post_file(client, brand, CSV)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    # Three rows: a small file is applied in the request itself.
    assert job["status"] == "done"
    assert (job["total"], job["processed"], job["created"], job["skipped"]) == (3, 3, 3, 0)
    members = by_external_id(app, brand)
    ada, grace, alan = members["A-1"], members["A-2"], members["A-3"]
    assert (ada.name, ada.email, ada.phone) == ("Ada Lovelace", "ada@example.com", "+886912345678")
    assert ada.birthday == date(1990, 5, 17) and ada.marketing_consent is True
    assert grace.marketing_consent is False and alan.marketing_consent is True
    assert (ada.points, grace.points, alan.points) == (120, 0, 3000)
    # No welcome bonus for imported members: the opening balance is all there is.
    assert [(e.points, e.internal_key) for e in openings(app, ada.id)] == [
        (120, f"opening:{ada.id}")
    ]
    assert openings(app, grace.id) == []
    assert openings(app, alan.id)[0].expires_at is not None  # the program's 12-month expiry
    shown = client.get(f"/api/v1/members/{ada.id}", headers=brand.admin).get_json()
    assert shown["tier"] == "Gold" and shown["card"]["barcode"]
    assert client.get(f"/api/v1/members/{grace.id}", headers=brand.admin).get_json()["tier"] == (
        "Silver"
    )
    assert client.get(f"/api/v1/members/{alan.id}", headers=brand.admin).get_json()["tier"] == (
        "VIP"
    )

    # The same file again: found by external id, nothing new, no second balance.
    again = post_file(client, brand, CSV).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert len(members_of(app, brand)) == 3
    assert len(openings(app, ada.id)) == 1
    with services_of(app).db.transaction() as session:
        assert ledger.verify_ledger(session) == []
        cards = session.scalar(select(func.count()).select_from(Card))
        assert cards == 3
        # Stored rows are dropped once a job is done.
        assert session.scalar(select(func.count()).select_from(MemberImportChunk)) == 0
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("member_import.created") == 2
    assert actions.count("member_import.finished") == 2
    progress = client.get(f"{URL}/{job['id']}", headers=brand.admin)
    assert progress.status_code == 200 and progress.get_json()["created"] == 3


def test_json_with_a_byte_order_mark_and_an_email_match_updates_the_enrolled_member(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    enrolled = enroll(client, brand, name="Ada", email="ada@example.com")
    body = {
        "members": [
            {"external_id": "X1", "name": "Ada Lovelace", "email": " Ada@Example.com ",
             "points": 40, "marketing_consent": True},
            {"name": "Bob", "email": "bob@example.com", "points": "7"},
        ]
    }  # fmt: skip
    data = b"\xef\xbb\xbf" + json.dumps(body).encode()
    out = post_file(client, brand, data, "application/json").get_json()
    assert (out["created"], out["updated"], out["errors"]) == (1, 1, 0), out
    members = members_of(app, brand)
    assert len(members) == 2
    ada = next(m for m in members if m.id == enrolled["id"])
    assert (ada.name, ada.external_id, ada.marketing_consent) == ("Ada Lovelace", "X1", True)
    # The welcome bonus of enrollment plus the opening balance, each once.
    assert ada.points == enrolled["points"] + 40
    # A list is a file too; the opening balance is never written twice.
    listed = [{"external_id": "X1", "points": 999}]
    again = post_file(client, brand, json.dumps(listed), "application/json").get_json()
    assert (again["updated"], again["unchanged"]) == (0, 1)
    assert members_of(app, brand)[0].points == enrolled["points"] + 40
    found = client.get("/api/v1/members/ext:X1", headers=brand.admin)
    assert found.status_code == 200 and found.get_json()["id"] == ada.id


def test_another_brands_members_are_untouched_and_its_ids_are_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    other = make_brand(app, "Other Tea")
    theirs = enroll(client, other, name="Theirs", email="ada@example.com")
    post_file(client, other, "external_id,name\nT-1,Their member\n")
    out = post_file(client, brand, CSV).get_json()
    assert out["created"] == 3
    assert {m.name for m in members_of(app, other)} == {"Theirs", "Their member"}
    assert all(m.brand_id == brand.brand_id for m in members_of(app, brand))
    assert client.get("/api/v1/members/ext:T-1", headers=brand.admin).status_code == 404
    assert client.get(f"{URL}/{out['id']}", headers=other.admin).status_code == 404
    other_program = client.post(
        URL, data=CSV, query_string={"program_id": other.program_id},
        headers={**brand.admin, "Content-Type": "text/csv"},
    )  # fmt: skip
    assert other_program.status_code == 404
    assert members_of(app, other)[0].id == theirs["id"]


def test_cashier_keys_cannot_import_or_look_up(client: FlaskClient, brand: BrandKeys) -> None:
    headers = {**brand.cashier, "Content-Type": "text/csv"}
    assert client.post(URL, data=CSV, headers=headers).status_code == 403
    assert client.get(f"{URL}/1", headers=brand.cashier).status_code == 403
    assert client.get("/api/v1/members/ext:A-1", headers=brand.cashier).status_code == 403


@pytest.mark.parametrize(
    ("body", "media", "fragment"),
    [
        ("", "text/csv", "empty"),
        ("name,colour\nAda,red\n", "text/csv", "unknown column"),
        ("name,birthday\nAda,2000-01-01\n", "text/csv", "external_id, email or phone"),
        (b"email\n\xff\xfe@x\n", "text/csv", "UTF-8"),
        ('{"members": 3}', "application/json", "members"),
        ("name\n", "application/xml", "text/csv"),
    ],
)
def test_files_that_cannot_be_read_are_refused_whole(
    client: FlaskClient, brand: BrandKeys, body: str | bytes, media: str, fragment: str
) -> None:
    response = post_file(client, brand, body, media)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "file" and fragment in error["message"]


def test_a_file_over_ten_mebibytes_is_refused(client: FlaskClient, brand: BrandKeys) -> None:
    big = b"email\n" + b"x" * (service.MAX_FILE_BYTES + 70 * 1024)
    assert post_file(client, brand, big).status_code == 413


def test_a_large_job_waits_for_the_worker_and_resumes_after_a_crash(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    svc = services_of(app)
    lines = ["external_id,name,points"] + [f"E{n},Member {n},{n}" for n in range(12)]
    actor = Actor(brand.brand_id, label="test")
    with svc.db.transaction() as session:
        job, _ = service.create_import(
            session, actor, None, "\n".join(lines).encode(), "text/csv", svc.context(), chunk=5
        )
        job_id = job.id
    assert client.get(f"{URL}/{job_id}", headers=brand.admin).get_json()["status"] == "queued"
    with svc.db.transaction() as session:
        assert service.claim_due_import(session, "worker-a", svc.clock()) == job_id
    with svc.db.transaction() as session:
        assert service.import_chunk(session, job_id, "worker-a", svc.context()) == "more"

    class Killed(Exception):
        """The worker dies in the middle of its second chunk."""

    with pytest.raises(Killed), svc.db.transaction() as session:
        assert service.import_chunk(session, job_id, "worker-a", svc.context()) == "more"
        raise Killed
    progress = client.get(f"{URL}/{job_id}", headers=brand.admin).get_json()
    assert (progress["status"], progress["processed"], progress["created"]) == ("running", 5, 5)
    # Worker A's lease runs out; the worker loop's own step picks the job up where it stood.
    clock.advance(minutes=6)
    held: set[int] = set()
    while member_import_step(svc, "worker-b", held) or held:
        pass
    done = client.get(f"{URL}/{job_id}", headers=brand.admin).get_json()
    assert (done["status"], done["processed"], done["created"], done["total"]) == (
        "done", 12, 12, 12
    )  # fmt: skip
    members = members_of(app, brand)
    assert sorted(m.external_id or "" for m in members) == sorted(f"E{n}" for n in range(12))
    assert sum(m.points for m in members) == sum(range(12))
    with svc.db.transaction() as session:
        assert ledger.verify_ledger(session) == []


TIERS = {"gold": "Gold", "silver": "Silver"}
cells = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=120),
    st.sampled_from(["1990-01-01", "2999-01-01", "yes", "0", "-1", "Gold", "a@b.co", "0912345678"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.dictionaries(st.sampled_from(FIELDS), cells, max_size=8), cells))
def test_the_row_parser_answers_values_or_row_errors_and_never_raises(raw: object) -> None:
    values, errors = parse_row(
        raw, 7, today=date(2026, 3, 10), region="TW", tiers=TIERS, seen=Seen()
    )
    assert (values is None) != (errors == [])
    assert all(isinstance(e, RowError) and e.row == 7 for e in errors)
    if values is not None:
        json.dumps(values)  # stored as JSON chunks
        assert set(values) <= {*FIELDS, "row"}
        assert 0 <= values.get("points", 0) <= 10**9


def test_the_dashboard_previews_a_file_then_imports_it_on_confirmation(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    token = csrf_of(client, "/dashboard/members/import")
    upload = {"csrf_token": token, "file": (io.BytesIO(CSV.encode()), "members.csv")}
    preview = client.post("/dashboard/members/import", data=upload)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200, page
    assert 'id="count-create">3<' in page and "Ada Lovelace" in page
    assert members_of(app, brand) == []  # a preview writes no member
    start = re.search(r'action="(/dashboard/members/import/(\d+)/start)"', page)
    assert start is not None
    done = client.post(start.group(1), data={"csrf_token": token})
    assert done.status_code == 303
    job_page = client.get(done.headers["Location"])
    assert job_page.status_code == 200 and "Refresh" not in job_page.headers
    assert 'id="count-create">3<' in job_page.get_data(as_text=True)
    assert len(members_of(app, brand)) == 3
    listing = client.get("/dashboard/members/import").get_data(as_text=True)
    assert "members.csv" in listing
    bad = {"csrf_token": token, "file": (io.BytesIO(b"colour\nred\n"), "bad.csv")}
    refused = client.post("/dashboard/members/import", data=bad)
    assert refused.status_code == 422 and "unknown column" in refused.get_data(as_text=True)
    other = make_brand(app, "Other Tea")
    with services_of(app).db.transaction() as session:
        theirs, _ = service.create_import(
            session, Actor(other.brand_id), None, CSV.encode(), "text/csv",
            services_of(app).context(),
        )  # fmt: skip
        theirs_id = theirs.id
    assert client.get(f"/dashboard/members/import/{theirs_id}").status_code == 404
    assert client.post(f"/dashboard/members/import/{theirs_id}/start",
                       data={"csrf_token": token}).status_code == 404  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("email,name\n" + t).encode()))
def test_any_bytes_give_rows_or_a_file_error_and_nothing_else(data: bytes) -> None:
    for media in ("text/csv", "application/json"):
        try:
            for number, raw in read_file(data, media):
                parse_row(raw, number, today=date(2026, 3, 10), region="TW", tiers=TIERS,
                          seen=Seen())  # fmt: skip
        except FileError:
            pass


def test_text_a_database_cannot_store_is_a_row_error_or_not_found(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    body = '[{"external_id": "S1", "name": "Surrogate \\ud800", "email": "a\\u0000@x.example"}]'
    out = post_file(client, brand, body, "application/json").get_json()
    assert (out["created"], out["skipped"]) == (0, 1)
    assert {e["field"] for e in out["row_errors"]} == {"name", "email"}
    assert client.get("/api/v1/members/ext:a%00b", headers=brand.admin).status_code == 404
