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
