"""Promotions (earning multipliers) and a program's stamp card under /api/v1 (admin keys)."""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy.orm import Session

from walletd.loyalty.money import format_minor
from walletd.models import Program
from walletd.models.offer import Promotion
from walletd.offers import promotions, stamps
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction
from walletd.web.endpoint import endpoint
from walletd.web.promotion_schemas import (
    PromotionCreate,
    PromotionList,
    PromotionOut,
    PromotionUpdate,
    StampsOut,
    StampsUpdate,
)

bp = Blueprint("promotions", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
# Fields a PATCH may clear with an explicit null ("no restriction" / "no limit").
CLEARABLE = ("starts_on", "ends_on", "weekdays", "tiers", "location_ids")


def _body(promo: Promotion) -> PromotionOut:
    return PromotionOut(
        id=promo.id,
        program_id=promo.program_id,
        name=promo.name,
        multiplier=promotions.decimal_text(promo.multiplier),
        starts_on=promo.starts_on,
        ends_on=promo.ends_on,
        weekdays=list(promo.weekdays or []),
        tiers=list(promo.tiers or []),
        location_ids=list(promo.location_ids or []),
        active=promo.active,
    )


def _input(body: PromotionCreate | PromotionUpdate) -> promotions.PromotionInput:
    fields = body.model_fields_set
    return promotions.PromotionInput(
        program_id=body.program_id,
        name=body.name,
        multiplier=body.multiplier,
        starts_on=body.starts_on,
        ends_on=body.ends_on,
        weekdays=body.weekdays,
        tiers=body.tiers,
        location_ids=body.location_ids,
        active=body.active,
        clear=frozenset(f for f in CLEARABLE if f in fields and getattr(body, f) is None),
    )


@bp.post("/promotions")
@endpoint(
    "Create a promotion that multiplies earning",
    tag="promotions",
    roles=ADMIN,
    body=PromotionCreate,
    response=PromotionOut,
    status=201,
)
def create_promotion(body: PromotionCreate) -> PromotionOut:
    """Create a promotion (member day, double-points weekend...)."""
    brand_id = principal().brand_id
    data = _input(body)
    return run_in_transaction(
        lambda s: _body(promotions.create_promotion(s, brand_id, data, context()))
    )


@bp.get("/promotions")
@endpoint("The brand's promotions", tag="promotions", roles=ADMIN, response=PromotionList)
def list_promotions() -> PromotionList:
    """Every promotion of the brand, oldest first."""
    brand_id = principal().brand_id
    rows = run_in_transaction(lambda s: [_body(p) for p in promotions.list_promotions(s, brand_id)])
    return PromotionList(promotions=rows)


@bp.patch("/promotions/<int:promotion_id>")
@endpoint(
    "Change a promotion (null clears a date or a restriction)",
    tag="promotions",
    roles=ADMIN,
    body=PromotionUpdate,
    response=PromotionOut,
)
def update_promotion(promotion_id: int, body: PromotionUpdate) -> PromotionOut:
    """Change some fields of a promotion."""
    brand_id = principal().brand_id
    data = _input(body)
    return run_in_transaction(
        lambda s: _body(promotions.update_promotion(s, brand_id, promotion_id, data, context()))
    )


@bp.delete("/promotions/<int:promotion_id>")
@endpoint("Delete a promotion", tag="promotions", roles=ADMIN, status=204, media_type="")
def delete_promotion(promotion_id: int) -> Response:
    """Delete a promotion; scans it multiplied keep their points."""
    brand_id = principal().brand_id
    run_in_transaction(lambda s: promotions.delete_promotion(s, brand_id, promotion_id, context()))
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response


def _stamps_body(program: Program) -> StampsOut:
    minimum = program.stamps_min_spend_minor
    return StampsOut(
        program_id=program.id,
        enabled=program.stamps_enabled,
        stamps_per_reward=program.stamps_per_reward,
        min_spend=None if minimum is None else format_minor(minimum, program.currency),
        offer_id=program.stamps_offer_id,
    )


@bp.put("/programs/<int:program_id>/stamps")
@endpoint(
    "Set the program's stamp card (a stamp per visit; a full card issues an offer)",
    tag="promotions",
    roles=ADMIN,
    body=StampsUpdate,
    response=StampsOut,
)
def update_stamps(program_id: int, body: StampsUpdate) -> StampsOut:
    """Switch the stamp card on or off and set its size, minimum spend and offer."""
    brand_id = principal().brand_id

    def work(session: Session) -> StampsOut:
        program = stamps.set_stamps(
            session, brand_id, program_id, enabled=body.enabled,
            stamps_per_reward=body.stamps_per_reward, min_spend=body.min_spend,
            offer_id=body.offer_id,
        )  # fmt: skip
        return _stamps_body(program)

    return run_in_transaction(work)
