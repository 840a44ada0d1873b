"""Issuing an offer to a segment: one coupon per member per issue, resumable after a lost lease."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from tests.factories import BrandKeys, FrozenClock, make_brand, services_of
from walletd.errors import NotFoundError, ValidationError
from walletd.jobs import INTERVAL_JOBS, expire_coupons, offer_issue_step
from walletd.loyalty.context import Context
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import Card, Coupon, Member, Offer, OfferIssue
from walletd.offers import issues
from walletd.services import Services


class Killed(Exception):
    """A worker dying in the middle of a chunk (its transaction never commits)."""


def _ctx(svc: Services) -> Context:
    return svc.context()


def make_offer(svc: Services, brand: BrandKeys, *, status: str = "active") -> int:
    """A 10%-off offer of the brand's program."""
    with svc.db.transaction() as session:
        offer = Offer(
            brand_id=brand.brand_id, program_id=brand.program_id, name="Ten off",
            kind="percent_off", value=Decimal("10"), status=status,
        )  # fmt: skip
        session.add(offer)
        session.flush()
        return offer.id


def enroll_many(svc: Services, brand: BrandKeys, count: int, *, consent: bool = True) -> list[int]:
    """Members of the brand's program; returns their ids."""
    ids = []
    with svc.db.transaction() as session:
        for n in range(count):
            enrollment = Enrollment(name=f"Member {n}", marketing_consent=consent)
            member, _ = enroll_member(session, brand.brand_id, enrollment, _ctx(svc))
            ids.append(member.id)
    return ids


def new_issue(svc: Services, brand: BrandKeys, offer_id: int, segment: object) -> int:
    with svc.db.transaction() as session:
        return issues.create_issue(session, brand.brand_id, offer_id, segment, _ctx(svc)).id


def coupons_of_issue(svc: Services, issue_id: int) -> dict[int, int]:
    """Coupons per member for one issue's occasion."""
    with svc.db.transaction() as session:
        rows = session.execute(
            select(Coupon.member_id, func.count())
            .where(Coupon.occasion == f"issue:{issue_id}")
            .group_by(Coupon.member_id)
        ).all()
    return {int(m): int(n) for m, n in rows}


def issue_row(svc: Services, issue_id: int) -> OfferIssue:
    with svc.db.transaction() as session:
        row = session.get(OfferIssue, issue_id)
        assert row is not None
        return row


def run_worker(svc: Services, worker_id: str, *, chunk: int = 1000) -> int:
    """Call the worker's issue step until it goes idle; returns chunks written."""
    held: set[int] = set()
    total = 0
    for _ in range(1000):
        written = issues.run_issue_step(svc.db, worker_id, held, svc.context, chunk=chunk)
        total += written
        if written == 0 and not held:
            return total
    raise AssertionError("the issue step never went idle")


def test_a_segment_issue_gives_each_member_of_the_segment_exactly_one_coupon(
    app: Flask, brand: BrandKeys
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    members = enroll_many(svc, brand, 7)
    rival = make_brand(app, "Rival Roasters")
    enroll_many(svc, rival, 3)
    issue_id = new_issue(svc, brand, offer_id, {"preset": "all"})

    # The worker's own step (as registered in the worker loop), in chunks of ten.
    held: set[int] = set()
    while offer_issue_step(svc, "worker-a", held) or held:
        pass

    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members}
    row = issue_row(svc, issue_id)
    assert (row.status, row.issued, row.skipped) == ("done", 7, 0)
    assert row.finished_at is not None and row.claimed_by is None
    with svc.db.transaction() as session:
        coupon_cards = session.scalar(
            select(func.count()).select_from(Card).where(Card.kind == "coupon")
        )
    assert coupon_cards == 7
    # Running the worker again issues nothing more.
    assert run_worker(svc, "worker-b") == 0
    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members}


def test_members_outside_the_segment_get_nothing_and_existing_coupons_count_as_skipped(
    app: Flask, brand: BrandKeys
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    members = enroll_many(svc, brand, 5)
    with svc.db.transaction() as session:
        session.execute(update(Member).where(Member.id.in_(members[:3])).values(visits=4))
        offer = session.get(Offer, offer_id)
        assert offer is not None
        offer.per_member_limit = 1
    first = new_issue(svc, brand, offer_id, {"preset": "three_or_more"})
    run_worker(svc, "worker-a", chunk=2)
    assert coupons_of_issue(svc, first) == {m: 1 for m in members[:3]}
    # A second issue to everyone: the limit of one per member skips those who hold one.
    second = new_issue(svc, brand, offer_id, {"preset": "all"})
    run_worker(svc, "worker-a", chunk=2)
    assert coupons_of_issue(svc, second) == {m: 1 for m in members[3:]}
    row = issue_row(svc, second)
    assert (row.status, row.issued, row.skipped) == ("done", 2, 3)


def test_a_killed_worker_loses_its_lease_and_another_finishes_the_issue(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    members = enroll_many(svc, brand, 9)
    issue_id = new_issue(svc, brand, offer_id, {"preset": "all"})
    with svc.db.transaction() as session:
        assert issues.claim_due_issue(session, "worker-a", svc.context()) == issue_id
    with svc.db.transaction() as session:
        assert issues.issue_chunk(session, issue_id, "worker-a", svc.context(), chunk=4) == "more"
    # Worker A dies in the middle of its second chunk: nothing of that chunk commits.
    with pytest.raises(Killed), svc.db.transaction() as session:
        assert issues.issue_chunk(session, issue_id, "worker-a", svc.context(), chunk=4) == "more"
        raise Killed
    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members[:4]}

    # While A's lease runs, nobody else takes the issue.
    assert run_worker(svc, "worker-b", chunk=4) == 0
    clock.advance(seconds=issues.LEASE.total_seconds() + 1)
    assert run_worker(svc, "worker-b", chunk=4) == 2
    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members}
    row = issue_row(svc, issue_id)
    assert (row.status, row.issued, row.skipped) == ("done", 9, 0)
    # A, back from the dead, finds the issue no longer its own and writes nothing.
    with svc.db.transaction() as session:
        assert issues.issue_chunk(session, issue_id, "worker-a", svc.context(), chunk=4) == "done"
    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunk=st.integers(min_value=1, max_value=6),
    steps=st.lists(st.sampled_from(["chunk", "kill", "expire", "switch"]), max_size=12),
)
def test_any_sequence_of_chunks_deaths_and_takeovers_issues_exactly_once(
    app: Flask, brand: BrandKeys, clock: FrozenClock, chunk: int, steps: list[str]
) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        existing = session.scalars(
            select(Member.id).where(Member.brand_id == brand.brand_id).order_by(Member.id)
        ).all()
        offer_id = session.scalar(select(Offer.id).where(Offer.brand_id == brand.brand_id))
    members = list(existing) or enroll_many(svc, brand, 11)
    offer_id = offer_id or make_offer(svc, brand)
    issue_id = new_issue(svc, brand, offer_id, {"preset": "all"})
    workers = ["worker-a", "worker-b"]
    current = 0
    for step in steps:
        worker = workers[current]
        if step == "expire":
            clock.advance(seconds=issues.LEASE.total_seconds() + 1)
        elif step == "switch":
            current = 1 - current
        else:
            with svc.db.transaction() as session:
                issues.claim_due_issue(session, worker, svc.context())
            try:
                with svc.db.transaction() as session:
                    issues.issue_chunk(session, issue_id, worker, svc.context(), chunk=chunk)
                    if step == "kill":
                        raise Killed
            except Killed:
                pass
        # Whatever happened, nobody ever holds two coupons of this issue.
        assert set(coupons_of_issue(svc, issue_id).values()) <= {1}
    # Leases run out; whichever worker comes next finishes.
    clock.advance(seconds=issues.LEASE.total_seconds() + 1)
    run_worker(svc, workers[current], chunk=chunk)
    assert coupons_of_issue(svc, issue_id) == {m: 1 for m in members}
    row = issue_row(svc, issue_id)
    assert (row.status, row.issued, row.skipped) == ("done", len(members), 0)


def test_an_archived_offer_is_refused_and_archiving_stops_a_running_issue(
    app: Flask, brand: BrandKeys
) -> None:
    svc = services_of(app)
    archived = make_offer(svc, brand, status="archived")
    enroll_many(svc, brand, 5)
    with pytest.raises(issues.OfferArchivedError), svc.db.transaction() as session:
        issues.create_issue(session, brand.brand_id, archived, {"preset": "all"}, svc.context())
    with svc.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(OfferIssue)) == 0

    offer_id = make_offer(svc, brand)
    issue_id = new_issue(svc, brand, offer_id, {"preset": "all"})
    with svc.db.transaction() as session:
        issues.claim_due_issue(session, "worker-a", svc.context())
    with svc.db.transaction() as session:
        assert issues.issue_chunk(session, issue_id, "worker-a", svc.context(), chunk=2) == "more"
    with svc.db.transaction() as session:
        session.execute(update(Offer).where(Offer.id == offer_id).values(status="archived"))
    with svc.db.transaction() as session:
        assert issues.issue_chunk(session, issue_id, "worker-a", svc.context(), chunk=2) == "done"
    row = issue_row(svc, issue_id)
    assert (row.status, row.issued) == ("cancelled", 2)
    assert run_worker(svc, "worker-b", chunk=2) == 0
    assert sum(coupons_of_issue(svc, issue_id).values()) == 2


def test_another_brands_offer_and_a_bad_segment_are_refused(app: Flask, brand: BrandKeys) -> None:
    svc = services_of(app)
    rival = make_brand(app, "Rival Roasters")
    theirs = make_offer(svc, rival)
    ours = make_offer(svc, brand)
    with pytest.raises(NotFoundError), svc.db.transaction() as session:
        issues.create_issue(session, brand.brand_id, theirs, {"preset": "all"}, svc.context())
    segments: tuple[object, ...] = (None, {"preset": "nobody"}, [], "all")
    for segment in segments:
        with pytest.raises(ValidationError), svc.db.transaction() as session:
            issues.create_issue(session, brand.brand_id, ours, segment, svc.context())


def test_the_expiry_job_is_scheduled_and_expires_due_coupons(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    assert "expire_coupons" in {job.name for job in INTERVAL_JOBS}
    svc = services_of(app)
    offer_id = make_offer(svc, brand)
    with svc.db.transaction() as session:
        session.execute(update(Offer).where(Offer.id == offer_id).values(valid_days=3))
    members = enroll_many(svc, brand, 3)
    new_issue(svc, brand, offer_id, {"preset": "all"})
    run_worker(svc, "worker-a")
    assert expire_coupons(svc) == 0
    clock.advance(days=3, seconds=1)
    assert expire_coupons(svc) == len(members)
    with svc.db.transaction() as session:
        statuses = set(session.scalars(select(Coupon.status)).all())
    assert statuses == {"expired"}
