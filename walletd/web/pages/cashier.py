"""The cashier page: log in with a staff account or a cashier key, then scan and redeem."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, make_response, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.errors import AuthenticationError, PermissionDeniedError
from walletd.loyalty import ledger
from walletd.loyalty.brands import authenticate
from walletd.loyalty.members import tier_name
from walletd.loyalty.staff import attempt_login
from walletd.loyalty.till import redeem_at_till, scan_at_till
from walletd.models import Coupon, Member, Offer, Program
from walletd.offers import coupons
from walletd.offers.catalog import decimal_text
from walletd.web import limits
from walletd.web.deps import context, json_body, json_response, run_in_transaction, services
from walletd.web.pages import security
from walletd.web.pages.render import _, add_error_pages, render
from walletd.web.pages.security import Viewer, current_viewer, require_viewer

bp = Blueprint("cashier", __name__, url_prefix="/cashier")
api = Blueprint("cashier_api", __name__, url_prefix="/cashier/api")
add_error_pages(bp)
CASHIER_ROLES = ("cashier", "admin")


def login_form(
    area: str,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    method: str = "staff",
) -> tuple[str, int]:
    """The shared login page of the cashier and dashboard areas."""
    return render(
        "login.html",
        status,
        area=area,
        error=error,
        email=email,
        method=method,
        next=security.safe_next(request.values.get("next"), url_for(f"{area}.home")),
    )


def _throttled(area: str, wait: int, *, email: str = "", method: str = "staff") -> Response:
    page, status = login_form(area, status=429, error=_("Too many attempts. Wait a few minutes."),
                              email=email, method=method)  # fmt: skip
    return limits.with_retry_after(make_response(page, status), wait)


def log_in_from_form(area: str, roles: tuple[str, ...], *, allow_key: bool) -> Any:
    """Check a login form (staff e-mail and password, or an API key) and start a session.

    Only failures are counted (walletd.web.limits). A wrong or unknown e-mail and a wrong
    password get the same answer, after the same password-hash work.
    """
    method = request.form.get("method", "staff")
    email = request.form.get("email", "")[:320]
    now = services().clock()
    if method == "key" and allow_key:
        wait = limits.key_login_wait()
        if wait is not None:
            return _throttled(area, wait, method="key")
        key = request.form.get("api_key", "").strip()
        try:
            principal = run_in_transaction(lambda s: authenticate(s, key))
        except AuthenticationError:
            limits.key_login_failed()
            # The key is never echoed back into the form.
            return login_form(area, status=401, error=_("That key is not valid."), method="key")
        if principal.role not in roles:
            return login_form(area, status=403, error=_("This key may not use this page."),
                              method="key")  # fmt: skip
        security.log_in_key(principal)
        return redirect(security.safe_next(request.form.get("next"), url_for(f"{area}.home")), 303)
    account = limits.login_key(email, None).account
    counted = limits.login_key(email, security.trusted_device(account))
    wait = limits.login_wait(counted)
    if wait is not None:
        return _throttled(area, wait, email=email)
    password = request.form.get("password", "")
    result = run_in_transaction(lambda s: attempt_login(s, email, password, now=now))
    if result.principal is None:
        limits.login_failed(counted)
        return login_form(area, status=401, error=_("Wrong e-mail or password."), email=email)
    if result.principal.role not in roles:
        return login_form(area, status=403, error=_("This account may not use this page."),
                          email=email)  # fmt: skip
    security.log_in_staff(result.principal)
    response = redirect(security.safe_next(request.form.get("next"), url_for(f"{area}.home")), 303)
    security.trust_device(response, account)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Log in with a staff account or a cashier key."""
    if request.method == "POST":
        return log_in_from_form("cashier", CASHIER_ROLES, allow_key=True)
    return login_form("cashier")


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    """End the session."""
    security.log_out()
    return redirect(url_for("cashier.login"), 303)


@bp.get("")
@require_viewer(*CASHIER_ROLES, login_endpoint="cashier.login")
def home() -> tuple[str, int]:
    """Scan a card (camera, scanner or typing), enter the amount, see the result, redeem."""
    viewer = current_viewer()
    assert viewer is not None
    return render("cashier/till.html", brand_id=viewer.brand_id)


def _api_viewer() -> Viewer:
    viewer = current_viewer()
    if viewer is None:
        raise AuthenticationError("log in again")
    if viewer.role not in CASHIER_ROLES:
        raise PermissionDeniedError("this account may not scan")
    return viewer


def _actor(viewer: Viewer) -> ledger.Actor:
    return viewer.actor


def _answer(body: dict[str, Any]) -> Response:
    return json_response(body, 200 if body.get("replayed") else 201)


@api.post("/scan")
def scan() -> Response:
    """Credit a scan once per browser-made Idempotency-Key: a double submit replays."""
    actor = _actor(_api_viewer())
    data = json_body()
    key = request.headers.get("Idempotency-Key")
    ctx = context()

    def work(session: Session) -> dict[str, Any]:
        body = scan_at_till(session, actor, barcode=data.get("barcode"),
                            amount=data.get("amount"), idempotency_key=key, ctx=ctx)  # fmt: skip
        return {**body, "coupons": active_coupons(session, actor.brand_id, body["member_id"])}

    return _answer(run_in_transaction(work))


def active_coupons(session: Session, brand_id: int, member_id: int) -> list[dict[str, Any]]:
    """The member's usable coupons as the till lists them, soonest to expire first."""
    now = context().now
    found = coupons.list_member_coupons(session, brand_id, member_id, status="active", now=now)
    rows = []
    for coupon in sorted(found, key=lambda c: (c.expires_at is None, c.expires_at, c.id)):
        offer = session.get_one(Offer, coupon.offer_id)
        rows.append(
            {
                "barcode": coupon.barcode,
                "code": coupon.code,
                "name": offer.name,
                "kind": offer.kind,
                "value": None if coupon.value is None else decimal_text(coupon.value),
                "item": offer.item,
                "expires_at": None if coupon.expires_at is None else coupon.expires_at.isoformat(),
            }
        )
    return rows


def _redeem_coupon_at_till(
    session: Session, actor: ledger.Actor, data: dict[str, Any], key: str | None
) -> dict[str, Any]:
    outcome = coupons.redeem_coupon(session, actor, barcode=data.get("barcode"),
                                    amount=data.get("amount"), idempotency_key=key,
                                    ctx=context())  # fmt: skip
    coupon = session.get_one(Coupon, outcome.body["coupon_id"])
    offer = session.get_one(Offer, coupon.offer_id)
    program = session.get_one(Program, offer.program_id)
    member = session.get_one(Member, coupon.member_id)
    return {
        **outcome.body,
        "name": member.name,
        "balance": member.points,
        "tier": tier_name(session, member),
        "coupon": {"code": coupon.code, "name": offer.name},
        "currency": program.currency,
        "coupons": active_coupons(session, actor.brand_id, coupon.member_id),
        "replayed": outcome.replayed,
    }


@api.post("/redeem")
def redeem() -> Response:
    """Redeem a reward with the browser's Idempotency-Key."""
    actor = _actor(_api_viewer())
    data = json_body()
    key = request.headers.get("Idempotency-Key")
    body = run_in_transaction(
        lambda s: redeem_at_till(s, actor, barcode=data.get("barcode"),
                                 reward_id=data.get("reward_id"), idempotency_key=key,
                                 ctx=context())
    )  # fmt: skip
    return _answer(body)


@api.post("/coupons/redeem")
def redeem_coupon() -> Response:
    """Redeem a coupon (listed after a scan, or scanned itself) once per Idempotency-Key."""
    actor = _actor(_api_viewer())
    data = json_body()
    key = request.headers.get("Idempotency-Key")
    return _answer(run_in_transaction(lambda s: _redeem_coupon_at_till(s, actor, data, key)))
