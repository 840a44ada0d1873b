"""Amounts of money as integers of a currency's minor unit (ISO 4217), parsed from decimals."""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation

from walletd.errors import ValidationError

# ISO 4217 minor-unit exponents for currencies whose exponent is not 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


# More integer digits than any real purchase has; checked before any arithmetic.
MAX_DIGITS = 15
_PLAIN_DECIMAL = re.compile(r"^-?[0-9]{1,32}(\.[0-9]{1,32})?([eE][+-]?[0-9]{1,12})?$")
_EXACT = Context(prec=64, Emax=MAX_EMAX, Emin=MIN_EMIN)


def minor_unit_exponent(currency: str) -> int:
    """How many decimals the currency has (2 unless ISO 4217 says otherwise)."""
    return _EXPONENTS.get(currency.upper(), 2)


def is_currency_code(value: str) -> bool:
    """Three upper-case letters, the shape of an ISO 4217 code."""
    return len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()


def parse_amount(value: object, currency: str, *, field: str = "amount") -> int:
    """Turn a decimal string or JSON number into minor units; refuse floats' noise and bad input."""
    if isinstance(value, bool) or value is None:
        raise ValidationError("amount must be a decimal string or number", field=field)
    if isinstance(value, float):
        # JSON numbers are parsed as Decimal by the web layer; a float here is a programming error.
        raise ValidationError("amount must not be a binary float", field=field)
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        # Plain ASCII decimals only: Decimal() would also take "1_000", exponents and
        # non-Latin digits, none of which a till sends on purpose.
        if not _PLAIN_DECIMAL.match(text):
            raise ValidationError('amount must be a decimal string such as "12.50"', field=field)
        if not text or len(text) > 32:
            raise ValidationError('amount must be a decimal string such as "12.50"', field=field)
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise ValidationError(f"amount {value!r} is not a decimal number", field=field) from exc
    else:
        raise ValidationError("amount must be a decimal string or number", field=field)
    if not amount.is_finite():
        raise ValidationError("amount must be a finite number", field=field)
    if amount <= 0:
        raise ValidationError("amount must be greater than zero", field=field)
    if amount.adjusted() > MAX_DIGITS:
        raise ValidationError("amount is absurdly large", field=field)
    exponent = minor_unit_exponent(currency)
    # Count decimals from the number's own exponent (not by scaling in the default 28-digit
    # context, which would round long amounts and flush tiny ones to zero).
    normalised = amount.normalize(_EXACT)
    if -int(normalised.as_tuple().exponent) > exponent:
        raise ValidationError(
            f"amount has more than {exponent} decimal places for {currency}", field=field
        )
    return int(normalised.scaleb(exponent, _EXACT))


def format_minor(amount_minor: int, currency: str) -> str:
    """Minor units back to a plain decimal string such as "12.50"."""
    exponent = minor_unit_exponent(currency)
    return str(Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))
