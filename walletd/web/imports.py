"""Member imports under /api/v1: send a CSV or JSON file of members, dry run or job, progress."""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint, request
from pydantic import Field, StrictBool, StrictInt, StrictStr
from sqlalchemy.orm import Session

from walletd.imports import service
from walletd.imports.service import MAX_FILE_BYTES, Tally
from walletd.models import MemberImport
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.endpoint import MAX_ID, endpoint
from walletd.web.schemas import Reply, Request, Timestamp

bp = Blueprint("imports", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
# Routes that take a whole file: the app's 64 KiB body limit is raised for these alone.
UPLOAD_ENDPOINTS = frozenset({"imports.create_import", "dashboard.import_preview"})
# Room for a multipart form's boundaries and its other fields around the file.
UPLOAD_SLACK = 64 * 1024


def allow_large_upload() -> None:
    """Before any hook reads the body: a file route may take MAX_FILE_BYTES (10 MiB)."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = MAX_FILE_BYTES + UPLOAD_SLACK


class ImportQuery(Request):
    """Options of an import, in the query string (the body is the file)."""

    program_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        None, description="the program to import into; the brand's first program when left out"
    )
    dry_run: bool = Field(
        default=False, description="only check the file and say what would happen"
    )


Cell = StrictStr | StrictInt | StrictBool | None


class ImportMember(Request):
    """One member of a JSON import; every field is optional, a row needs a key to find it by."""

    external_id: Cell = Field(default=None, description="your system's id of the member (≤ 100)")
    name: Cell = Field(default=None, description="required for a member not yet in walletd")
    email: Cell = None
    phone: Cell = Field(default=None, description="any spelling; stored as E.164")
    birthday: Cell = Field(default=None, description="YYYY-MM-DD")
    marketing_consent: Cell = Field(default=None, description="true/false, yes/no or 1/0")
    points: Cell = Field(
        default=None, description="opening balance, 0 to 10^9, written once per member"
    )
    tier: Cell = Field(default=None, description="a tier name of the program")


class ImportFile(Request):
    """The file as JSON (`application/json`); the same columns as CSV (`text/csv`, UTF-8 with a
    header row: external_id,name,email,phone,birthday,marketing_consent,points,tier)."""

    members: list[ImportMember] = Field(max_length=200_000)


class RowErrorOut(Reply):
    """A problem of one row; CSV rows count the header as row 1, JSON members start at 1."""

    row: int
    field: str
    message: str


class ImportOut(Reply):
    """An import job and its progress, or what a dry run found (id null, status "dry_run")."""

    id: int | None
    status: str = Field(description="dry_run, queued, running, done or failed")
    program_id: int
    total: int = Field(description="rows in the file")
    processed: int
    created: int
    updated: int
    unchanged: int
    skipped: int = Field(description="rows not imported because of an error")
    errors: int = Field(description="row errors in all (row_errors lists the first 1000)")
    row_errors: list[RowErrorOut]
    would_create: int | None = None
    would_update: int | None = None
    created_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    url: str | None = Field(default=None, description="where to follow the job's progress")


def job_out(job: MemberImport) -> ImportOut:
    """The API's view of an import job."""
    return ImportOut(
        id=job.id,
        status=job.status,
        program_id=job.program_id,
        total=job.total,
        processed=job.processed,
        created=job.created,
        updated=job.updated,
        unchanged=job.unchanged,
        skipped=job.skipped,
        errors=job.error_count,
        row_errors=[RowErrorOut.model_validate(e) for e in job.errors or []],
        created_at=job.created_at,
        finished_at=job.finished_at,
        url=f"/api/v1/members/imports/{job.id}",
    )


def dry_run_out(program_id: int, tally: Tally) -> ImportOut:
    """The API's view of a dry run."""
    return ImportOut(
        id=None,
        status="dry_run",
        program_id=program_id,
        total=tally.total,
        processed=tally.total,
        created=0,
        updated=0,
        unchanged=tally.unchanged,
        skipped=tally.skipped,
        errors=tally.error_count,
        row_errors=[RowErrorOut.model_validate(e) for e in tally.errors],
        would_create=tally.created,
        would_update=tally.updated,
    )


@bp.post("/members/imports")
@endpoint(
    "Import members from a CSV (text/csv) or JSON file; ?dry_run=true only checks it",
    tag="members",
    roles=ADMIN,
    query=ImportQuery,
    body_doc=ImportFile,
    response=ImportOut,
    status=202,
    other_responses={
        200: "a dry run: what the import would do, nothing written",
        413: "the file is larger than 10 MiB",
    },
)
def create_import(query: ImportQuery) -> tuple[ImportOut, int]:
    """Check a file (dry run) or queue it as an import job; a small file is imported at once."""
    actor = principal().actor
    data = request.get_data(cache=False)
    media_type = request.mimetype
    if query.dry_run:
        program_id, tally = run_in_transaction(
            lambda s: _dry_run(s, actor.brand_id, query.program_id, data, media_type)
        )
        return dry_run_out(program_id, tally), 200

    def create(session: Session) -> tuple[int, int]:
        job, tally = service.create_import(
            session, actor, query.program_id, data, media_type, context()
        )
        return job.id, tally.total - tally.skipped

    job_id, rows = run_in_transaction(create)
    if rows <= service.INLINE_ROWS:
        svc = services()
        service.run_inline(svc.db, job_id, svc.context)
    return run_in_transaction(lambda s: job_out(service.get_import(s, actor.brand_id, job_id))), 202


def _dry_run(
    session: Session, brand_id: int, program_id: int | None, data: bytes, media_type: str
) -> tuple[int, Tally]:
    program, tally = service.dry_run(session, brand_id, program_id, data, media_type, context())
    return program.id, tally


@bp.get("/members/imports/<int:import_id>")
@endpoint("An import job's progress", tag="members", roles=ADMIN, response=ImportOut)
def show_import(import_id: int) -> ImportOut:
    """Progress and counts of one import job of the brand."""
    brand_id = principal().brand_id
    return run_in_transaction(lambda s: job_out(service.get_import(s, brand_id, import_id)))
