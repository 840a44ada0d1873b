"""The e-mails of this package, in English or Traditional Chinese: plain text and HTML."""

from __future__ import annotations

from html import escape

from walletd.email import EmailContent
from walletd.email_links.catalog import translator


def _html(paragraphs: list[str], link: str, button: str, after: list[str]) -> str:
    # Every value is escaped here: names and links come from users and the database.
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    body += (
        f'<p><a href="{escape(link, quote=True)}" style="display:inline-block;padding:10px 18px;'
        f'background:#1f4e79;color:#ffffff;text-decoration:none;border-radius:4px">'
        f"{escape(button)}</a></p>"
        f'<p style="font-size:small;color:#555555">{escape(link)}</p>'
    )
    body += "".join(f'<p style="color:#555555">{escape(p)}</p>' for p in after)
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


def _text(paragraphs: list[str], link: str, after: list[str]) -> str:
    return "\n\n".join([*paragraphs, link, *after]) + "\n"


def _one_line(text: str) -> str:
    # Program and brand names go into the subject: never a line break (header injection).
    return " ".join(text.split())


def recovery_email(language: str, *, program_name: str, link: str, minutes: int) -> EmailContent:
    """The e-mail with a member's one-time link to their card page."""
    _ = translator(language)
    paragraphs = [
        _("Someone asked for the {program} card held with this e-mail address.",
          program=program_name),
        _("Open this link to see your card. It works once, for {minutes} minutes.",
          minutes=minutes),
    ]  # fmt: skip
    after = [_("If you did not ask for it, ignore this e-mail: your card stays as it is.")]
    return EmailContent(
        subject=_("Your {program} card", program=_one_line(program_name)),
        text=_text(paragraphs, link, after),
        html=_html(paragraphs, link, _("Show my card"), after),
    )


def staff_invite_email(language: str, *, brand_name: str, email: str, link: str, hours: int
                       ) -> EmailContent:  # fmt: skip
    """The e-mail inviting a new staff member to choose a password."""
    _ = translator(language)
    paragraphs = [
        _("{brand} invited you to its walletd account as {email}.", brand=brand_name, email=email),
        _("Choose your password with this link. It works once, for {hours} hours.", hours=hours),
    ]
    after = [_("If you do not know {brand}, ignore this e-mail.", brand=brand_name)]
    return EmailContent(
        subject=_("{brand} invited you to walletd", brand=_one_line(brand_name)),
        text=_text(paragraphs, link, after),
        html=_html(paragraphs, link, _("Choose a password"), after),
    )


def password_reset_email(language: str, *, brand_name: str, email: str, link: str, minutes: int
                         ) -> EmailContent:  # fmt: skip
    """The e-mail with a staff member's one-time link to choose a new password."""
    _ = translator(language)
    paragraphs = [
        _("Someone asked for a new password for {email} at {brand}.", email=email,
          brand=brand_name),
        _("Choose a new password with this link. It works once, for {minutes} minutes. "
          "Choosing it logs you out everywhere else.", minutes=minutes),
    ]  # fmt: skip
    after = [_("If you did not ask for it, ignore this e-mail: your password stays as it is.")]
    return EmailContent(
        subject=_("Your new walletd password"),
        text=_text(paragraphs, link, after),
        html=_html(paragraphs, link, _("Choose a new password"), after),
    )
