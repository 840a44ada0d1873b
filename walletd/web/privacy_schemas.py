"""Models of the members' data rights routes (export and erasure)."""

from __future__ import annotations

from typing import Any

from walletd.web.schemas import Reply


class MemberExport(Reply):
    """Everything walletd holds about one member (see walletd/privacy/export.py)."""

    version: int
    exported_at: str
    member: dict[str, Any]
    cards: list[dict[str, Any]]
    wallets: dict[str, int]
    ledger: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    card_messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    import_origin: dict[str, Any]
    feedback: list[dict[str, Any]]
    consent_history: list[dict[str, Any]]
