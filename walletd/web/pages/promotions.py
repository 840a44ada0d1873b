"""Dashboard promotions: list, create, edit and delete windows that multiply earning."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletd.errors import N_, NotFoundError, ValidationError
from walletd.loyalty.brands import get_program
from walletd.loyalty.programs import program_brand_name, program_tiers
from walletd.models import Program, Promotion
from walletd.offers import promotions
from walletd.passes.pkpass import load_template
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages import security
from walletd.web.pages.dashboard import bp, me, sample_view, staff_only
from walletd.web.pages.offers import day_field
from walletd.web.pages.preview import AppleCard, apple_card
from walletd.web.pages.render import _, error_text, language, render
from walletd.wiring import web_service_url

WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))


def promotion_input(form: MultiDict[str, str], tiers: list[str]) -> promotions.PromotionInput:
    """Every field of a promotion from the form; an empty date or list means no restriction."""
    name = form.get("name", "")
    if len(name.strip()) > 200:
        raise ValidationError("name must be 1 to 200 printable characters", field="name")
    starts_on = day_field(form.get("starts_on", ""), "starts_on")
    ends_on = day_field(form.get("ends_on", ""), "ends_on")
    days = [int(d) for d in form.getlist("weekdays") if d in {"1", "2", "3", "4", "5", "6", "7"}]
    chosen = [t for t in form.getlist("tiers") if t in tiers]
    clear = {n for n, v in (("starts_on", starts_on), ("ends_on", ends_on)) if v is None}
    return promotions.PromotionInput(
        name=name,
        multiplier=form.get("multiplier", "").strip(),
        starts_on=starts_on,
        ends_on=ends_on,
        weekdays=days,
        tiers=chosen,
        active=form.get("active") == "yes",
        clear=frozenset(clear),
    )


def form_values(promo: Promotion) -> MultiDict[str, str]:
    """A promotion as its edit form shows it."""
    values: MultiDict[str, str] = MultiDict(
        {
            "name": promo.name,
            "multiplier": promotions.decimal_text(promo.multiplier),
            "starts_on": promo.starts_on.isoformat() if promo.starts_on else "",
            "ends_on": promo.ends_on.isoformat() if promo.ends_on else "",
            "active": "yes" if promo.active else "",
        }
    )
    for day in promo.weekdays or []:
        values.add("weekdays", str(day))
    for tier in promo.tiers or []:
        values.add("tiers", str(tier))
    return values


@dataclass(frozen=True)
class PromotionsPage:
    """The promotions of the brand and what the form can choose from."""

    program: Program
    promotions: list[Promotion]
    tiers: list[str]
    apple: AppleCard


def _tier_names(session: Session, brand_id: int) -> list[str]:
    return [t.name for t in program_tiers(session, get_program(session, brand_id).id)]


def _page(session: Session, brand_id: int, showing: str | None = None) -> PromotionsPage:
    program = get_program(session, brand_id)
    settings = services().settings
    # The card as members see it while the promotion runs (the name typed, or a sample).
    view = dataclasses.replace(
        sample_view(program, program_brand_name(session, program), None, context().now),
        promotion=(showing or "").strip()[:200] or _("Member day"),
    )
    template = load_template(settings.pass_templates_path, program.template)
    return PromotionsPage(
        program=program,
        promotions=promotions.list_promotions(session, brand_id),
        tiers=[t.name for t in program_tiers(session, program.id)],
        apple=apple_card(view, template, language=language(),
                         web_service_url=web_service_url(settings)),
    )  # fmt: skip


def _typed(form: MultiDict[str, str]) -> MultiDict[str, str]:
    return MultiDict([(k, v) for k, v in form.items(multi=True) if k != security.CSRF_FIELD])


@bp.route("/promotions", methods=["GET", "POST"])
@staff_only
def promotions_page() -> Any:
    """The brand's promotions and the form for a new one."""
    viewer = me()
    values: MultiDict[str, str] = MultiDict({"multiplier": "2", "active": "yes"})
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _typed(request.form)
        ctx = context()

        def work(session: Session) -> None:
            data = promotion_input(request.form, _tier_names(session, viewer.brand_id))
            promotions.create_promotion(session, viewer.brand_id, data, ctx)

        try:
            run_in_transaction(work)
        except ValidationError as exc:
            errors[exc.field or "name"] = error_text(exc)
        else:
            flash(_("Promotion saved."))
            return redirect(url_for("dashboard.promotions_page"), 303)
    page = run_in_transaction(lambda s: _page(s, viewer.brand_id, values.get("name")))
    return render("dashboard/promotions.html", 422 if errors else 200, page=page, values=values,
                  errors=errors, weekdays=WEEKDAYS, editing=None)  # fmt: skip


@bp.route("/promotions/<int:promotion_id>", methods=["GET", "POST"])
@staff_only
def promotion(promotion_id: int) -> Any:
    """Edit one promotion."""
    viewer = me()
    errors: dict[str, str] = {}
    try:
        promo_values = run_in_transaction(
            lambda s: form_values(promotions.get_promotion(s, viewer.brand_id, promotion_id))
        )
    except NotFoundError:
        abort(404)
    values = promo_values
    if request.method == "POST":
        values = _typed(request.form)
        ctx = context()

        def work(session: Session) -> None:
            data = promotion_input(request.form, _tier_names(session, viewer.brand_id))
            promotions.update_promotion(session, viewer.brand_id, promotion_id, data, ctx)

        try:
            run_in_transaction(work)
        except NotFoundError:
            abort(404)
        except ValidationError as exc:
            errors[exc.field or "name"] = error_text(exc)
        else:
            flash(_("Promotion saved."))
            return redirect(url_for("dashboard.promotions_page"), 303)
    page = run_in_transaction(lambda s: _page(s, viewer.brand_id, values.get("name")))
    return render("dashboard/promotions.html", 422 if errors else 200, page=page, values=values,
                  errors=errors, weekdays=WEEKDAYS, editing=promotion_id)  # fmt: skip


@bp.post("/promotions/<int:promotion_id>/delete")
@staff_only
def delete_promotion(promotion_id: int) -> Any:
    """Delete a promotion; scans it multiplied keep their points."""
    viewer = me()
    try:
        run_in_transaction(
            lambda s: promotions.delete_promotion(s, viewer.brand_id, promotion_id, context())
        )
    except NotFoundError:
        abort(404)
    flash(_("Promotion deleted."))
    return redirect(url_for("dashboard.promotions_page"), 303)
