"""The brand dashboard: overview, members, program editor, campaigns, automations, exports."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.admin.actors import ActorRef, actor_pair, actor_refs
from walletd.campaigns import automations, reports, service
from walletd.campaigns.segments import PRESETS, count_segment, parse_segment
from walletd.errors import NotFoundError, ValidationError, WalletdError
from walletd.loyalty import activity, ledger, program_settings
from walletd.loyalty.brands import get_program
from walletd.loyalty.members import get_card_of, get_member, tier_name
from walletd.loyalty.programs import (
    ProgramChanges,
    RewardChange,
    TierChange,
    active_offer_choices,
    program_brand_name,
    program_rewards,
    program_tiers,
    referral_min_purchase_text,
    threshold_text,
)
from walletd.members import listing
from walletd.models import Campaign, LedgerEntry, Member, Program
from walletd.passes.pkpass import list_templates, load_template
from walletd.passes.view import CardView
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages import message_languages, security
from walletd.web.pages.cashier import log_in_from_form, login_form
from walletd.web.pages.charts import BarChart, daily_bars
from walletd.web.pages.customer import card_page_url
from walletd.web.pages.forms import MAX_ID, whole_number
from walletd.web.pages.preview import AppleCard, GoogleCard, apple_card, google_card, qr_data_uri
from walletd.web.pages.render import _, add_error_pages, error_text, language, ngettext, render
from walletd.web.pages.security import Viewer, current_viewer, require_viewer
from walletd.wiring import web_service_url

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
add_error_pages(bp)
ADMIN = ("admin",)
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Dashboard pages are for staff accounts with the admin role (not API keys)."""
    guarded = require_viewer(*ADMIN, login_endpoint="dashboard.login")(view)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        viewer = current_viewer()
        if viewer is not None and viewer.kind != "staff":
            abort(403)
        return guarded(*args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def me() -> Viewer:
    """The logged-in staff member of this request."""
    viewer = current_viewer()
    assert viewer is not None
    return viewer


# --- login --------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Staff log in with e-mail and password."""
    if request.method == "POST":
        return log_in_from_form("dashboard", ADMIN, allow_key=False)
    return login_form("dashboard")


@bp.post("/logout")
def logout() -> WerkzeugResponse:
    """End the session."""
    security.log_out()
    return redirect(url_for("dashboard.login"), 303)


# --- overview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """The overview page."""

    brand_name: str
    program: Program
    overview: activity.Overview
    summary: dict[str, Any]
    scans: BarChart
    joins: BarChart
    join_url: str


@bp.get("")
@staff_only
def home() -> tuple[str, int]:
    """Members, active members, repeat-customer rate, scans and enrollments per day."""
    viewer = me()
    now = context().now
    base = services().settings.base_url

    def work(session: Session) -> Home:
        program = get_program(session, viewer.brand_id)
        overview = activity.overview(session, viewer.brand_id, now)
        start = now.date() - timedelta(days=29)
        return Home(
            brand_name=program_brand_name(session, program),
            program=program,
            overview=overview,
            summary=reports.summary(session, viewer.brand_id, start, now.date()),
            scans=daily_bars(overview.scans_per_day),
            joins=daily_bars(overview.joins_per_day),
            join_url=f"{base}{url_for('customer.join', program_id=program.id)}",
        )

    return render("dashboard/home.html", home=run_in_transaction(work))


@bp.get("/poster")
@staff_only
def poster() -> tuple[str, int]:
    """A printable poster with the QR code of the program's enrollment link."""
    viewer = me()
    base = services().settings.base_url

    def work(session: Session) -> tuple[Program, str]:
        program = get_program(session, viewer.brand_id)
        return program, program_brand_name(session, program)

    program, brand_name = run_in_transaction(work)
    join_url = f"{base}{url_for('customer.join', program_id=program.id)}"
    qr = qr_data_uri(join_url, 12)
    return render("dashboard/poster.html", program=program, brand_name=brand_name,
                  join_url=join_url, qr=qr)  # fmt: skip


# --- members ------------------------------------------------------------------------------------


@bp.get("/members")
@staff_only
def members() -> tuple[str, int]:
    """Search members by name, e-mail, phone, referral code or id, newest first, in pages."""
    viewer = me()
    query = request.args.get("q", "")[: listing.MAX_SEARCH]
    after = whole_number(request.args.get("after", ""), low=1, high=MAX_ID)
    region = context().phone_region
    found = run_in_transaction(
        lambda s: listing.list_members(
            s, viewer.brand_id, listing.MemberFilters(search=query), phone_region=region,
            after=after, newest_first=True,
        )
    )  # fmt: skip
    return render("dashboard/members.html", members=found.members, query=query,
                  next_after=found.next_after, paged=after is not None)  # fmt: skip


@dataclass(frozen=True)
class MemberPage:
    """One member with their ledger."""

    member: Member
    tier: str | None
    entries: list[LedgerEntry]
    card_url: str
    currency: str
    # Who made each entry (by entry id): a staff account or a key; absent when walletd did.
    actors: dict[int, ActorRef]
    # The entry id the next (older) page of the ledger starts after; None on the last page.
    older_after: int | None = None
    paged: bool = False
    # The program's time zone: the ledger's times are shown in it.
    timezone: str = "UTC"
    devices: Any = None  # [delivery] walletd.web.pages.delivery.DevicesPanel
    email: Any = None  # [email] walletd.web.pages.member_email.EmailPanel
    coupons: Any = None  # walletd.web.pages.member_coupons.CouponsPanel


def _member_page(
    session: Session, brand_id: int, member_id: int, after: int | None = None
) -> MemberPage:
    member = get_member(session, brand_id, member_id)
    card = get_card_of(session, member)
    program = session.get_one(Program, member.program_id)
    try:
        found = listing.ledger_page(session, brand_id, member_id, after=after,
                                    limit=listing.MAX_PAGE)  # fmt: skip
    except ValidationError:
        found = listing.ledger_page(session, brand_id, member_id, limit=listing.MAX_PAGE)
        after = None
    entries = found.entries
    refs = actor_refs(session, brand_id, [actor_pair(e) for e in entries])
    return MemberPage(
        member=member,
        tier=tier_name(session, member),
        entries=entries,
        card_url=card_page_url(card.serial_number),
        currency=program.currency,
        actors={e.id: refs[actor_pair(e)] for e in entries if refs[actor_pair(e)].kind},
        older_after=found.next_after,
        paged=after is not None,
        timezone=program.timezone,
        devices=_devices_panel(session, member),  # [delivery]
        email=_email_panel(session, member),  # [email]
        coupons=_coupons_panel(session, member),
    )


def _coupons_panel(session: Session, member: Member) -> Any:
    """The member page's coupons (its module adds the void route to this blueprint)."""
    from walletd.web.pages.member_coupons import coupons_panel

    return coupons_panel(session, member, context().now)


def _email_panel(session: Session, member: Member) -> Any:
    """[email] The member page's e-mail panel (its module adds routes to this blueprint)."""
    from walletd.web.pages.member_email import email_panel

    return email_panel(session, member)


def _devices_panel(session: Session, member: Member) -> Any:
    """[delivery] The member page's devices: each phone's version of the card."""
    from walletd.web.pages.delivery import devices_panel

    return devices_panel(session, member)


def member_action(
    member_id: int, work: Callable[[Session], object], done: str, panel: str
) -> WerkzeugResponse:
    """Run a member page form's work in one transaction and go back to its panel: 404 when the
    member (or the row the form names) is not the brand's, else the refusal's text or `done`
    as the flash message."""
    try:
        run_in_transaction(work)
    except NotFoundError:
        abort(404)
    except WalletdError as exc:
        flash(error_text(exc))
    else:
        flash(done)
    return redirect(url_for("dashboard.member", member_id=member_id) + f"#{panel}", 303)


@bp.get("/members/<int:member_id>")
@staff_only
def member(member_id: int) -> tuple[str, int]:
    """A member's details, card link and ledger, with the points adjustment form."""
    viewer = me()
    after = whole_number(request.args.get("after", ""), low=1, high=MAX_ID)
    try:
        page = run_in_transaction(lambda s: _member_page(s, viewer.brand_id, member_id, after))
    except NotFoundError:
        abort(404)
    return render("dashboard/member.html", page=page, errors={}, values={})


@bp.post("/members/<int:member_id>/adjust")
@staff_only
def adjust(member_id: int) -> Any:
    """Add or take points with a reason."""
    viewer = me()
    values = {"points": request.form.get("points", ""), "reason": request.form.get("reason", "")}
    # Not a whole number: 0, which the service refuses with its "non-zero whole number" message.
    points = whole_number(values["points"], low=-MAX_ID, high=MAX_ID) or 0
    actor = viewer.actor
    try:
        run_in_transaction(
            lambda s: ledger.adjust_points(s, actor, member_id, points, values["reason"],
                                           context())
        )  # fmt: skip
    except NotFoundError:
        abort(404)
    except WalletdError as exc:
        page = run_in_transaction(lambda s: _member_page(s, viewer.brand_id, member_id))
        errors = {exc.field or "points": error_text(exc)}
        return render("dashboard/member.html", 422, page=page, errors=errors, values=values)
    flash(_("Points adjusted."))
    return redirect(url_for("dashboard.member", member_id=member_id), 303)


# --- program ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramPage:
    """The program editor with the preview of both wallets' cards."""

    program: Program
    brand_name: str
    tiers: list[dict[str, str]]
    rewards: list[dict[str, str]]
    templates: list[str]
    referral_minimum: str
    offers: list[tuple[int, str]]
    apple: AppleCard
    google: GoogleCard
    join_url: str
    quiet_hours: dict[str, str] | None = None
    time_zones: tuple[str, ...] = ()


def sample_view(program: Program, brand_name: str, tier: str | None, now: datetime) -> CardView:
    """A made-up member's card of the program, for previews."""
    return CardView(
        serial_number="SAMPLE00PREVIEW00000",
        authentication_token="preview-token-not-a-real-card",
        barcode_message="WD1.SAMPLE00PREVIEW00000.PREVIEW",
        barcode_alt_text="PREVIEW0",
        organization_name=brand_name,
        program_name=program.name,
        member_name=_("Sample Member"),
        points=1240,
        tier=tier,
        background_color=program.background_color,
        foreground_color=program.foreground_color,
        label_color=program.label_color,
        template=program.template,
        updated_at=now,
        member_since=now.date().isoformat(),
        program_id=program.id,
        brand_id=program.brand_id,
    )


def _program_page(
    session: Session, brand_id: int, form: MultiDict[str, str] | None, lang: str
) -> ProgramPage:
    settings = services().settings
    program = get_program(session, brand_id)
    brand_name = program_brand_name(session, program)
    tiers = [
        {"id": str(t.id), "name": t.name, "threshold": threshold_text(program, t.threshold),
         "multiplier": str(t.multiplier.normalize()),
         "discount": f"{t.member_discount_percent.normalize():f}",
         "benefits": t.benefits or ""}
        for t in program_tiers(session, program.id)
    ]  # fmt: skip
    rewards = [
        {"id": str(r.id), "name": r.name, "cost_points": str(r.cost_points),
         "active": "yes" if r.active else ""}
        for r in program_rewards(session, program.id)
    ]  # fmt: skip
    if form is not None:  # a refused form shows what was typed, not what is stored
        tiers = [
            {k: form.get(f"tier-{i}-{k}", "") for k in TIER_FIELDS}
            for i in range(_rows(form, "tier"))
        ]
        rewards = [
            {k: form.get(f"reward-{i}-{k}", "") for k in ("id", "name", "cost_points", "active")}
            for i in range(_rows(form, "reward"))
        ]
    view = sample_view(program, brand_name, tiers[1]["name"] if len(tiers) > 1 else None,
                        context().now)  # fmt: skip
    template = load_template(settings.pass_templates_path, program.template)
    return ProgramPage(
        program=program,
        brand_name=brand_name,
        tiers=tiers + [{"id": "", "name": "", "threshold": "", "multiplier": "1",
                        "discount": "0", "benefits": ""}],
        rewards=rewards + [{"id": "", "name": "", "cost_points": "", "active": "yes"}],
        templates=list_templates(settings.pass_templates_path),
        referral_minimum=referral_min_purchase_text(program),
        offers=active_offer_choices(session, program.id),
        apple=apple_card(view, template, language=lang, web_service_url=web_service_url(settings)),
        google=google_card(view, issuer_id=settings.google_issuer_id,
                           logo_uri=url_for("pages.template_image", name=program.template,
                                            filename="logo@2x.png"),
                           language=lang),
        join_url=url_for("customer.join", program_id=program.id),
        quiet_hours=program_settings.quiet_hours_of(program),
        time_zones=program_settings.time_zone_names(),
    )  # fmt: skip


TIER_FIELDS = ("id", "name", "threshold", "multiplier", "discount", "benefits")


def _rows(form: MultiDict[str, str], kind: str) -> int:
    count = 0
    while count < 50 and any(f"{kind}-{count}-{k}" in form for k in ("id", "name")):
        count += 1
    return count


def _optional_id(text: str) -> int | None:
    # Blank is a new row; anything but a known id is 0, which update_program reports as unknown.
    if not text.strip():
        return None
    return whole_number(text, low=1, high=MAX_ID) or 0


def _program_changes(form: MultiDict[str, str]) -> ProgramChanges:
    tiers = [
        TierChange(
            id=_optional_id(form.get(f"tier-{i}-id", "")),
            name=form.get(f"tier-{i}-name", ""),
            threshold=form.get(f"tier-{i}-threshold", ""),
            multiplier=form.get(f"tier-{i}-multiplier", "1") or "1",
            member_discount_percent=form.get(f"tier-{i}-discount", "0") or "0",
            benefits=form.get(f"tier-{i}-benefits", ""),
            delete=form.get(f"tier-{i}-delete") == "yes",
        )
        for i in range(_rows(form, "tier"))
    ]
    rewards = [
        RewardChange(
            id=_optional_id(form.get(f"reward-{i}-id", "")),
            name=form.get(f"reward-{i}-name", ""),
            cost_points=form.get(f"reward-{i}-cost_points", ""),
            active=form.get(f"reward-{i}-active") == "yes",
        )
        for i in range(_rows(form, "reward"))
    ]
    text = {
        key: form.get(key, "")
        for key in (
            "name", "points_per_unit", "rounding", "welcome_bonus", "birthday_bonus",
            "referral_bonus_referrer", "referral_bonus_referee", "referral_min_purchase",
            "referral_offer_id",
            "points_expiry_months",
            "tier_basis", "background_color", "foreground_color", "label_color", "template",
        )
    }  # fmt: skip
    return ProgramChanges(**text, tiers=tiers, rewards=rewards)


# The form's names of the settings' error fields.
_SETTING_FIELDS = {"quiet_hours.start": "quiet_start", "quiet_hours.end": "quiet_end"}


def _form_number(text: str) -> object:
    # Digits become an int for the service to bound; anything else goes as text, which the
    # service refuses with the field's error.
    value = text.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else value


def _program_settings(form: MultiDict[str, str]) -> dict[str, Any]:
    """The settings a program form sends; a field the form leaves out stays as it is."""
    settings: dict[str, Any] = {}
    if "timezone" in form:
        settings["timezone"] = form["timezone"].strip()
    if "quiet_start" in form or "quiet_end" in form:
        start, end = form.get("quiet_start", "").strip(), form.get("quiet_end", "").strip()
        settings["quiet_hours"] = {"start": start, "end": end} if start or end else None
    for key in ("weekly_message_cap", "refund_window_days"):
        if key in form:
            settings[key] = _form_number(form[key])
    if "max_points_per_scan" in form:
        cap = form["max_points_per_scan"].strip()
        settings["max_points_per_scan"] = _form_number(cap) if cap else None
    if "default_language" in form:
        settings["default_language"] = form["default_language"] or None
    return settings


@bp.route("/program", methods=["GET", "POST"])
@staff_only
def program() -> Any:
    """Edit earning, bonuses, tiers, rewards, card design, time zone, quiet hours, caps, refund
    window and language, with a live preview."""
    viewer = me()
    lang = language()
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        changes = _program_changes(request.form)
        settings = _program_settings(request.form)
        templates = list_templates(services().settings.pass_templates_path)
        try:
            touched = run_in_transaction(
                lambda s: program_settings.save_program_form(
                    s, viewer.actor, get_program(s, viewer.brand_id).id, changes, settings,
                    context(), templates=templates,
                )
            )  # fmt: skip
        except ValidationError as exc:
            field = exc.field or "name"
            errors[_SETTING_FIELDS.get(field, field)] = error_text(exc)
            values = {k: v for k, v in request.form.items() if k != security.CSRF_FIELD}
            page = run_in_transaction(
                lambda s: _program_page(s, viewer.brand_id, request.form, lang)
            )
            return render("dashboard/program.html", 422, page=page, errors=errors, values=values)
        flash(
            ngettext(
                "Program saved; {num} card will refresh.",
                "Program saved; {num} cards will refresh.",
                touched,
            )
        )
        return redirect(url_for("dashboard.program"), 303)
    page = run_in_transaction(lambda s: _program_page(s, viewer.brand_id, None, lang))
    return render("dashboard/program.html", page=page, errors=errors, values=values)


# --- campaigns ----------------------------------------------------------------------------------


def _zone(program: Program) -> ZoneInfo:
    try:
        return ZoneInfo(program.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _campaign_data(form: MultiDict[str, str], program: Program) -> dict[str, Any]:
    preset = form.get("preset", "all")
    advanced = form.get("segment_json", "").strip()
    segment: Any = {"preset": preset}
    if advanced:
        import json

        try:
            segment = json.loads(advanced)
        except ValueError as exc:
            raise ValidationError("the filter is not valid JSON", field="segment") from exc
    data: dict[str, Any] = {
        "name": form.get("name", ""),
        "message": form.get("message", ""),
        "messages": message_languages.form_messages(form),
        "segment": segment,
        "program_id": program.id,
        "draft": form.get("draft") == "yes",
        "email_fallback": form.get("email_fallback") == "yes",  # [email-campaigns]
    }
    send_at = form.get("send_at", "").strip()
    if send_at:
        try:
            local = datetime.fromisoformat(send_at)
        except ValueError as exc:
            raise ValidationError("send time must be a date and time", field="send_at") from exc
        data["send_at"] = local.replace(tzinfo=local.tzinfo or _zone(program)).isoformat()
    holdout = whole_number(form.get("holdout_percent", "").strip() or "0", low=0, high=50)
    if holdout is None:
        raise ValidationError("holdout must be a whole number from 0 to 50",
                              field="holdout_percent")  # fmt: skip
    data["holdout_percent"] = holdout
    return data


@bp.get("/campaigns")
@staff_only
def campaigns() -> tuple[str, int]:
    """The brand's campaigns, newest first, with the form for a new one."""
    viewer = me()

    def work(session: Session) -> tuple[list[Campaign], Program]:
        return service.list_campaigns(session, viewer.brand_id), get_program(
            session, viewer.brand_id
        )

    found, program = run_in_transaction(work)
    return render("dashboard/campaigns.html", campaigns=found, program=program,
                  presets=list(PRESETS), values={"preset": "all"}, errors={},
                  segment_size=None,
                  message_languages=message_languages.extra_languages(program.default_language),
                  previews=[])  # fmt: skip


@bp.post("/campaigns")
@staff_only
def create_campaign() -> Any:
    """Preview the audience of the form's segment, or create the campaign."""
    viewer = me()
    values = {k: v for k, v in request.form.items() if k != security.CSRF_FIELD}
    preview_only = request.form.get("action") == "preview"
    now = context().now

    def work(session: Session) -> tuple[Program, list[Campaign], int | None, int | None]:
        program = get_program(session, viewer.brand_id)
        data = _campaign_data(request.form, program)
        size = count_segment(session, viewer.brand_id, parse_segment(data["segment"]), now,
                             program.id)  # fmt: skip
        if preview_only:
            return program, service.list_campaigns(session, viewer.brand_id), size, None
        campaign = service.create_campaign(session, viewer.brand_id, data, context(),
                                           actor=viewer.actor)  # fmt: skip
        return program, [], size, campaign.id

    errors: dict[str, str] = {}
    size: int | None = None
    try:
        program, found, size, created = run_in_transaction(work)
    except ValidationError as exc:
        # A segment's field is a path ("segment.and[1].value"): shown beside the segment field.
        errors[(exc.field or "name").split(".")[0].split("[")[0]] = error_text(exc)
        created = None
        program, found = run_in_transaction(
            lambda s: (get_program(s, viewer.brand_id), service.list_campaigns(s, viewer.brand_id))
        )
    if created is not None:
        flash(_("Campaign created."))
        return redirect(url_for("dashboard.campaign", campaign_id=created), 303)
    texts = message_languages.form_messages(request.form)
    previews = (
        message_languages.previews(request.form.get("message", ""), texts) if preview_only else []
    )
    return render("dashboard/campaigns.html", 422 if errors else 200, campaigns=found,
                  program=program, presets=list(PRESETS), values=values, errors=errors,
                  segment_size=size, previews=previews,
                  message_languages=message_languages.extra_languages(
                      program.default_language, texts
                  ),
                  )  # fmt: skip


@bp.get("/campaigns/<int:campaign_id>")
@staff_only
def campaign(campaign_id: int) -> tuple[str, int]:
    """A campaign's progress: recipients, deliveries, skips, expected finish."""
    viewer = me()
    now = context().now
    try:
        stats = run_in_transaction(
            lambda s: service.campaign_stats(
                s, service.get_campaign(s, viewer.brand_id, campaign_id), now
            )
        )
    except NotFoundError:
        abort(404)
    return render("dashboard/campaign.html", stats=stats)


@bp.post("/campaigns/<int:campaign_id>/cancel")
@staff_only
def cancel_campaign(campaign_id: int) -> Any:
    """Stop a campaign: nothing more is sent."""
    viewer = me()
    try:
        run_in_transaction(
            lambda s: service.cancel_campaign(s, viewer.brand_id, campaign_id, context())
        )
    except NotFoundError:
        abort(404)
    except WalletdError as exc:
        flash(error_text(exc))
    else:
        flash(_("Campaign cancelled."))
    return redirect(url_for("dashboard.campaign", campaign_id=campaign_id), 303)


# --- automations --------------------------------------------------------------------------------


@bp.get("/automations")
@staff_only
def automations_page() -> tuple[str, int]:
    """Switch automatic messages on and off and edit their texts."""
    viewer = me()

    def work(session: Session) -> tuple[list[Any], str | None]:
        program = get_program(session, viewer.brand_id)
        return automations.list_automations(session, program.id), program.default_language

    found, default_language = run_in_transaction(work)
    return render("dashboard/automations.html", automations=found, errors={},
                  default_language=default_language,
                  extra_languages=message_languages.extra_languages)  # fmt: skip


@bp.post("/automations/<kind>")
@staff_only
def set_automation(kind: str) -> Any:
    """Save one automation."""
    viewer = me()
    delay_text = request.form.get("delay_days", "").strip()
    delay_days = whole_number(delay_text, low=0, high=365) if delay_text else None
    now = context().now

    def work(session: Session) -> None:
        program = get_program(session, viewer.brand_id)
        if delay_text and delay_days is None:
            raise ValidationError("delay_days must be 0 to 365", field="delay_days")
        automations.set_automation(
            session, viewer.brand_id, program.id, kind,
            enabled=request.form.get("enabled") == "yes",
            message=request.form.get("message"),
            messages=message_languages.form_messages(request.form),
            delay_days=delay_days,
            now=now,
            email=request.form.get("email_fallback") == "yes",  # [email-campaigns]
        )  # fmt: skip

    try:
        run_in_transaction(work)
    except NotFoundError:
        abort(404)
    except ValidationError as exc:
        found, default_language = run_in_transaction(
            lambda s: (
                automations.list_automations(s, get_program(s, viewer.brand_id).id),
                get_program(s, viewer.brand_id).default_language,
            )
        )
        errors = {kind: {exc.field or "message": error_text(exc)}}
        return render("dashboard/automations.html", 422, automations=found, errors=errors,
                      default_language=default_language,
                      extra_languages=message_languages.extra_languages)  # fmt: skip
    flash(_("Automation saved."))
    return redirect(url_for("dashboard.automations_page") + f"#automation-{kind}", 303)


# --- exports ------------------------------------------------------------------------------------


def _cell(value: str) -> str:
    # Spreadsheets run cells starting with = + - @ as formulas: quote text that looks like one.
    if _FORMULA.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def _fetch_after(
    fetch: Callable[[Session, int], list[list[str]]], after: int, session: Session
) -> list[list[str]]:
    return fetch(session, after)


def _csv_stream(
    header: list[str], fetch: Callable[[Session, int], list[list[str]]]
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    last = 0
    while True:
        rows = run_in_transaction(functools.partial(_fetch_after, fetch, last))
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([[_cell(c) for c in row] for row in rows])
        yield buffer.getvalue()
        last = int(rows[-1][0])


def _csv_response(name: str, body: Iterator[str]) -> Response:
    response = Response(stream_with_context(body), mimetype="text/csv")
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


@bp.get("/export/members.csv")
@staff_only
def export_members() -> Response:
    """Every member of the brand as CSV, streamed in chunks."""
    viewer = me()
    currency = run_in_transaction(lambda s: get_program(s, viewer.brand_id).currency)
    return _csv_response(
        "members",
        _csv_stream(
            activity.MEMBER_COLUMNS,
            lambda s, last: activity.member_rows(s, viewer.brand_id, currency, after_id=last),
        ),
    )


@bp.get("/export/ledger.csv")
@staff_only
def export_ledger() -> Response:
    """Every ledger entry of the brand as CSV, streamed in chunks."""
    viewer = me()
    return _csv_response(
        "ledger",
        _csv_stream(
            activity.LEDGER_COLUMNS,
            lambda s, last: activity.ledger_rows(s, viewer.brand_id, after_id=last),
        ),
    )


from walletd.web.pages import enrollment_poster  # noqa: E402,F401 [enrollment] its route
