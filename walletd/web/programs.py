"""Program settings and the rewards list under /api/v1."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy.orm import Session

from walletd.loyalty import program_settings, programs
from walletd.loyalty.brands import get_program
from walletd.models import Program
from walletd.passes.pkpass import list_templates
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.endpoint import endpoint
from walletd.web.program_schemas import (
    ProgramOut,
    ProgramUpdate,
    RewardList,
    RewardOut,
    RewardQuery,
)

bp = Blueprint("programs", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
TILL = ("cashier", "admin")


@bp.get("/programs/<int:program_id>")
@endpoint("A program's settings", tag="programs", roles=ADMIN, response=ProgramOut)
def get_program_settings(program_id: int) -> dict[str, Any]:
    """Every setting of one of the brand's programs."""
    brand_id = principal().brand_id
    return run_in_transaction(
        lambda s: program_settings.settings_of(s, get_program(s, brand_id, program_id))
    )


@bp.patch("/programs/<int:program_id>")
@endpoint(
    "Change some of a program's settings (cards are updated when what they show changes)",
    tag="programs",
    roles=ADMIN,
    body=ProgramUpdate,
    response=ProgramOut,
)
def update_program_settings(program_id: int, body: ProgramUpdate) -> dict[str, Any]:
    """Apply the fields sent, audited; the answer is every setting after the change."""
    actor = principal().actor
    changes = body.model_dump(include=body.model_fields_set, mode="json")
    templates = list_templates(services().settings.pass_templates_path)

    def work(session: Session) -> dict[str, Any]:
        done = program_settings.update_program_settings(
            session, actor, program_id, changes, context(), templates=templates
        )
        return program_settings.settings_of(session, done.program)

    return run_in_transaction(work)


@bp.get("/rewards")
@endpoint("The brand's rewards (for tills too)", tag="programs", roles=TILL, query=RewardQuery,
          response=RewardList)  # fmt: skip
def list_rewards(query: RewardQuery) -> RewardList:
    """Every reward of the brand's programs, or of one program, cheapest first."""
    brand_id = principal().brand_id
    program_id = query.program_id

    def work(session: Session) -> list[RewardOut]:
        chosen: list[Program] = (
            [get_program(session, brand_id, program_id)]
            if program_id is not None
            else programs.brand_programs(session, brand_id)
        )
        return [
            RewardOut(id=r.id, program_id=r.program_id, name=r.name,
                      cost_points=r.cost_points, active=r.active)
            for p in chosen
            for r in programs.program_rewards(session, p.id)
        ]  # fmt: skip

    return RewardList(rewards=run_in_transaction(work))
