"""The card by e-mail under /api/v1: resend it, and a member's e-mail history (admin keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint
from pydantic import Field
from sqlalchemy.orm import Session

from walletd.email import email_enabled
from walletd.email.card import CardLinks, queue_card_email
from walletd.email.history import member_emails
from walletd.errors import ConflictError
from walletd.loyalty.members import get_card_of, get_member
from walletd.models import Card, Email, Member
from walletd.web import links
from walletd.web.auth import principal
from walletd.web.deps import run_in_transaction, services
from walletd.web.endpoint import endpoint
from walletd.web.schemas import Reply, Timestamp
from walletd.web.wallets import google_save_url

bp = Blueprint("email_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)
REFUSALS = {
    409: "email_disabled: e-mail is off on this server; no_email: the member has no address; "
    "email_bouncing: the relay refused the address for good",
}


class CardEmailOut(Reply):
    """The queued card e-mail: the worker sends it."""

    email_id: int
    status: str = Field(description="pending: queued; the history shows when it was sent")


class EmailOut(Reply):
    """One e-mail of a member, as the history shows it."""

    id: int
    kind: str = Field(description="card, recovery, campaign, automation, …")
    subject: str
    to: str
    status: str = Field(description="pending, sent, failed or cancelled")
    attempts: int
    last_error: str | None = Field(description="the relay's last refusal (code and text)")
    created_at: Timestamp
    sent_at: Timestamp | None
    failed_at: Timestamp | None


class EmailHistoryOut(Reply):
    """A member's e-mails, newest first (the last 100)."""

    email_enabled: bool
    bouncing: bool = Field(description="the relay refused the member's address for good")
    emails: list[EmailOut]


def card_links(card: Card) -> CardLinks:
    """The absolute, signed links of a card that a card e-mail carries."""
    settings = services().settings
    serial = card.serial_number
    sig = links.link_signature("page", serial, settings.secret_key)
    return CardLinks(
        page_url=f"{settings.base_url}/card/{serial}?sig={sig}",
        apple_pass_url=links.apple_pass_url(settings, serial),
        google_save_url=google_save_url(card),
    )


def send_card_email(session: Session, member: Member, card: Card) -> int:
    """Queue the card e-mail for a member in this request's transaction."""
    svc = services()
    return queue_card_email(
        session, member=member, card=card, links=card_links(card), now=svc.clock(),
        enabled=email_enabled(svc.settings),
    )  # fmt: skip


def send_card_email_on_join(session: Session, member: Member, card: Card) -> bool:
    """A customer who joins with an e-mail gets the card by e-mail when e-mail is on and the
    address is not bouncing; the join itself never fails for it."""
    if not member.email or not email_enabled(services().settings):
        return False
    try:
        send_card_email(session, member, card)
    except ConflictError:
        return False
    return True


@bp.post("/members/<int:member_id>/card-email")
@endpoint("Send the member their card by e-mail again", tag="members", roles=ADMIN,
          response=CardEmailOut, status=202, other_responses=REFUSALS)  # fmt: skip
def resend_card_email(member_id: int) -> dict[str, Any]:
    """Queue the card e-mail (card page link, wallet buttons, QR code) to the member's address."""
    brand_id = principal().brand_id

    def work(session: Session) -> dict[str, Any]:
        member = get_member(session, brand_id, member_id)
        email_id = send_card_email(session, member, get_card_of(session, member))
        return {"email_id": email_id, "status": "pending"}

    return run_in_transaction(work)


@bp.get("/members/<int:member_id>/emails")
@endpoint("A member's e-mails, newest first", tag="members", roles=ADMIN,
          response=EmailHistoryOut)  # fmt: skip
def list_member_emails(member_id: int) -> dict[str, Any]:
    """What was sent to the member by e-mail, and what the relay said."""
    brand_id = principal().brand_id
    enabled = email_enabled(services().settings)

    def work(session: Session) -> dict[str, Any]:
        member = get_member(session, brand_id, member_id)
        history = member_emails(session, member)
        return {
            "email_enabled": enabled,
            "bouncing": history.bouncing,
            "emails": [_email_body(e) for e in history.emails],
        }

    return run_in_transaction(work)


def _email_body(email: Email) -> dict[str, Any]:
    created: datetime = email.created_at
    return {
        "id": email.id, "kind": email.kind, "subject": email.subject, "to": email.to_address,
        "status": email.status, "attempts": email.attempts, "last_error": email.last_error,
        "created_at": created, "sent_at": email.sent_at, "failed_at": email.failed_at,
    }  # fmt: skip
