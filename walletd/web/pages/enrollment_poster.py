"""The dashboard's poster of the program's Apple Wallet enrollment pass (link and QR code)."""

from __future__ import annotations

from flask import url_for
from sqlalchemy.orm import Session

from walletd.enrollment.settings import settings_of
from walletd.loyalty.brands import get_program
from walletd.loyalty.programs import program_brand_name
from walletd.models import Program
from walletd.web.deps import run_in_transaction, services
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.preview import qr_data_uri
from walletd.web.pages.render import render


@bp.get("/enrollment-poster")
@staff_only
def enrollment_poster() -> tuple[str, int]:
    """A printable poster with the QR code of the program's personalizable pass download."""
    viewer = me()
    base = services().settings.base_url

    def work(session: Session) -> tuple[Program, str, bool]:
        program = get_program(session, viewer.brand_id)
        enabled = bool(settings_of(session, program.id)["enabled"])
        return program, program_brand_name(session, program), enabled

    program, brand_name, enabled = run_in_transaction(work)
    url = f"{base}{url_for('enrollment.download', program_id=program.id)}"
    return render("dashboard/enrollment_poster.html", program=program, brand_name=brand_name,
                  enabled=enabled, pass_url=url, qr=qr_data_uri(url, 12))  # fmt: skip
