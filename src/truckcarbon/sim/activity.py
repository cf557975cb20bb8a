"""Monthly driving distance of a simulated truck: base mileage, seasonality and shocks.

``monthly_km = ANNUAL_KM[role] / 12 * truck_factor * age_factor * season(month) * shock(month, province)``

* ``age_factor``: new trucks drive most; utilisation falls 0.09 a year from 1.35 to at least 0.45.

* ``truck_factor``: lognormal, sigma 0.35, mean 1 (trucks differ in utilisation).
* ``season``: the month holding Chinese New Year (lunar calendar, ``borax``) is the
  yearly minimum (0.62; the month after it 0.92 when the festival falls late in
  its month); activity rises through the second half to a November peak
  (:data:`MONTH_FACTOR`).
* ``shock``: COVID-19 first wave (2020-01/02 nationally, deepest in Hubei through
  2020-03), the 2022-04 Shanghai lockdown (deepest in Shanghai, then the Yangtze
  River Delta) and the weak freight year 2022 with its year-end wave,
  :data:`SHOCKS`. These are the demo world's calibration knobs.
"""

from __future__ import annotations

from truckcarbon.core.calendar import chinese_new_year
from truckcarbon.sim.fleet import Role

ANNUAL_KM = {Role.REGIONAL: 27_500.0, Role.LONG_HAUL: 60_500.0}
# New trucks are driven most: utilisation falls with age (years since registration).
NEW_TRUCK_FACTOR = 1.35
AGE_DECLINE_PER_YEAR = 0.09
MIN_AGE_FACTOR = 0.45
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
NEW_YEAR_MONTH_FACTOR = 0.70

# (year, month) -> {province adcode or 0 for all: factor}
SHOCKS: dict[tuple[int, int], dict[int, float]] = {
    (2020, 1): {0: 0.86, 420000: 0.55},
    (2020, 2): {0: 0.55, 420000: 0.12},
    (2020, 3): {420000: 0.45},
    (2022, 4): {0: 0.88, 310000: 0.25, 320000: 0.75, 330000: 0.8, 340000: 0.85},
    (2022, 5): {0: 0.95, 310000: 0.6},
    (2022, 6): {0: 0.95},
    (2022, 7): {0: 0.95},
    (2022, 8): {0: 0.95},
    (2022, 10): {0: 0.95},
    (2022, 11): {0: 0.9},
    (2022, 12): {0: 0.88},
    **{(2023, m): {0: 0.86} for m in range(1, 13)},  # slow freight recovery in 2023
}


def season(year: int, month: int) -> float:
    """Seasonal factor of a calendar month (1.0 = an ordinary month)."""
    cny = chinese_new_year(year)
    f = MONTH_FACTOR[month]
    if month == cny.month:
        return f * NEW_YEAR_MONTH_FACTOR
    if month == cny.month + 1 and cny.day >= 15:
        return f * 0.92  # the holiday runs on into the next month
    return f


def age_factor(age_years: float) -> float:
    """Utilisation by truck age: new trucks drive most."""
    return max(MIN_AGE_FACTOR, NEW_TRUCK_FACTOR - AGE_DECLINE_PER_YEAR * age_years)


def shock(year: int, month: int, province_adcode: int) -> float:
    """Shock factor of a month for trucks based in a province (1.0 = no shock)."""
    factors = SHOCKS.get((year, month), {})
    return factors.get(province_adcode, factors.get(0, 1.0))
