"""After-sale feedback: the signed rating page, one answer per visit, the webhook, the links in
the post-purchase message and on the back of the pass, and the report (API and dashboard)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, make_brand, scan, services_of
from tests.integration.pages.conftest import csrf_of, log_in, make_staff
from walletd import feedback
from walletd.errors import ValidationError
from walletd.jobs import run_automations
from walletd.models import Card, Feedback, OutboxMessage
from walletd.passes.cards import card_view
from walletd.passes.pkpass import load_template, render_pass_json
from walletd.web import links

_KEYS = iter(range(10**6))


def visit(
    client: FlaskClient, brand: BrandKeys, barcode: str, amount: str = "10", **extra: Any
) -> int:
    """A checkout scan; its id (the visit)."""
    response = scan(client, brand, barcode, amount, f"visit-{next(_KEYS)}", **extra)
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["scan_id"])


def link(app: Flask, scan_id: int, expires: int | None = None) -> str:
    """The signed path of a visit's rating page (expiring 30 days from now by default)."""
    svc = services_of(app)
    exp = expires if expires is not None else feedback.link_expiry(svc.clock())
    url = links.feedback_url(svc.settings.base_url, svc.settings.secret_key, scan_id, exp)
    return url[len(svc.settings.base_url) :]


def answer(client: FlaskClient, path: str, **form: str) -> Any:
    """POST the rating form with the page's CSRF token."""
    token = csrf_of(client, path)
    return client.post(path, data={"csrf_token": token, **form})


def rows(app: Flask) -> list[Feedback]:
    """Every stored answer."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        found = list(session.scalars(select(Feedback).order_by(Feedback.id)))
        session.expunge_all()
    return found


def location(client: FlaskClient, brand: BrandKeys, name: str) -> int:
    """A location of the brand, through the API."""
    response = client.post("/api/v1/locations", json={"name": name}, headers=brand.admin)
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


# --- the rating page ----------------------------------------------------------------------------


def test_a_member_rates_a_visit_once_from_its_signed_link(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    shop = location(client, brand, "Main Street")
    member = enroll(client, brand)
    scan_id = visit(client, brand, member["card"]["barcode"], location_id=shop)
    path = link(app, scan_id)
    page = client.get(path, headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "How was your visit?" in html and "Main Street" in html
    assert html.count('type="radio"') == 5 and '<label for="f-rating-5">' in html
    sent = answer(client, path, rating="4", comment="  Lovely coffee,\r\nslow queue.  ")
    assert sent.status_code == 303 and "done=1" in sent.headers["Location"]
    thanks = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert "Thank you!" in thanks and "You rated this visit 4 of 5." in thanks
    [stored] = rows(app)
    assert (stored.rating, stored.comment, stored.location_id) == (
        4,
        "Lovely coffee,\nslow queue.",
        shop,
    )
    assert (stored.member_id, stored.scan_id, stored.language) == (member["id"], scan_id, "en")
    # A second answer (another tab, a replay) changes nothing and says so.
    again = answer(client, path, rating="1", comment="changed my mind")
    assert again.status_code == 200
    assert "already been rated" in again.get_data(as_text=True)
    assert [(r.rating, r.comment) for r in rows(app)] == [(4, "Lovely coffee,\nslow queue.")]
    assert "already been rated" in client.get(path).get_data(as_text=True)


def test_a_forged_or_altered_link_is_404_and_an_expired_one_403(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    ann, ben = enroll(client, brand), enroll(client, brand, name="Ben Lee")
    ann_visit = visit(client, brand, ann["card"]["barcode"])
    ben_visit = visit(client, brand, ben["card"]["barcode"])
    good = link(app, ann_visit)
    assert client.get(good).status_code == 200
    exp = re.search(r"exp=(\d+)", good).group(1)  # type: ignore[union-attr]
    sig = re.search(r"sig=([0-9a-f]+)", good).group(1)  # type: ignore[union-attr]
    refused = [
        f"/feedback/{ann_visit}",
        f"/feedback/{ann_visit}?exp={exp}",
        f"/feedback/{ann_visit}?exp={exp}&sig={'0' * 32}",
        f"/feedback/{ann_visit}?exp={int(exp) + 86400}&sig={sig}",  # a longer life
        f"/feedback/{ben_visit}?exp={exp}&sig={sig}",  # Ann's signature on Ben's visit
        f"/feedback/{ann_visit}?exp=-1&sig={sig}",
        f"/feedback/{ann_visit}?exp={exp}&sig={sig.upper()}",
        link(app, 2**31 - 1),  # signed, but no such visit
    ]
    for path in refused:
        assert client.get(path).status_code == 404, path
        assert client.post(path, data={"rating": "5"}).status_code in (400, 404), path
    assert (
        answer(client, good.replace(str(ann_visit), str(ben_visit), 1), rating="1").status_code
        == 404
    )
    assert rows(app) == []
    # A redemption is no visit: its id with a valid signature is refused too.
    clock.advance(days=31)
    expired = client.get(good)
    assert expired.status_code == 403
    assert "This link has expired" in expired.get_data(as_text=True)
    token = csrf_of(client, "/")
    assert client.post(good, data={"csrf_token": token, "rating": "5"}).status_code == 403
    assert rows(app) == []


def test_bad_answers_are_refused_next_to_the_field_and_store_nothing(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    path = link(app, visit(client, brand, member["card"]["barcode"]))
    for form in (
        {},
        {"rating": "0"},
        {"rating": "6"},
        {"rating": "4.5"},
        {"rating": "five"},
        {"rating": "3", "comment": "x" * 1001},
    ):
        response = answer(client, path, **form)
        assert response.status_code in (400, 422), form
        if response.status_code == 422:
            assert 'class="error"' in response.get_data(as_text=True)
    # Without the CSRF token, and with a NUL, nothing reaches the service.
    assert client.post(path, data={"rating": "5"}).status_code == 400
    assert answer(client, path, rating="5", comment="a\x00b").status_code == 400
    assert rows(app) == []
    assert answer(client, path, rating="5", comment="é" * 1000).status_code == 303


def test_the_page_speaks_the_programs_language_unless_the_visitor_chose(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    response = client.patch(
        f"/api/v1/programs/{brand.program_id}",
        json={"default_language": "zh-Hant"},
        headers=brand.admin,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    member = enroll(client, brand)
    path = link(app, visit(client, brand, member["card"]["barcode"]))
    html = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "這次消費的體驗如何？" in html and 'lang="zh-Hant-TW"' in html
    assert answer(client, path, rating="5").status_code == 303
    assert rows(app)[0].language == "zh-Hant"
    client.set_cookie("walletd_lang", "en")
    assert "already been rated" in client.get(path).get_data(as_text=True)


def test_the_page_names_the_visits_day_in_the_programs_time_zone(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    response = client.patch(
        f"/api/v1/programs/{brand.program_id}", json={"timezone": "Asia/Taipei"},
        headers=brand.admin,
    )  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    member = enroll(client, brand)
    clock.advance(hours=8)  # 20:00 UTC on 10 March is 04:00 on 11 March in Taipei
    path = link(app, visit(client, brand, member["card"]["barcode"]))
    html = client.get(path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Your visit on Mar 11, 2026" in html


def test_an_answer_sends_feedback_received_with_low_set_for_two_stars_or_fewer(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    hook = client.post(
        "/api/v1/webhooks",
        json={"url": "https://crm.example/hooks", "events": ["feedback.received"]},
        headers=brand.admin,
    )
    assert hook.status_code == 201, hook.get_data(as_text=True)
    member = enroll(client, brand)
    unhappy = visit(client, brand, member["card"]["barcode"])
    happy = visit(client, brand, member["card"]["barcode"])
    assert answer(client, link(app, unhappy), rating="2", comment="Cold food").status_code == 303
    assert answer(client, link(app, happy), rating="5").status_code == 303
    svc = services_of(app)
    with svc.db.transaction() as session:
        payloads = [
            m.payload
            for m in session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "webhook")
                .order_by(OutboxMessage.id)
            )
        ]
    assert [p["type"] for p in payloads] == ["feedback.received", "feedback.received"]
    first, second = (p["data"] for p in payloads)
    assert first["scan_id"] == unhappy and first["member_id"] == member["id"]
    assert (first["rating"], first["low"], first["comment"]) == (2, True, "Cold food")
    assert (second["rating"], second["low"], second["comment"]) == (5, False, None)


# --- links to the page --------------------------------------------------------------------------


def test_the_post_purchase_message_links_the_page_of_the_latest_visit(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    enabled = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/post_purchase",
        json={"enabled": True, "delay_days": 1},
        headers=brand.admin,
    )
    assert enabled.status_code == 200, enabled.get_data(as_text=True)
    assert "{feedback_url}" in enabled.get_json()["message"]
    member = enroll(client, brand, marketing_consent=True)
    visit(client, brand, member["card"]["barcode"])
    latest = visit(client, brand, member["card"]["barcode"])
    clock.advance(days=1, hours=2)  # 14:00 UTC: outside the default quiet hours
    svc = services_of(app)
    assert run_automations(svc) == 1
    with svc.db.transaction() as session:
        message = session.scalar(select(Card.message).where(Card.member_id == member["id"]))
    assert message is not None
    found = re.search(r"https?://\S+/feedback/(\d+)\?exp=\d+&sig=[0-9a-f]{32}", message)
    assert found and int(found.group(1)) == latest, message
    page = client.get(found.group(0)[len(svc.settings.base_url) :])
    assert page.status_code == 200


def test_a_brand_text_without_the_placeholder_still_carries_the_whole_link(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    enabled = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/post_purchase",
        json={"enabled": True, "delay_days": 1, "message": "Thanks {name}! " + "x" * 470},
        headers=brand.admin,
    )
    assert enabled.status_code == 200, enabled.get_data(as_text=True)
    member = enroll(client, brand, marketing_consent=True)
    scan_id = visit(client, brand, member["card"]["barcode"])
    clock.advance(days=1, hours=2)  # 14:00 UTC: outside the default quiet hours
    svc = services_of(app)
    assert run_automations(svc) == 1
    with svc.db.transaction() as session:
        message = session.scalar(select(Card.message).where(Card.member_id == member["id"]))
    assert message is not None and len(message) <= 500
    assert message.startswith("Thanks Ada! xxx")
    assert re.search(rf"/feedback/{scan_id}\?exp=\d+&sig=[0-9a-f]{{32}}$", message), message


def _back_fields(app: Flask, member_id: int) -> dict[str, Any]:
    svc = services_of(app)
    with svc.db.transaction() as session:
        card = session.scalars(select(Card).where(Card.member_id == member_id)).one()
        ctx = svc.context()
        view = feedback.with_feedback_links(
            session, {card.id: card_view(session, card, now=ctx.now)}, [card], ctx
        )[card.id]
        document = render_pass_json(
            view,
            pass_type_id="pass.example.walletd",
            team_id="TEAMID1234",
            web_service_url="https://example.test/apple",
            template=load_template(svc.settings.pass_templates_path, view.template),
        )
    back = document["storeCard"]["backFields"]  # type: ignore[index]
    return {f["key"]: f for f in back}


def test_the_back_of_the_pass_links_an_unrated_visit_of_the_last_30_days(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    assert "feedback" not in _back_fields(app, member["id"])
    scan_id = visit(client, brand, member["card"]["barcode"])
    field = _back_fields(app, member["id"])["feedback"]
    assert field["label"] == "feedback_label"
    assert f"/feedback/{scan_id}?exp=" in field["value"]
    # The link is the same on every download (it expires 30 days after the visit).
    clock.advance(hours=3)
    assert _back_fields(app, member["id"])["feedback"]["value"] == field["value"]
    path = field["value"][len(services_of(app).settings.base_url) :]
    assert answer(client, path, rating="5").status_code == 303
    assert "feedback" not in _back_fields(app, member["id"])
    later = visit(client, brand, member["card"]["barcode"])
    assert f"/feedback/{later}?" in _back_fields(app, member["id"])["feedback"]["value"]
    clock.advance(days=30)
    assert "feedback" not in _back_fields(app, member["id"])


def test_an_answer_updates_the_members_card(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    member = enroll(client, brand)
    path = link(app, visit(client, brand, member["card"]["barcode"]))
    svc = services_of(app)
    with svc.db.transaction() as session:
        before = session.scalar(select(Card.updated_at).where(Card.member_id == member["id"]))
    clock.advance(minutes=5)
    assert answer(client, path, rating="3").status_code == 303
    with svc.db.transaction() as session:
        after = session.scalar(select(Card.updated_at).where(Card.member_id == member["id"]))
    assert before is not None and after is not None and after > before


# --- the report ---------------------------------------------------------------------------------


def _rated(app: Flask, client: FlaskClient, brand: BrandKeys, barcode: str, rating: int,
           comment: str = "", **extra: Any) -> int:  # fmt: skip
    scan_id = visit(client, brand, barcode, **extra)
    assert (
        answer(client, link(app, scan_id), rating=str(rating), comment=comment).status_code == 303
    )
    return scan_id


def test_the_report_counts_answers_by_location_and_over_time(
    app: Flask, client: FlaskClient, brand: BrandKeys, clock: FrozenClock
) -> None:
    north, south = location(client, brand, "North"), location(client, brand, "South")
    barcode = enroll(client, brand)["card"]["barcode"]
    _rated(app, client, brand, barcode, 5, "Great", location_id=north)  # 2026-03-10
    _rated(app, client, brand, barcode, 4, location_id=north)
    clock.advance(days=1)
    _rated(app, client, brand, barcode, 1, "Rude staff", location_id=south)  # 2026-03-11
    clock.advance(days=8)
    _rated(app, client, brand, barcode, 2)  # 2026-03-19, no location
    query = {"from": "2026-03-10", "to": "2026-03-19"}
    report = client.get("/api/v1/reports/feedback", query_string=query, headers=brand.admin)
    assert report.status_code == 200, report.get_data(as_text=True)
    body = report.get_json()
    assert (body["count"], body["average"]) == (4, "3.00")
    assert body["distribution"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 1}
    assert body["by_location"] == [
        {"location_id": north, "name": "North", "count": 2, "average": "4.50"},
        {"location_id": south, "name": "South", "count": 1, "average": "1.00"},
        {"location_id": None, "name": None, "count": 1, "average": "2.00"},
    ]
    series = body["over_time"]
    assert series["unit"] == "day" and len(series["points"]) == 10
    by_day = {p["start"]: (p["count"], p["average"]) for p in series["points"]}
    assert by_day["2026-03-10"] == (2, "4.50") and by_day["2026-03-11"] == (1, "1.00")
    assert by_day["2026-03-12"] == (0, None) and by_day["2026-03-19"] == (1, "2.00")
    assert [(c["rating"], c["comment"]) for c in body["latest_comments"]] == [
        (1, "Rude staff"),
        (5, "Great"),
    ]
    south_only = client.get(
        "/api/v1/reports/feedback",
        query_string={**query, "location_id": south},
        headers=brand.admin,
    ).get_json()
    assert (south_only["count"], south_only["average"]) == (1, "1.00")
    assert [row["location_id"] for row in south_only["by_location"]] == [south]
    # Longer periods go by week, from Monday (2026-03-09 was a Monday).
    weekly = client.get(
        "/api/v1/reports/feedback",
        query_string={"from": "2026-03-01", "to": "2026-04-30"},
        headers=brand.admin,
    ).get_json()["over_time"]
    assert weekly["unit"] == "week" and weekly["points"][0]["start"] == "2026-02-23"
    weeks = {p["start"]: p["count"] for p in weekly["points"]}
    assert weeks["2026-03-09"] == 3 and weeks["2026-03-16"] == 1 and sum(weeks.values()) == 4
    outside = client.get(
        "/api/v1/reports/feedback",
        query_string={"from": "2026-03-20", "to": "2026-03-31"},
        headers=brand.admin,
    ).get_json()
    assert (outside["count"], outside["average"], outside["by_location"]) == (0, None, [])


def test_the_report_is_for_admins_of_the_brand_only(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    mine = location(client, brand, "Mine")
    _rated(app, client, brand, enroll(client, brand)["card"]["barcode"], 5, "ok", location_id=mine)
    query = {"from": "2026-03-01", "to": "2026-03-31"}
    assert client.get("/api/v1/reports/feedback", query_string=query).status_code == 401
    cashier = client.get("/api/v1/reports/feedback", query_string=query, headers=brand.cashier)
    assert cashier.status_code == 403
    other = make_brand(app, "Other Coffee")
    theirs = client.get("/api/v1/reports/feedback", query_string=query, headers=other.admin)
    assert theirs.status_code == 200
    assert (theirs.get_json()["count"], theirs.get_json()["latest_comments"]) == (0, [])
    spying = client.get(
        "/api/v1/reports/feedback", query_string={**query, "location_id": mine}, headers=other.admin
    )
    assert spying.status_code == 422
    assert spying.get_json()["error"]["field"] == "location_id"


def test_an_erased_members_comments_leave_the_report_and_their_links_stop_working(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    member = enroll(client, brand)
    barcode = member["card"]["barcode"]
    _rated(app, client, brand, barcode, 1, "Call me on 0912 345 678")
    path = link(app, visit(client, brand, barcode))
    assert client.delete(f"/api/v1/members/{member['id']}", headers=brand.admin).status_code in (
        200,
        204,
    )
    query = {"from": "2026-03-01", "to": "2026-03-31"}
    body = client.get("/api/v1/reports/feedback", query_string=query, headers=brand.admin)
    assert (body.get_json()["count"], body.get_json()["latest_comments"]) == (1, [])
    assert client.get(path).status_code == 404


def test_report_periods_are_validated(client: FlaskClient, brand: BrandKeys) -> None:
    for query, field in (
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2000-01-01", "to": "2026-03-01"}, "to"),
        ({"to": "2026-03-01"}, "from"),
        ({"from": "2026-03-01", "to": "2026-03-02", "location_id": "0"}, "location_id"),
    ):
        response = client.get("/api/v1/reports/feedback", query_string=query, headers=brand.admin)
        assert response.status_code == 422, query
        assert response.get_json()["error"]["field"] == field, query


def test_the_dashboard_shows_the_report_in_both_languages(
    app: Flask, client: FlaskClient, brand: BrandKeys
) -> None:
    shop = location(client, brand, "Harbour")
    barcode = enroll(client, brand)["card"]["barcode"]
    _rated(app, client, brand, barcode, 2, "Too loud", location_id=shop)
    _rated(app, client, brand, barcode, 5, location_id=shop)
    assert client.get("/dashboard/feedback").status_code == 302
    log_in(client, make_staff(app, brand.brand_id, "owner@acme.example"))
    page = client.get("/dashboard/feedback", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="feedback-count">2<' in html and 'id="feedback-average">3.50<' in html
    assert "Harbour" in html and "Too loud" in html and 'aria-current="page">Feedback<' in html
    client.set_cookie("walletd_lang", "zh-Hant")
    assert "最新意見" in client.get("/dashboard/feedback").get_data(as_text=True)
    bad = client.get("/dashboard/feedback?from=2026-03-10&to=2026-03-01")
    assert bad.status_code == 422 and "結束日不可早於起始日" in bad.get_data(as_text=True)
    assert client.get("/dashboard/feedback?location_id=x").status_code == 422


# --- validators ---------------------------------------------------------------------------------


@hsettings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=1100), st.integers(), st.booleans()))
def test_any_comment_or_rating_is_accepted_or_refused_with_its_field(value: object) -> None:
    for check, field in ((feedback.check_comment, "comment"), (feedback.check_rating, "rating")):
        try:
            checked = check(value)
        except ValidationError as exc:
            assert exc.field == field
        else:
            if field == "rating":
                assert checked in (1, 2, 3, 4, 5)
            elif checked is not None:
                assert isinstance(checked, str) and 0 < len(checked) <= feedback.MAX_COMMENT
                assert checked == checked.strip() and "\x00" not in checked
