"""`check-email`: one test message sent now, with every answer of the relay on the way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from walletd.config import Settings
from walletd.email.message import EmailContent, build_message, check_address, parse_from
from walletd.email.relay import Answer, RelayConnection, RelayError, parse_relay_url


class EmailOffError(Exception):
    """WALLETD_SMTP_URL is not set."""


def check_email(
    settings: Settings, to: str, *, now: datetime, say: Callable[[str], None]
) -> Answer:
    """Connect as the worker would, send a test message to `to`, report each step through `say`.

    Raises EmailOffError without a relay and ValueError for an address that is not one.
    """
    if not settings.smtp_url:
        raise EmailOffError("e-mail is off: set WALLETD_SMTP_URL (and WALLETD_EMAIL_FROM)")
    address = check_address(to)
    relay = parse_relay_url(settings.smtp_url)
    name, sender = parse_from(settings.email_from)
    security = (
        "TLS" if relay.implicit_tls else {"auto": "STARTTLS when offered",
                                          "required": "STARTTLS required",
                                          "never": "no TLS"}[relay.starttls]
    )  # fmt: skip
    auth = f", AUTH as {relay.username}" if relay.username else ""
    say(f"relay {relay.host}:{relay.port} ({security}{auth})")
    content = EmailContent(
        subject="walletd test message",
        text="This is a test message from walletd: e-mail works.\n",
        html="<p>This is a test message from walletd: e-mail works.</p>",
    )
    message = build_message(to=address, from_name=name, from_address=sender, reply_to=None,
                            content=content, now=now)  # fmt: skip
    connection = RelayConnection(relay, ca_file=settings.smtp_ca_file or None)
    try:
        greeting = connection.open()
    except RelayError as exc:
        return exc.answer
    over = "over TLS" if connection.tls else "without TLS"
    say(f"connected {over}: {greeting.code} {greeting.text}")
    try:
        return connection.send(message, sender=sender, recipient=address)
    finally:
        connection.close()
