"""Refunds: partial and full refunds of scans, reversals of redemptions."""

from walletd.refunds.service import (
    points_due,
    refund_body,
    refund_scan,
    reverse_redemption,
)

__all__ = ["points_due", "refund_body", "refund_scan", "reverse_redemption"]
