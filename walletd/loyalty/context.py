"""What every loyalty use case needs besides its own arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Context:
    """The caller's clock reading and the settings a use case may consult."""

    now: datetime
    secret_key: str
    google_enabled: bool = False
    # Where a phone number typed without its country code is read (WALLETD_DEFAULT_PHONE_REGION).
    phone_region: str = "TW"
    # Older keys a barcode may still be signed with (WALLETD_SECRET_KEY_FALLBACKS); never signing.
    secret_key_fallbacks: tuple[str, ...] = ()
    # The public address of this server (WALLETD_BASE_URL): links a message carries are absolute.
    base_url: str = ""
    # [email-campaigns] WALLETD_SMTP_URL is set: campaigns and automations may fall back to e-mail.
    email_enabled: bool = False

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The keys a barcode is checked against: the current one first, then the fallbacks."""
        return (self.secret_key, *self.secret_key_fallbacks)
