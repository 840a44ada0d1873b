"""How a program is found outside walletd: Google Wallet sign-up and the stores on its cards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow


class ProgramDiscovery(Base):
    """One program's Google sign-up settings and its store-relevance settings (one row or none).

    No row means the defaults: no Google sign-up, each store's name as its lock-screen text and
    Wallet's own distance.
    """

    __tablename__ = "program_discovery"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True
    )
    google_signup_enabled: Mapped[bool] = mapped_column(default=False)
    # Google's SharedDataType names, comma-separated, in the order the brand gave them.
    google_signup_shared_data: Mapped[str] = mapped_column(String(200), default="")
    # DiscoverableProgram.state: TRUSTED_TESTERS, LIVE or DISABLED.
    google_signup_state: Mapped[str] = mapped_column(String(16), default="TRUSTED_TESTERS")
    # The lock-screen text near every store; None: each store's own name.
    location_relevant_text: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Apple's maxDistance in metres (Wallet keeps the smaller of it and its default); None: unset.
    location_max_distance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
