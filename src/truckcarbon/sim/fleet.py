"""The simulated fleet: trucks with plate, registration unit, emission standard, role and weight.

Model (every number documented here or in the data files it reads):

* **Where trucks are registered.** Province fleets of 2022 are the published
  ones (``published_province_2022.csv``) plus documented estimates for the eight
  provinces below the table's threshold (``sim_province_fleet_estimates.csv``),
  6.78 million diesel heavy trucks in all. Within a province, the 15 cities with
  published registrations keep their share; the rest of the province's fleet is
  shared equally among its other units.
* **When.** Registration months follow :data:`REGISTRATION_WEIGHT_BY_YEAR`
  (uniform within a year); a truck stays in service for 5 to 11 years (China
  III and IV trucks are retired by the phase-out campaigns of 2019-2022, see
  :func:`_retirement`).
* **Emission standard** from the registration date: China III from 2008-07,
  IV from 2013-07, V from 2017-07, VI from 2021-07, VI in key regions
  (:data:`KEY_REGION_PROVINCES`) from 2019-07.
* **Fuel.** From the registration year (:data:`truckcarbon.sim.fuels.NEW_FUEL_SHARE`, sourced there): a
  small share of natural gas (LNG) trucks throughout, electric and fuel-cell trucks
  from 2020; the rest diesel.
* **Role.** A share of each province's trucks is long-haul (chains of trips
  chosen by a gravity model), the rest regional (trips to units within two
  hops). The long-haul share grows with the province's published
  registration/operating ratio, so that exporting provinces export.
* **Platform.** A truck reports (and is in the world) from the month the
  platform's coverage (:data:`PLATFORM_COVERAGE`, by standard) passes its own draw.
* **Sample.** Each province gets a quota of the sampled trucks proportional to
  its fleet (largest remainder); units within a province are drawn by fleet.
  The attributes above are not independent draws. Registration month, life,
  phase-out month and platform draw are the consecutive points of one scrambled
  Sobol' sequence (:func:`quasi_random`) taken by the trucks in province order;
  roles (:func:`systematic`) and utilisations (golden-ratio sequence) follow in
  an order that makes the trucks reporting in 2022 in each province, and those
  reporting in 2018, a few runs of consecutive trucks. Every province, and the
  nation, then gets evenly spread attributes among the trucks that report, and
  the world varies little with the seed: with independent draws, only about 300
  of 1,000 trucks report in 2022 and national totals moved by about 10% between
  seeds.
* **Weight.** The expansion weight of a truck is its province's 2022 fleet
  divided by the province's sampled trucks reporting in mid-2022
  (post-stratified, :func:`_weights`): key-region provinces, whose China VI
  trucks seldom report, are not under-weighted.
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

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_labels, month_number
from truckcarbon.emissions.copert import VehicleClass
from truckcarbon.emissions.factors import EmissionStandard
from truckcarbon.emissions.fuels import FUELS
from truckcarbon.geo.reference import plate_prefixes
from truckcarbon.sim.fuels import registration_fuels
from truckcarbon.sim.world import World

START_MONTH = 2008 * 12  # month numbers are year * 12 + (month - 1)
FIRST_SIM_MONTH = 2018 * 12
LAST_SIM_MONTH = 2023 * 12 + 11


class Role(StrEnum):
    """How a truck is operated."""

    REGIONAL = "regional"
    LONG_HAUL = "long_haul"


ROLE_CLASS = {Role.REGIONAL: VehicleClass.RIGID_28_32.value, Role.LONG_HAUL: VehicleClass.ARTICULATED_40_50.value}

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
PLATFORM_COVERAGE = {2017: 0.58, 2018: 0.56, 2019: 0.55, 2020: 0.79, 2021: 1.0}
# Coverage differs by standard: older China III/IV trucks were connected less
# often, and China VI trucks report their on-board diagnostics to the MEE
# remote-monitoring platform, so in the source report's period few of them appear
# in the freight data (China VI "few in 2019, rising from 2020"); theirs rises to 1
# by 2024. Calibration knobs.
STANDARD_COVERAGE = {0: 0.35, 1: 0.5, 2: 1.0}
CHINA_VI_COVERAGE = {2019: 0.1, 2021: 0.12, 2022: 0.18, 2023: 0.28, 2024: 1.0}


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
    utilisation_draw: npt.NDArray[np.float64]  # quantile of the truck's utilisation (sim.activity)
    fuel: npt.NDArray[np.int8]  # index into FUELS

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
                "fuel_type": pa.array(np.array([f.value for f in FUELS])[self.fuel]),
                # Long-haul trucks are tractor-trailers, regional ones rigid trucks (as sim.physics weighs them).
                "vehicle_class": pa.array(np.array([ROLE_CLASS[r] for r in Role])[self.role]),
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
    """Registration units grouped by province: province quotas proportional to the fleet, units within by fleet."""
    provinces = np.unique(world.province)
    prov_fleet = np.array([city_fleet[world.province == p].sum() for p in provinces])
    quota = _quotas(prov_fleet, n_trucks)
    out = []
    for p, q in zip(provinces, quota, strict=True):
        members = np.flatnonzero((world.province == p) & (city_fleet > 0))
        if q and members.size:
            out.append(rng.choice(members, size=int(q), p=city_fleet[members] / city_fleet[members].sum()))
    return np.asarray(np.concatenate(out), dtype=np.int64)


# Direction numbers of the Sobol' sequence, dimensions 2 to 10, as (s, a, m_1..m_s): the degree and
# coefficients of the primitive polynomial and the initial direction numbers. Source: S. Joe and
# F. Y. Kuo, "Constructing Sobol sequences with better two-dimensional projections", SIAM J. Sci.
# Comput. 30 (2008) 2635-2654, file new-joe-kuo-6.21201 (https://web.maths.unsw.edu.au/~fkuo/sobol/).
# The first dimension is the van der Corput sequence (no polynomial).
SOBOL_DIRECTIONS: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (1, 0, (1,)),
    (2, 1, (1, 3)),
    (3, 1, (1, 3, 1)),
    (3, 2, (1, 1, 1)),
    (4, 1, (1, 1, 3, 3)),
    (4, 4, (1, 3, 5, 13)),
    (5, 2, (1, 1, 5, 5, 17)),
    (5, 4, (1, 1, 5, 5, 5)),
    (5, 7, (1, 1, 7, 11, 19)),
)
SOBOL_BITS = 30


def _sobol_directions(dims: int) -> npt.NDArray[np.uint32]:
    """The direction numbers ``v[d, j]`` (j = 0..SOBOL_BITS-1), each scaled to SOBOL_BITS bits
    (Bratley and Fox, ACM TOMS 14 (1988) 88-100, section 2)."""
    if dims > len(SOBOL_DIRECTIONS) + 1:
        raise InputError(f"at most {len(SOBOL_DIRECTIONS) + 1} Sobol' dimensions are tabulated, asked for {dims}")
    v = np.zeros((dims, SOBOL_BITS), np.uint64)
    v[0, :] = 1
    for d in range(1, dims):
        s, a, m = SOBOL_DIRECTIONS[d - 1]
        poly = 2 * a + 2**s + 1
        row = list(m)
        for j in range(s, SOBOL_BITS):
            new = row[j - s]
            for k in range(s):
                if (poly >> (s - 1 - k)) & 1:
                    new ^= row[j - k - 1] << (k + 1)
            row.append(new)
        v[d, :] = row
    v <<= np.arange(SOBOL_BITS - 1, -1, -1, dtype=np.uint64)  # column j times 2^(bits-1-j)
    return v.astype(np.uint32)


def _parity(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    x = x ^ (x >> np.uint64(16))
    x = x ^ (x >> np.uint64(8))
    x = x ^ (x >> np.uint64(4))
    x = x ^ (x >> np.uint64(2))
    x = x ^ (x >> np.uint64(1))
    return x & np.uint64(1)


def quasi_random(n: int, dims: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """The first ``n`` points of a scrambled Sobol' sequence in [0, 1)^dims (seeded by ``rng``).

    A low-discrepancy sequence (Owen-type scrambling, so each point is uniform):
    the points cover the unit cube, and their low-dimensional projections, much
    more evenly than independent draws, and so does any run of consecutive points.

    Scrambling is a random linear matrix scramble of the direction numbers plus a
    random digital shift (Matousek 1998; Owen 2003), drawn from a child of ``rng``'s
    seed sequence, in 30-bit points taken in Gray-code order. It gives the same
    points as SciPy's ``qmc.Sobol(dims, scramble=True, seed=rng).random_base2(m)[:n]``
    (a test checks it) without importing ``scipy.stats``, about a second of start-up.
    """
    bits = SOBOL_BITS
    if n <= 0:
        return np.empty((0, dims), np.float64)
    v = _sobol_directions(dims)
    bit_gen = rng.bit_generator
    child = np.random.Generator(type(bit_gen)(bit_gen.seed_seq.spawn(1)[0]))  # type: ignore[attr-defined]
    shift = child.integers(2, size=(dims, bits), dtype=np.uint32) @ (np.uint32(2) ** np.arange(bits, dtype=np.uint32))
    ltm = np.tril(child.integers(2, size=(dims, bits, bits), dtype=np.uint32)).astype(np.uint64)
    ltm[:, np.arange(bits), np.arange(bits)] = 1
    # Row p of each lower-triangular matrix as a number (its column k is bit bits-1-k); bit bits-1-p of
    # a scrambled direction number is the parity of that row and the direction number.
    rows = ltm @ (np.uint64(1) << np.arange(bits - 1, -1, -1, dtype=np.uint64))  # (dims, bits)
    weights = np.uint64(1) << np.arange(bits - 1, -1, -1, dtype=np.uint64)  # of row p
    sv = (_parity(rows[:, None, :] & v.astype(np.uint64)[:, :, None]) * weights).sum(axis=2)
    # Point i is the shift XOR the scrambled directions of the bits set in i's Gray code.
    i = np.arange(n, dtype=np.uint64)
    gray = i ^ (i >> np.uint64(1))
    q = np.broadcast_to(shift.astype(np.uint64), (n, dims)).copy()
    for j in range((n - 1).bit_length()):
        on = ((gray >> np.uint64(j)) & np.uint64(1)).astype(bool)
        q[on] ^= sv[:, j]
    return np.asarray(q.astype(np.float64) * (1.0 / 2**bits), dtype=np.float64)


def _standard(month: npt.NDArray[np.int64], key_region: npt.NDArray[np.bool_]) -> npt.NDArray[np.int8]:
    s = np.zeros(month.size, np.int8)
    s[month >= STANDARD_START[EmissionStandard.CHINA_IV]] = 1
    s[month >= STANDARD_START[EmissionStandard.CHINA_V]] = 2
    vi = np.where(key_region, CHINA_VI_KEY_REGIONS, STANDARD_START[EmissionStandard.CHINA_VI])
    s[month >= vi] = 3
    return s


def _registration(u: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Registration months at quantiles ``u`` of :data:`REGISTRATION_WEIGHT_BY_YEAR` (uniform within a year)."""
    years = sorted(REGISTRATION_WEIGHT_BY_YEAR)
    cum = np.cumsum(np.repeat([REGISTRATION_WEIGHT_BY_YEAR[y] for y in years], 12), dtype=np.float64)
    index = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), cum.size - 1)
    return np.asarray(years[0] * 12 + index, dtype=np.int64)


def _retirement(
    u_life: npt.NDArray[np.float64],
    u_phase_out: npt.NDArray[np.float64],
    registered: npt.NDArray[np.int64],
    standard: npt.NDArray[np.int8],
) -> npt.NDArray[np.int64]:
    """First month out of service: 5 to 11 years after registration, earlier for phased-out standards.

    ``u_life`` and ``u_phase_out`` are the truck's uniform draws for its life and
    its phase-out month.
    """
    retired = registered + (5 * 12 + np.floor(u_life * 6 * 12)).astype(np.int64)
    # Phase-out campaigns: China III trucks leave in 2019-2021, China IV in 2020-2022H1.
    for std, first, last in (
        (0, month_number(2019, 1), month_number(2022, 1)),
        (1, month_number(2020, 1), month_number(2022, 7)),
    ):
        sel = standard == std
        phase_out = first + np.floor(u_phase_out[sel] * (last - first)).astype(np.int64)
        retired[sel] = np.minimum(retired[sel], phase_out)
    return np.asarray(retired, dtype=np.int64)


def _by_year(table: dict[int, float], month: int) -> float:
    years = sorted(table)
    return float(np.interp(month, [month_number(y, 7) for y in years], [table[y] for y in years]))


def platform_coverage(month: int, standard: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    """Probability that a truck of each standard in service reports to the platform in ``month``."""
    by_std = np.array([*(STANDARD_COVERAGE[k] for k in range(3)), _by_year(CHINA_VI_COVERAGE, month)])
    return np.asarray(_by_year(PLATFORM_COVERAGE, month) * by_std[standard], dtype=np.float64)


def _reporting(
    month: int,
    registered: npt.NDArray[np.int64],
    retired: npt.NDArray[np.int64],
    standard: npt.NDArray[np.int8],
    connect_draw: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Trucks in service and reporting to the platform in ``month`` (year * 12 + month - 1)."""
    in_service = (registered <= month) & (retired > month)
    return np.asarray(in_service & (connect_draw < platform_coverage(month, standard)), dtype=np.bool_)


def _weights(province: npt.NDArray[np.int32], reporting: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Expansion weights: a province's 2022 fleet over its sampled trucks ``reporting`` in mid-2022.

    Post-stratified by province, so the weighted fleet reporting in 2022-06 is the
    published one in every province, whatever share of it reports: in the key
    regions, China VI trucks (from 2019-07) seldom report, and a national ratio
    would under-weight those provinces by a fifth and over-weight the others. A
    province without a sampled truck reporting falls back to the national share.
    """
    national = max(float(reporting.mean()), 1e-9)
    prov_fleet = province_fleet_2022()
    weight = np.zeros(province.size)
    for p in np.unique(province):
        members = province == p
        sampled = int(reporting[members].sum()) or int(members.sum()) * national
        weight[members] = prov_fleet.get(int(p), 0.0) / sampled
    return weight


def systematic(p: npt.NDArray[np.float64], rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Draws that are true with probabilities ``p`` (at most 1) by systematic sampling: one random start.

    Over any run of consecutive entries, the number of true draws is the sum of
    their ``p`` to within one (independent draws: within about its square root).
    """
    edge = np.floor(np.concatenate([[0.0], np.cumsum(p)]) + rng.random())
    return np.asarray(np.diff(edge) > 0, dtype=np.bool_)


GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # frac(start + k * GOLDEN), k = 0, 1, ...: evenly spread in any run


def make_fleet(world: World, n_trucks: int, rng: np.random.Generator) -> Fleet:
    """Sample ``n_trucks`` trucks of the national fleet (see the module docstring)."""
    city = _stratified_cities(world, city_fleet_2022(world), n_trucks, rng)
    province = world.province[city]
    # When a truck is in service and reporting: one quasi-random point per truck, in
    # province order (registration, platform draw, life, phase-out month).
    u = quasi_random(n_trucks, 4, rng)
    registered = _registration(u[:, 0])
    key = np.isin(province, list(KEY_REGION_PROVINCES))
    standard = _standard(registered, key)
    retired = _retirement(u[:, 2], u[:, 3], registered, standard)
    connect_draw = u[:, 1]
    reporting = _reporting(month_number(2022, 6), registered, retired, standard, connect_draw)
    # How it is driven: roles by systematic sampling and utilisation quantiles on the
    # golden-ratio sequence, in the order: reporting in mid-2022 first, then reporting
    # in mid-2018 first, then province and registration. The trucks reporting in 2022
    # in each province (those of the published table), and those reporting in 2018,
    # are then a few runs of consecutive trucks: they get the expected share of
    # long-haul trucks and evenly spread utilisations.
    early = _reporting(month_number(2018, 6), registered, retired, standard, connect_draw)
    order = np.lexsort((registered, province, ~early, ~reporting))
    shares = {int(p): long_haul_share(int(p)) for p in np.unique(province)}
    role = np.zeros(n_trucks, np.int8)
    role[order] = systematic(np.array([shares[int(p)] for p in province[order]]), rng)
    utilisation_draw = np.empty(n_trucks)
    utilisation_draw[order] = (rng.random() + GOLDEN * np.arange(n_trucks)) % 1.0
    weight = _weights(province, reporting)

    shuffle = rng.permutation(n_trucks)  # vehicle ids carry no province order
    city = city[shuffle]
    plates = _plates(world, city, rng)
    registered = registered[shuffle]
    fuel = registration_fuels(registered, np.random.default_rng(rng.integers(2**62)))  # drawn last: the rest as before
    return Fleet(
        vehicle_id=np.arange(1, n_trucks + 1, dtype=np.int64),
        plate=plates,
        city=city.astype(np.int64),
        registration_city_adcode=world.adcode[city],
        registered_month=registered,
        retired_month=retired[shuffle],
        standard=standard[shuffle],
        role=role[shuffle],
        weight=weight[shuffle],
        connect_draw=connect_draw[shuffle],
        utilisation_draw=utilisation_draw[shuffle],
        fuel=fuel,
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
    return _reporting(month, fleet.registered_month, fleet.retired_month, fleet.standard, fleet.connect_draw)
