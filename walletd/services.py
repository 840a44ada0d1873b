"""The process-wide objects one app or worker uses: settings, database, clock, adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from walletd.config import Settings
from walletd.db import Database, utcnow
from walletd.loyalty.context import Context


@dataclass
class Services:
    """Built once per process by `create_app` (or the worker); adapters are created lazily."""

    settings: Settings
    db: Database
    clock: Callable[[], datetime] = utcnow
    adapters: dict[str, Any] = field(default_factory=dict)

    def context(self) -> Context:
        """A use-case context with the clock's reading now."""
        return Context(
            now=self.clock(),
            secret_key=self.settings.secret_key,
            google_enabled=self.settings.google_enabled,
            phone_region=self.settings.default_phone_region,
            secret_key_fallbacks=self.settings.secret_key_fallbacks,
            base_url=self.settings.base_url,
            email_enabled=bool(self.settings.smtp_url),  # [email-campaigns]
        )

    def adapter(self, name: str, factory: Callable[[], Any]) -> Any:
        """The named adapter, created on first use and kept for the life of the process."""
        if name not in self.adapters:
            self.adapters[name] = factory()
        return self.adapters[name]

    def close(self) -> None:
        """Close adapters that hold connections, then the database pool."""
        for adapter in self.adapters.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        self.adapters.clear()
        self.db.dispose()
