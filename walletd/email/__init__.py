"""E-mail: messages queued as outbox rows in the causing transaction and sent by the worker."""

from walletd.email.message import EmailContent, Sender
from walletd.email.outbox import EMAIL, email_enabled, is_bouncing, queue_email

__all__ = ["EMAIL", "EmailContent", "Sender", "email_enabled", "is_bouncing", "queue_email"]
