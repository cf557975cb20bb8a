"""The Chinese (lunar) calendar where the inventory needs it: the New Year month of each year."""

from __future__ import annotations

import datetime as dt
from functools import cache

from borax.calendars.lunardate import LunarDate


@cache
def chinese_new_year(year: int) -> dt.date:
    """Gregorian date of the first day of the lunar year (Spring Festival), from borax's tables."""
    return LunarDate(year, 1, 1).to_solar_date()  # type: ignore[no-any-return]


def new_year_month(year: int) -> str:
    """'YYYY-MM' of the Gregorian month holding the Spring Festival of ``year``."""
    d = chinese_new_year(year)
    return f"{d.year:04d}-{d.month:02d}"
