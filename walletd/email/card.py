"""The card by e-mail: the signed card page link, both wallet buttons and the QR code inline,
in the member's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from sqlalchemy.orm import Session

from walletd.email.catalog import catalog
from walletd.email.message import EmailContent, one_line
from walletd.email.outbox import is_bouncing, queue_email
from walletd.errors import N_, ConflictError
from walletd.loyalty.programs import program_brand_name
from walletd.models import Card, Member, Program
from walletd.passes.qr import qr_png

QR_CID = "card-qr"


class EmailDisabledError(ConflictError):
    """E-mail is off on this server (WALLETD_SMTP_URL is not set)."""

    code = "email_disabled"


class NoEmailError(ConflictError):
    """The member has no e-mail address."""

    code = "no_email"


class EmailBouncingError(ConflictError):
    """The relay refused the member's address for good: nothing is sent to it any more."""

    code = "email_bouncing"


@dataclass(frozen=True)
class CardLinks:
    """The absolute, signed links an e-mail carries to one card."""

    page_url: str
    apple_pass_url: str
    google_save_url: str | None = None


def language_of(member: Member, program: Program) -> str:
    """The member's language, else the program's default, else English."""
    language = member.language or program.default_language or "en"
    return language if language in ("en", "zh-Hant") else "en"


def card_email(
    *, member_name: str, program_name: str, brand_name: str, links: CardLinks, language: str
) -> EmailContent:
    """The card e-mail in `language` (en or zh-Hant), with the QR code as an inline image."""
    translations = catalog(language)

    def _(text: str, **values: str) -> str:
        return translations.gettext(text).format(**values)

    def h(text: str, **values: str) -> str:
        # HTML: the template's own markup stays, every value is escaped.
        return translations.gettext(text).format(**{k: escape(v) for k, v in values.items()})

    # Names come from the brand's settings: one line each, so the subject can hold them.
    subject = _("{program}: your membership card", program=one_line(program_name))[:200]
    lines = [
        _("Hello {name},", name=member_name),
        "",
        _("Your {program} card is ready. Open it here:", program=program_name),
        links.page_url,
        "",
        _("Add it to Apple Wallet:") + " " + links.apple_pass_url,
    ]
    if links.google_save_url:
        lines.append(_("Add it to Google Wallet:") + " " + links.google_save_url)
    lines += ["", _("Show the QR code on the card at the counter to collect points."), "",
              brand_name]  # fmt: skip
    button = (
        '<a href="{href}" style="display:inline-block;padding:10px 16px;margin:4px 0;'
        'background:#111;color:#fff;border-radius:6px;text-decoration:none">{label}</a>'
    )
    apple_label = h(N_("Add to Apple Wallet"))
    buttons = [button.format(href=escape(links.apple_pass_url), label=apple_label)]
    if links.google_save_url:
        google_label = h(N_("Add to Google Wallet"))
        buttons.append(button.format(href=escape(links.google_save_url), label=google_label))
    hello = h("Hello {name},", name=member_name)
    ready = h("Your {program} card is ready. Open it here:", program=program_name)
    open_card = h(N_("Open my card"))
    qr_alt = h(N_("Your card QR code"))
    show = h(N_("Show the QR code on the card at the counter to collect points."))
    html_lang = "zh-Hant" if language == "zh-Hant" else "en"
    html = (
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head>"
        '<body style="font-family:sans-serif;line-height:1.5">'
        f"<p>{hello}</p>"
        f'<p>{ready}<br><a href="{escape(links.page_url)}">{open_card}</a></p>'
        f"<p>{'<br>'.join(buttons)}</p>"
        f'<p><img src="cid:{QR_CID}" alt="{qr_alt}" width="220" height="220"></p>'
        f"<p>{show}</p>"
        f"<p>{escape(brand_name)}</p></body></html>"
    )
    return EmailContent(subject=subject, text="\n".join(lines) + "\n", html=html)


def queue_card_email(
    session: Session,
    *,
    member: Member,
    card: Card,
    links: CardLinks,
    now: datetime,
    enabled: bool,
) -> int:
    """Queue the card e-mail to the member (in the caller's transaction) and return its id."""
    if not enabled:
        raise EmailDisabledError(N_("e-mail is off on this server"), field="send_card_email")
    if not member.email:
        raise NoEmailError(N_("the member has no e-mail address"), field="email")
    if is_bouncing(session, member.email, brand_id=member.brand_id):
        raise EmailBouncingError(
            N_("the member's e-mail address is bouncing: the relay refused it"), field="email"
        )
    program = session.get(Program, member.program_id)
    assert program is not None
    content = card_email(
        member_name=member.name,
        program_name=program.name,
        brand_name=program_brand_name(session, program),
        links=links,
        language=language_of(member, program),
    )
    content = EmailContent(
        subject=content.subject, text=content.text, html=content.html,
        inline_images=((QR_CID, qr_png(card.barcode, box_size=6), "card-qr.png"),),
    )  # fmt: skip
    email_id = queue_email(
        session, brand_id=member.brand_id, to=member.email, kind="card", content=content,
        now=now, program_id=program.id, member_id=member.id,
    )  # fmt: skip
    if email_id is None:  # bounced between the check and the queue: the same answer
        raise EmailBouncingError(
            N_("the member's e-mail address is bouncing: the relay refused it"), field="email"
        )
    return email_id
