"""Bringing members in from another system: dry runs, import jobs and the chunks a worker applies.

A file is read once, in the request: rows that fail on their own are refused with a reason, the
others are stored as JSON chunks of CHUNK rows on a `member_imports` job. The worker (or the
request itself, for a small file) applies one chunk per transaction and moves the job's cursor in
that same transaction, so a crash loses at most the chunk in flight and the next holder of the
job starts there. Each row finds its member by external id, else e-mail, else phone, so a re-run
updates instead of duplicating; an opening balance is one ledger entry with the walletd-made key
`opening:{member_id}`, written once per member whatever the number of runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from walletd import audit
from walletd.db import Database
from walletd.errors import NotFoundError
from walletd.imports.rows import (
    EMAIL_TAKEN,
    EXTERNAL_ID_CONFLICT,
    NAME_REQUIRED,
    PHONE_TAKEN,
    ROW_SHAPE,
    TIER_UNKNOWN,
    RowError,
    Seen,
    parse_row,
    read_file,
)
from walletd.loyalty import ledger
from walletd.loyalty.barcodes import make_barcode, new_auth_token, new_serial
from walletd.loyalty.brands import get_program
from walletd.loyalty.cards import touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.members import _new_referral_code as new_referral_code
from walletd.models import (
    Card,
    LedgerEntry,
    Member,
    MemberImport,
    MemberImportChunk,
    Program,
    Tier,
)
from walletd.push.outbox import card_push_rows, enqueue

log = logging.getLogger(__name__)

CHUNK = 500
# A file of at most this many rows is applied in the request that sends it (same code path).
INLINE_ROWS = 1000
MAX_FILE_BYTES = 10 * 1024 * 1024
# Stored and answered row errors; `error_count` says how many there were in all.
MAX_ERRORS = 1000
PREVIEW_ROWS = 20
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3
DRAFT_LIFETIME = timedelta(days=1)
# Fields of a member an import row sets (points and tier are handled apart).
MEMBER_FIELDS = ("external_id", "name", "email", "phone", "birthday", "marketing_consent")
Action = Literal["create", "update", "unchanged", "error"]


@dataclass
class Tally:
    """What a run did or would do: counts, the first row errors and the first rows' fate."""

    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, errors: list[RowError]) -> None:
        """Count a row that is not imported, keeping its errors while the list has room."""
        self.skipped += 1
        self.error_count += len(errors)
        room = MAX_ERRORS - len(self.errors)
        self.errors.extend(e.as_dict() for e in errors[: max(room, 0)])


@dataclass
class _Known:
    """A member as the plan sees it (a snapshot, so a dry run changes nothing)."""

    id: int
    external_id: str | None
    email: str | None
    phone: str | None
    name: str
    birthday: date | None
    marketing_consent: bool
    tier_id: int | None
    has_opening: bool = False


@dataclass
class Decision:
    """What applying one row does."""

    row: int
    action: Action
    values: dict[str, Any]
    member_id: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    opening: int = 0
    errors: list[RowError] = field(default_factory=list)


def _member_value(name: str, value: Any) -> Any:
    return date.fromisoformat(value) if name == "birthday" and value is not None else value


def _tier_ids(session: Session, program_id: int) -> dict[str, int]:
    rows = session.execute(select(Tier.name, Tier.id).where(Tier.program_id == program_id)).all()
    return {str(name): int(tier_id) for name, tier_id in rows}


def tier_names(session: Session, program_id: int) -> dict[str, str]:
    """The program's tier names by their lower-case spelling (files rarely match the case)."""
    names = sorted(_tier_ids(session, program_id))
    return {name.lower(): name for name in reversed(names)}


def _known_members(session: Session, program_id: int, rows: list[dict[str, Any]]) -> list[_Known]:
    """The program's members any row of the chunk names by external id, e-mail or phone."""
    columns = (
        Member.id,
        Member.external_id,
        Member.email,
        Member.phone,
        Member.name,
        Member.birthday,
        Member.marketing_consent,
        Member.tier_id,
    )
    found: dict[int, _Known] = {}
    for column, key in (
        (Member.external_id, "external_id"),
        (Member.email, "email"),
        (Member.phone, "phone"),
    ):
        keys = sorted({row[key] for row in rows if key in row})
        if not keys:
            continue
        query = select(*columns).where(Member.program_id == program_id, column.in_(keys))
        for r in session.execute(query).all():
            found.setdefault(
                int(r.id),
                _Known(
                    id=int(r.id),
                    external_id=r.external_id,
                    email=r.email,
                    phone=r.phone,
                    name=r.name,
                    birthday=r.birthday,
                    marketing_consent=bool(r.marketing_consent),
                    tier_id=r.tier_id,
                ),
            )
    if found:
        opened = session.scalars(
            select(LedgerEntry.member_id).where(
                LedgerEntry.member_id.in_(sorted(found)), LedgerEntry.kind == "opening"
            )
        ).all()
        for member_id in opened:
            found[int(member_id)].has_opening = True
    return sorted(found.values(), key=lambda k: k.id)


def plan_chunk(session: Session, program: Program, rows: list[dict[str, Any]]) -> list[Decision]:
    """Decide every row of a chunk (create, update, unchanged or error) without writing."""
    known = _known_members(session, program.id, rows)
    by_key: dict[str, dict[str, _Known]] = {"external_id": {}, "email": {}, "phone": {}}
    for member in known:  # oldest first: of two members with one e-mail the first one wins
        for key, index in by_key.items():
            value = getattr(member, key)
            if value is not None:
                index.setdefault(value, member)
    tier_ids = _tier_ids(session, program.id)
    decisions = []
    for row in rows:
        values = {k: v for k, v in row.items() if k != "row"}
        match = next(
            (by_key[k][values[k]] for k in by_key if k in values and values[k] in by_key[k]),
            None,
        )
        if match is None:
            if "tier" in values and values["tier"] not in tier_ids:
                # Removed from the program since the file was read.
                decisions.append(
                    Decision(
                        row["row"],
                        "error",
                        values,
                        errors=[RowError(row["row"], "tier", TIER_UNKNOWN)],
                    )
                )
                continue
            if "name" not in values:
                decisions.append(
                    Decision(
                        row["row"],
                        "error",
                        values,
                        errors=[RowError(row["row"], "name", NAME_REQUIRED)],
                    )
                )
                continue
            decisions.append(
                Decision(row["row"], "create", values, opening=values.get("points", 0))
            )
            continue
        errors = _conflicts(row["row"], values, match, by_key)
        if "tier" in values and values["tier"] not in tier_ids:
            errors.append(RowError(row["row"], "tier", TIER_UNKNOWN))
        if errors:
            decisions.append(Decision(row["row"], "error", values, match.id, errors=errors))
            continue
        changes = {
            name: _member_value(name, values[name])
            for name in MEMBER_FIELDS
            if name in values and _member_value(name, values[name]) != getattr(match, name)
        }
        if "tier" in values and tier_ids[values["tier"]] != match.tier_id:
            changes["tier_id"] = tier_ids[values["tier"]]
        opening = values.get("points", 0) if not match.has_opening else 0
        action: Action = "update" if changes or opening else "unchanged"
        decisions.append(Decision(row["row"], action, values, match.id, changes, opening))
        # Later rows of the chunk see the member as this row leaves it.
        for name, value in changes.items():
            if name in by_key:
                old = getattr(match, name)
                if old is not None and by_key[name].get(old) is match:
                    del by_key[name][old]
                by_key[name][value] = match
            setattr(match, name, value)
        match.has_opening = match.has_opening or opening > 0
    return decisions


def _conflicts(
    row: int, values: dict[str, Any], match: _Known, by_key: dict[str, dict[str, _Known]]
) -> list[RowError]:
    errors = []
    external_id = values.get("external_id")
    if external_id is not None and match.external_id not in (None, external_id):
        errors.append(RowError(row, "external_id", EXTERNAL_ID_CONFLICT))
    for key, message in (("email", EMAIL_TAKEN), ("phone", PHONE_TAKEN)):
        other = by_key[key].get(values[key]) if key in values else None
        if other is not None and other is not match:
            errors.append(RowError(row, key, message))
    return errors


def _count(tally: Tally, decisions: Iterable[Decision]) -> None:
    for d in decisions:
        if d.action == "error":
            tally.refuse(d.errors)
        elif d.action == "create":
            tally.created += 1
        elif d.action == "update":
            tally.updated += 1
        else:
            tally.unchanged += 1
        if len(tally.preview) < PREVIEW_ROWS:
            tally.preview.append(
                {
                    "row": d.row,
                    "action": d.action,
                    "member_id": d.member_id,
                    **d.values,
                    "errors": [e.as_dict() for e in d.errors],
                }
            )


def _read(
    session: Session,
    program: Program,
    data: bytes,
    media_type: str,
    ctx: Context,
    tally: Tally,
    on_chunk: Callable[[list[dict[str, Any]]], None],
    chunk: int = CHUNK,
) -> None:
    """Read and check every row; hand each CHUNK of good rows to `on_chunk`."""
    tiers = tier_names(session, program.id)
    seen = Seen()
    today = ctx.now.date()
    buffer: list[dict[str, Any]] = []
    for number, raw in read_file(data, media_type):
        tally.total += 1
        if raw is None:
            tally.refuse([RowError(number, "row", ROW_SHAPE)])
            continue
        values, errors = parse_row(
            raw, number, today=today, region=ctx.phone_region, tiers=tiers, seen=seen
        )
        if values is None:
            tally.refuse(errors)
            continue
        buffer.append(values)
        if len(buffer) == chunk:
            on_chunk(buffer)
            buffer = []
    if buffer:
        on_chunk(buffer)


def dry_run(
    session: Session,
    brand_id: int,
    program_id: int | None,
    data: bytes,
    media_type: str,
    ctx: Context,
) -> tuple[Program, Tally]:
    """What importing the file would do now (counts, row errors, the first rows); writes nothing."""
    program = get_program(session, brand_id, program_id)
    tally = Tally()

    def plan(rows: list[dict[str, Any]]) -> None:
        _count(tally, plan_chunk(session, program, rows))

    _read(session, program, data, media_type, ctx, tally, plan)
    tally.errors.sort(key=lambda e: int(e["row"]))
    tally.preview.sort(key=lambda p: int(p["row"]))
    return program, tally


def create_import(
    session: Session,
    actor: audit.Actor,
    program_id: int | None,
    data: bytes,
    media_type: str,
    ctx: Context,
    *,
    filename: str | None = None,
    draft: bool = False,
    chunk: int = CHUNK,
) -> tuple[MemberImport, Tally]:
    """Read the file into a queued job (a draft waits for `start_import`); the tally also holds
    what the rows would do now, for a preview (planned only for a draft)."""
    program = get_program(session, actor.brand_id, program_id)
    _forget_old_drafts(session, actor.brand_id, ctx.now)
    job = MemberImport(
        brand_id=actor.brand_id,
        program_id=program.id,
        status="draft" if draft else "queued",
        filename=(filename or "")[:200] or None,
        total=0,
        processed=0,
        created=0,
        updated=0,
        unchanged=0,
        skipped=0,
        error_count=0,
        errors=[],
        chunks=0,
        cursor=0,
        attempts=0,
        created_by_api_key_id=actor.api_key_id,
        created_by_staff_id=actor.staff_id,
        created_by_label=actor.label[:330],
        created_at=ctx.now,
    )
    session.add(job)
    session.flush()
    tally = Tally()
    planned = Tally()

    def store(rows: list[dict[str, Any]]) -> None:
        stored = MemberImportChunk(import_id=job.id, seq=job.chunks, rows=rows)
        session.add(stored)
        session.flush()
        # The rows live in the database now: keep the request's memory to one chunk.
        session.expunge(stored)
        job.chunks += 1
        if draft:
            _count(planned, plan_chunk(session, program, rows))

    _read(session, program, data, media_type, ctx, tally, store, chunk)
    job.total = tally.total
    job.processed = job.skipped = tally.skipped
    job.error_count = tally.error_count
    job.errors = tally.errors
    audit.record(
        session,
        actor,
        "member_import.created",
        "member_import",
        job.id,
        now=ctx.now,
        changes={"program_id": program.id, "rows": tally.total, "draft": draft},
    )
    if draft:
        planned.total = tally.total
        planned.skipped += tally.skipped
        planned.error_count += tally.error_count
        planned.errors = sorted(tally.errors + planned.errors, key=lambda e: int(e["row"]))
        planned.errors = planned.errors[:MAX_ERRORS]
        planned.preview.sort(key=lambda p: int(p["row"]))
        return job, planned
    return job, tally


def _forget_old_drafts(session: Session, brand_id: int, now: datetime) -> None:
    stale = select(MemberImport.id).where(
        MemberImport.brand_id == brand_id,
        MemberImport.status == "draft",
        MemberImport.created_at < now - DRAFT_LIFETIME,
    )
    ids = list(session.scalars(stale).all())
    if ids:
        session.execute(delete(MemberImportChunk).where(MemberImportChunk.import_id.in_(ids)))
        session.execute(delete(MemberImport).where(MemberImport.id.in_(ids)))


def get_import(session: Session, brand_id: int, import_id: int) -> MemberImport:
    """A brand's import job; another brand's is not found."""
    job = session.scalar(
        select(MemberImport).where(MemberImport.id == import_id, MemberImport.brand_id == brand_id)
    )
    if job is None:
        raise NotFoundError("import not found")
    return job


def get_member_by_external_id(session: Session, brand_id: int, external_id: str) -> Member:
    """A brand's member by the external id an import (or the API) gave it; of two programs
    holding the id, the first program's member."""
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) < 0xE000 for ch in external_id):
        raise NotFoundError("member not found")  # no stored id has one; Postgres refuses NUL
    programs = select(Program.id).where(Program.brand_id == brand_id)
    member = session.scalars(
        select(Member)
        .where(
            Member.program_id.in_(programs),
            Member.external_id == external_id,
            Member.erased_at.is_(None),
        )
        .order_by(Member.program_id)
        .limit(1)
    ).first()
    if member is None:
        raise NotFoundError("member not found")
    return member


def list_imports(session: Session, brand_id: int, *, limit: int = 20) -> list[MemberImport]:
    """The brand's latest import jobs, newest first."""
    return list(
        session.scalars(
            select(MemberImport)
            .where(MemberImport.brand_id == brand_id, MemberImport.status != "draft")
            .order_by(MemberImport.id.desc())
            .limit(limit)
        ).all()
    )


def start_import(session: Session, actor: audit.Actor, import_id: int, now: datetime) -> int:
    """Queue a confirmed draft (a job already queued or done stays as it is); its row count."""
    job = get_import(session, actor.brand_id, import_id)
    if job.status == "draft":
        job.status = "queued"
        audit.record(session, actor, "member_import.started", "member_import", job.id, now=now)
    return job.total - job.skipped


# --- the job ------------------------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    return or_(
        MemberImport.status == "queued",
        (MemberImport.status == "running") & (MemberImport.claimed_until < now),
    )


def claim_due_import(
    session: Session, worker_id: str, now: datetime, *, import_id: int | None = None
) -> int | None:
    """Claim one queued (or abandoned) import with a conditional update; None when none is due."""
    query = select(MemberImport.id).where(_claimable(now)).order_by(MemberImport.id).limit(5)
    if import_id is not None:
        query = query.where(MemberImport.id == import_id)
    for candidate in session.scalars(query).all():
        # The condition is checked again in the UPDATE: of two workers only one wins the row.
        claimed = session.execute(
            update(MemberImport)
            .where(MemberImport.id == candidate, _claimable(now))
            .values(status="running", claimed_by=worker_id, claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            return int(candidate)
    return None


def _creator(job: MemberImport) -> audit.Actor:
    return audit.Actor(
        brand_id=job.brand_id,
        api_key_id=job.created_by_api_key_id,
        staff_id=job.created_by_staff_id,
        label=job.created_by_label,
    )


def import_chunk(session: Session, import_id: int, worker_id: str, ctx: Context) -> str:
    """Apply the job's next chunk: "more", or "done" (finished, or no longer this worker's)."""
    # The row lock keeps a worker whose lease ran out from writing alongside the next holder.
    job = session.scalar(select(MemberImport).where(MemberImport.id == import_id).with_for_update())
    if job is None or job.status != "running" or job.claimed_by != worker_id:
        return "done"
    job.claimed_until = ctx.now + LEASE
    job.started_at = job.started_at or ctx.now
    chunk = session.scalar(
        select(MemberImportChunk).where(
            MemberImportChunk.import_id == job.id, MemberImportChunk.seq == job.cursor
        )
    )
    if chunk is None:
        job.status = "done"
        job.finished_at = ctx.now
        job.claimed_by = None
        session.execute(delete(MemberImportChunk).where(MemberImportChunk.import_id == job.id))
        audit.record(
            session,
            _creator(job),
            "member_import.finished",
            "member_import",
            job.id,
            now=ctx.now,
            changes={
                "created": job.created,
                "updated": job.updated,
                "unchanged": job.unchanged,
                "skipped": job.skipped,
            },
        )
        log.info(
            "member import %d done: %d created, %d updated, %d unchanged, %d skipped",
            job.id,
            job.created,
            job.updated,
            job.unchanged,
            job.skipped,
        )
        return "done"
    program = session.get_one(Program, job.program_id)
    tally = Tally(errors=list(job.errors or [])[:MAX_ERRORS])
    decisions = plan_chunk(session, program, list(chunk.rows))
    _apply(session, program, decisions, _creator(job), ctx)
    _count(tally, decisions)
    job.created += tally.created
    job.updated += tally.updated
    job.unchanged += tally.unchanged
    job.skipped += tally.skipped
    job.error_count += tally.error_count
    job.errors = tally.errors
    job.processed += len(chunk.rows)
    job.cursor += 1
    job.attempts = 0
    session.delete(chunk)
    return "more"


def _apply(
    session: Session, program: Program, decisions: list[Decision], actor: audit.Actor, ctx: Context
) -> None:
    """Write a chunk's decisions: new members with their cards, changes, opening balances."""
    tier_ids = _tier_ids(session, program.id)
    # New members start in the base tier, as enrollment puts them (see enroll_member).
    base = session.scalars(
        select(Tier).where(Tier.program_id == program.id).order_by(Tier.threshold).limit(1)
    ).first()
    base_id = base.id if base is not None and base.threshold <= 0 else None
    created: list[tuple[Member, Decision]] = []
    for d in (d for d in decisions if d.action == "create"):
        values = d.values
        member = Member(
            brand_id=program.brand_id,
            program_id=program.id,
            name=values["name"],
            email=values.get("email"),
            phone=values.get("phone"),
            external_id=values.get("external_id"),
            birthday=_member_value("birthday", values.get("birthday")),
            marketing_consent=bool(values.get("marketing_consent", False)),
            referral_code=new_referral_code(),
            tier_id=tier_ids[values["tier"]] if "tier" in values else base_id,
            points=0,
            lifetime_spend_minor=0,
            visits=0,
            stamps=0,
            created_at=ctx.now,
        )
        session.add(member)
        created.append((member, d))
    session.flush()
    cards = []
    for member, d in created:
        d.member_id = member.id
        serial = new_serial()
        card = Card(
            brand_id=program.brand_id,
            member_id=member.id,
            kind="loyalty",
            serial_number=serial,
            auth_token=new_auth_token(),
            barcode=make_barcode(serial, ctx.secret_key),
            update_tag=0,
            updated_at=ctx.now.replace(microsecond=0),
            created_at=ctx.now,
        )
        session.add(card)
        cards.append(card)
    updates = {d.member_id: d for d in decisions if d.action == "update"}
    # Row locks, as every balance change takes them (see ledger.lock_member).
    existing = session.scalars(
        select(Member).where(Member.id.in_(sorted(updates))).order_by(Member.id).with_for_update()
    ).all()
    shown: list[int] = []
    for member in existing:
        d = updates[member.id]
        for name, value in d.changes.items():
            setattr(member, name, value)
        if d.opening or {"name", "tier_id"} & d.changes.keys():
            shown.append(member.id)
    # A member created in this transaction has no entry yet: its opening lot is written as
    # ledger._append writes a lot for a balance of zero, without grant_bonus's key lookup (one
    # round trip per row, half the import's time). The unique key still guards it.
    expires_at = ledger._expiry_for(program, ctx.now)
    for member, d in created:
        if d.opening > 0:
            session.add(LedgerEntry(
                brand_id=member.brand_id, member_id=member.id, kind="opening", points=d.opening,
                reason="opening balance", internal_key=f"opening:{member.id}",
                remaining=d.opening, expires_at=expires_at, created_at=ctx.now,
                api_key_id=actor.api_key_id, staff_id=actor.staff_id,
            ))  # fmt: skip
            member.points = d.opening
    openings = [(m, updates[m.id].opening) for m in existing if updates[m.id].opening > 0]
    # The walletd-made key is unique per brand: a re-run (or a racing worker) cannot add twice.
    with session.no_autoflush:
        for member, points in openings:
            entry = ledger.grant_bonus(
                session,
                member,
                points,
                reason="opening balance",
                idempotency_key=f"opening:{member.id}",
                ctx=ctx,
                kind="opening",
                touch=False,
            )
            if entry is not None:
                entry.api_key_id = actor.api_key_id
                entry.staff_id = actor.staff_id
    session.flush()
    if shown:
        # Members who may already hold the card in a wallet see their new balance or tier.
        touch_cards(
            session,
            list(
                session.scalars(
                    select(Card).where(Card.member_id.in_(shown), Card.kind == "loyalty")
                ).all()
            ),
            ctx,
        )
    if ctx.google_enabled and cards:
        # The save link names the card's Google object: create it before anyone taps it.
        serials = {c.id: c.serial_number for c in cards}
        enqueue(
            session,
            card_push_rows(session, list(serials), google=True, serials=serials),
            now=ctx.now,
        )


def _record_failure(
    db: Database, import_id: int, worker_id: str, error: Exception, now: datetime
) -> bool:
    """Count a failed chunk; the job fails for good after MAX_ATTEMPTS. True when it did."""
    with db.transaction() as session:
        job = session.get(MemberImport, import_id)
        if job is None or job.claimed_by != worker_id:
            return True
        job.attempts += 1
        job.last_error = type(error).__name__[:200]
        if job.attempts >= MAX_ATTEMPTS:
            job.status = "failed"
            job.claimed_by = None
            job.finished_at = now
            return True
    return False


def run_import_step(
    db: Database,
    worker_id: str,
    held: set[int],
    context: Callable[[], Context],
    *,
    max_chunks: int = 10,
) -> int:
    """Claim an import if one is due, then apply up to `max_chunks` chunks of the held ones.

    Each chunk is its own transaction; returns how many chunks were applied.
    """
    with db.transaction() as session:
        claimed = claim_due_import(session, worker_id, context().now)
    if claimed is not None:
        log.info("member import %d claimed by %s", claimed, worker_id)
        held.add(claimed)
    return _run_held(db, worker_id, held, context, max_chunks=max_chunks)


def _run_held(
    db: Database,
    worker_id: str,
    held: set[int],
    context: Callable[[], Context],
    *,
    max_chunks: int,
) -> int:
    chunks = 0
    for held_id in sorted(held):
        while chunks < max_chunks:
            try:
                with db.transaction() as session:
                    state = import_chunk(session, held_id, worker_id, context())
            except Exception as exc:
                log.exception("member import %d: a chunk failed", held_id)
                if _record_failure(db, held_id, worker_id, exc, context().now):
                    held.discard(held_id)
                break
            if state == "more":
                chunks += 1
                continue
            held.discard(held_id)
            break
    return chunks


def run_inline(db: Database, import_id: int, context: Callable[[], Context]) -> None:
    """Apply a small import now, in the request, through the worker's own step."""
    worker_id = f"inline:{uuid.uuid4().hex[:12]}"
    with db.transaction() as session:
        claimed = claim_due_import(session, worker_id, context().now, import_id=import_id)
    held = {claimed} if claimed is not None else set()
    while held:
        _run_held(db, worker_id, held, context, max_chunks=10)
