"""The simulated fleet: trucks with plate, registration unit, emission standard, role and weight.

Model (every number documented here or in the data files it reads):

* **Where trucks are registered.** Province fleets of 2022 are the published
  ones (``published_province_2022.csv``) plus documented estimates for the eight
  provinces below the table's threshold (``sim_province_fleet_estimates.csv``),
  6.78 million diesel heavy trucks in all. Within a province, the 15 cities with
  published registrations keep their share; the rest of the province's fleet is
  shared equally among its other units.
* **When.** Registration years follow :data:`REGISTRATION_WEIGHT_BY_YEAR` as exact
  quotas (largest remainder; the month within the year is uniform)
  and stays in service for 6 to 15 years (China III trucks are retired by the
  phase-out campaigns of 2019-2022, see :func:`_retirement`).
* **Emission standard** from the registration date: China III from 2008-07,
  IV from 2013-07, V from 2017-07, VI from 2021-07, VI in key regions
  (:data:`KEY_REGION_PROVINCES`) from 2019-07.
* **Role.** A share of each province's trucks is long-haul (cross-country trips
  chosen by a gravity model), the rest regional (trips to units within two
  hops). The long-haul share grows with the province's published
  registration/operating ratio, so that exporting provinces export.
* **Platform.** A truck reports (and is in the world) from the month the
  platform's coverage (:data:`PLATFORM_COVERAGE`) passes its own random draw.
* **Sample.** Each province gets a quota of the sampled trucks proportional to
  its fleet (largest remainder); units within a province are drawn by fleet.
* **Weight.** The expansion weight of a truck is its province's 2022 fleet
  divided by the province's sampled trucks, divided by the national share of
  sampled trucks reporting in mid-2022 (so the weighted 2022 fleet is the published
  one without the noise of tiny per-province counts).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from truckcarbon.core.months import month_labels, month_number
from truckcarbon.emissions.factors import EmissionStandard
from truckcarbon.geo.reference import plate_prefixes
from truckcarbon.sim.world import World

START_MONTH = 2008 * 12  # month numbers are year * 12 + (month - 1)
FIRST_SIM_MONTH = 2018 * 12
LAST_SIM_MONTH = 2023 * 12 + 11


class Role(StrEnum):
    """How a truck is operated."""

    REGIONAL = "regional"
    LONG_HAUL = "long_haul"


# Key regions with China VI from 2019-07 (Beijing-Tianjin-Hebei and surroundings,
# Yangtze and Pearl River Deltas, Chengdu-Chongqing): MEE/SAMR announcement on the
# implementation of GB 17691-2018 stage 6 for heavy-duty vehicles.
KEY_REGION_PROVINCES = {110000, 120000, 130000, 140000, 370000, 410000, 310000, 320000, 330000, 340000, 440000,
                        500000, 510000}  # fmt: skip
# Relative number of registrations per year, shaped after the yearly heavy-truck
# sales of the China Association of Automobile Manufacturers (10^4 trucks, rounded):
# a calibration knob of the demo world, not a published input.
REGISTRATION_WEIGHT_BY_YEAR = {
    2008: 54, 2009: 64, 2010: 102, 2011: 88, 2012: 64, 2013: 77, 2014: 74, 2015: 55,
    2016: 73, 2017: 111, 2018: 115, 2019: 117, 2020: 162, 2021: 139, 2022: 67, 2023: 91,
}  # fmt: skip
# Share of the trucks in service that report to the national platform, by year
# (coverage grew until 2021); interpolated by month. A calibration knob.
PLATFORM_COVERAGE = {2017: 0.68, 2018: 0.66, 2019: 0.66, 2020: 0.86, 2021: 1.0}
# Coverage differs by standard: older China III/IV trucks were connected less
# often, and China VI trucks report their on-board diagnostics to the MEE
# remote-monitoring platform, so in the source report's period few of them appear
# in the freight data (China VI "few in 2019, rising from 2020"); theirs rises to 1
# by 2024. Calibration knobs.
STANDARD_COVERAGE = {0: 0.35, 1: 0.42, 2: 1.0}
CHINA_VI_COVERAGE = {2019: 0.1, 2021: 0.12, 2022: 0.25, 2023: 0.3, 2024: 1.0}


STANDARD_START = {
    EmissionStandard.CHINA_IV: month_number(2013, 7),
    EmissionStandard.CHINA_V: month_number(2017, 7),
    EmissionStandard.CHINA_VI: month_number(2021, 7),
}
CHINA_VI_KEY_REGIONS = month_number(2019, 7)


@dataclass(frozen=True)
class Fleet:
    """One row per sampled truck (arrays of equal length)."""

    vehicle_id: npt.NDArray[np.int64]
    plate: list[str]
    city: npt.NDArray[np.int64]  # world unit index of the registration unit
    registration_city_adcode: npt.NDArray[np.int32]
    registered_month: npt.NDArray[np.int64]  # year * 12 + month - 1
    retired_month: npt.NDArray[np.int64]  # first month out of service
    standard: npt.NDArray[np.int8]  # index into list(EmissionStandard)
    role: npt.NDArray[np.int8]  # index into list(Role)
    weight: npt.NDArray[np.float64]
    connect_draw: npt.NDArray[np.float64]  # connected in month m when below platform_coverage(m)

    @property
    def n(self) -> int:
        return int(self.vehicle_id.size)

    def table(self) -> pa.Table:
        """The ``vehicles.parquet`` table."""
        standards = np.array([s.value for s in EmissionStandard])
        roles = np.array([r.value for r in Role])
        reg = self.registered_month
        return pa.table(
            {
                "vehicle_id": pa.array(self.vehicle_id, pa.int64()),
                "plate": pa.array(self.plate, pa.string()),
                "registration_city_adcode": pa.array(self.registration_city_adcode, pa.int32()),
                "emission_standard": pa.array(standards[self.standard]),
                "fuel_type": pa.array(["diesel"] * self.n),
                "vehicle_class": pa.array(["heavy truck (>= 12 t)"] * self.n),
                "registration_month": pa.array(month_labels(reg)),
                "retirement_month": pa.array(month_labels(self.retired_month)),
                "role": pa.array(roles[self.role]),
                "weight": pa.array(self.weight, pa.float64()),
            }
        )


def _read(name: str) -> pa.Table:
    with files("truckcarbon.data").joinpath(name).open("rb") as f:
        return pacsv.read_csv(f)


def province_fleet_2022() -> dict[int, float]:
    """Diesel heavy trucks registered per province in 2022 (published + documented estimates)."""
    out: dict[int, float] = {}
    for name in ("published_province_2022.csv", "sim_province_fleet_estimates.csv"):
        t = _read(name)
        for code, n in zip(t["province_adcode"].to_pylist(), t["registered_1e4"].to_pylist(), strict=True):
            out[int(code)] = float(n) * 1e4
    return out


def city_fleet_2022(world: World) -> npt.NDArray[np.float64]:
    """Registered trucks per world unit in 2022 (published cities kept, the rest shared equally)."""
    fleet = np.zeros(world.n)
    prov = province_fleet_2022()
    pub = _read("published_city_registrations_2022.csv")
    fixed = dict(zip(pub["city_adcode"].to_pylist(), pub["registered_1e4"].to_pylist(), strict=True))
    for p, total in prov.items():
        members = np.flatnonzero(world.province == p)
        known = [k for k in members if int(world.adcode[k]) in fixed]
        for k in known:
            fleet[k] = fixed[int(world.adcode[k])] * 1e4
        rest = [k for k in members if k not in known and int(world.adcode[k]) != 460300]  # Sansha: no road
        if rest:
            fleet[rest] = max(total - fleet[known].sum(), 0.0) / len(rest)
    return fleet


def published_province_table() -> pa.Table:
    """The published 2022 province table (registered trucks, registration and operating CO2, ratio)."""
    return _read("published_province_2022.csv")


def long_haul_share(province_adcode: int) -> float:
    """Share of a province's trucks on long-haul duty, rising with its published export ratio."""
    t = published_province_table()
    ratio = dict(zip(t["province_adcode"].to_pylist(), t["ratio"].to_pylist(), strict=True)).get(province_adcode, 1.0)
    return float(np.clip(0.25 + 0.45 * np.log(ratio), 0.05, 0.7))


def _quotas(weights: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.int64]:
    """Integer counts proportional to ``weights`` summing to ``n`` (largest remainder)."""
    exact = np.asarray(weights, dtype=np.float64) / float(np.sum(weights)) * n
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(-(exact - quota), kind="stable")[: n - int(quota.sum())]] += 1
    return quota


def _stratified_cities(
    world: World, city_fleet: npt.NDArray[np.float64], n_trucks: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Registration units: province quotas proportional to the fleet (largest remainder), units within by fleet."""
    provinces = np.unique(world.province)
    prov_fleet = np.array([city_fleet[world.province == p].sum() for p in provinces])
    quota = _quotas(prov_fleet, n_trucks)
    out = []
    for p, q in zip(provinces, quota, strict=True):
        members = np.flatnonzero((world.province == p) & (city_fleet > 0))
        if q and members.size:
            out.append(rng.choice(members, size=int(q), p=city_fleet[members] / city_fleet[members].sum()))
    city = np.concatenate(out)
    return np.asarray(city[rng.permutation(city.size)], dtype=np.int64)


def _standard(month: npt.NDArray[np.int64], key_region: npt.NDArray[np.bool_]) -> npt.NDArray[np.int8]:
    s = np.zeros(month.size, np.int8)
    s[month >= STANDARD_START[EmissionStandard.CHINA_IV]] = 1
    s[month >= STANDARD_START[EmissionStandard.CHINA_V]] = 2
    vi = np.where(key_region, CHINA_VI_KEY_REGIONS, STANDARD_START[EmissionStandard.CHINA_VI])
    s[month >= vi] = 3
    return s


def _retirement(
    rng: np.random.Generator, registered: npt.NDArray[np.int64], standard: npt.NDArray[np.int8]
) -> npt.NDArray[np.int64]:
    life = rng.integers(5 * 12, 11 * 12, registered.size)
    retired = registered + life
    # Phase-out campaigns: China III trucks leave in 2019-2021, China IV in 2020-2022H1.
    for std, first, last in (
        (0, month_number(2019, 1), month_number(2022, 1)),
        (1, month_number(2020, 1), month_number(2022, 7)),
    ):
        sel = standard == std
        phase_out = rng.integers(first, last, registered.size)
        retired[sel] = np.minimum(retired[sel], phase_out[sel])
    return retired


def _by_year(table: dict[int, float], month: int) -> float:
    years = sorted(table)
    return float(np.interp(month, [month_number(y, 7) for y in years], [table[y] for y in years]))


def platform_coverage(month: int, standard: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    """Probability that a truck of each standard in service reports to the platform in ``month``."""
    by_std = np.array([*(STANDARD_COVERAGE[k] for k in range(3)), _by_year(CHINA_VI_COVERAGE, month)])
    return np.asarray(_by_year(PLATFORM_COVERAGE, month) * by_std[standard], dtype=np.float64)


def make_fleet(world: World, n_trucks: int, rng: np.random.Generator) -> Fleet:
    """Sample ``n_trucks`` trucks of the national fleet (see the module docstring)."""
    city_fleet = city_fleet_2022(world)
    city = _stratified_cities(world, city_fleet, n_trucks, rng)
    years = np.array(sorted(REGISTRATION_WEIGHT_BY_YEAR))
    w = np.array([REGISTRATION_WEIGHT_BY_YEAR[y] for y in years])
    year = rng.permutation(np.repeat(years, _quotas(w, n_trucks)))
    registered = (year * 12 + rng.integers(0, 12, n_trucks)).astype(np.int64)
    province = world.province[city]
    key = np.isin(province, list(KEY_REGION_PROVINCES))
    standard = _standard(registered, key)
    retired = _retirement(rng, registered, standard).astype(np.int64)
    shares = {int(p): long_haul_share(int(p)) for p in np.unique(province)}
    role = (rng.random(n_trucks) < np.array([shares[int(p)] for p in province])).astype(np.int8)

    connect_draw = (rng.permutation(n_trucks) + rng.random(n_trucks)) / n_trucks  # stratified uniform
    # Expansion weights: province fleet 2022 / sampled trucks of the province in service in 2022.
    in_2022 = (registered <= month_number(2022, 6)) & (retired > month_number(2022, 6))
    in_2022 &= connect_draw < platform_coverage(month_number(2022, 6), standard)
    # Ratio to the sampled count of the province (fixed by the quotas, so not noisy),
    # corrected by the national share of sampled trucks reporting in mid-2022.
    prov_fleet = province_fleet_2022()
    share_2022 = max(float(in_2022.mean()), 1e-9)
    weight = np.zeros(n_trucks)
    for p in np.unique(province):
        members = province == p
        weight[members] = prov_fleet.get(int(p), 0.0) / int(members.sum()) / share_2022

    plates = _plates(world, city, rng)
    return Fleet(
        vehicle_id=np.arange(1, n_trucks + 1, dtype=np.int64),
        plate=plates,
        city=city.astype(np.int64),
        registration_city_adcode=world.adcode[city],
        registered_month=registered,
        retired_month=retired,
        standard=standard,
        role=role,
        weight=weight,
        connect_draw=connect_draw,
    )


def _plates(world: World, city: npt.NDArray[np.int64], rng: np.random.Generator) -> list[str]:
    """Plates: the unit's prefix (its first own prefix, else the shared one) and five characters."""
    p = plate_prefixes()
    first: dict[int, str] = {}
    order = np.lexsort(
        (p["plate_prefix"].to_numpy(zero_copy_only=False), ~p["own_prefix"].to_numpy(zero_copy_only=False))
    )
    for k in order:
        first.setdefault(int(p["city_adcode"][int(k)].as_py()), str(p["plate_prefix"][int(k)].as_py()))
    alphabet = np.array(list(string.digits + "ABCDEFGHJKLMNPQRSTUVWXYZ"))
    tails = alphabet[rng.integers(0, alphabet.size, (city.size, 5))]
    seen: set[str] = set()
    out = []
    for k, c in enumerate(city):
        plate = first[int(world.adcode[c])] + "".join(tails[k])
        while plate in seen:  # plates are unique
            plate = plate[:2] + "".join(alphabet[rng.integers(0, alphabet.size, 5)])
        seen.add(plate)
        out.append(plate)
    return out


def active(fleet: Fleet, month: int) -> npt.NDArray[np.bool_]:
    """Trucks in service and reporting to the platform during ``month`` (year * 12 + month - 1)."""
    in_service = (fleet.registered_month <= month) & (fleet.retired_month > month)
    return in_service & (fleet.connect_draw < platform_coverage(month, fleet.standard))
