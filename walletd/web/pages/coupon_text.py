"""How the pages write what a coupon gives, in the reader's language."""

from __future__ import annotations

from decimal import Decimal

from walletd.offers.catalog import decimal_text
from walletd.web.pages.render import _, ngettext


def headline_text(kind: str, value: Decimal | None, item: str | None, currency: str) -> str:
    """What a coupon gives in a few words: 15% off, USD 5 off, 200 bonus points, or the item."""
    if kind == "percent_off" and value is not None:
        return _("{percent} off", percent=decimal_text(value) + "%")
    if kind == "amount_off" and value is not None:
        return _("{currency} {value} off", currency=currency, value=decimal_text(value))
    if kind == "bonus_points" and value is not None:
        return ngettext("{num} bonus point", "{num} bonus points", int(value))
    return item or _("Free item")
