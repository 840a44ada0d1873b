"""The points ledger: scans, redemptions, bonuses, reversals, expiry and the balance check."""

from __future__ import annotations

import calendar
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, String, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from walletd.audit import Actor as Actor
from walletd.errors import (
    N_,
    AuthenticationError,
    IdempotencyConflictError,
    InsufficientPointsError,
    NotFoundError,
    UnknownCardError,
    ValidationError,
)
from walletd.loyalty.barcodes import serial_from_barcode
from walletd.loyalty.brands import find_location, key_location, key_still_live
from walletd.loyalty.cards import cards_of_member, touch_cards
from walletd.loyalty.context import Context
from walletd.loyalty.folded import flush_folded
from walletd.loyalty.money import format_minor, parse_amount
from walletd.loyalty.rules import TierRule, add_months, points_for_purchase, tier_for
from walletd.messages.store import live_reminders_exist, note_no_reminders
from walletd.models import (
    Card,
    Coupon,
    LedgerEntry,
    Member,
    Offer,
    Program,
    Promotion,
    Reward,
    Tier,
)
from walletd.observability.metrics import REDEMPTIONS, SCANS, counted, redemption_kind
from walletd.offers.promotions import active_promotions, combined_multiplier
from walletd.offers.stamps import add_stamp
from walletd.webhooks import active_endpoints_exist, note_no_endpoints
from walletd.webhooks import events as webhook_events

MAX_POINTS_PER_OPERATION = 10_000_000
# No balance or entry grows past the largest integer every JSON client reads exactly
# (JavaScript's Number.MAX_SAFE_INTEGER); the 64-bit columns hold far more.
MAX_BALANCE = 2**53 - 1
# Lifetime spend in minor units must fit its signed 64-bit column.
MAX_SPEND_MINOR = 2**63 - 1
# Ids are 32-bit serials: a larger number names nothing, and must not reach the driver.
MAX_ID = 2**31 - 1
MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Outcome:
    """A use case's answer; `replayed` when an idempotency key had already been used."""

    body: dict[str, Any]
    replayed: bool = False


def request_fingerprint(operation: str, payload: Mapping[str, Any]) -> str:
    """SHA-256 of a request's meaning, to tell a retry from a reused key."""
    canonical = json.dumps({"op": operation, **payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def scan_body(entry: LedgerEntry) -> dict[str, Any]:
    """The answer to a scan, rebuilt from its entry (so a replay answers the same)."""
    return {
        "scan_id": entry.id,
        "member_id": entry.member_id,
        "points_earned": entry.points,
        "balance": entry.balance_after,
        "tier": entry.tier_after,
        "amount": format_minor(entry.amount_minor or 0, entry.currency or "USD"),
        "currency": entry.currency,
    }


# What a scan answers beyond its points (the member's discount, the promotions applied with their
# names, the stamp card, whether coupons were redeemed) is kept in its entry's `scan_extras`, so
# a replay answers exactly the first body even after a promotion is renamed or deleted.
MAX_PROMOTIONS_PER_SCAN = 6


@dataclass(frozen=True)
class ScanExtras:
    """The member's discount, the promotions applied, the stamp card and coupons of a scan."""

    discount_percent: Decimal = Decimal(0)
    promotions: tuple[tuple[int, str, Decimal], ...] = ()
    stamps: tuple[int, int] | None = None
    coupons: bool = False

    def encode(self) -> dict[str, Any] | None:
        """The JSON kept on the entry, or None when there is nothing beyond a plain scan."""
        if self == ScanExtras():
            return None
        return {
            "discount": _decimal_text(self.discount_percent),
            "promotions": [
                {"id": i, "name": name, "multiplier": _decimal_text(m)}
                for i, name, m in self.promotions
            ],
            "stamps": None if self.stamps is None else list(self.stamps),
            "coupons": self.coupons,
        }

    @classmethod
    def decode(cls, data: Any) -> ScanExtras:
        """The extras an entry holds (none for scans made before they existed)."""
        if not isinstance(data, dict):
            return cls()
        stamps = data.get("stamps")
        return cls(
            Decimal(data.get("discount", "0")),
            tuple(
                (int(p["id"]), str(p["name"]), Decimal(p["multiplier"]))
                for p in data.get("promotions", [])
            ),
            None if stamps is None else (int(stamps[0]), int(stamps[1])),
            bool(data.get("coupons", False)),
        )


def _decimal_text(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 10, 12.5, 0."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "0") else text


def full_scan_body(session: Session, entry: LedgerEntry) -> dict[str, Any]:
    """A scan's whole answer, rebuilt from its entry: points, discount, promotions, stamps,
    coupons."""
    extras = ScanExtras.decode(entry.scan_extras)
    coupons: list[dict[str, Any]] = []
    if extras.coupons:
        from walletd.offers.coupons import coupons_of_scan  # it builds on this module

        coupons = coupons_of_scan(session, entry.id)
    return {
        **scan_body(entry),
        "member_discount_percent": _decimal_text(extras.discount_percent),
        "promotions": [
            {"id": i, "name": name, "multiplier": _decimal_text(m)}
            for i, name, m in extras.promotions
        ],
        "stamps": None if extras.stamps is None else
        {"count": extras.stamps[0], "of": extras.stamps[1]},
        "coupons": coupons,
    }  # fmt: skip


def redemption_body(entry: LedgerEntry) -> dict[str, Any]:
    """The answer to a redemption, rebuilt from its entry."""
    return {
        "redemption_id": entry.id,
        "member_id": entry.member_id,
        "points_redeemed": -entry.points,
        "balance": entry.balance_after,
        "reward": entry.reason if entry.reward_id else None,
    }


def _replay(session: Session, brand_id: int, key: str, fingerprint: str) -> Outcome | None:
    # Only clients' keys are looked at: walletd's own keys live in `internal_key`.
    entry = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.brand_id == brand_id, LedgerEntry.idempotency_key == key
        )
    )
    if entry is None:
        return None
    if entry.request_hash != fingerprint:
        raise IdempotencyConflictError(
            "this Idempotency-Key was already used for a different request"
        )
    body = full_scan_body(session, entry) if entry.kind == "earn" else redemption_body(entry)
    return Outcome(body=body, replayed=True)


def lock_member(session: Session, member_id: int) -> Member:
    """Load a member holding its row lock, so concurrent changes of one balance serialise."""
    member = session.scalar(
        select(Member)
        .where(Member.id == member_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if member is None:
        raise NotFoundError("member not found")
    return member


def _expiry_for(program: Program, at: datetime) -> datetime | None:
    if not program.points_expiry_months:
        return None
    year, month = add_months(at.year, at.month, program.points_expiry_months)
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def _append(
    session: Session,
    member: Member,
    *,
    kind: str,
    points: int,
    ctx: Context,
    program: Program | None = None,
    allow_debt: bool = False,
    **fields: Any,
) -> LedgerEntry:
    """Append an entry and keep the cached balance and the lots in step with it.

    Unspent lots always hold max(balance, 0) points: a balance below zero is a debt (only a
    clawback with `allow_debt` makes one), repaid from the next points before they form a lot.
    """
    entry = LedgerEntry(
        brand_id=member.brand_id,
        member_id=member.id,
        kind=kind,
        points=points,
        created_at=ctx.now,
        remaining=0,
        **fields,
    )
    if points < 0 and member.points + points < 0 and not allow_debt:
        raise InsufficientPointsError("the balance cannot go below zero")
    if points > 0:
        program = program or session.get_one(Program, member.program_id)
        entry.remaining = max(0, points + min(member.points, 0))
        entry.expires_at = _expiry_for(program, ctx.now)
    elif points < 0:
        _consume_lots(session, member.id, -points)
    member.points += points
    session.add(entry)
    return entry


def _consume_lots(session: Session, member_id: int, points: int) -> None:
    """Take points from the lots that expire first (lots without expiry last)."""
    lots = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.member_id == member_id, LedgerEntry.remaining > 0)
        .order_by(LedgerEntry.expires_at.is_(None), LedgerEntry.expires_at, LedgerEntry.id)
    ).all()
    for lot in lots:
        if points <= 0:
            break
        taken = min(lot.remaining, points)
        lot.remaining -= taken
        points -= taken


def _tiers(session: Session, program_id: int) -> list[TierRule]:
    rows = session.scalars(select(Tier).where(Tier.program_id == program_id)).all()
    return [TierRule(t.id, t.name, t.threshold, t.multiplier) for t in rows]


def qualifying_value(session: Session, member: Member, program: Program, now: datetime) -> int:
    """Spend (minor units) or points earned in the rolling 12 months that decide the tier."""
    since = now - timedelta(days=365)
    by_points = program.tier_basis == "points"
    column = LedgerEntry.points if by_points else LedgerEntry.amount_minor
    kinds = ("earn", "bonus", "reversal") if by_points else ("earn", "reversal")
    query = select(func.coalesce(func.sum(column), 0)).where(
        LedgerEntry.member_id == member.id,
        LedgerEntry.kind.in_(kinds),
        LedgerEntry.created_at >= since,
        # A reversed redemption gives spent points back: they were earned once already.
        or_(LedgerEntry.kind != "reversal", LedgerEntry.points <= 0),
    )
    return int(session.execute(query).scalar_one() or 0)


def _rank(tiers: list[TierRule], tier_id: int | None) -> int:
    for tier in tiers:
        if tier.id == tier_id:
            return tier.threshold
    return -1


def _upgrade_tier(
    session: Session, member: Member, program: Program, tiers: list[TierRule], now: datetime
) -> None:
    """Move the member up at once when a threshold is crossed; never down here."""
    higher = [t.threshold for t in tiers if t.threshold > _rank(tiers, member.tier_id)]
    if not higher:
        return
    if program.tier_basis == "spend" and member.lifetime_spend_minor < min(higher):
        return  # 12-month spend never exceeds lifetime spend: no threshold can be crossed
    best = tier_for(qualifying_value(session, member, program, now), tiers)
    if best is not None and best.threshold > _rank(tiers, member.tier_id):
        member.tier_id = best.id


def _tier_name(tiers: list[TierRule], tier_id: int | None) -> str | None:
    return next((t.name for t in tiers if t.id == tier_id), None)


def _check_key(key: object) -> str:
    """A client's Idempotency-Key, trimmed: 1 to 200 visible ASCII characters and spaces."""
    if key is None or (isinstance(key, str) and not key.strip()):
        raise ValidationError("the Idempotency-Key header is required", field="Idempotency-Key")
    if not isinstance(key, str):
        raise ValidationError("Idempotency-Key must be text", field="Idempotency-Key")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise ValidationError(
            "Idempotency-Key must be 1 to 200 printable ASCII characters", field="Idempotency-Key"
        )
    return key


def _integer(value: object, field: str, message: str) -> int:
    """A JSON whole number (not a boolean), or a field error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(message, field=field)
    return value


def _may_exist(row_id: int) -> bool:
    return 1 <= row_id <= MAX_ID


@dataclass(frozen=True)
class _ScanRead:
    """What a scan's one locked read learns."""

    card: Card
    member: Member
    program: Program
    tiers: list[TierRule]
    discounts: dict[int, Decimal]
    used: bool  # the Idempotency-Key was used already
    promotions: bool  # the program has an active promotion


@functools.cache
def _scan_read_statement() -> Any:
    """The scan's locked read, built once: SQLAlchemy memoises a statement object's cache key,
    so a scan spends no CPU building and keying it (bench/hotpath_profile.py: a fifth of the
    read's Python time went there). Parameters: barcode, brand_id, key, key_id (the API key
    of the request, 0 for none: whether it is still live, so that a key the web layer took from
    its cache is refused at once once revoked; walletd/web/auth.py)."""
    brand_id = bindparam("brand_id", type_=Integer)
    used = (
        select(LedgerEntry.id)
        .where(
            LedgerEntry.brand_id == brand_id,
            LedgerEntry.idempotency_key == bindparam("key", type_=String),
        )
        .exists()
    )
    promotions = (
        select(Promotion.id)
        .where(Promotion.program_id == Program.id, Promotion.active.is_(True))
        .exists()
    )
    live_key = key_still_live(bindparam("key_id", type_=Integer))
    return (
        select(
            Card,
            Member,
            Program,
            Tier,
            active_endpoints_exist(Card.brand_id),
            live_reminders_exist(Member.id),
            promotions,
            used,
            live_key,
        )
        .join(Member, Member.id == Card.member_id)
        .join(Program, Program.id == Member.program_id)
        .outerjoin(Tier, Tier.program_id == Program.id)
        .where(Card.barcode == bindparam("barcode", type_=String), Card.brand_id == brand_id)
        .with_for_update(of=Member)
        .execution_options(populate_existing=True)
    )


def _locked_card_and_rules(
    session: Session, actor: Actor, barcode: object, secret_keys: tuple[str, ...], key: str
) -> _ScanRead:
    """The card a barcode names, its member (holding the member's row lock), the program and its
    tiers, in one statement: a scan's or a redemption's first and only read of them.

    Also learns, so that a scan of the common case costs no query for them: whether the brand
    has webhook endpoints (a scan's events), whether the member holds a live reminder
    (touch_cards re-checks them), whether the program has an active promotion, and whether
    the Idempotency-Key was used already. That check reads the statement's snapshot: a twin
    committed while this one waited for the member's lock is not seen, so this scan's INSERT
    hits the unique key and run_in_transaction runs it again, which then replays the twin's
    answer.
    """
    if not isinstance(barcode, str) or not barcode.strip():
        raise ValidationError("barcode is required and must be a string", field="barcode")
    if serial_from_barcode(barcode, secret_keys) is None:
        raise UnknownCardError("this barcode is not a card of this program")
    brand_id = actor.brand_id
    rows = session.execute(
        _scan_read_statement(),
        {"barcode": barcode.strip().upper(), "brand_id": brand_id, "key": key,
         "key_id": actor.api_key_id or 0},
    ).all()  # fmt: skip
    if not rows:
        raise UnknownCardError("this barcode is not a card of this program")
    card, member, program, _, hooks, reminders, promoted, replay, live_key = rows[0]
    if actor.api_key_id is not None and not live_key:
        raise AuthenticationError("invalid API key")  # revoked since the web layer checked it
    if not hooks:
        note_no_endpoints(session, brand_id)
    if not reminders:
        note_no_reminders(session, member.id)
    tier_rows = [row[3] for row in rows if row[3] is not None]
    return _ScanRead(
        card, member, program,
        tiers=[TierRule(t.id, t.name, t.threshold, t.multiplier) for t in tier_rows],
        discounts={t.id: Decimal(t.member_discount_percent or 0) for t in tier_rows},
        used=bool(replay), promotions=bool(promoted),
    )  # fmt: skip


MAX_COUPONS_PER_SCAN = 10


def _coupon_barcodes(coupons: object) -> list[str]:
    """The coupon barcodes a scan redeems: at most 10 distinct strings."""
    if coupons is None:
        return []
    if not isinstance(coupons, list | tuple) or not all(isinstance(c, str) for c in coupons):
        raise ValidationError("coupons must be a list of barcodes", field="coupons")
    if len(coupons) > MAX_COUPONS_PER_SCAN:
        raise ValidationError(
            f"at most {MAX_COUPONS_PER_SCAN} coupons in one scan", field="coupons"
        )
    barcodes = [c.strip() for c in coupons]
    if len(set(barcodes)) != len(barcodes):
        raise ValidationError("a coupon is listed twice", field="coupons")
    return barcodes


@counted(SCANS)
def credit_scan(
    session: Session,
    actor: Actor,
    *,
    barcode: object,
    amount: object,
    currency: object,
    location_id: object,
    idempotency_key: object,
    ctx: Context,
    coupons: object = None,
) -> Outcome:
    """Credit a checkout scan exactly once: earn points (tier × promotions), count the visit,
    stamp the stamp card, redeem the coupons given, maybe upgrade the tier."""
    key = _check_key(idempotency_key)
    barcodes = _coupon_barcodes(coupons)
    if currency is not None and not isinstance(currency, str):
        raise ValidationError("currency must be a string", field="currency")
    location = None
    if location_id is not None:
        location = _integer(location_id, "location_id", "location_id must be an integer")
    # Locking first makes a concurrent twin with the same key wait, then find our entry.
    read = _locked_card_and_rules(session, actor, barcode, ctx.secret_keys, key)
    card, member, program, tiers, discounts = (
        read.card, read.member, read.program, read.tiers, read.discounts
    )  # fmt: skip
    if currency is not None and currency.upper() != program.currency:
        raise ValidationError(
            f"this program counts in {program.currency}, not {currency}", field="currency"
        )
    amount_minor = parse_amount(amount, program.currency)
    if amount_minor > program.max_amount_minor:
        raise ValidationError(
            "amount is above this program's ceiling of "
            f"{format_minor(program.max_amount_minor, program.currency)} {program.currency}",
            field="amount",
        )
    if location is not None and (
        not _may_exist(location) or find_location(session, actor.brand_id, location) is None
    ):
        raise ValidationError("location_id is not a location of this brand", field="location_id")
    meaning: dict[str, Any] = {
        "card": card.serial_number, "amount": amount_minor, "location": location
    }  # fmt: skip
    if barcodes:
        meaning["coupons"] = barcodes  # only then: older scans keep their fingerprints
    fingerprint = request_fingerprint("scan", meaning)
    replay = _replay(session, actor.brand_id, key, fingerprint) if read.used else None
    if replay is not None:
        return replay
    if location is None:
        # A till's key is bound to its shop: its scans happen there unless they name another.
        # After the fingerprint, so a retry matches whatever the key's binding is by then.
        location = (
            actor.key_location_id
            if actor.key_location_known
            else key_location(session, actor.api_key_id)
        )
    tier_multiplier = next((t.multiplier for t in tiers if t.id == member.tier_id), Decimal(1))
    promotions = (
        active_promotions(session, program, _tier_name(tiers, member.tier_id), location, ctx.now)
        if read.promotions
        else []
    )[:MAX_PROMOTIONS_PER_SCAN]
    multiplier = combined_multiplier(tier_multiplier, [p.multiplier for p in promotions])
    points = points_for_purchase(
        amount_minor,
        program.currency,
        points_per_unit=program.points_per_unit,
        multiplier=multiplier,
        rounding=program.rounding,
        cap=program.max_points_per_scan,
    )
    if points > MAX_BALANCE - max(member.points, 0):
        raise ValidationError(
            f"this purchase would take the balance above {MAX_BALANCE:,} points", field="amount"
        )
    if amount_minor > MAX_SPEND_MINOR - member.lifetime_spend_minor:
        raise ValidationError("this purchase would overflow the member's lifetime spend",
                              field="amount")  # fmt: skip
    pays_referral = _first_qualifying_purchase(session, member, program, amount_minor)
    entry = _append(
        session,
        member,
        kind="earn",
        points=points,
        ctx=ctx,
        program=program,
        amount_minor=amount_minor,
        currency=program.currency,
        idempotency_key=key,
        request_hash=fingerprint,
        location_id=location,
        api_key_id=actor.api_key_id,
        staff_id=actor.staff_id,
    )
    member.visits += 1
    member.lifetime_spend_minor += amount_minor
    member.first_visit_at = member.first_visit_at or ctx.now
    member.last_visit_at = ctx.now
    if pays_referral:
        session.flush()  # the bonuses name this scan, so reversing it claws them back
        _referral_bonuses(session, member, program, entry, ctx)
    discount = discounts.get(member.tier_id, Decimal(0)) if member.tier_id else Decimal(0)
    stamp = None
    if program.stamps_enabled:
        stamp = add_stamp(session, program, member, amount_minor, ctx)
    if barcodes:
        # Imported here: the coupons module builds on this one (Outcome, bonuses).
        from walletd.offers.coupons import redeem_coupons_in_scan

        session.flush()  # the coupons record this scan's entry id
        redeem_coupons_in_scan(session, actor, member, barcodes, amount_minor, entry.id, ctx)
    tier_before = _tier_name(tiers, member.tier_id)
    _upgrade_tier(session, member, program, tiers, ctx.now)
    entry.balance_after = member.points
    entry.tier_after = _tier_name(tiers, member.tier_id)
    entry.scan_extras = ScanExtras(
        discount_percent=discount,
        promotions=tuple((p.id, p.name, Decimal(p.multiplier)) for p in promotions),
        stamps=None if stamp is None else (stamp.count, stamp.of),
        coupons=bool(barcodes),
    ).encode()
    flush_folded(session, entry, touch_cards(session, [card], ctx, fold=True))
    # Only here, on the first execution: a replay returned above and emits nothing again.
    webhook_events.scan_credited(session, member, entry, now=ctx.now)
    webhook_events.tier_changed(
        session, member, tier_before, entry.tier_after, reason="scan", now=ctx.now
    )
    # Coupons are rebuilt as a replay rebuilds them, so both answers are the same.
    return Outcome(body=full_scan_body(session, entry))


def _first_qualifying_purchase(
    session: Session, member: Member, program: Program, amount_minor: int
) -> bool:
    """True when a referred member's purchase is their first of at least the program's minimum.

    An earlier qualifying purchase counts even if it was refunded: a referral pays once, and
    the refund of the purchase that earned it forfeits it (see `reverse_scan`).
    """
    if member.referred_by_id is None or amount_minor < program.referral_min_purchase_minor:
        return False
    if (
        program.referral_bonus_referee <= 0
        and program.referral_bonus_referrer <= 0
        and program.referral_offer_id is None
    ):
        return False
    if member.visits == 0:
        return True
    earlier = session.scalar(
        select(LedgerEntry.id)
        .where(
            LedgerEntry.member_id == member.id,
            LedgerEntry.kind == "earn",
            LedgerEntry.amount_minor >= program.referral_min_purchase_minor,
        )
        .limit(1)
    )
    return earlier is None


def _referral_bonuses(
    session: Session, member: Member, program: Program, scan: LedgerEntry, ctx: Context
) -> None:
    """Reward both sides of a referral on the referred member's first qualifying purchase."""
    if program.referral_bonus_referee > 0:
        grant_bonus(
            session,
            member,
            program.referral_bonus_referee,
            reason="referral",
            idempotency_key=f"referral:referee:{member.id}",
            ctx=ctx,
            touch=False,
            earned_by_id=scan.id,
        )
    if member.referred_by_id is None:
        return
    referrer = lock_member(session, member.referred_by_id)
    if program.referral_bonus_referrer > 0:
        grant_bonus(
            session,
            referrer,
            program.referral_bonus_referrer,
            reason="referral",
            idempotency_key=f"referral:referrer:{member.id}",
            ctx=ctx,
            earned_by_id=scan.id,
        )
    if program.referral_offer_id is not None:
        from walletd.offers.coupons import issue_coupon  # it builds on this module

        offer = session.get(Offer, program.referral_offer_id)
        if offer is not None:
            issue_coupon(
                session, offer, referrer, source="referral",
                occasion=referral_occasion(member.id), ctx=ctx,
            )  # fmt: skip


def referral_occasion(referred_member_id: int) -> str:
    """The occasion of the referrer's reward coupon for bringing in one member."""
    return f"referral:{referred_member_id}"


def grant_bonus(
    session: Session,
    member: Member,
    points: int,
    *,
    reason: str,
    idempotency_key: str,
    ctx: Context,
    kind: str = "bonus",
    touch: bool = True,
    earned_by_id: int | None = None,
) -> LedgerEntry | None:
    """Give bonus points once per walletd-made key; None when that key was already used.

    The key is stored apart from clients' Idempotency-Keys, so no client can spend it first.
    """
    exists = session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.brand_id == member.brand_id,
            LedgerEntry.internal_key == idempotency_key,
        )
    )
    if exists is not None:
        return None
    if points > MAX_BALANCE - max(member.points, 0):
        return None  # a balance at the ceiling takes no more; a batch job must not fail on it
    entry = _append(
        session, member, kind=kind, points=points, ctx=ctx, reason=reason,
        internal_key=idempotency_key, earned_by_id=earned_by_id,
    )  # fmt: skip
    if touch:
        touch_cards(session, cards_of_member(session, member.id), ctx)
    return entry


@counted(REDEMPTIONS, redemption_kind)
def redeem(
    session: Session,
    actor: Actor,
    *,
    barcode: object,
    points: object,
    reward_id: object,
    idempotency_key: object,
    ctx: Context,
) -> Outcome:
    """Spend points directly or on a reward; never below a zero balance."""
    key = _check_key(idempotency_key)
    if (points is None) == (reward_id is None):
        raise ValidationError("give exactly one of points or reward_id", field="points")
    # The scan's locked read: it also says whether the key was used, whether the member holds
    # a live reminder and whether the brand has webhook endpoints, so a plain redemption sends
    # no query for them (a twin that commits while this waits is replayed on the retry its
    # unique key forces, as for scans).
    read = _locked_card_and_rules(session, actor, barcode, ctx.secret_keys, key)
    card, member = read.card, read.member
    reward: Reward | None = None
    if reward_id is not None:
        wanted = _integer(reward_id, "reward_id", "reward_id must be an integer")
        reward = session.scalar(
            select(Reward).where(
                Reward.id == wanted, Reward.program_id == member.program_id, Reward.active
            )
        ) if _may_exist(wanted) else None  # fmt: skip
        if reward is None:
            raise NotFoundError("reward not found")
        cost = reward.cost_points
    else:
        cost = _integer(points, "points", "points must be a whole number")
        if not 0 < cost <= MAX_POINTS_PER_OPERATION:
            raise ValidationError("points must be between 1 and 10,000,000", field="points")
    fingerprint = request_fingerprint(
        "redeem", {"card": card.serial_number, "points": points, "reward": reward_id}
    )
    replay = _replay(session, actor.brand_id, key, fingerprint) if read.used else None
    if replay is not None:
        return replay
    if member.points < cost:
        raise InsufficientPointsError(
            N_("the member has {points} points; this needs {cost}"),
            params={"points": member.points, "cost": cost},
        )
    entry = _append(
        session,
        member,
        kind="redeem",
        points=-cost,
        ctx=ctx,
        idempotency_key=key,
        request_hash=fingerprint,
        reward_id=reward.id if reward else None,
        reason=reward.name if reward else None,
        api_key_id=actor.api_key_id,
        staff_id=actor.staff_id,
    )
    entry.balance_after = member.points
    flush_folded(session, entry, touch_cards(session, [card], ctx, fold=True))
    webhook_events.redemption_created(session, member, entry, now=ctx.now)
    return Outcome(body=redemption_body(entry))


def reverse_scan(
    session: Session,
    actor: Actor,
    scan_id: object,
    ctx: Context,
    *,
    within_refund_window: bool = False,
) -> Outcome:
    """Refund the rest of a scan in full: see `walletd.refunds.refund_scan`."""
    from walletd.refunds import refund_scan  # refunds build on this module

    return refund_scan(session, actor, scan_id, ctx, within_refund_window=within_refund_window)


def _claw_back_bonuses(session: Session, member: Member, scan: LedgerEntry, ctx: Context) -> None:
    """Take back, in full, the bonuses a reversed scan earned, each with its own entry.

    A bonus already spent leaves its owner's balance below zero: a debt repaid from the next
    points earned before they can be spent (see `_append`), and no redemption meanwhile. This
    is what card programs do with refunded purchases; stopping at zero instead would let a
    referrer redeem the bonus at once and keep it after the purchase that paid for it is
    refunded, which is the farming this closes. Scan points themselves still come back only as
    far as the balance allows (the long-standing refund rule above).
    """
    bonuses = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.earned_by_id == scan.id, LedgerEntry.kind == "bonus")
        .order_by(LedgerEntry.id)
    ).all()
    for bonus in bonuses:
        # Same lock order as the scan that paid them: the referred member, then the referrer.
        owner = member if bonus.member_id == member.id else lock_member(session, bonus.member_id)
        clawback = _append(
            session, owner, kind="reversal", points=-bonus.points, ctx=ctx,
            reason=f"{bonus.reason} clawback", reverses_id=bonus.id, earned_by_id=scan.id,
            allow_debt=True,
        )  # fmt: skip
        clawback.balance_after = owner.points
        if owner is not member:
            touch_cards(session, cards_of_member(session, owner.id), ctx)
    # The referrer's reward coupon goes too, unless it was already used.
    from walletd.offers.coupons import void_coupon

    reward = session.scalar(
        select(Coupon.id).where(
            Coupon.occasion == referral_occasion(member.id),
            Coupon.source == "referral",
            Coupon.status == "active",
        )
    )
    if reward is not None:
        void_coupon(session, member.brand_id, reward, ctx)


def staff_reason(value: object) -> str:
    """Why staff changed something, trimmed: 1 to 200 printable characters. Printable only:
    control characters (NUL above all, which Postgres refuses) and lone surrogates (which no
    encoding stores) never belong in a one-line reason."""
    reason = value.strip() if isinstance(value, str) else None
    if reason is None or not 1 <= len(reason) <= 200 or not reason.isprintable():
        raise ValidationError("reason must be 1 to 200 printable characters", field="reason")
    return reason


def adjust_points(
    session: Session, actor: Actor, member_id: object, points: object, reason: object, ctx: Context
) -> Outcome:
    """A staff correction with a reason; it may not take the balance below zero."""
    wanted = _integer(member_id, "member_id", "member_id must be an integer")
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise ValidationError("points must be a non-zero whole number", field="points")
    if abs(points) > MAX_POINTS_PER_OPERATION:
        raise ValidationError("points must be within ±10,000,000", field="points")
    reason = staff_reason(reason)
    member = session.scalar(
        select(Member.id).where(Member.id == wanted, Member.brand_id == actor.brand_id)
    ) if _may_exist(wanted) else None  # fmt: skip
    if member is None:
        raise NotFoundError("member not found")
    locked = lock_member(session, wanted)
    if points < 0 and locked.points + points < 0:
        raise InsufficientPointsError(
            N_("the member has {points} points"), params={"points": locked.points}
        )
    if points > MAX_BALANCE - max(locked.points, 0):
        raise ValidationError(
            N_("the balance cannot exceed {max} points"),
            field="points",
            params={"max": f"{MAX_BALANCE:,}"},
        )
    entry = _append(session, locked, kind="adjust", points=points, ctx=ctx,
                    reason=reason, api_key_id=actor.api_key_id,
                    staff_id=actor.staff_id)  # fmt: skip
    entry.balance_after = locked.points
    touch_cards(session, cards_of_member(session, locked.id), ctx)
    session.flush()
    return Outcome(body={"entry_id": entry.id, "member_id": locked.id, "balance": locked.points})


def expire_due_lots(session: Session, ctx: Context, *, limit: int = 500) -> int:
    """Expire the unspent part of lots whose time has come; returns how many members changed."""
    member_ids = session.scalars(
        select(LedgerEntry.member_id)
        .where(LedgerEntry.remaining > 0, LedgerEntry.expires_at <= ctx.now)
        .distinct()
        .limit(limit)
    ).all()
    for member_id in member_ids:
        member = lock_member(session, member_id)
        lots = session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.member_id == member_id,
                LedgerEntry.remaining > 0,
                LedgerEntry.expires_at <= ctx.now,
            )
        ).all()
        total = sum(lot.remaining for lot in lots)
        for lot in lots:
            lot.remaining = 0
        if total:
            session.add(
                LedgerEntry(brand_id=member.brand_id, member_id=member.id, kind="expire",
                            points=-total, reason="points expired", created_at=ctx.now,
                            remaining=0)
            )  # fmt: skip
            member.points -= total
            touch_cards(session, cards_of_member(session, member.id), ctx)
    session.flush()
    return len(member_ids)


def _birthday_matches(today: date) -> Any:
    # A 29 February birthday is celebrated on 28 February in other years.
    month, day = today.month, today.day
    condition = and_(
        func.extract("month", Member.birthday) == month, func.extract("day", Member.birthday) == day
    )
    if month == 2 and day == 28 and not calendar.isleap(today.year):
        condition = or_(
            condition,
            and_(func.extract("month", Member.birthday) == 2,
                 func.extract("day", Member.birthday) == 29),
        )  # fmt: skip
    return condition


def grant_birthday_bonuses(session: Session, ctx: Context, *, limit: int = 1000) -> int:
    """Give each member whose birthday is today the program's birthday bonus, once a year."""
    today = ctx.now.date()
    rows = session.execute(
        select(Member.id, Program.birthday_bonus)
        .join(Program, Program.id == Member.program_id)
        .where(
            Member.birthday.is_not(None),
            Program.birthday_bonus > 0,
            _birthday_matches(today),
            or_(
                Member.last_birthday_bonus_year.is_(None),
                Member.last_birthday_bonus_year < today.year,
            ),
        )
        .limit(limit)
    ).all()
    for member_id, bonus in rows:
        member = lock_member(session, member_id)
        if member.last_birthday_bonus_year == today.year:
            continue
        member.last_birthday_bonus_year = today.year
        grant_bonus(session, member, bonus, reason="birthday",
                    idempotency_key=f"birthday:{member.id}:{today.year}", ctx=ctx)  # fmt: skip
    return len(rows)


def reevaluate_tiers(session: Session, ctx: Context, *, program_id: int) -> int:
    """Periodic re-evaluation: every member gets the tier its last 12 months earn (up or down)."""
    program = session.get_one(Program, program_id)
    tiers = _tiers(session, program.id)
    changed = 0
    members = session.scalars(select(Member).where(Member.program_id == program_id)).all()
    for member in members:
        best = tier_for(qualifying_value(session, member, program, ctx.now), tiers)
        new_id = best.id if best else None
        if new_id != member.tier_id:
            before = _tier_name(tiers, member.tier_id)
            member.tier_id = new_id
            webhook_events.tier_changed(
                session, member, before, best.name if best else None,
                reason="reevaluation", now=ctx.now,
            )  # fmt: skip
            touch_cards(session, cards_of_member(session, member.id), ctx)
            changed += 1
    return changed


@dataclass(frozen=True)
class Mismatch:
    """A member whose cached balance differs from the sum of its ledger."""

    member_id: int
    cached: int
    ledger: int


def verify_ledger(session: Session) -> list[Mismatch]:
    """Recompute every balance from the ledger and list the members whose cache is wrong."""
    sums = (
        select(LedgerEntry.member_id, func.sum(LedgerEntry.points).label("total"))
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    rows = session.execute(
        select(Member.id, Member.points, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.member_id == Member.id)
        .where(Member.points != func.coalesce(sums.c.total, 0))
        .order_by(Member.id)
    ).all()
    return [Mismatch(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def member_ledger(
    session: Session, brand_id: int, member_id: int, limit: int = 200
) -> list[LedgerEntry]:
    """A member's entries, newest first."""
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.member_id == member_id, LedgerEntry.brand_id == brand_id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(limit)
        ).all()
    )
