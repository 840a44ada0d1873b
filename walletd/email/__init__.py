"""E-mail: messages queued as outbox rows in the causing transaction and sent by the worker."""

from walletd.email.message import EmailContent, Sender
from walletd.email.outbox import (
    EMAIL,
    Recipient,
    email_enabled,
    is_bouncing,
    queue_email,
    queue_emails,
)

__all__ = [
    "EMAIL",
    "EmailContent",
    "Recipient",
    "Sender",
    "email_enabled",
    "is_bouncing",
    "queue_email",
    "queue_emails",
]
