"""Google Wallet bookkeeping: class bodies, the notification budget, callbacks and installs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import Session, object_session

from walletd.errors import ConfigError, NotFoundError
from walletd.loyalty.context import Context
from walletd.models import (
    Brand,
    Card,
    Coupon,
    GoogleCallbackNonce,
    GoogleNotification,
    LedgerEntry,
    Member,
    Offer,
    Program,
)
from walletd.passes.google import (
    DEFAULT_LABELS,
    LoyaltyLabels,
    build_loyalty_class,
    build_offer_class,
)
from walletd.push.google_callbacks import CallbackEvent
from walletd.push.outbox import GOOGLE_OBJECT, enqueue, google_coupon_row
from walletd.webhooks import events as webhook_events

log = logging.getLogger(__name__)

# Google: at most 3 notifying messages or updates per pass in any 24 hours, both kinds together.
NOTIFICATION_BUDGET = 3
NOTIFICATION_WINDOW = timedelta(hours=24)
# Google retries a callback for a while; a nonce older than this will not come back.
NONCE_RETENTION = timedelta(days=30)
CALLBACK_PATH = "/google/callbacks"
_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# A template may carry a square logo drawn for Google; otherwise the Apple logo is used.
_LOGO_FILES = ("google_logo.png", "logo@3x.png", "logo@2x.png", "logo.png")

CallbackOutcome = Literal["recorded", "duplicate", "unknown_object"]


def load_credentials_info(path: str) -> dict[str, str]:
    """The service-account JSON key as a dict (read once per process by the caller)."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"WALLETD_GOOGLE_CREDENTIALS cannot be read as JSON: {exc}") from exc
    if not isinstance(info, dict) or not {"client_email", "private_key"} <= info.keys():
        raise ConfigError("WALLETD_GOOGLE_CREDENTIALS is not a service-account key file")
    return {str(k): str(v) for k, v in info.items()}


def callback_url(base_url: str) -> str:
    """Where Google posts save/delete callbacks for every class walletd creates."""
    return f"{base_url}{CALLBACK_PATH}"


def logo_url(base_url: str, program_id: int) -> str:
    """The public URL Google fetches a program's logo from."""
    return f"{base_url}/google/programs/{program_id}/logo.png"


def class_body(
    program: Program,
    brand: Brand,
    *,
    issuer_id: str,
    base_url: str,
    labels: LoyaltyLabels = DEFAULT_LABELS,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The LoyaltyClass of one program, with walletd's callback URL and logo.

    `extra` adds fields read elsewhere (discoverableProgram, merchantLocations).
    """
    body = build_loyalty_class(
        issuer_id=issuer_id,
        program_id=program.id,
        program_name=program.name,
        issuer_name=brand.name,
        background_color=program.background_color,
        logo_uri=logo_url(base_url, program.id),
        callback_url=callback_url(base_url),
        labels=labels,
    )
    body.update(extra or {})  # [google-signup]
    return body


def class_is_stale(program: Program) -> bool:
    """True when Google's copy of the program's class is missing or older than the program."""
    synced = program.google_class_synced_at
    return synced is None or synced < program.updated_at


def mark_class_synced(session: Session, program_id: int, at: datetime) -> None:
    """Remember that Google has the program's class as it was at `at`."""
    session.execute(
        update(Program).where(Program.id == program_id).values(google_class_synced_at=at)
    )


def mark_card_synced(session: Session, card_id: int, at: datetime) -> None:
    """Remember that Google has the card's object as it was at `at` (never moves back)."""
    session.execute(
        update(Card)
        .where(
            Card.id == card_id,
            or_(Card.google_synced_at.is_(None), Card.google_synced_at < at),
        )
        .values(google_synced_at=at)
    )


def record_notification(session: Session, card_id: int, at: datetime) -> None:
    """Count one notifying update or message against the card's 24-hour budget."""
    session.add(GoogleNotification(card_id=card_id, sent_at=at))


def notifications_sent(session: Session, card_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """How many notifications each card used in the rolling window ending now."""
    ids = list(card_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(GoogleNotification.card_id, func.count())
        .where(
            GoogleNotification.card_id.in_(ids),
            GoogleNotification.sent_at > now - NOTIFICATION_WINDOW,
        )
        .group_by(GoogleNotification.card_id)
    ).all()
    return {int(card_id): int(count) for card_id, count in rows}


def last_balance_changes(session: Session, member_ids: Iterable[int]) -> dict[int, datetime]:
    """When each member's balance last changed (their newest non-zero ledger entry)."""
    ids = list(member_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(LedgerEntry.member_id, func.max(LedgerEntry.created_at))
        .where(LedgerEntry.member_id.in_(ids), LedgerEntry.points != 0)
        .group_by(LedgerEntry.member_id)
    ).all()
    return {int(member_id): value for member_id, value in rows if value is not None}


def program_id_of_card(card: Card, session: Session | None = None) -> int:
    """The program a card belongs to (its member's), from the session that loaded the card."""
    session = session or object_session(card)
    if session is None:
        raise ValueError("card is detached; pass the session")
    program_id = session.scalar(select(Member.program_id).where(Member.id == card.member_id))
    if program_id is None:
        raise NotFoundError("member not found")
    return int(program_id)


def card_for_object(session: Session, issuer_id: str, object_id: str) -> Card | None:
    """The card behind one of our Google object ids, or None."""
    prefix = f"{issuer_id}.card-"
    if not object_id.startswith(prefix):
        return None
    serial = object_id.removeprefix(prefix)
    return session.scalar(select(Card).where(Card.serial_number == serial))


def record_callback(
    session: Session, event: CallbackEvent, *, issuer_id: str, now: datetime
) -> CallbackOutcome:
    """Record a verified save or delete once per nonce; a repeated nonce changes nothing."""
    seen = session.scalar(
        select(GoogleCallbackNonce.id).where(GoogleCallbackNonce.nonce == event.nonce)
    )
    if seen is not None:
        return "duplicate"
    # A concurrent twin with the same nonce fails on the unique index; the caller's retry then
    # finds it here and answers "duplicate".
    session.add(GoogleCallbackNonce(nonce=event.nonce, received_at=now))
    card = card_for_object(session, issuer_id, event.object_id)
    if card is None:
        log.warning("Google %s callback for unknown object %s", event.event_type, event.object_id)
        session.flush()
        return "unknown_object"
    if event.event_type == "save":
        card.google_saved_at = now
    else:
        card.google_deleted_at = now
    # Only a new nonce gets here: Google's redelivery of one callback emits nothing again.
    installed = event.event_type == "save"
    webhook_events.pass_changed(
        session, card.brand_id, card.member_id, card.id, card.kind, "google",
        installed=installed, now=now,
    )  # fmt: skip
    session.flush()
    log.info("Google Wallet %s of card %s", event.event_type, card.serial_number)
    return "recorded"


def google_installed(brand_id: int | None = None) -> Any:
    """SQL condition: the card is in a Google wallet (saved, and not deleted since)."""
    condition = Card.google_saved_at.is_not(None) & or_(
        Card.google_deleted_at.is_(None), Card.google_deleted_at < Card.google_saved_at
    )
    return condition if brand_id is None else condition & (Card.brand_id == brand_id)


def count_google_installed(session: Session, brand_id: int) -> int:
    """How many of a brand's cards are in a Google wallet now, by the save/delete callbacks."""
    return int(
        session.scalar(select(func.count()).select_from(Card).where(google_installed(brand_id)))
        or 0
    )


def stale_program_ids(session: Session) -> list[int]:
    """Programs whose Google class is missing or older than the program."""
    return list(
        session.scalars(
            select(Program.id)
            .where(
                or_(
                    Program.google_class_synced_at.is_(None),
                    Program.google_class_synced_at < Program.updated_at,
                )
            )
            .order_by(Program.id)
        ).all()
    )


def queue_unsynced_cards(session: Session, *, now: datetime, limit: int = 10_000) -> int:
    """Queue the object insert of cards that never reached Google (Google enabled late)."""
    cards = session.execute(
        select(Card.id, Card.serial_number)
        .where(Card.google_synced_at.is_(None))
        .order_by(Card.id)
        .limit(limit)
    ).all()
    enqueue(
        session,
        [
            {
                "kind": GOOGLE_OBJECT,
                "dedupe_key": f"{GOOGLE_OBJECT}:{serial}",
                "payload": {"card_id": card_id},
            }
            for card_id, serial in cards
        ],
        now=now,
    )
    return len(cards)


def prune_bookkeeping(session: Session, *, now: datetime) -> int:
    """Delete notification counts outside the window and callback nonces past retention."""
    gone = 0
    for statement in (
        delete(GoogleNotification).where(GoogleNotification.sent_at <= now - NOTIFICATION_WINDOW),
        delete(GoogleCallbackNonce).where(GoogleCallbackNonce.received_at <= now - NONCE_RETENTION),
    ):
        result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
        gone += result.rowcount
    return gone


def program_logo(session: Session, templates_root: Path, program_id: int) -> Path:
    """The PNG served as a program's Google logo, from the program's pass template."""
    template = session.scalar(select(Program.template).where(Program.id == program_id))
    if template is None or not _TEMPLATE_NAME.fullmatch(template):
        raise NotFoundError("program not found")
    folder = templates_root / template
    for name in _LOGO_FILES:
        path = folder / name
        if path.is_file():
            return path
    raise NotFoundError("the program's template has no logo")


# -- offers ------------------------------------------------------------------------------------


def offer_class_body(
    offer: Offer, program: Program, brand: Brand, *, issuer_id: str, base_url: str
) -> dict[str, Any]:
    """The OfferClass of one offer: the brand as provider, the program's colour and logo."""
    return build_offer_class(
        issuer_id=issuer_id,
        offer_id=offer.id,
        title=offer.name,
        provider=brand.name,
        background_color=program.background_color,
        logo_uri=logo_url(base_url, program.id),
        fine_print=offer.terms,
    )


def offer_class_is_stale(offer: Offer) -> bool:
    """True when Google's copy of the offer's class is missing or older than the offer."""
    synced = offer.google_class_synced_at
    return synced is None or synced < offer.updated_at


def mark_offer_class_synced(session: Session, offer_id: int, at: datetime) -> None:
    """Remember that Google has the offer's class as it was at `at`."""
    session.execute(update(Offer).where(Offer.id == offer_id).values(google_class_synced_at=at))


def mark_coupon_synced(session: Session, coupon_id: int, at: datetime) -> None:
    """Remember that Google has the coupon's offer object as it was at `at` (never moves back)."""
    session.execute(
        update(Coupon)
        .where(
            Coupon.id == coupon_id,
            or_(Coupon.google_synced_at.is_(None), Coupon.google_synced_at < at),
        )
        .values(google_synced_at=at)
    )


def coupon_value_text(kind: str, value: Decimal | None, item: str | None, currency: str) -> str:
    """What a coupon gives, in a few words for the Google offer object."""
    amount = "" if value is None else format(value.normalize(), "f")
    if kind == "percent_off":
        return f"{amount}% off"
    if kind == "amount_off":
        return f"{amount} {currency} off"
    if kind == "bonus_points":
        return f"{amount} bonus points"
    return f"Free {item}" if item else "Free item"


def queue_google_coupon(session: Session, coupon: Coupon, ctx: Context) -> None:
    """Queue the sync of a coupon's offer object and its link into the member's loyalty card."""
    if not ctx.google_enabled:
        return
    if coupon.id is None:
        session.flush()  # a coupon issued in this transaction needs its id for the row
    enqueue(session, [google_coupon_row(coupon.id)], now=ctx.now)
