"""Pages under hostile input: recovery guessing, redirects, account probing, numbers, fuzzing."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import FrozenClock, make_brand, services_of
from tests.integration.pages.conftest import PASSWORD, csrf_of, log_in, make_staff
from walletd import create_app
from walletd.config import Settings
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.web.limits import rate_limits

SOME = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FEW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
MANY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
GENEROUS = "100000 per minute"
_addresses = (f"198.18.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@pytest.fixture
def make_app(settings: Settings, clock: FrozenClock) -> Iterator[Any]:
    """Apps with some settings changed; closed after the test."""
    apps: list[Flask] = []

    def build(**changes: object) -> Flask:
        app = create_app(settings.with_changes(**changes), clock=clock)
        apps.append(app)
        return app

    yield build
    for app in apps:
        services_of(app).close()


def _join(client: FlaskClient, program_id: int, **fields: str) -> Any:
    token = csrf_of(client, f"/join/{program_id}")
    return client.post(f"/join/{program_id}", data={"csrf_token": token, **fields})


def _recover(client: FlaskClient, program_id: int, contact: str, birthday: str, **env: str) -> Any:
    token = csrf_of(client, f"/join/{program_id}/recover")
    return client.post(
        f"/join/{program_id}/recover",
        data={"csrf_token": token, "contact": contact, "birthday": birthday},
        environ_base=env,
    )


# --- lost-card recovery -------------------------------------------------------------------------


@FEW
@given(plan=st.lists(st.booleans(), min_size=1, max_size=20))
def test_finding_ones_own_card_buys_no_more_guesses_at_anothers(
    app: Flask, plan: list[bool]
) -> None:
    rate_limits(app).reset()
    brand = make_brand(app, "Guessing Café")
    client = app.test_client()
    mine = _join(client, brand.program_id, name="Mallory", email="m@x.io", birthday="1990-01-01")
    theirs = _join(client, brand.program_id, name="Alice", email="a@x.io", birthday="1985-06-15")
    wrong_days = (date(1985, 1, 1) + timedelta(days=n) for n in itertools.count())
    guesses_answered = 0
    for own_card in plan:
        if own_card:
            response = _recover(client, brand.program_id, "m@x.io", "1990-01-01")
            assert response.status_code in (303, 429)
            if response.status_code == 303:
                assert response.headers["Location"] == mine.headers["Location"]
        else:
            guess = next(wrong_days).isoformat()
            response = _recover(client, brand.program_id, "a@x.io", guess)
            assert response.headers.get("Location") != theirs.headers["Location"]
            if response.status_code != 429:
                guesses_answered += 1
    assert guesses_answered <= 5


def test_guesses_at_one_member_from_many_addresses_are_limited_too(
    client: FlaskClient, app: Flask
) -> None:
    brand = make_brand(app)
    _join(client, brand.program_id, name="Alice", phone="0912 345 678", birthday="1985-06-15")
    statuses = [
        _recover(client, brand.program_id, "+886 912 345 678", f"1985-01-{d:02d}",
                 REMOTE_ADDR=next(_addresses)).status_code
        for d in range(1, 8)
    ]  # fmt: skip
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    # Spelled differently, it is the same target.
    again = _recover(
        client, brand.program_id, "0912-345-678", "1985-06-15", REMOTE_ADDR=next(_addresses)
    )
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0


def test_a_member_is_found_however_many_share_the_birthday(app: Flask) -> None:
    brand = make_brand(app)
    svc = services_of(app)
    with svc.db.transaction() as session:
        for n in range(250):
            enrollment = Enrollment(name=f"Member {n}", email=f"m{n}@example.com",
                                    phone=f"0912 000 {n:03d}", birthday=date(1990, 1, 1),
                                    program_id=brand.program_id)  # fmt: skip
            enroll_member(session, brand.brand_id, enrollment, svc.context())
    client = app.test_client()
    by_mail = _recover(client, brand.program_id, "M0@Example.com", "1990-01-01")
    assert by_mail.status_code == 303
    by_phone = _recover(client, brand.program_id, "+886-912-000-000", "1990-01-01")
    assert by_phone.headers["Location"] == by_mail.headers["Location"]


@pytest.mark.parametrize(
    "spelling", ["+886912345678", "+886 912-345-678", "(09) 1234 5678", "０９１２３４５６７８"]
)
def test_a_phone_is_found_in_any_spelling(client: FlaskClient, app: Flask, spelling: str) -> None:
    brand = make_brand(app)
    joined = _join(
        client, brand.program_id, name="Lin", phone="0912 345 678", birthday="1988-08-08"
    )
    found = _recover(client, brand.program_id, spelling, "1988-08-08")
    assert found.headers["Location"] == joined.headers["Location"]
    member = client.get("/api/v1/members/1", headers=brand.admin).get_json()
    assert member["phone"] == "+886912345678"


def test_a_phone_that_is_no_number_is_a_phone_field_error(client: FlaskClient, app: Flask) -> None:
    brand = make_brand(app)
    response = _join(client, brand.program_id, name="Lin", phone="12345")
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="f-phone-error"' in html


# --- redirects after login ----------------------------------------------------------------------

_HOSTILE = st.lists(
    st.sampled_from(["/", "//", "\\", "\t", "\n", "\r", " ", "\x00", "\x0b", "%09", "%2F", "%5C",
                     "evil.example", "@", ":", "http:", "https://", "javascript:", "／", "。",
                     "\u2028", "\u200b", "\x7f", "..", "?", "#", "dashboard"]),
    max_size=8,
).map("".join)  # fmt: skip


def _where_a_browser_goes(location: str, base: str) -> tuple[str, str]:
    # What the WHATWG URL parser does before resolving: strip C0 controls and blanks around the
    # URL, drop tabs and newlines inside it, and read backslashes as slashes.
    cleaned = location.strip("".join(chr(c) for c in range(33)))
    cleaned = re.sub(r"[\t\n\r]", "", cleaned).replace("\\", "/")
    parts = urlsplit(urljoin(base, cleaned))
    return parts.scheme, parts.netloc


@MANY
@given(target=st.one_of(_HOSTILE, st.text(max_size=40), _HOSTILE.map(lambda t: "/" + t)))
def test_the_language_switch_never_sends_anyone_off_the_site(
    client: FlaskClient, target: str
) -> None:
    token = csrf_of(client, "/")
    response = client.post("/lang", data={"csrf_token": token, "lang": "en", "next": target})
    assert response.status_code in (303, 400)
    if response.status_code == 303:
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//")
        assert _where_a_browser_goes(location, "http://walletd.test/") == ("http", "walletd.test")


@SOME
@given(target=st.one_of(_HOSTILE, _HOSTILE.map(lambda t: "/" + t)))
def test_logging_in_never_sends_anyone_off_the_site(app: Flask, target: str) -> None:
    brand = make_brand(app, "Redirects")
    staff = make_staff(app, brand.brand_id, f"owner{next(_addresses)}@acme.example")
    client = app.test_client()
    token = csrf_of(client, "/dashboard/login")
    response = client.post(
        "/dashboard/login",
        data={"csrf_token": token, "email": staff.email, "password": PASSWORD, "next": target},
    )
    assert response.status_code in (303, 400)
    if response.status_code == 303:
        assert _where_a_browser_goes(response.headers["Location"], "http://walletd.test/") == (
            "http",
            "walletd.test",
        )


def test_the_tab_trick_from_the_issue_lands_on_the_dashboard(
    client: FlaskClient, app: Flask
) -> None:
    brand = make_brand(app)
    staff = make_staff(app, brand.brand_id, "owner@acme.example")
    token = csrf_of(client, "/dashboard/login")
    response = client.post(
        "/dashboard/login?next=/%09/evil.example",
        data={"csrf_token": token, "email": staff.email, "password": PASSWORD},
    )
    assert response.headers["Location"] == "/dashboard"


# --- staff logins -------------------------------------------------------------------------------


def _login_attempt(client: FlaskClient, email: str, password: str, address: str) -> Any:
    token = csrf_of(client, "/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


@SOME
@given(unknown=st.emails())
def test_unknown_and_known_accounts_get_the_same_answer_after_the_same_work(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, unknown: str
) -> None:
    from walletd.loyalty import staff as staff_module

    app = make_app(ratelimit_login_account=GENEROUS, ratelimit_login_client=GENEROUS,
                   ratelimit_login_account_client=GENEROUS)  # fmt: skip
    brand = make_brand(app)
    known = make_staff(app, brand.brand_id, f"owner{next(_addresses)}@acme.example").email
    if unknown.lower() == known:
        return
    hashes: list[int] = []
    real = staff_module._scrypt

    def counting(*args: Any) -> bytes:
        hashes.append(1)
        return real(*args)

    monkeypatch.setattr(staff_module, "_scrypt", counting)
    answers = []
    for email in (known, unknown):
        client = app.test_client()
        hashes.clear()
        response = _login_attempt(client, email, "wrong password", next(_addresses))
        body = response.get_data(as_text=True)
        token = csrf_of(client, "/dashboard/login")
        body = body.replace(token, "TOKEN")
        for spelled in {email, email.replace("&", "&amp;").replace("'", "&#39;")}:
            body = body.replace(spelled, "EMAIL")
        answers.append((response.status_code, body, len(hashes)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][2] == 1


def test_a_stranger_cannot_keep_the_owner_out(make_app: Any) -> None:
    app = make_app(ratelimit_login_client="3 per hour", ratelimit_login_account="5 per hour")
    brand = make_brand(app)
    owner = make_staff(app, brand.brand_id, "owner@acme.example")
    home = "192.0.2.1"
    owners_browser = app.test_client()
    assert _login_attempt(owners_browser, owner.email, PASSWORD, home).status_code == 303
    stranger = app.test_client()
    for n in range(12):  # from everywhere, including the owner's own address
        address = home if n < 3 else f"203.0.113.{n}"
        assert _login_attempt(stranger, owner.email, "guess", address).status_code in (401, 429)
    assert _login_attempt(stranger, owner.email, PASSWORD, "203.0.113.99").status_code == 429
    assert _login_attempt(stranger, owner.email, PASSWORD, home).status_code == 429
    # The owner's browser (its device cookie) still gets in with the right password.
    assert _login_attempt(owners_browser, owner.email, PASSWORD, home).status_code == 303
    # A forged or foreign device cookie is no way around the limits.
    stranger.set_cookie("walletd_device", owners_browser.get_cookie("walletd_device").value + "x")
    assert _login_attempt(stranger, owner.email, PASSWORD, home).status_code == 429


def test_the_owners_browser_has_its_own_limit(make_app: Any) -> None:
    app = make_app(ratelimit_login_device="2 per hour")
    brand = make_brand(app)
    owner = make_staff(app, brand.brand_id, "owner@acme.example")
    browser = app.test_client()
    assert _login_attempt(browser, owner.email, PASSWORD, "192.0.2.1").status_code == 303
    statuses = [
        _login_attempt(browser, owner.email, "typo", "192.0.2.1").status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


# --- numbers in forms and queries ---------------------------------------------------------------

_DIGITISH = st.one_of(
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=25),
    st.integers(min_value=2**63 - 5, max_value=2**80).map(str),
    st.integers(max_value=-(2**63)).map(str),
    st.sampled_from(["²", "١٢", "1_000", "+5", " 7 ", "0x10", "1e3", "٣٠"]),
)


@MANY
@given(number=_DIGITISH)
def test_number_fields_never_reach_int_unchecked(dashboard: FlaskClient, number: str) -> None:
    token = csrf_of(dashboard, "/dashboard")
    assert dashboard.get("/dashboard/members", query_string={"q": number}).status_code == 200
    checks = [
        ("/dashboard/members/1/adjust", {"points": number, "reason": "typo"}),
        ("/dashboard/campaigns", {"name": "c", "message": "m", "preset": "all",
                                  "holdout_percent": number, "action": "preview"}),
        ("/dashboard/automations/win_back", {"enabled": "yes", "delay_days": number}),
        ("/dashboard/program", {"name": "P", "tier-0-id": number, "tier-0-name": "Silver",
                                "reward-0-id": number, "reward-0-name": "Coffee"}),
    ]  # fmt: skip
    for path, data in checks:
        response = dashboard.post(path, data={"csrf_token": token, **data})
        assert response.status_code < 500, (path, response.status_code)


# --- every form field, arbitrary text -----------------------------------------------------------


class _Forms(HTMLParser):
    """The POST forms of a page: action and the names (and offered values) of their fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, list[str]]]] = []
        self._open: dict[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and (found.get("method") or "").lower() == "post":
            self._open = {}
            self.forms.append((found.get("action") or "", self._open))
        elif tag in ("input", "select", "textarea", "button") and self._open is not None:
            name = found.get("name")
            if name and name != "csrf_token":
                self._open.setdefault(name, []).append(found.get("value") or "")
        elif tag == "option" and self._open is not None and self._open:
            last = list(self._open)[-1]
            self._open[last].append(found.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def _forms_of(
    client: FlaskClient, paths: list[str]
) -> list[tuple[str, list[str], dict[str, list[str]]]]:
    found = []
    for path in paths:
        parser = _Forms()
        parser.feed(client.get(path).get_data(as_text=True))
        for action, fields in parser.forms:
            if action.endswith("/logout"):
                continue  # logging out ends the fuzzing session, not a finding
            found.append((urljoin(path, action or path), list(fields), fields))
    unique = {action: (action, names, fields) for action, names, fields in found}
    assert unique
    return list(unique.values())


def _fuzz_app(make_app: Any) -> Flask:
    limits = {name: GENEROUS for name in (
        "ratelimit_login_client", "ratelimit_login_account_client", "ratelimit_login_account",
        "ratelimit_login_device", "ratelimit_recover_client", "ratelimit_recover_target",
        "ratelimit_join", "ratelimit_api",
    )}  # fmt: skip
    return make_app(**limits)  # type: ignore[no-any-return]


_VALUE = st.one_of(st.text(max_size=60), st.text(max_size=3000), _DIGITISH)


def _fuzz(client: FlaskClient, forms: list[Any], data: st.DataObject) -> None:
    action, names, offered = data.draw(st.sampled_from(forms))
    fields: dict[str, str] = {}
    for name in names:
        choice = st.one_of(st.sampled_from(offered[name]), _VALUE) if offered[name] else _VALUE
        if data.draw(st.booleans()):
            fields[name] = data.draw(choice)
    token = csrf_of(client, "/cashier" if action.startswith("/cashier") else "/dashboard/login")
    response = client.post(action, data={"csrf_token": token, **fields})
    assert response.status_code < 500, (action, fields, response.get_data(as_text=True)[:300])


@pytest.fixture
def fuzz_app(make_app: Any) -> Flask:
    """An app whose limits do not get in the fuzzer's way, with a brand, members and a campaign."""
    return _fuzz_app(make_app)


@MANY
@given(data=st.data())
def test_no_form_field_of_the_staff_pages_answers_a_server_error(
    fuzz_app: Flask, data: st.DataObject
) -> None:
    state = fuzz_app.extensions.setdefault("fuzz", {})
    if "admin" not in state:
        brand = make_brand(fuzz_app)
        admin = make_staff(fuzz_app, brand.brand_id, "owner@acme.example")
        client = fuzz_app.test_client()
        _join(client, brand.program_id, name="Ada", email="ada@x.io", birthday="1990-01-02")
        log_in(client, admin)
        token = csrf_of(client, "/dashboard/campaigns")
        client.post("/dashboard/campaigns", data={"csrf_token": token, "name": "c",
                                                  "message": "m", "preset": "all"})  # fmt: skip
        pages = ["/", "/dashboard", "/dashboard/program", "/dashboard/campaigns",
                 "/dashboard/campaigns/1", "/dashboard/automations", "/dashboard/members/1",
                 f"/join/{brand.program_id}", f"/join/{brand.program_id}/recover",
                 "/dashboard/login", "/cashier/login"]  # fmt: skip
        state["admin"] = (client, _forms_of(client, pages))
    client, forms = state["admin"]
    _fuzz(client, forms, data)


@MANY
@given(data=st.data())
def test_no_field_of_the_cashier_pages_answers_a_server_error(
    fuzz_app: Flask, data: st.DataObject
) -> None:
    state = fuzz_app.extensions.setdefault("fuzz", {})
    if "cashier" not in state:
        brand = make_brand(fuzz_app)
        cashier = make_staff(fuzz_app, brand.brand_id, "till@acme.example", role="cashier")
        client = fuzz_app.test_client()
        log_in(client, cashier, "cashier")
        state["cashier"] = (client, _forms_of(client, ["/cashier", "/cashier/login"]))
    client, forms = state["cashier"]
    if data.draw(st.booleans()):
        _fuzz(client, forms, data)
        return
    # The till's scan and redeem forms post JSON to the cashier API.
    token = csrf_of(client, "/cashier")
    path = data.draw(st.sampled_from(["/cashier/api/scan", "/cashier/api/redeem"]))
    body = data.draw(st.dictionaries(st.sampled_from(["barcode", "amount", "reward_id"]), _VALUE))
    header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300)
    headers = {"X-CSRF-Token": token, "Idempotency-Key": data.draw(header_text)}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code < 500, (path, body, response.get_data(as_text=True)[:300])
