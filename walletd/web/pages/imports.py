"""Dashboard member import: upload a file, see what it would do, confirm, follow the job."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from sqlalchemy.orm import Session

from walletd.errors import NotFoundError
from walletd.imports import service
from walletd.imports.rows import FileError
from walletd.imports.service import Tally
from walletd.loyalty.brands import get_program
from walletd.models import MemberImport
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.render import _, error_text, render

# A job page reloads itself this often (seconds) until the job has finished.
REFRESH_SECONDS = 2


def _page(brand_id: int, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    def work(session: Session) -> tuple[list[MemberImport], list[str], str]:
        program = get_program(session, brand_id)
        return (
            service.list_imports(session, brand_id),
            sorted(service.tier_names(session, program.id).values()),
            program.name,
        )

    jobs, tiers, program_name = run_in_transaction(work)
    return render("dashboard/import.html", status, jobs=jobs, tiers=tiers,
                  program_name=program_name, errors=errors)  # fmt: skip


@bp.get("/members/import")
@staff_only
def import_page() -> tuple[str, int]:
    """The upload form and the brand's latest imports."""
    return _page(me().brand_id, {})


@bp.post("/members/import")
@staff_only
def import_preview() -> tuple[str, int]:
    """Read the uploaded file into a draft job and show what importing it would do."""
    viewer = me()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(viewer.brand_id, {"file": _("Choose a CSV file to import.")}, 422)
    data = upload.read()
    # Shown on the pages and stored: printable characters only (a NUL would fail on Postgres).
    name = "".join(ch for ch in upload.filename if ch.isprintable())[:200] or "upload"
    media = "application/json" if name.lower().endswith(".json") else "text/csv"
    actor = viewer.actor
    ctx = context()

    def work(session: Session) -> tuple[int, Tally]:
        job, tally = service.create_import(
            session, actor, None, data, media, ctx, filename=name, draft=True
        )
        return job.id, tally

    try:
        job_id, tally = run_in_transaction(work)
    except FileError as exc:
        message = _("The file cannot be read.") + " " + error_text(exc)
        return _page(viewer.brand_id, {"file": message}, 422)
    return render("dashboard/import_preview.html", job_id=job_id, tally=tally, filename=name)


@bp.post("/members/import/<int:import_id>/start")
@staff_only
def start_import(import_id: int) -> Any:
    """Import a previewed file: small files at once, larger ones by the worker."""
    viewer = me()
    actor = viewer.actor
    now = context().now
    try:
        rows = run_in_transaction(lambda s: service.start_import(s, actor, import_id, now))
    except NotFoundError:
        abort(404)
    if rows <= service.INLINE_ROWS:
        svc = services()
        service.run_inline(svc.db, import_id, svc.context)
    flash(_("Import started."))
    return redirect(url_for("dashboard.import_job", import_id=import_id), 303)


@bp.get("/members/import/<int:import_id>")
@staff_only
def import_job(import_id: int) -> Any:
    """One import's progress, counts and row errors."""
    brand_id = me().brand_id
    try:
        job = run_in_transaction(lambda s: _detached(s, brand_id, import_id))
    except NotFoundError:
        abort(404)
    if job.status == "draft":
        return redirect(url_for("dashboard.import_page"), 303)
    running = job.status in ("queued", "running")
    html, status = render("dashboard/import_job.html", job=job, refresh=running)
    # A Refresh header: the page follows the worker without any script.
    return html, status, {"Refresh": str(REFRESH_SECONDS)} if running else {}


def _detached(session: Session, brand_id: int, import_id: int) -> MemberImport:
    job = service.get_import(session, brand_id, import_id)
    session.expunge(job)
    return job
