"""Reading numbers typed into page forms: ASCII digits only, within the range a column holds."""

from __future__ import annotations

import re

# Primary keys are INTEGER columns, 32-bit signed on Postgres: a larger id names nothing, and
# binding one would be a database error.
MAX_ID = 2**31 - 1
# `[0-9]`, not `\d` or str.isdigit(): those accept "²" and other digits int() then refuses or
# reads differently, and an unbounded length would reach the database as an overflow.
_WHOLE = re.compile(r"[+-]?[0-9]{1,19}")


def whole_number(text: str, *, low: int, high: int) -> int | None:
    """The integer a form field holds when it is one within [low, high], else None."""
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        return None
    number = int(value)
    return number if low <= number <= high else None
