"""Numbers, money, percentages and dates written the way the page's language writes them (CLDR).

The one place pages and templates format values for people: each function is also a Jinja filter
(`{{ points|number }}`, `{{ minor|money(currency) }}`, `{{ when|datetime(zone) }}`). The locale is
Flask-Babel's (walletd.web.pages.render.locale_selector): `en`, or `zh_Hant_TW` for Chinese pages.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime as DateTime
from datetime import tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.core import get_global
from flask import Flask
from flask_babel import get_locale  # type: ignore[import-untyped]

from walletd.loyalty.money import minor_unit_exponent


def _locale() -> Locale:
    return get_locale() or Locale.parse("en")


def _zone(zone: tzinfo | str | None) -> tzinfo:
    if zone is None or zone == "":
        return ZoneInfo("UTC")
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def number(value: int | Decimal, locale: Locale | None = None) -> str:
    """A count or number of points with the locale's grouping: 1,240."""
    return numbers.format_decimal(value, locale=locale or _locale())


def signed(value: int, locale: Locale | None = None) -> str:
    """A change of points with its sign: +120, -40."""
    return numbers.format_decimal(value, format="+#,##0;-#,##0", locale=locale or _locale())


def percent(ratio: float | Decimal, locale: Locale | None = None, *, decimals: int = 0) -> str:
    """A share as a percentage (0.25 -> 25%), with `decimals` digits after the point."""
    pattern = "#,##0%" if decimals == 0 else "#,##0." + "0" * decimals + "%"
    value = Decimal(str(ratio))
    return numbers.format_percent(value, format=pattern, locale=locale or _locale())


def _cash_digits(currency: str) -> int:
    """How many decimals people write for the currency's cash amounts (CLDR: TWD and JPY none)."""
    fractions = get_global("currency_fractions")
    fraction = fractions.get(currency.upper(), fractions["DEFAULT"])
    return int(fraction[2])


def money(minor: int, currency: str, locale: Locale | None = None) -> str:
    """An amount of minor units in the program's currency: $12.50, NT$1,234 (no cents in TWD)."""
    loc = locale or _locale()
    exponent = minor_unit_exponent(currency)
    amount = Decimal(int(minor)).scaleb(-exponent)
    digits = min(_cash_digits(currency), exponent)
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        digits = exponent  # never hide a real fraction
    pattern = numbers.parse_pattern(loc.currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return str(pattern.apply(amount, loc, currency=currency.upper(), currency_digits=False))


def date(value: Date | DateTime | None, zone: tzinfo | str | None = None,
         locale: Locale | None = None) -> str:  # fmt: skip
    """A day in the locale's medium form (Mar 10, 2026 / 2026年3月10日); a moment is first put in
    the program's time zone."""
    if value is None:
        return ""
    if isinstance(value, DateTime):
        value = value.astimezone(_zone(zone)).date() if value.tzinfo else value.date()
    return dates.format_date(value, format="medium", locale=locale or _locale())


def datetime(value: DateTime | None, zone: tzinfo | str | None = None,
             locale: Locale | None = None) -> str:  # fmt: skip
    """A moment in the program's time zone, in the locale's short form with the zone's name."""
    if value is None:
        return ""
    where = _zone(zone)
    moment = value.astimezone(where) if value.tzinfo else value.replace(tzinfo=where)
    loc = locale or _locale()
    day = dates.format_date(moment.date(), format="medium", locale=loc)
    time = dates.format_time(moment, format="short", tzinfo=where, locale=loc)
    return f"{day} {time} {moment.tzname() or ''}".rstrip()


def init_app(app: Flask) -> None:
    """Register the formats as Jinja filters."""
    for name, function in (("number", number), ("signed", signed), ("percent", percent),
                           ("money", money), ("date", date), ("datetime", datetime)):  # fmt: skip
        app.add_template_filter(function, name)
