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

import math
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


def monthly_km(role: Role, utilisation: float, age_years: float, year: int, month: int, province_adcode: int) -> float:
    """The distance a truck drives in a calendar month: the module docstring's formula."""
    return (
        ANNUAL_KM[role]
        / 12
        * utilisation
        * age_factor(age_years)
        * season(year, month)
        * shock(year, month, province_adcode)
    )


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
    own = np.exp(-0.5 * TRUCK_FACTOR_SIGMA**2 + TRUCK_FACTOR_SIGMA * ndtri(np.clip(draw, 1e-9, 1.0 - 1e-9)))
    factors = province_activity()
    province = np.array([factors.get(int(p), 1.0) for p in province_adcode])
    return np.asarray(own * province, dtype=np.float64)


# The rational approximations of the Cephes library's ``ndtri`` (S. L. Moshier, Cephes Math Library
# Release 2.1, 1989; the coefficients as SciPy's ``scipy.special.ndtri`` carries them).
_P0 = (
    -5.99633501014107895267e1,
    9.80010754185999661536e1,
    -5.66762857469070293439e1,
    1.39312609387279679503e1,
    -1.23916583867381258016e0,
)
_Q0 = (
    1.95448858338141759834e0,
    4.67627912898881538453e0,
    8.63602421390890590575e1,
    -2.25462687854119370527e2,
    2.00260212380060660359e2,
    -8.20372256168333339912e1,
    1.59056225126211695515e1,
    -1.18331621121330003142e0,
)
_P1 = (
    4.05544892305962419923e0,
    3.15251094599893866154e1,
    5.71628192246421288162e1,
    4.40805073893200834700e1,
    1.46849561928858024014e1,
    2.18663306850790267539e0,
    -1.40256079171354495875e-1,
    -3.50424626827848203418e-2,
    -8.57456785154685413611e-4,
)
_Q1 = (
    1.57799883256466749731e1,
    4.53907635128879210584e1,
    4.13172038254672030440e1,
    1.50425385692907503408e1,
    2.50464946208309415979e0,
    -1.42182922854787788574e-1,
    -3.80806407691578277194e-2,
    -9.33259480895457427372e-4,
)
_P2 = (
    3.23774891776946035970e0,
    6.91522889068984211695e0,
    3.93881025292474443415e0,
    1.33303460815807542389e0,
    2.01485389549179081538e-1,
    1.23716634817820021358e-2,
    3.01581553508235416007e-4,
    2.65806974686737550832e-6,
    6.23974539184983293730e-9,
)
_Q2 = (
    6.02427039364742014255e0,
    3.67983563856160859403e0,
    1.37702099489081330271e0,
    2.16236993594496635890e-1,
    1.34204006088543189037e-2,
    3.28014464682127739104e-4,
    2.89247864745380683936e-6,
    6.79019408009981274425e-9,
)
_EXP_M2 = 0.13533528323661269189  # exp(-2)
_SQRT2PI = 2.50662827463100050242


def _polevl(x: float, coef: tuple[float, ...]) -> float:
    ans = coef[0]
    for c in coef[1:]:
        ans = ans * x + c
    return ans


def _p1evl(x: float, coef: tuple[float, ...]) -> float:  # the leading coefficient is 1
    ans = x + coef[0]
    for c in coef[1:]:
        ans = ans * x + c
    return ans


def _ndtri_one(y0: float) -> float:
    if y0 <= 0.0 or y0 >= 1.0:
        return -math.inf if y0 == 0.0 else math.inf if y0 == 1.0 else math.nan
    y, negate = y0, True
    if y > 1.0 - _EXP_M2:
        y, negate = 1.0 - y, False
    if y > _EXP_M2:
        y = y - 0.5
        y2 = y * y
        return (y + y * (y2 * _polevl(y2, _P0) / _p1evl(y2, _Q0))) * _SQRT2PI
    x = math.sqrt(-2.0 * math.log(y))
    x0 = x - math.log(x) / x
    z = 1.0 / x
    p, q = (_P1, _Q1) if x < 8.0 else (_P2, _Q2)
    x1 = z * _polevl(z, p) / _p1evl(z, q)
    return -(x0 - x1) if negate else x0 - x1


def ndtri(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The standard normal quantile of each ``p`` (Cephes' ``ndtri``, operation for operation, so the
    values are SciPy's to the bit; a test checks it): without importing ``scipy.special``, which costs
    the process that samples the fleet about 0.4 s."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    return np.array([_ndtri_one(v) for v in flat.tolist()], dtype=np.float64).reshape(np.shape(p))
