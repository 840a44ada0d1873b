"""What an e-mail says and who it comes from, and the MIME message built from them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

# Headers a caller may add; the ones walletd sets itself (From, To, Subject…) are refused.
ALLOWED_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post", "list-id"})
_ADDRESS = re.compile(r"^[^@\s\"<>(),;:\\\[\]]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")
MAX_SUBJECT = 500
MAX_NAME = 200


def _has_control(text: str) -> bool:
    # CR and LF would start a new header; the other control characters have no place either.
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in text)


def one_line(text: str) -> str:
    """A value for a header: every control character (CR, LF, tab, U+2028…) becomes a space."""
    return " ".join("".join(" " if _has_control(ch) else ch for ch in text).split())


def check_address(address: str) -> str:
    """The address lower-cased; ValueError unless it is one plain address (no name, no CR/LF)."""
    folded = address.strip().lower()
    if len(folded) > 320 or _has_control(folded) or not _ADDRESS.match(folded):
        raise ValueError("not a valid e-mail address")
    return folded


def check_display_name(name: str) -> str:
    """A display name without control characters (CR/LF would inject headers)."""
    if len(name) > MAX_NAME or _has_control(name):
        raise ValueError("a display name is one line of at most 200 characters")
    return name.strip()


@dataclass(frozen=True)
class EmailContent:
    """The subject, both bodies, extra headers and inline images of one e-mail."""

    subject: str
    text: str
    html: str
    headers: Mapping[str, str] = field(default_factory=dict)
    inline_images: Sequence[tuple[str, bytes, str]] = ()

    def __post_init__(self) -> None:
        if (
            not self.subject.strip()
            or len(self.subject) > MAX_SUBJECT
            or _has_control(self.subject)
        ):
            raise ValueError("the subject is one line of 1 to 500 characters")
        for name, value in self.headers.items():
            if name.lower() not in ALLOWED_HEADERS:
                raise ValueError(f"header {name!r} cannot be set by a caller")
            if _has_control(value) or len(value) > 2000:
                raise ValueError(f"header {name!r} must be one line")
        for cid, data, filename in self.inline_images:
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", cid) or _has_control(filename):
                raise ValueError("an inline image needs a simple content id and file name")
            if not data.startswith(b"\x89PNG"):
                raise ValueError("inline images are PNG")


@dataclass(frozen=True)
class Sender:
    """Who an e-mail comes from; empty fields fall back to WALLETD_EMAIL_FROM when sent."""

    from_name: str | None = None
    from_address: str | None = None
    reply_to: str | None = None

    def __post_init__(self) -> None:
        if self.from_name is not None:
            check_display_name(self.from_name)
        if self.from_address is not None:
            check_address(self.from_address)
        if self.reply_to is not None:
            check_address(self.reply_to)


def parse_from(value: str) -> tuple[str | None, str]:
    """WALLETD_EMAIL_FROM as (name, address): "Shop <shop@example.com>" or a bare address."""
    match = re.fullmatch(r"\s*(.*?)\s*<([^<>]+)>\s*", value)
    if match:
        name = match.group(1).strip().strip('"') or None
        return (check_display_name(name) if name else None), check_address(match.group(2))
    return None, check_address(value)


def _address(name: str | None, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def build_message(
    *,
    to: str,
    from_name: str | None,
    from_address: str,
    reply_to: str | None,
    content: EmailContent,
    now: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """A MIME message: text and HTML alternatives (HTML related to its inline images), UTF-8.

    Every header is set through `EmailMessage`, which encodes non-ASCII names and subjects
    (RFC 2047) and refuses line breaks in them.
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(from_name, from_address)
    message["To"] = _address(None, check_address(to))
    if reply_to:
        message["Reply-To"] = _address(None, reply_to)
    message["Subject"] = content.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id or make_msgid(domain=from_address.rpartition("@")[2])
    message["MIME-Version"] = "1.0"
    for name, value in content.headers.items():
        message[name] = value
    # Quoted-printable keeps every line 7-bit: no relay needs 8BITMIME for it.
    message.set_content(content.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(content.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if content.inline_images:
        parts = message.get_payload()
        assert isinstance(parts, list)
        html_part = parts[1]
        assert isinstance(html_part, EmailMessage)
        for cid, data, filename in content.inline_images:
            html_part.add_related(data, "image", "png", cid=f"<{cid}>", filename=filename,
                                  disposition="inline")  # fmt: skip
    return message
