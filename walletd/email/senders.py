"""A program's `email` setting: the name, address and reply-to its e-mails are sent with."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from walletd.email.message import check_address, check_display_name
from walletd.errors import ValidationError
from walletd.models import Program
from walletd.models.email import EmailSender

SETTING = "email"
FIELDS = ("from_name", "from_address", "reply_to")


def settings_of(session: Session, program_id: int) -> dict[str, Any]:
    """The setting as the API shows it; null fields fall back to WALLETD_EMAIL_FROM."""
    row = session.get(EmailSender, program_id)
    if row is None:
        return {"from_name": None, "from_address": None, "reply_to": None}
    return {"from_name": row.from_name, "from_address": row.from_address, "reply_to": row.reply_to}


def _clean(value: Mapping[str, Any]) -> dict[str, str | None]:
    cleaned: dict[str, str | None] = {}
    for name in FIELDS:
        text = value.get(name)
        if text is None or (isinstance(text, str) and not text.strip()):
            cleaned[name] = None
            continue
        if not isinstance(text, str):
            raise ValidationError("must be text", field=f"{SETTING}.{name}")
        try:
            if name == "from_name":
                cleaned[name] = check_display_name(text)
            else:
                cleaned[name] = check_address(text)
        except ValueError:
            message = (
                "must be one line of at most 200 characters"
                if name == "from_name"
                else "is not a valid address"
            )
            raise ValidationError(message, field=f"{SETTING}.{name}") from None
    if cleaned["from_name"] and not cleaned["from_address"]:
        raise ValidationError(
            "a sender name needs the sender address", field=f"{SETTING}.from_address"
        )
    return cleaned


def apply_settings(
    session: Session, program: Program, value: Mapping[str, Any], now: datetime
) -> None:
    """Replace the program's sender (all three fields; null or blank: the server's default)."""
    cleaned = _clean(value)
    row = session.get(EmailSender, program.id)
    if not any(cleaned.values()):
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = EmailSender(program_id=program.id)
        session.add(row)
    row.from_name = cleaned["from_name"]
    row.from_address = cleaned["from_address"]
    row.reply_to = cleaned["reply_to"]
    row.updated_at = now
