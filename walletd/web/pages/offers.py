"""Dashboard offers: the list, the builder with a live coupon preview, issuing, archive, report."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, flash, redirect, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletd.campaigns.segments import PRESETS
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError, WalletdError
from walletd.loyalty.brands import get_program
from walletd.loyalty.money import format_minor
from walletd.loyalty.programs import program_brand_name, program_tiers
from walletd.models import Coupon, Member, Offer, Program
from walletd.models.offer import OFFER_KINDS
from walletd.offers import catalog, coupons, issues, reports
from walletd.passes.pkpass import load_template, render_pass_json
from walletd.passes.view import CardView, CouponView
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages import security
from walletd.web.pages.coupon_text import headline_text
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.forms import MAX_ID, whole_number
from walletd.web.pages.preview import (
    PREVIEW_PASS_TYPE_ID,
    PREVIEW_TEAM_ID,
    hex_color,
    qr_data_uri,
)
from walletd.web.pages.render import _, error_text, render
from walletd.wiring import web_service_url

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TEXT_FIELDS = (
    "name", "kind", "value", "item", "min_spend", "valid_from", "valid_until", "valid_days",
    "per_member_limit", "terms",
)  # fmt: skip


def zone_of(program: Program) -> ZoneInfo:
    """The program's time zone (UTC when its name is unknown)."""
    try:
        return ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# --- reading the builder form -------------------------------------------------------------------


def day_field(text: str, field: str) -> date | None:
    """A day typed as YYYY-MM-DD (years 2000 to 9000), None when blank, else a field error."""
    value = text.strip()
    if not value:
        return None
    if not _DATE.fullmatch(value):
        raise ValidationError(N_("{field} must be a date"), field=field, params={"field": field})
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(
            N_("{field} must be a date"), field=field, params={"field": field}
        ) from exc
    if not 2000 <= day.year <= 9000:
        raise ValidationError(
            N_("{field} must be between the years 2000 and 9000"),
            field=field,
            params={"field": field},
        )
    return day


def _bounded(text: str, field: str, high: int) -> int | None:
    if not text.strip():
        return None
    number = whole_number(text, low=1, high=high)
    if number is None:
        raise ValidationError(
            N_("{field} must be a whole number from 1 to {high}"),
            field=field,
            params={"field": field, "high": high},
        )
    return number


def offer_fields(
    form: MultiDict[str, str], tiers: list[tuple[int, str]], zone: ZoneInfo
) -> dict[str, Any]:
    """The offer fields a builder form describes, as catalog.OfferInput takes them.

    Dates are days of the program's time zone: valid from the start of the first day, until the
    end of the last one.
    """
    kind = form.get("kind", "")
    value_text = form.get("value", "").strip()
    valid_from = day_field(form.get("valid_from", ""), "valid_from")
    valid_until = day_field(form.get("valid_until", ""), "valid_until")
    tier_values: dict[str, object] = {}
    for tier_id, name in tiers:
        text = form.get(f"tier_value-{tier_id}", "").strip()
        if text:
            tier_values[name] = text
    min_spend = form.get("min_spend", "").strip()
    return {
        "name": form.get("name", ""),
        "kind": kind,
        "value": None if kind == "free_item" or not value_text else value_text,
        "item": form.get("item", "") if kind == "free_item" else None,
        "tier_values": tier_values or None,
        "min_spend": min_spend or None,
        "valid_from": None
        if valid_from is None
        else datetime.combine(valid_from, time(), zone).astimezone(UTC),
        "valid_until": None
        if valid_until is None
        else datetime.combine(valid_until + timedelta(days=1), time(), zone).astimezone(UTC),
        "valid_days": _bounded(form.get("valid_days", ""), "valid_days", catalog.MAX_VALID_DAYS),
        "per_member_limit": _bounded(
            form.get("per_member_limit", ""), "per_member_limit", catalog.MAX_PER_MEMBER_LIMIT
        ),
        "terms": form.get("terms", ""),
    }


def _tiers(session: Session, program: Program) -> list[tuple[int, str]]:
    return [(t.id, t.name) for t in program_tiers(session, program.id)]


def form_values(offer: Offer, program: Program) -> dict[str, str]:
    """An offer as the builder form shows it."""
    zone = zone_of(program)
    values = {
        "name": offer.name,
        "kind": offer.kind,
        "value": "" if offer.value is None else catalog.decimal_text(offer.value),
        "item": offer.item or "",
        "min_spend": ""
        if offer.min_spend_minor is None
        else format_minor(offer.min_spend_minor, program.currency),
        "valid_from": ""
        if offer.valid_from is None
        else offer.valid_from.astimezone(zone).date().isoformat(),
        "valid_until": ""
        if offer.valid_until is None
        else (offer.valid_until.astimezone(zone) - timedelta(microseconds=1)).date().isoformat(),
        "valid_days": "" if offer.valid_days is None else str(offer.valid_days),
        "per_member_limit": "" if offer.per_member_limit is None else str(offer.per_member_limit),
        "terms": offer.terms or "",
    }
    return values


# --- the coupon preview -------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewField:
    """A label and value of the coupon as Wallet draws it."""

    key: str
    label: str
    value: str


@dataclass(frozen=True)
class CouponPreview:
    """A coupon pass drawn from the real pass.json of a sample coupon."""

    logo_text: str
    background: str
    foreground: str
    label_color: str
    template: str
    headline: PreviewField
    fields: list[PreviewField]
    back: list[PreviewField]
    barcode_alt: str
    qr_data_uri: str
    currency: str


def _preview_value(raw: str) -> Decimal | None:
    try:
        number = Decimal(raw.strip())
    except ArithmeticError:
        return None
    return number if number.is_finite() and 0 < number < 10**9 else None


def coupon_preview(
    program: Program, brand_name: str, values: dict[str, str], now: datetime
) -> CouponPreview:
    """A sample coupon of the form's offer, rendered by the coupon pass renderer."""
    settings = services().settings
    typed = values.get("kind", "")
    kind = typed if typed in OFFER_KINDS else "percent_off"
    value = None if kind == "free_item" else _preview_value(values.get("value", ""))
    days = whole_number(values.get("valid_days", ""), low=1, high=catalog.MAX_VALID_DAYS)
    expires = now + timedelta(days=days) if days else None
    item = values.get("item", "").strip()[:200] or None
    view = CardView(
        serial_number="SAMPLE00COUPON000000",
        authentication_token="preview-token-not-a-real-coupon",
        barcode_message="WC1.SAMPLE00COUPON000000.PREVIEWPREVIEW00",
        barcode_alt_text="PREVIEW000",
        organization_name=brand_name,
        program_name=program.name,
        member_name=_("Sample Member"),
        points=0,
        tier=None,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        template=program.template,
        updated_at=now,
        program_id=program.id,
        brand_id=program.brand_id,
        kind="coupon",
        coupon=CouponView(
            offer_name=values.get("name", "").strip()[:200] or _("New offer"),
            offer_kind=kind,
            value=value,
            item=item,
            currency=program.currency,
            code="PREVIEW000",
            status="active",
            expires_at=expires,
            terms=values.get("terms", "").strip()[:2000] or None,
            min_spend=None,
        ),
    )
    template = load_template(settings.pass_templates_path, program.template)
    document = render_pass_json(
        view,
        pass_type_id=PREVIEW_PASS_TYPE_ID,
        team_id=PREVIEW_TEAM_ID,
        web_service_url=web_service_url(settings),
        template=template,
    )
    coupon = document["coupon"]
    assert isinstance(coupon, dict)
    labels = {
        "offer_name": _("Offer"),
        "expires": _("Expires"),
        "code": _("Code"),
        "status": _("Status"),
        "terms": _("Terms"),
        "member": _("Member"),
    }

    def fields(section: str) -> list[PreviewField]:
        found = []
        for item in coupon.get(section) or []:
            key = str(item["key"])
            raw = item.get("value", "")
            text = str(raw)[:10] if item.get("dateStyle") else str(raw)
            if key == "status":
                text = _("Active")
            found.append(PreviewField(key, labels.get(key, key), text))
        return found

    back = fields("backFields")
    if not any(f.key == "terms" for f in back):  # a place for the terms the form may get
        back.insert(0, PreviewField("terms", labels["terms"], ""))
    barcode = document["barcodes"][0]  # type: ignore[index]
    return CouponPreview(
        logo_text=str(document.get("logoText", "")),
        background=hex_color(str(document["backgroundColor"])),
        foreground=hex_color(str(document["foregroundColor"])),
        label_color=hex_color(str(document["labelColor"])),
        template=program.template,
        headline=PreviewField(
            "offer", _("Offer"), headline_text(kind, value, item, program.currency)
        ),
        fields=fields("secondaryFields") + fields("auxiliaryFields"),
        back=back,
        barcode_alt=str(barcode.get("altText", "")),
        qr_data_uri=qr_data_uri(str(barcode["message"])),
        currency=program.currency,
    )


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRow:
    """One offer in the list, with its coupon counts."""

    offer: Offer
    headline: str
    issued: int
    redeemed: int


def _headline(offer: Offer, currency: str) -> str:
    return headline_text(offer.kind, offer.value, offer.item, currency)


@bp.get("/offers")
@staff_only
def offers() -> tuple[str, int]:
    """The brand's offers with their state and how many coupons were issued and redeemed."""
    viewer = me()

    def work(session: Session) -> list[OfferRow]:
        program = get_program(session, viewer.brand_id)
        counts: dict[tuple[int, str], int] = {
            (offer_id, status): int(n)
            for offer_id, status, n in session.execute(
                select(Coupon.offer_id, Coupon.status, func.count(Coupon.id))
                .where(Coupon.brand_id == viewer.brand_id)
                .group_by(Coupon.offer_id, Coupon.status)
            ).all()
        }
        return [
            OfferRow(
                offer=o,
                headline=_headline(o, program.currency),
                issued=sum(n for (oid, _s), n in counts.items() if oid == o.id),
                redeemed=counts.get((o.id, "redeemed"), 0),
            )
            for o in catalog.list_offers(session, viewer.brand_id)
        ]

    return render("dashboard/offers.html", rows=run_in_transaction(work))


@dataclass(frozen=True)
class BuilderPage:
    """The offer builder: the form, the program's tiers and the coupon preview."""

    offer_id: int | None
    program: Program
    tiers: list[tuple[int, str]]
    tier_values: dict[str, str]
    preview: CouponPreview


def _builder(
    session: Session, brand_id: int, offer_id: int | None, values: dict[str, str]
) -> BuilderPage:
    program = get_program(session, brand_id)
    if offer_id is not None:
        offer = catalog.get_offer(session, brand_id, offer_id)
        program = session.get_one(Program, offer.program_id)
    tiers = _tiers(session, program)
    return BuilderPage(
        offer_id=offer_id,
        program=program,
        tiers=tiers,
        tier_values={str(tid): values.get(f"tier_value-{tid}", "") for tid, _n in tiers},
        preview=coupon_preview(
            program, program_brand_name(session, program), values, context().now
        ),  # fmt: skip
    )


def _typed(form: MultiDict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != security.CSRF_FIELD}


def _save(offer_id: int | None) -> Any:
    viewer = me()
    values = _typed(request.form)

    def work(session: Session) -> int:
        program = get_program(session, viewer.brand_id)
        if offer_id is not None:
            program = session.get_one(
                Program, catalog.get_offer(session, viewer.brand_id, offer_id).program_id
            )
        fields = offer_fields(request.form, _tiers(session, program), zone_of(program))
        if offer_id is None:
            data = catalog.OfferInput(program_id=program.id, **fields)
            return catalog.create_offer(session, viewer.brand_id, data, context()).id
        return catalog.update_offer(session, viewer.brand_id, offer_id, fields, context()).id

    try:
        saved = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    except ValidationError as exc:
        field = exc.field or "name"
        errors = {"tier_values" if field.startswith("tier_values") else field: error_text(exc)}
        page = run_in_transaction(lambda s: _builder(s, viewer.brand_id, offer_id, values))
        return render("dashboard/offer_form.html", 422, page=page, values=values, errors=errors)
    flash(_("Offer saved."))
    return redirect(url_for("dashboard.offer", offer_id=saved), 303)


@bp.route("/offers/new", methods=["GET", "POST"])
@staff_only
def new_offer() -> Any:
    """Build a new offer with a live preview of its coupon."""
    if request.method == "POST":
        return _save(None)
    viewer = me()
    values = {"kind": "percent_off", "value": "10", "valid_days": "30"}
    page = run_in_transaction(lambda s: _builder(s, viewer.brand_id, None, values))
    return render("dashboard/offer_form.html", page=page, values=values, errors={})


@bp.route("/offers/<int:offer_id>/edit", methods=["GET", "POST"])
@staff_only
def edit_offer(offer_id: int) -> Any:
    """Change an offer; coupons already issued keep their value and expiry."""
    if request.method == "POST":
        return _save(offer_id)
    viewer = me()

    def work(session: Session) -> tuple[BuilderPage, dict[str, str]]:
        offer = catalog.get_offer(session, viewer.brand_id, offer_id)
        program = session.get_one(Program, offer.program_id)
        values = form_values(offer, program)
        by_name = dict(offer.tier_values or {})
        for tier_id, name in _tiers(session, program):
            if name in by_name:
                values[f"tier_value-{tier_id}"] = str(by_name[name])
        return _builder(session, viewer.brand_id, offer_id, values), values

    try:
        page, values = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    return render("dashboard/offer_form.html", page=page, values=values, errors={})


@dataclass(frozen=True)
class OfferPage:
    """One offer: what it gives, its report and the issue form."""

    offer: Offer
    program: Program
    headline: str
    report: dict[str, Any]
    tier_values: list[tuple[str, str]]
    min_spend: str | None
    valid_from: str | None
    valid_until: str | None


def _offer_page(session: Session, brand_id: int, offer_id: int) -> OfferPage:
    offer = catalog.get_offer(session, brand_id, offer_id)
    program = session.get_one(Program, offer.program_id)
    shown = form_values(offer, program)
    return OfferPage(
        offer=offer,
        program=program,
        headline=_headline(offer, program.currency),
        report=reports.offer_report(session, brand_id, offer_id),
        tier_values=[(str(k), str(v)) for k, v in (offer.tier_values or {}).items()],
        min_spend=shown["min_spend"] or None,
        valid_from=shown["valid_from"] or None,
        valid_until=shown["valid_until"] or None,
    )


def _render_offer(
    offer_id: int, status: int = 200, errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> tuple[str, int]:  # fmt: skip
    viewer = me()
    try:
        page = run_in_transaction(lambda s: _offer_page(s, viewer.brand_id, offer_id))
    except NotFoundError:
        abort(404)
    return render("dashboard/offer.html", status, page=page, presets=list(PRESETS),
                  errors=errors or {}, values=values or {"preset": "all"},
                  issue_key=secrets.token_hex(16))  # fmt: skip


@bp.get("/offers/<int:offer_id>")
@staff_only
def offer(offer_id: int) -> tuple[str, int]:
    """An offer's report (issued, redeemed, rate, discount, revenue) and the issue form."""
    return _render_offer(offer_id)


@bp.post("/offers/<int:offer_id>/archive")
@staff_only
def archive_offer(offer_id: int) -> Any:
    """Stop issuing an offer; coupons already issued stay usable until they expire."""
    viewer = me()
    try:
        run_in_transaction(lambda s: catalog.archive_offer(s, viewer.brand_id, offer_id, context()))
    except NotFoundError:
        abort(404)
    flash(_("Offer archived: no more coupons are issued."))
    return redirect(url_for("dashboard.offer", offer_id=offer_id), 303)


def _find_member(session: Session, brand_id: int, text: str) -> Member:
    who = text.strip()
    member: Member | None = None
    if who:
        number = whole_number(who, low=1, high=MAX_ID)
        if number is not None:
            member = session.get(Member, number)
        elif "@" in who and len(who) <= 320:
            member = session.scalars(
                select(Member)
                .where(Member.brand_id == brand_id, func.lower(Member.email) == who.lower())
                .order_by(Member.id)
                .limit(1)
            ).first()
    if member is None or member.brand_id != brand_id or member.erased_at is not None:
        raise ValidationError("no member has this number or e-mail", field="member")
    return member


def issue_to_member(session: Session, brand_id: int, offer_id: int, who: str, form_key: str) -> str:
    """Give one member a coupon; the form's key makes a double submit issue one coupon."""
    offer = catalog.get_offer(session, brand_id, offer_id)
    if offer.status != "active":
        raise ConflictError("the offer is archived; it can no longer be issued")
    member = _find_member(session, brand_id, who)
    if member.program_id != offer.program_id:
        raise ValidationError("the member belongs to another program", field="member")
    token = hashlib.sha256(form_key.encode()).hexdigest()[:40]
    coupon = coupons.issue_coupon(
        session, offer, member, source="manual", occasion=f"manual:{token}", ctx=context()
    )
    if coupon is None:
        already = session.scalar(
            select(func.count(Coupon.id)).where(
                Coupon.offer_id == offer.id,
                Coupon.member_id == member.id,
                Coupon.occasion == f"manual:{token}",
            )
        )
        if already:
            return _("{name} has this coupon.", name=member.name)
        return _("{name} already has as many coupons of this offer as allowed.", name=member.name)
    return _("Coupon {code} issued to {name}.", code=coupon.code, name=member.name)


@bp.post("/offers/<int:offer_id>/issue")
@staff_only
def issue_offer(offer_id: int) -> Any:
    """Issue a coupon to one member (number or e-mail), or to a segment by a batch job."""
    viewer = me()
    values = _typed(request.form)
    target = request.form.get("target", "member")
    form_key = request.form.get("issue_key", "")[:64] or secrets.token_hex(16)

    def work(session: Session) -> str:
        if target == "segment":
            preset = request.form.get("preset", "")
            if preset not in PRESETS:
                raise ValidationError("choose who gets it", field="preset")
            issue = issues.create_issue(session, viewer.brand_id, offer_id,
                                        {"preset": preset}, context())  # fmt: skip
            return _("Issuing to the segment has started (issue {id}).", id=issue.id)
        return issue_to_member(
            session, viewer.brand_id, offer_id, request.form.get("member", ""), form_key
        )

    try:
        message = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    except WalletdError as exc:
        field = exc.field if exc.field in ("member", "preset") else "issue"
        return _render_offer(offer_id, 422, {field: error_text(exc)}, values)
    flash(message)
    return redirect(url_for("dashboard.offer", offer_id=offer_id), 303)
