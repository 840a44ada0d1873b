"""The Google Wallet channel: card objects, card messages and class messages, within the limits.

Per batch it reads everything it needs in one short transaction, closes it, then talks to Google;
what must be remembered (object synced, notification spent) is written by each Delivery's `after`
in the dispatcher's recording transaction.

- google_object: the first sync inserts the object (409: patch it whole); later syncs PATCH the
  balances, with NOTIFY_ON_UPDATE when the balance changed since the last sync and the card's
  rolling 24-hour budget (3, shared with messages) has room. 404: insert it again. A row with
  `messages` in its payload also replaces the object's messages with the card's live ones (some
  expired, were withdrawn or cleared).
- google_message: addMessage with the message's own id, so a retry replaces instead of adding;
  TEXT_AND_NOTIFY within the budget, TEXT beyond it or when Google says quotaExceeded. When
  Google refuses a message because the object already holds ten, the oldest are dropped with a
  PATCH of `messages` (keeping the newest nine, in Google's order) and the message is added again.
- google_class_message: the same on the program's class, reaching every holder with one call.
- The class is created or patched (always reviewStatus UNDER_REVIEW) before the first object of a
  program, and again whenever the program changed after the last class sync.
- google_coupon: the coupon's offerObject is inserted (409: patched whole) or patched whole with
  the state its status maps to (ACTIVE, COMPLETED, EXPIRED, INACTIVE), after its offer's
  offerClass (created or patched like a program's class). Then the member's loyalty object gets
  it linked (ACTIVE) or unlinked (any other state) with modifyLinkedOfferObjects, so the coupon
  shows inside the loyalty card without a save of its own. The link call names only this coupon's
  id and follows the coupon's state as read for this delivery, so retries and reordered rows
  converge; a PATCH of `linkedOfferIds` would replace the whole list and let two workers undo each
  other, and `linkedObjectIds` (Google's suggested successor) can never be unlinked.
- google_object rows for a coupon's own Apple card (Card.kind "coupon") are dropped: on Google a
  coupon is its offer object, never a second loyalty object.
- Errors: 5xx and throttling outliving the client's own retries -> retry the row later; 429 or
  rateLimitExceeded -> pause the whole channel (the limit is per issuer); 401, 403 permission and
  403 quotaExceeded outside a notification -> pause and log loudly (an operator must act);
  400 -> the row fails with Google's message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.db import Database
from walletd.loyalty import discovery  # [google-signup]
from walletd.models import Brand, Card, Coupon, Offer, Program
from walletd.passes.cards import card_views
from walletd.passes.google import (
    DEFAULT_LABELS,
    LoyaltyLabels,
    add_message_body,
    build_loyalty_object,
    build_offer_object,
    class_id,
    modify_linked_offers_body,
    object_id,
    object_messages,
    offer_class_id,
    offer_object_id,
    points_patch,
)
from walletd.passes.view import CardView
from walletd.privacy.consent import with_manage_link
from walletd.push import google_sync
from walletd.push.dispatcher import ChannelPausedError, ClaimedRow, Delivery
from walletd.push.google_client import (
    GoogleApiError,
    GoogleAuthError,
    GoogleBadRequestError,
    GoogleNotFoundError,
    GooglePermissionError,
    GoogleQuotaExceededError,
    GoogleRetryableError,
    GoogleWallet,
    GoogleWalletClient,
)
from walletd.push.outbox import GOOGLE_CLASS_MESSAGE, GOOGLE_COUPON, GOOGLE_MESSAGE, GOOGLE_OBJECT
from walletd.scheduling.rate import SharedRateLimiter
from walletd.services import Services

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

# Google keeps at most ten messages on an object or a class.
MAX_MESSAGES = 10
_MESSAGE_FIELDS = (
    "id",
    "header",
    "body",
    "messageType",
    "displayInterval",
    "localizedHeader",
    "localizedBody",
)
# Credentials, permission or issuer quota refused: nothing will work until someone acts.
ACCOUNT_PAUSE_SECONDS = 300.0
QUOTA_PAUSE_SECONDS = 900.0
# Throttled with no Retry-After, or Google failing call after call: back off the whole channel.
THROTTLE_PAUSE_SECONDS = 30.0
OUTAGE_PAUSE_SECONDS = 30.0
MAX_CONSECUTIVE_FAILURES = 3
# Stop a batch well inside the dispatcher's 120 s lease; the rest is retried shortly.
BATCH_SECONDS = 60.0
# Google counts requests as they arrive, our limiter spaces them as they leave: at exactly the
# configured rate, network jitter squeezes rate+1 arrivals into some one-second window
# (bench/google.py saw 429s at 20/s against a 20/s limit). Aim 5% under the ceiling instead.
RATE_HEADROOM = 0.95
# Worker-side client policy: short in-call retries; longer waits go back to the outbox schedule.
WORKER_CLIENT_OPTIONS: Mapping[str, Any] = {
    "max_attempts": 3,
    "backoff_base": 0.5,
    "backoff_cap": 4.0,
    "max_retry_after": 5.0,
}


class _PauseError(Exception):
    """Channel-wide trouble: stop the batch and pause delivery."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


@dataclass(frozen=True)
class _CardState:
    card_id: int
    view: CardView
    object_id: str
    class_id: str
    synced: bool  # Google has the object (google_synced_at is set)
    balance_changed: bool  # a ledger entry is newer than the last sync
    notifications: int  # notifications spent in the last 24 h


@dataclass(frozen=True)
class _ProgramState:
    program_id: int
    class_id: str
    body: JsonDict
    brand_name: str
    stale: bool
    known: bool  # the class was created at Google before (PATCH, not insert, first)


@dataclass(frozen=True)
class _OfferState:
    offer_id: int
    class_id: str
    body: JsonDict
    stale: bool
    known: bool  # the offer class was created at Google before


@dataclass(frozen=True)
class _CouponState:
    coupon_id: int
    offer_id: int
    object_id: str
    body: JsonDict  # the whole OfferObject, in the coupon's current state
    synced: bool  # Google has the offer object (google_synced_at is set)
    loyalty_card_ids: tuple[int, ...]  # the member's loyalty cards, whose objects link it


@dataclass
class _Batch:
    """What one deliver() call read, plus what it did to Google so far."""

    db: Database
    now: datetime
    cards: dict[int, _CardState]
    programs: dict[int, _ProgramState]
    spent: dict[int, int] = field(default_factory=dict)
    synced: set[int] = field(default_factory=set)
    notified_balance: set[int] = field(default_factory=set)
    classes_done: set[int] = field(default_factory=set)
    class_errors: dict[int, GoogleApiError] = field(default_factory=dict)
    coupons: dict[int, _CouponState] = field(default_factory=dict)
    offers: dict[int, _OfferState] = field(default_factory=dict)
    offers_done: set[int] = field(default_factory=set)
    offer_errors: dict[int, GoogleApiError] = field(default_factory=dict)
    coupon_cards: set[int] = field(default_factory=set)

    def budget_left(self, card: _CardState) -> bool:
        used = card.notifications + self.spent.get(card.card_id, 0)
        return used < google_sync.NOTIFICATION_BUDGET

    def spend(self, card: _CardState) -> None:
        self.spent[card.card_id] = self.spent.get(card.card_id, 0) + 1

    def is_synced(self, card: _CardState) -> bool:
        return card.synced or card.card_id in self.synced


def _after(
    card_id: int, at: datetime, *, synced: bool, notified: bool
) -> Callable[[Session], None]:
    def record(session: Session) -> None:
        if synced:
            google_sync.mark_card_synced(session, card_id, at)
        if notified:
            google_sync.record_notification(session, card_id, at)

    return record


def _message_fields(message: Mapping[str, Any]) -> JsonDict:
    # Only what we may write back: GET answers can carry output-only or legacy fields.
    return {k: message[k] for k in _MESSAGE_FIELDS if message.get(k) is not None}


class GoogleChannel:
    """Delivers Google outbox rows through one GoogleWalletClient kept for the worker's life."""

    kinds: tuple[str, ...] = (GOOGLE_OBJECT, GOOGLE_MESSAGE, GOOGLE_CLASS_MESSAGE, GOOGLE_COUPON)

    def __init__(
        self,
        client: GoogleWallet,
        *,
        issuer_id: str,
        base_url: str,
        clock: Callable[[], datetime],
        labels: LoyaltyLabels = DEFAULT_LABELS,
        batch_seconds: float = BATCH_SECONDS,
        secret_key: str = "",
    ) -> None:
        self.client = client
        self.issuer_id = issuer_id
        self.base_url = base_url
        self.clock = clock
        self.labels = labels
        self.batch_seconds = batch_seconds
        # Signs the card page link on the object ("manage messages"); none without a key.
        self.secret_key = secret_key
        self.paused_until: datetime | None = None

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()

    # -- the Channel protocol --------------------------------------------------------------------

    def deliver(self, rows: Sequence[ClaimedRow], db: Database) -> list[Delivery]:
        """Deliver a batch in order; see the module docstring for what each kind does."""
        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            raise ChannelPausedError(
                "Google Wallet delivery is paused after an earlier error",
                seconds=(self.paused_until - now).total_seconds(),
            )
        self.paused_until = None
        batch = self._read(rows, db, now)
        started = time.monotonic()
        deliveries: list[Delivery] = []
        failures = 0
        for index, row in enumerate(rows):
            rest = rows[index:]
            if time.monotonic() - started > self.batch_seconds:
                deliveries += [Delivery(r.id, "retry", "batch time is up") for r in rest]
                break
            try:
                delivery = self._deliver_row(row, batch)
            except _PauseError as exc:
                log.error("Google Wallet delivery paused for %.0f s: %s", exc.seconds, exc)
                if not any(d.outcome in ("sent", "gone") for d in deliveries):
                    # Nothing reached Google yet: the dispatcher gives every row its attempt back.
                    raise ChannelPausedError(str(exc), seconds=exc.seconds) from exc
                self.paused_until = now + timedelta(seconds=exc.seconds)
                deliveries += [
                    Delivery(r.id, "retry", str(exc), retry_after=exc.seconds) for r in rest
                ]
                break
            deliveries.append(delivery)
            failures = failures + 1 if delivery.outcome == "retry" else 0
            if failures >= MAX_CONSECUTIVE_FAILURES and index + 1 < len(rows):
                log.warning(
                    "Google Wallet failed %d calls in a row; holding %d row(s) for %.0f s",
                    failures,
                    len(rows) - index - 1,
                    OUTAGE_PAUSE_SECONDS,
                )
                self.paused_until = now + timedelta(seconds=OUTAGE_PAUSE_SECONDS)
                deliveries += [
                    Delivery(r.id, "retry", "Google Wallet is failing", OUTAGE_PAUSE_SECONDS)
                    for r in rows[index + 1 :]
                ]
                break
        return deliveries

    def _deliver_row(self, row: ClaimedRow, batch: _Batch) -> Delivery:
        try:
            if row.kind == GOOGLE_OBJECT:
                return self._object(row, batch)
            if row.kind == GOOGLE_MESSAGE:
                return self._message(row, batch)
            if row.kind == GOOGLE_CLASS_MESSAGE:
                return self._class_message(row, batch)
            if row.kind == GOOGLE_COUPON:
                return self._coupon(row, batch)
            return Delivery(row.id, "failed", f"unknown kind {row.kind!r}")
        except GoogleRetryableError as exc:
            if exc.status == 429 or exc.reason in ("rateLimitExceeded", "userRateLimitExceeded"):
                raise _PauseError(
                    f"Google Wallet throttles this issuer ({exc})",
                    exc.retry_after or THROTTLE_PAUSE_SECONDS,
                ) from exc
            return Delivery(row.id, "retry", str(exc), retry_after=exc.retry_after)
        except (GoogleAuthError, GooglePermissionError) as exc:
            raise _PauseError(
                f"Google Wallet refuses our service account ({exc}); check "
                "WALLETD_GOOGLE_CREDENTIALS, WALLETD_GOOGLE_ISSUER_ID and that the service "
                "account is a user of the issuer in the Google Pay & Wallet Console",
                ACCOUNT_PAUSE_SECONDS,
            ) from exc
        except GoogleQuotaExceededError as exc:
            raise _PauseError(f"Google Wallet quota exceeded ({exc})", QUOTA_PAUSE_SECONDS) from exc
        except GoogleBadRequestError as exc:
            log.error("Google Wallet refused %s row %d: %s", row.kind, row.id, exc)
            return Delivery(row.id, "failed", str(exc))
        except GoogleApiError as exc:
            # 404/409 we could not resolve, or a status Google does not document here.
            log.warning("Google Wallet %s row %d: %s", row.kind, row.id, exc)
            return Delivery(row.id, "retry", str(exc), retry_after=exc.retry_after)
        except (KeyError, TypeError, ValueError) as exc:
            # A payload or card our builders refuse (bad id characters, int32 overflow…).
            log.error("cannot build Google %s row %d: %r", row.kind, row.id, exc)
            return Delivery(row.id, "failed", f"cannot build the request: {exc!r}")

    # -- reading -----------------------------------------------------------------------------------

    def _read(self, rows: Sequence[ClaimedRow], db: Database, now: datetime) -> _Batch:
        card_ids = {
            int(r.payload["card_id"])
            for r in rows
            if r.kind in (GOOGLE_OBJECT, GOOGLE_MESSAGE)
            and isinstance(r.payload.get("card_id"), int)
        }
        program_ids = {
            int(r.payload["program_id"])
            for r in rows
            if r.kind == GOOGLE_CLASS_MESSAGE and isinstance(r.payload.get("program_id"), int)
        }
        coupon_ids = {
            int(r.payload["coupon_id"])
            for r in rows
            if r.kind == GOOGLE_COUPON and isinstance(r.payload.get("coupon_id"), int)
        }
        cards: dict[int, _CardState] = {}
        with db.transaction() as session:
            coupons, offers, linked = self._coupons(session, coupon_ids)
            card_ids |= linked
            found = [
                card
                for card in session.scalars(select(Card).where(Card.id.in_(card_ids))).all()
                if card.kind == "loyalty"
            ]
            coupon_cards = card_ids - {card.id for card in found} - linked
            plain = card_views(session, found)
            views = {
                card.id: with_manage_link(
                    plain[card.id], card, base_url=self.base_url, secret_key=self.secret_key
                )
                for card in found
            }
            members = {card.id: card.member_id for card in found}
            spent = google_sync.notifications_sent(session, list(views), now)
            changed = google_sync.last_balance_changes(session, members.values())
            for card in found:
                view = views[card.id]
                last_change = changed.get(card.member_id)
                synced_at = card.google_synced_at
                cards[card.id] = _CardState(
                    card_id=card.id,
                    view=view,
                    object_id=object_id(self.issuer_id, view.serial_number),
                    class_id=class_id(self.issuer_id, view.program_id),
                    synced=synced_at is not None,
                    balance_changed=(
                        synced_at is not None
                        and last_change is not None
                        and last_change > synced_at
                    ),
                    notifications=spent.get(card.id, 0),
                )
                program_ids.add(view.program_id)
            programs = self._programs(session, program_ids)
            if coupon_cards:
                coupon_cards = set(
                    session.scalars(
                        select(Card.id).where(Card.id.in_(coupon_cards), Card.kind == "coupon")
                    ).all()
                )
        return _Batch(
            db=db,
            now=now,
            cards=cards,
            programs=programs,
            coupons=coupons,
            offers=offers,
            coupon_cards=coupon_cards,
        )

    def _coupons(
        self, session: Session, coupon_ids: set[int]
    ) -> tuple[dict[int, _CouponState], dict[int, _OfferState], set[int]]:
        """The coupons of a batch, their offers' classes, and the loyalty cards to link them in."""
        if not coupon_ids:
            return {}, {}, set()
        found = session.execute(
            select(Coupon, Offer, Program, Brand)
            .join(Offer, Offer.id == Coupon.offer_id)
            .join(Program, Program.id == Offer.program_id)
            .join(Brand, Brand.id == Offer.brand_id)
            .where(Coupon.id.in_(coupon_ids))
        ).all()
        member_ids = {coupon.member_id for coupon, _, _, _ in found}
        loyalty: dict[int, list[int]] = {}
        for card_id, member_id in session.execute(
            select(Card.id, Card.member_id)
            .where(Card.member_id.in_(member_ids), Card.kind == "loyalty")
            .order_by(Card.id)
        ).all():
            loyalty.setdefault(member_id, []).append(card_id)
        coupons: dict[int, _CouponState] = {}
        offers: dict[int, _OfferState] = {}
        for coupon, offer, program, brand in found:
            if offer.id not in offers:
                offers[offer.id] = _OfferState(
                    offer_id=offer.id,
                    class_id=offer_class_id(self.issuer_id, offer.id),
                    body=google_sync.offer_class_body(
                        offer, program, brand, issuer_id=self.issuer_id, base_url=self.base_url
                    ),
                    stale=google_sync.offer_class_is_stale(offer),
                    known=offer.google_class_synced_at is not None,
                )
            coupons[coupon.id] = _CouponState(
                coupon_id=coupon.id,
                offer_id=offer.id,
                object_id=offer_object_id(self.issuer_id, coupon.id),
                body=build_offer_object(
                    issuer_id=self.issuer_id,
                    offer_id=offer.id,
                    coupon_id=coupon.id,
                    status=coupon.status,
                    barcode=coupon.barcode,
                    code=coupon.code,
                    expires_at=coupon.expires_at,
                    value_text=google_sync.coupon_value_text(
                        offer.kind, coupon.value, offer.item, program.currency
                    ),
                ),
                synced=coupon.google_synced_at is not None,
                loyalty_card_ids=tuple(loyalty.get(coupon.member_id, ())),
            )
        linked = {card_id for ids in loyalty.values() for card_id in ids}
        return coupons, offers, linked

    def _programs(self, session: Session, program_ids: Iterable[int]) -> dict[int, _ProgramState]:
        rows = session.execute(
            select(Program, Brand)
            .join(Brand, Brand.id == Program.brand_id)
            .where(Program.id.in_(list(program_ids)))
        ).all()
        return {
            program.id: _ProgramState(
                program_id=program.id,
                class_id=class_id(self.issuer_id, program.id),
                body=google_sync.class_body(
                    program,
                    brand,
                    issuer_id=self.issuer_id,
                    base_url=self.base_url,
                    labels=self.labels,
                    # [google-signup] sign-up from Google Wallet and the stores
                    extra=discovery.class_fields(session, program, base_url=self.base_url),
                ),
                brand_name=brand.name,
                stale=google_sync.class_is_stale(program),
                known=program.google_class_synced_at is not None,
            )
            for program, brand in rows
        }

    # -- classes ---------------------------------------------------------------------------------

    def _ensure_class(self, batch: _Batch, program_id: int, *, force: bool = False) -> None:
        state = batch.programs[program_id]
        if program_id in batch.class_errors:
            raise batch.class_errors[program_id]
        if not force and (program_id in batch.classes_done or not state.stale):
            return
        try:
            if state.known:
                try:
                    self.client.patch_class(state.class_id, state.body)
                except GoogleNotFoundError:
                    self.client.insert_class(state.body)
            else:
                self.client.upsert_class(state.body)
        except GoogleBadRequestError as exc:
            batch.class_errors[program_id] = exc
            raise
        batch.classes_done.add(program_id)
        with batch.db.transaction() as session:
            google_sync.mark_class_synced(session, program_id, batch.now)
        log.info("Google class %s is up to date", state.class_id)

    def sync_classes(self, db: Database, program_ids: Iterable[int] | None = None) -> int:
        """Create or patch the classes of stale programs now (the `google-sync` command)."""
        now = self.clock()
        with db.transaction() as session:
            ids = list(program_ids) if program_ids is not None else None
            programs = self._programs(
                session, ids if ids is not None else google_sync.stale_program_ids(session)
            )
        batch = _Batch(db=db, now=now, cards={}, programs=programs)
        for program_id in programs:
            self._ensure_class(batch, program_id, force=True)
        return len(programs)

    # -- objects ---------------------------------------------------------------------------------

    def _card(self, row: ClaimedRow, batch: _Batch) -> _CardState | None:
        card_id = row.payload.get("card_id")
        return batch.cards.get(card_id) if isinstance(card_id, int) else None

    def _create_object(self, batch: _Batch, card: _CardState) -> None:
        body = build_loyalty_object(
            card.view, issuer_id=self.issuer_id, class_id=card.class_id, labels=self.labels
        )
        try:
            self.client.upsert_object(body)
        except GoogleNotFoundError:
            # Our records say the class exists but Google lost it (another issuer, a reset).
            self._ensure_class(batch, card.view.program_id, force=True)
            self.client.upsert_object(body)
        batch.synced.add(card.card_id)

    def _object(self, row: ClaimedRow, batch: _Batch) -> Delivery:
        card = self._card(row, batch)
        if card is None:
            if row.payload.get("card_id") in batch.coupon_cards:
                return Delivery(row.id, "gone", "a coupon reaches Google as its offer object")
            return Delivery(row.id, "gone", "the card no longer exists")
        self._ensure_class(batch, card.view.program_id)
        if not batch.is_synced(card):
            self._create_object(batch, card)
            after = _after(card.card_id, batch.now, synced=True, notified=False)
            return Delivery(row.id, "sent", after=after)
        notify = (
            card.balance_changed
            and card.card_id not in batch.notified_balance
            and batch.budget_left(card)
        )
        try:
            patch = points_patch(card.view, notify, labels=self.labels)
            if row.payload.get("messages") and not card.view.voided:
                # Messages expired, withdrawn or cleared: the object keeps exactly the live ones.
                patch["messages"] = object_messages(card.view)
            self.client.patch_object(card.object_id, patch)
        except GoogleNotFoundError:
            log.warning("Google object %s was missing; inserting it again", card.object_id)
            self._create_object(batch, card)
            notify = False
        batch.notified_balance.add(card.card_id)
        if notify:
            batch.spend(card)
        return Delivery(
            row.id, "sent", after=_after(card.card_id, batch.now, synced=True, notified=notify)
        )

    # -- coupons ---------------------------------------------------------------------------------

    def _ensure_offer_class(self, batch: _Batch, offer_id: int, *, force: bool = False) -> None:
        state = batch.offers[offer_id]
        if offer_id in batch.offer_errors:
            raise batch.offer_errors[offer_id]
        if not force and (offer_id in batch.offers_done or not state.stale):
            return
        try:
            if state.known:
                try:
                    self.client.patch_offer_class(state.class_id, state.body)
                except GoogleNotFoundError:
                    self.client.upsert_offer_class(state.body)
            else:
                self.client.upsert_offer_class(state.body)
        except GoogleBadRequestError as exc:
            batch.offer_errors[offer_id] = exc
            raise
        batch.offers_done.add(offer_id)
        with batch.db.transaction() as session:
            google_sync.mark_offer_class_synced(session, offer_id, batch.now)
        log.info("Google offer class %s is up to date", state.class_id)

    def _put_offer_object(self, batch: _Batch, coupon: _CouponState) -> None:
        if coupon.synced:
            try:
                # The whole body: state, barcode and validity all follow the coupon.
                self.client.patch_offer_object(coupon.object_id, coupon.body)
                return
            except GoogleNotFoundError:
                log.warning("Google offer object %s was missing; inserting it", coupon.object_id)
        try:
            self.client.upsert_offer_object(coupon.body)
        except GoogleNotFoundError:
            # Our records say the offer class exists but Google lost it.
            self._ensure_offer_class(batch, coupon.offer_id, force=True)
            self.client.upsert_offer_object(coupon.body)

    def _coupon(self, row: ClaimedRow, batch: _Batch) -> Delivery:
        coupon_id = row.payload.get("coupon_id")
        coupon = batch.coupons.get(coupon_id) if isinstance(coupon_id, int) else None
        if coupon is None:
            return Delivery(row.id, "gone", "the coupon no longer exists")
        self._ensure_offer_class(batch, coupon.offer_id)
        # The offer object must exist before a loyalty object may link it.
        self._put_offer_object(batch, coupon)
        active = coupon.body["state"] == "ACTIVE"
        link = modify_linked_offers_body(
            add=[coupon.object_id] if active else [],
            remove=[] if active else [coupon.object_id],
        )
        created: list[int] = []
        for card_id in coupon.loyalty_card_ids:
            card = batch.cards.get(card_id)
            if card is None:
                continue
            self._ensure_class(batch, card.view.program_id)
            if not batch.is_synced(card):
                self._create_object(batch, card)
                created.append(card.card_id)
            try:
                self.client.modify_linked_offers(card.object_id, link)
            except GoogleNotFoundError:
                log.warning("Google object %s was missing; inserting it again", card.object_id)
                self._create_object(batch, card)
                created.append(card.card_id)
                self.client.modify_linked_offers(card.object_id, link)
        at = batch.now

        def record(session: Session) -> None:
            google_sync.mark_coupon_synced(session, coupon.coupon_id, at)
            for card_id in created:
                google_sync.mark_card_synced(session, card_id, at)

        return Delivery(row.id, "sent", after=record)

    # -- messages --------------------------------------------------------------------------------

    def _make_room(
        self,
        get: Callable[[str], JsonDict],
        patch: Callable[[str, JsonDict], JsonDict],
        resource_id: str,
        message_id: str,
    ) -> bool:
        """Drop the oldest messages so one more fits; False when that was not the problem."""
        current = [m for m in get(resource_id).get("messages") or [] if isinstance(m, dict)]
        if len(current) < MAX_MESSAGES:
            return False
        others = [_message_fields(m) for m in current if m.get("id") != message_id]
        kept = others[-(MAX_MESSAGES - 1) :]
        log.info(
            "%s holds %d messages; keeping the newest %d", resource_id, len(current), len(kept)
        )
        patch(resource_id, {"messages": kept})
        return True

    def _add_message(
        self,
        add: Callable[[str, JsonDict], JsonDict],
        get: Callable[[str], JsonDict],
        patch: Callable[[str, JsonDict], JsonDict],
        resource_id: str,
        *,
        message_id: str,
        header: str,
        text: str,
        notify: bool,
    ) -> bool:
        """Add one message (replacing any with its id); returns whether it notified."""

        def send(notify: bool) -> None:
            body = add_message_body(message_id, header=header, body=text, notify=notify)
            try:
                add(resource_id, body)
            except GoogleBadRequestError:
                if not self._make_room(get, patch, resource_id, message_id):
                    raise
                add(resource_id, body)

        try:
            send(notify)
        except GoogleQuotaExceededError:
            if not notify:
                raise
            # Google's count is ahead of ours (another sender, a lost record): show it silently.
            log.info("notification quota spent at Google for %s; sending as TEXT", resource_id)
            send(False)
            return False
        return notify

    def _message(self, row: ClaimedRow, batch: _Batch) -> Delivery:
        card = self._card(row, batch)
        if card is None:
            return Delivery(row.id, "gone", "the card no longer exists")
        message_id = str(row.payload["message_id"])
        text = str(row.payload["text"])
        self._ensure_class(batch, card.view.program_id)
        created = not batch.is_synced(card)
        if created:
            self._create_object(batch, card)
        try:
            notified = self._add_object_message(card, message_id, text, batch.budget_left(card))
        except GoogleNotFoundError:
            log.warning("Google object %s was missing; inserting it again", card.object_id)
            self._create_object(batch, card)
            created = True
            notified = self._add_object_message(card, message_id, text, batch.budget_left(card))
        if notified:
            batch.spend(card)
        return Delivery(
            row.id, "sent", after=_after(card.card_id, batch.now, synced=created, notified=notified)
        )

    def _add_object_message(
        self, card: _CardState, message_id: str, text: str, notify: bool
    ) -> bool:
        return self._add_message(
            self.client.add_object_message,
            self.client.get_object,
            self.client.patch_object,
            card.object_id,
            message_id=message_id,
            header=card.view.organization_name,
            text=text,
            notify=notify,
        )

    def _class_message(self, row: ClaimedRow, batch: _Batch) -> Delivery:
        program_id = row.payload.get("program_id")
        program = batch.programs.get(program_id) if isinstance(program_id, int) else None
        if program is None:
            return Delivery(row.id, "gone", "the program no longer exists")
        self._ensure_class(batch, program.program_id)

        def patch_class(class_id: str, body: JsonDict) -> JsonDict:
            # An approved class must keep receiving UNDER_REVIEW or Google refuses the update.
            return self.client.patch_class(class_id, {**body, "reviewStatus": "UNDER_REVIEW"})

        self._add_message(
            self.client.add_class_message,
            self.client.get_class,
            patch_class,
            program.class_id,
            message_id=str(row.payload["message_id"]),
            header=program.brand_name,
            text=str(row.payload["text"]),
            # Campaign rows may ask for a silent message; Google limits class notifications too.
            notify=bool(row.payload.get("notify", True)),
        )
        return Delivery(row.id, "sent")


def google_channel(svc: Services, **client_options: Any) -> GoogleChannel:
    """The channel over a client built from the settings (one per worker process)."""
    settings = svc.settings
    rate = settings.google_rate_per_second * RATE_HEADROOM
    # One rate for every worker of this issuer: slots reserved on the shared rate_slots row
    # (wall-clock time, never the app's clock: the rate is Google's, in real seconds).
    shared = SharedRateLimiter(svc.db, f"google:{settings.google_issuer_id}", rate)
    client = GoogleWalletClient(
        credentials_path=settings.google_credentials,
        api_url=settings.google_api_url,
        rate_per_second=rate,
        **{**WORKER_CLIENT_OPTIONS, "limiter": shared, **client_options},
    )
    return GoogleChannel(
        client,
        issuer_id=settings.google_issuer_id,
        base_url=settings.base_url,
        clock=svc.clock,
        secret_key=settings.secret_key,
    )
