"""Wallet links of a card that depend on configured adapters."""

from __future__ import annotations

from walletd.models import Card


def google_save_url(card: Card) -> str | None:
    """The Google Wallet save link, or None while Google Wallet is not configured."""
    return None
