"""Monthly driving distance of a simulated truck: base mileage, seasonality and shocks.

``monthly_km = ANNUAL_KM[role] / 12 * truck_factor * season(month) * shock(month, province)``

* ``truck_factor``: lognormal, sigma 0.35, mean 1 (trucks differ in utilisation).
* ``season``: the month holding Chinese New Year (lunar calendar, ``borax``) is the
  yearly minimum (0.62; the month after it 0.92 when the festival falls late in
  its month); activity rises through the second half to a November peak
  (:data:`MONTH_FACTOR`).
* ``shock``: COVID-19 first wave (2020-01/02 nationally, deepest in Hubei through
  2020-03) and the 2022-04 Shanghai lockdown (deepest in Shanghai, then the Yangtze
  River Delta), :data:`SHOCKS`. These are the demo world's calibration knobs.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from borax.calendars.lunardate import LunarDate

from truckcarbon.sim.fleet import Role

ANNUAL_KM = {Role.REGIONAL: 60_000.0, Role.LONG_HAUL: 130_000.0}
TRUCK_FACTOR_SIGMA = 0.35

# Month-of-year factors outside the New Year effect: a second-half rise to a November peak.
MONTH_FACTOR = {
    1: 0.98,
    2: 0.98,
    3: 1.0,
    4: 1.0,
    5: 1.0,
    6: 0.99,
    7: 0.98,
    8: 1.0,
    9: 1.05,
    10: 1.06,
    11: 1.12,
    12: 1.08,
}
NEW_YEAR_MONTH_FACTOR = 0.62

# (year, month) -> {province adcode or 0 for all: factor}
SHOCKS: dict[tuple[int, int], dict[int, float]] = {
    (2020, 1): {0: 0.80, 420000: 0.55},
    (2020, 2): {0: 0.72, 420000: 0.15},
    (2020, 3): {420000: 0.45},
    (2022, 4): {0: 0.88, 310000: 0.25, 320000: 0.75, 330000: 0.8, 340000: 0.85},
    (2022, 5): {310000: 0.6},
    (2022, 11): {0: 0.9},
    (2022, 12): {0: 0.88},
}


@cache
def chinese_new_year(year: int) -> dt.date:
    """Gregorian date of the first day of the lunar year (Spring Festival)."""
    return LunarDate(year, 1, 1).to_solar_date()  # type: ignore[no-any-return]


def season(year: int, month: int) -> float:
    """Seasonal factor of a calendar month (1.0 = an ordinary month)."""
    cny = chinese_new_year(year)
    f = MONTH_FACTOR[month]
    if month == cny.month:
        return f * NEW_YEAR_MONTH_FACTOR
    if month == cny.month + 1 and cny.day >= 15:
        return f * 0.92  # the holiday runs on into the next month
    return f


def shock(year: int, month: int, province_adcode: int) -> float:
    """Shock factor of a month for trucks based in a province (1.0 = no shock)."""
    factors = SHOCKS.get((year, month), {})
    return factors.get(province_adcode, factors.get(0, 1.0))
