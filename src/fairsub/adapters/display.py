"""Formatting for people: money, dates and times in the reader's locale and time zone.

Display only. Inside fairsub money is Money and time is UTC; this is the last step.

Every page formats a handful of prices and dates, mostly the same ones (catalog prices, the
days periods end on), so results are cached per locale: Babel parses the locale and applies
the CLDR pattern anew on every call, which cost more than the rest of rendering a row.
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency

from fairsub.domain.money import Money, minor_units


@functools.cache
def ui_locale(locale: str) -> str:
    """fairsub speaks English for now; numbers and dates follow the customer's country
    where CLDR has an English variant for it (en_DE: '27 November 2026', '49,99 €')."""
    language, _, territory = locale.partition("_")
    if language == "en":
        return locale
    try:
        Locale.parse(f"en_{territory}")
    except (UnknownLocaleError, ValueError):
        return "en"
    return f"en_{territory}"


@functools.cache
def _babel_locale(locale: str, language: str = "en") -> Locale:
    """The locale to format in: English (`ui_locale`), or, on a page written in another
    language (the German contract pages), that language in the reader's country."""
    if language == "en":
        return Locale.parse(ui_locale(locale))
    territory = locale.partition("_")[2]
    try:
        return Locale.parse(f"{language}_{territory}" if territory else language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(language)


@functools.lru_cache(maxsize=4096)
def money(value: Money, locale: str, language: str = "en") -> str:
    amount = Decimal(value.amount_minor).scaleb(-minor_units(value.currency))
    return format_currency(amount, value.currency, locale=_babel_locale(locale, language))


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, locale: str, language: str) -> str:
    return format_date(day, "long", locale=_babel_locale(locale, language))


def local_date(moment: datetime, timezone: str, locale: str, language: str = "en") -> str:
    return _long_date(moment.astimezone(ZoneInfo(timezone)).date(), locale, language)


def local_datetime(moment: datetime, timezone: str, locale: str, language: str = "en") -> str:
    """'27 November 2026 at 14:03:09 GMT' style, with the zone spelled out."""
    # To the second, as shown: requests and emails of the same second share the text.
    return _long_datetime(moment.replace(microsecond=0), timezone, locale, language)


@functools.lru_cache(maxsize=1024)
def _long_datetime(moment: datetime, timezone: str, locale: str, language: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    babel = _babel_locale(locale, language)
    return format_datetime(local, "long", tzinfo=ZoneInfo(timezone), locale=babel)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)
