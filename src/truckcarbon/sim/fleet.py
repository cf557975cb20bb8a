"""The simulated fleet: trucks with plate, registration unit, emission standard, role and weight.

Model (every number documented here or in the data files it reads):

* **Where trucks are registered.** Province fleets of 2022 are the published
  ones (``published_province_2022.csv``) plus documented estimates for the eight
  provinces below the table's threshold (``sim_province_fleet_estimates.csv``),
  6.78 million diesel heavy trucks in all. Within a province, the 15 cities with
  published registrations keep their share; the rest of the province's fleet is
  shared equally among its other units.
* **When.** Registration dates are drawn so that the fleet active in each month
  grows from 2018 to 2021 and then levels off: a truck is registered at a
  uniformly random month in 2008-01..2023-12 weighted by :data:`REGISTRATION_WEIGHT_BY_YEAR`
  and stays in service for 6 to 15 years (China III trucks are retired by the
  phase-out campaigns of 2019-2022, see :func:`_retirement`).
* **Emission standard** from the registration date: China III from 2008-07,
  IV from 2013-07, V from 2017-07, VI from 2021-07, VI in key regions
  (:data:`KEY_REGION_PROVINCES`) from 2019-07.
* **Role.** A share of each province's trucks is long-haul (cross-country trips
  chosen by a gravity model), the rest regional (trips to units within two
  hops). The long-haul share grows with the province's published
  registration/operating ratio, so that exporting provinces export.
* **Weight.** The expansion weight of a truck is its province's 2022 fleet
  divided by the number of sampled trucks of that province in service in 2022.
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
# Relative number of registrations per year (fleet growth and the 2019-2021
# replacement wave); a calibration knob of the demo world.
REGISTRATION_WEIGHT_BY_YEAR = {
    2008: 0.35, 2009: 0.45, 2010: 0.6, 2011: 0.6, 2012: 0.5, 2013: 0.55, 2014: 0.55, 2015: 0.5,
    2016: 0.65, 2017: 0.95, 2018: 1.05, 2019: 1.1, 2020: 1.45, 2021: 1.25, 2022: 0.6, 2023: 0.75,
}  # fmt: skip


def _ym(year: int, month: int) -> int:
    return year * 12 + month - 1


STANDARD_START = {
    EmissionStandard.CHINA_IV: _ym(2013, 7),
    EmissionStandard.CHINA_V: _ym(2017, 7),
    EmissionStandard.CHINA_VI: _ym(2021, 7),
}
CHINA_VI_KEY_REGIONS = _ym(2019, 7)


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
                "registration_month": pa.array([f"{m // 12:04d}-{m % 12 + 1:02d}" for m in reg]),
                "retirement_month": pa.array([f"{m // 12:04d}-{m % 12 + 1:02d}" for m in self.retired_month]),
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


def long_haul_share(province_adcode: int) -> float:
    """Share of a province's trucks on long-haul duty, rising with its published export ratio."""
    t = _read("published_province_2022.csv")
    ratio = dict(zip(t["province_adcode"].to_pylist(), t["ratio"].to_pylist(), strict=True)).get(province_adcode, 1.0)
    return float(np.clip(0.25 + 0.45 * np.log(ratio), 0.05, 0.7))


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
    life = rng.integers(6 * 12, 15 * 12, registered.size)
    retired = registered + life
    # China III phase-out campaigns (2019-2022): III trucks leave by a random month in that window.
    iii = standard == 0
    phase_out = rng.integers(_ym(2019, 1), _ym(2023, 1), registered.size)
    retired[iii] = np.minimum(retired[iii], phase_out[iii])
    return retired


def make_fleet(world: World, n_trucks: int, rng: np.random.Generator) -> Fleet:
    """Sample ``n_trucks`` trucks of the national fleet (see the module docstring)."""
    city_fleet = city_fleet_2022(world)
    city = rng.choice(world.n, size=n_trucks, p=city_fleet / city_fleet.sum())
    years = np.array(sorted(REGISTRATION_WEIGHT_BY_YEAR))
    w = np.array([REGISTRATION_WEIGHT_BY_YEAR[y] for y in years])
    year = rng.choice(years, size=n_trucks, p=w / w.sum())
    registered = (year * 12 + rng.integers(0, 12, n_trucks)).astype(np.int64)
    province = world.province[city]
    key = np.isin(province, list(KEY_REGION_PROVINCES))
    standard = _standard(registered, key)
    retired = _retirement(rng, registered, standard).astype(np.int64)
    shares = {int(p): long_haul_share(int(p)) for p in np.unique(province)}
    role = (rng.random(n_trucks) < np.array([shares[int(p)] for p in province])).astype(np.int8)

    # Expansion weights: province fleet 2022 / sampled trucks of the province in service in 2022.
    in_2022 = (registered <= _ym(2022, 12)) & (retired > _ym(2022, 6))
    prov_fleet = province_fleet_2022()
    weight = np.zeros(n_trucks)
    for p in np.unique(province):
        members = province == p
        n_active = int((members & in_2022).sum())
        weight[members] = prov_fleet.get(int(p), 0.0) / max(n_active, 1)

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
    """Trucks in service during ``month`` (year * 12 + month - 1)."""
    return (fleet.registered_month <= month) & (fleet.retired_month > month)
