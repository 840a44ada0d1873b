"""The member page's e-mail panel: resend the card by e-mail, and the member's e-mail history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from walletd.email import email_enabled
from walletd.email.history import member_emails
from walletd.loyalty.members import get_card_of, get_member
from walletd.models import Member
from walletd.models.email import Email
from walletd.web.deps import services
from walletd.web.email_api import send_card_email
from walletd.web.pages.dashboard import bp, me, member_action, staff_only
from walletd.web.pages.render import _


@dataclass(frozen=True)
class EmailPanel:
    """What the member page shows about e-mail."""

    enabled: bool
    has_address: bool
    bouncing: bool
    emails: list[Email]


def email_panel(session: Session, member: Member) -> EmailPanel:
    """The panel of a member the caller has already looked up in their brand."""
    history = member_emails(session, member, limit=20)
    return EmailPanel(
        enabled=email_enabled(services().settings),
        has_address=bool(member.email),
        bouncing=history.bouncing,
        emails=history.emails,
    )


@bp.post("/members/<int:member_id>/card-email")
@staff_only
def resend_card_email(member_id: int) -> WerkzeugResponse:
    """Queue the card e-mail again; the panel shows it as pending, then sent."""
    brand_id = me().brand_id

    def work(session: Session) -> int:
        member = get_member(session, brand_id, member_id)
        return send_card_email(session, member, get_card_of(session, member))

    return member_action(member_id, work, _("The card is on its way by e-mail."), "email")
