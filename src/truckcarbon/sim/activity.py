"""Monthly driving distance of a simulated truck: base mileage, seasonality and shocks.

``monthly_km = ANNUAL_KM[role] / 12 * utilisation * age_factor * season(month) * shock(month, province)``

* ``age_factor``: new trucks drive most; utilisation falls 0.09 a year from 1.35 to at least 0.45.

* ``utilisation`` (:func:`utilisation`): the truck's own factor (lognormal, sigma
  0.35, mean 1: trucks differ in utilisation) times its registration province's
  activity factor (:func:`province_activity`): trucks registered in Hebei drive
  more than those registered in Yunnan or Xinjiang, as the published registration
  CO2 per registered truck of the 23 provinces says (``published_province_2022.csv``).
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

from functools import cache

import numpy as np
import numpy.typing as npt

from truckcarbon.core.calendar import chinese_new_year
from truckcarbon.sim.fleet import Role, long_haul_share, published_province_table

ANNUAL_KM = {Role.REGIONAL: 25_200.0, Role.LONG_HAUL: 55_300.0}
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
    (2020, 2): {0: 0.5, 420000: 0.12},
    (2020, 3): {420000: 0.45},
    (2022, 4): {0: 0.88, 310000: 0.25, 320000: 0.75, 330000: 0.8, 340000: 0.85},
    (2022, 5): {0: 0.95, 310000: 0.6},
    (2022, 6): {0: 0.95},
    (2022, 7): {0: 0.95},
    (2022, 8): {0: 0.95},
    (2022, 10): {0: 0.93},
    (2022, 11): {0: 0.86},
    (2022, 12): {0: 0.88},
    **{(2023, m): {0: 0.85} for m in range(1, 13)},  # slow freight recovery in 2023
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


@cache
def province_activity() -> dict[int, float]:
    """Activity factor of the trucks registered in each province of the published table (others: 1).

    The published registration CO2 per registered truck of the province relative
    to the table's, divided by what the province's role mix alone gives (its
    long-haul share, :func:`truckcarbon.sim.fleet.long_haul_share`, at
    :data:`ANNUAL_KM`) relative to the table's fleet-weighted mix, so that the
    factor adds only what the roles do not explain. The fleet-weighted mean of
    factor times mix is the table's mix: national distances are unchanged.
    """
    t = published_province_table()
    codes = [int(c) for c in t["province_adcode"].to_pylist()]
    fleet = np.array(t["registered_1e4"].to_pylist(), dtype=np.float64)
    per_truck = np.array(t["registration_co2_1e4_t"].to_pylist(), dtype=np.float64) / fleet
    share = np.array([long_haul_share(c) for c in codes])
    mix = share * ANNUAL_KM[Role.LONG_HAUL] + (1.0 - share) * ANNUAL_KM[Role.REGIONAL]
    relative_co2 = per_truck / (np.sum(per_truck * fleet) / fleet.sum())
    relative_mix = mix / (np.sum(mix * fleet) / fleet.sum())
    return dict(zip(codes, (relative_co2 / relative_mix).tolist(), strict=True))


def utilisation(draw: npt.NDArray[np.float64], province_adcode: npt.NDArray[np.int32]) -> npt.NDArray[np.float64]:
    """Utilisation of each truck: its lognormal factor at quantile ``draw`` times its province's activity."""
    from scipy.special import ndtri  # here: only the process that samples the fleet needs scipy

    own = np.exp(-0.5 * TRUCK_FACTOR_SIGMA**2 + TRUCK_FACTOR_SIGMA * ndtri(np.clip(draw, 1e-9, 1.0 - 1e-9)))
    factors = province_activity()
    province = np.array([factors.get(int(p), 1.0) for p in province_adcode])
    return np.asarray(own * province, dtype=np.float64)
