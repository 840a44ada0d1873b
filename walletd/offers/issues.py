"""Issuing an offer to a segment: a claimed, leased batch job fanned out in resumable chunks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from walletd.campaigns.segments import MAX_ID, Segment, member_ids_after, parse_segment
from walletd.db import Database
from walletd.errors import ConflictError, NotFoundError, ValidationError
from walletd.loyalty.context import Context
from walletd.models import Member, Offer, OfferIssue
from walletd.offers.coupons import issue_coupon

log = logging.getLogger(__name__)

CHUNK = 1000
LEASE = timedelta(minutes=5)


class OfferArchivedError(ConflictError):
    """The offer is archived: nothing more is issued from it."""

    code = "offer_archived"


def _offer(session: Session, brand_id: int, offer_id: object) -> Offer:
    if isinstance(offer_id, bool) or not isinstance(offer_id, int) or not 0 < offer_id <= MAX_ID:
        raise NotFoundError("offer not found")
    offer = session.scalar(select(Offer).where(Offer.id == offer_id, Offer.brand_id == brand_id))
    if offer is None:
        raise NotFoundError("offer not found")
    return offer


def create_issue(
    session: Session, brand_id: int, offer_id: int, segment_data: object, ctx: Context
) -> OfferIssue:
    """Queue an issue of an active offer to a segment of its program; the worker fans it out."""
    offer = _offer(session, brand_id, offer_id)
    if offer.status != "active":
        raise OfferArchivedError("the offer is archived; it can no longer be issued")
    if segment_data is None:
        raise ValidationError("segment is required", field="segment")
    segment = parse_segment(segment_data)
    issue = OfferIssue(
        brand_id=brand_id,
        offer_id=offer.id,
        segment=segment.definition,
        status="pending",
        cursor_member_id=0,
        issued=0,
        skipped=0,
        created_at=ctx.now,
    )
    session.add(issue)
    session.flush()
    return issue


def claim_due_issue(session: Session, worker_id: str, ctx: Context) -> int | None:
    """Claim one pending (or abandoned) issue with a conditional update; None when none is due."""
    claimable = or_(
        OfferIssue.status == "pending",
        (OfferIssue.status == "running") & (OfferIssue.claimed_until < ctx.now),
    )
    candidates = session.scalars(
        select(OfferIssue.id).where(claimable).order_by(OfferIssue.id).limit(5)
    ).all()
    for issue_id in candidates:
        # The condition is checked again in the UPDATE: of two workers only one wins the row.
        claimed = session.execute(
            update(OfferIssue)
            .where(OfferIssue.id == issue_id, claimable)
            .values(status="running", claimed_by=worker_id, claimed_until=ctx.now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            return int(issue_id)
    return None


def issue_chunk(
    session: Session, issue_id: int, worker_id: str, ctx: Context, *, chunk: int = CHUNK
) -> str:
    """Issue the next chunk of coupons: "more" or "done" (finished, or no longer this worker's).

    The coupons and the cursor commit together, so a worker killed mid-issue leaves nothing of
    its chunk and the next holder starts after the last committed one; the occasion
    f"issue:{id}" (unique per offer and member) makes a member's coupon once-only regardless.
    """
    # The row lock keeps a worker whose lease ran out from writing alongside the next holder.
    issue = session.scalar(select(OfferIssue).where(OfferIssue.id == issue_id).with_for_update())
    if issue is None or issue.status != "running" or issue.claimed_by != worker_id:
        return "done"
    offer = session.get(Offer, issue.offer_id)
    if offer is None or offer.status != "active":
        # Archived while issuing: stop here; coupons already issued stay valid.
        issue.status = "cancelled"
        issue.finished_at = ctx.now
        issue.claimed_by = None
        return "done"
    issue.claimed_until = ctx.now + LEASE
    ids = member_ids_after(
        session,
        issue.brand_id,
        Segment(issue.segment),
        ctx.now,
        after_id=issue.cursor_member_id,
        limit=chunk,
        program_id=offer.program_id,
    )
    if not ids:
        issue.status = "done"
        issue.finished_at = ctx.now
        issue.claimed_by = None
        return "done"
    members = session.scalars(select(Member).where(Member.id.in_(ids)).order_by(Member.id)).all()
    issued = 0
    for member in members:
        coupon = issue_coupon(
            session, offer, member, source="segment", occasion=f"issue:{issue.id}", ctx=ctx
        )
        issued += coupon is not None
    issue.issued += issued
    issue.skipped += len(ids) - issued
    issue.cursor_member_id = ids[-1]
    return "more"


def run_issue_step(
    db: Database,
    worker_id: str,
    held: set[int],
    context: Callable[[], Context],
    *,
    chunk: int = CHUNK,
    max_chunks: int = 10,
) -> int:
    """Claim an issue if one is due, then write up to `max_chunks` chunks of the held ones.

    Each chunk is its own transaction; returns how many chunks were written.
    """
    with db.transaction() as session:
        claimed = claim_due_issue(session, worker_id, context())
    if claimed is not None:
        log.info("offer issue %d claimed by %s", claimed, worker_id)
        held.add(claimed)
    chunks = 0
    for issue_id in sorted(held):
        while chunks < max_chunks:
            with db.transaction() as session:
                state = issue_chunk(session, issue_id, worker_id, context(), chunk=chunk)
            if state == "more":
                chunks += 1
                continue
            held.discard(issue_id)
            break
    return chunks
