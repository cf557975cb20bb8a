"""The 90% intervals of a run's inventory: a Monte Carlo over its activity rows.

The draws are :mod:`truckcarbon.emissions.montecarlo`'s.

:func:`inventory_intervals` reads the run's activity (and its unobserved gaps)
month by month and writes, under ``RUN/analysis/``:

- ``inventory_intervals``: one row per inventory key (month, view, city, emission
  standard, method: join it to the inventory on them) with the inventory's CO2
  (``co2_t``) and ``co2_t_p05``, ``co2_t_p50``, ``co2_t_p95``, and the same for
  NOx, PM2.5, CO and HC (t);
- ``city_intervals``: each city-month of the operating view (every standard and
  method together) the same way;
- ``national_intervals``: each national month (operating view) the same way;
- ``national_annual_intervals``: each year (operating view), its draws the sums of
  its months' draws.

Each draw multiplies a row's CO2 by the method's factor error (a gauge row: on
the share of its km the gauge missed only), by its unknown-load share's
effect and, for a truck of another fuel, by its units per diesel litre drawn
uniformly on the range of ``fuel_types.csv``, and its weight by its vehicle's bootstrap count. Pollutants take the
load share and the bootstrap (their factors' ranges are not sourced: not drawn).
The **unobserved kilometres** (gaps never attributed: :data:`~truckcarbon.core.schemas.UNOBSERVED`)
were driven but are in no inventory row: each draw adds them at the vehicle-month's
own emissions per km, the odometer's km where the gap has them, else the straight
line times a circuity drawn from ``UNOBSERVED_CIRCUITY``, in the city of the gap's
first or last fix (even odds). So the p50 can sit above the point estimate by
about the unobserved share. The draws are held for one month's rows at a time, in
chunks of ``CHUNK_ROWS`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import sparse

from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.emissions.copert import VehicleClass
from truckcarbon.emissions.factors import EmissionStandard, LoadState, fuel_rates
from truckcarbon.emissions.fuels import FUELS, fuels
from truckcarbon.emissions.montecarlo import (
    N_BANDS,
    FactorErrors,
    FactorSampler,
    UncertaintySettings,
    bootstrap_counts,
    factor_errors,
    group_matrix,
    quantiles,
    speed_band,
)
from truckcarbon.geo.reference import province_of

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
POLLUTANTS: Final = ("nox", "pm25", "co", "hc")
SPECIES: Final = ("co2", *POLLUTANTS)
COLUMNS: Final = (
    "vehicle_id", "month", "city_adcode", "registration_city_adcode", "emission_standard", "vehicle_class",
    "method", "weight", "distance_km", "distance_km_unknown_load", "distance_km_fuel_measured", "driving_h",
    "fuel_l_report", "fuel_l_copert", "fuel_l_measured", "fuel_gauge_used", "fuel_type", "co2_kg",
    *(f"{p}_kg" for p in POLLUTANTS),
)  # fmt: skip
GAP_COLUMNS: Final = ("vehicle_id", "from_city_adcode", "to_city_adcode", "gaps", "unobserved_km", "odometer_gaps",
                      "odometer_km")  # fmt: skip
TABLES: Final = ("inventory", "city", "national")
KEYS: Final = ("month", "view", "city_adcode", "emission_standard", "method")
MODEL_COLUMN: Final = {"report": "fuel_l_report", "copert": "fuel_l_copert", "measured": "fuel_l_report"}
CHUNK_ROWS: Final = 20_000  # rows whose draws are held at once
# The km driven through an unobserved gap without odometer readings: its straight line times a circuity from 1.0
# (a straight drive) to 1.5 (half again the chord); an assumption on routes the data does not show, not a
# measured range (a round trip inside one gap shows a chord near 0 and is not covered).
UNOBSERVED_CIRCUITY: Final = (1.0, 1.5)


@dataclass(frozen=True)
class Intervals:
    """The interval tables and what the factor draws rested on."""

    inventory: pa.Table
    city: pa.Table  # operating view, every standard and method: (month, city_adcode)
    national: pa.Table
    national_annual: pa.Table  # per year: the yearly sums' quantiles (not the months' quantiles added)
    gauge_trucks: int  # trucks whose gauges gave the factor errors (0: too few, the fallback)
    draws: int
    unobserved_km: float  # the straight lines of the gaps drawn in (unweighted)


@dataclass(frozen=True)
class _Rows:
    """Rows whose draws sum into the interval tables: a month's activity rows, or its gaps' two ends."""

    kg: dict[str, FloatArray]  # per row (unweighted): its kg, or for a gap end its kg per km
    weight: FloatArray
    vehicle: IntArray  # the vehicle's number in the fleet (its bootstrap counts)
    stratum: IntArray
    klass: IntArray
    model_share: FloatArray  # share of the row's fuel the factor error applies to (gauge rows: km it missed)
    unknown: FloatArray  # share of the row's km of unknown load
    std: IntArray
    groups: dict[str, IntArray]  # table -> group number of the row (-1: in no group of it); "registration" too
    fuel_range: FloatArray  # (rows, 2): the fuel's per-diesel-litre range over its value (diesel: 1, 1)


def _col(t: pa.Table, name: str) -> FloatArray:
    return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _codes(values: pa.Array | pa.ChunkedArray) -> IntArray:
    """Dense codes of the distinct values, in order of first appearance."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return np.asarray(pc.dictionary_encode(values).indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _read(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """``columns`` of one month file, with a clear error when a column is missing (an older run folder)."""
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: could not be read ({exc})") from None
    lacking = [c for c in columns if c not in names]
    if lacking:
        raise InputError(
            f"{path}: missing column(s) {', '.join(lacking)}: written by an older truckcarbon; "
            "run `truckcarbon run` again to write them"
        )
    return pq.read_table(path, columns=list(columns))


def _index(t: pa.Table, name: str, values: list[str]) -> IntArray:
    """Each row's ``name`` as its index in ``values`` (one not among them: 0, the first)."""
    found = pc.fill_null(pc.index_in(t[name], value_set=pa.array(values)), 0)
    return np.asarray(found.to_numpy(zero_copy_only=False), np.int64)


def _class_codes(t: pa.Table) -> IntArray:
    return _index(t, "vehicle_class", [c.value for c in VehicleClass])


def _std_codes(t: pa.Table) -> IntArray:
    return _index(t, "emission_standard", [s.value for s in EmissionStandard])


def gauge_errors(used: pa.Table, method: str) -> FactorErrors:
    """The gauge/model ratios of rows of vehicle-months whose gauge qualified (``used``: those rows; model: the
    chosen method's, or the report's for rows the measured path did not cover)."""
    band = speed_band(_col(used, "distance_km"), _col(used, "driving_h"))
    return factor_errors(
        _col(used, "fuel_l_measured"), _col(used, MODEL_COLUMN[method]), _col(used, "distance_km"), band,
        _class_codes(used), _codes(used["vehicle_id"]),
    )  # fmt: skip


def _unknown_load_ratio(std: IntArray, share: FloatArray, speed_kmh: int) -> FloatArray:
    """rate(unknown at ``share`` full) / rate(unknown at the report's 0.6), per row and draw."""
    rates = fuel_rates(speed_kmh)
    empty = np.array([rates.rate(s, LoadState.EMPTY) for s in EmissionStandard])[std][:, None]
    full = np.array([rates.rate(s, LoadState.FULL) for s in EmissionStandard])[std][:, None]
    unknown = np.array([rates.unknown_load_rate(s) for s in EmissionStandard])[std][:, None]
    ratio: FloatArray = ((1.0 - share) * empty + share * full) / unknown
    return ratio


@dataclass(frozen=True)
class _Fleet:
    """The run's vehicles (sorted ids) and their bootstrap counts (vehicles, draws), None without bootstrap."""

    ids: pa.Array
    counts: npt.NDArray[np.float32] | None

    def number(self, vehicle_ids: pa.Array | pa.ChunkedArray) -> IntArray:
        return np.asarray(pc.index_in(vehicle_ids, value_set=self.ids).to_numpy(zero_copy_only=False), np.int64)


def _fleet(firsts: pa.Table, settings: UncertaintySettings, rng: np.random.Generator) -> _Fleet:
    """Bootstrap counts of the vehicles within their strata (registration province and emission standard)."""
    per = firsts.group_by("vehicle_id").aggregate([("registration_city_adcode", "min"), ("emission_standard", "min")])
    per = per.sort_by("vehicle_id")
    if not settings.bootstrap or per.num_rows == 0:
        return _Fleet(per["vehicle_id"].combine_chunks(), None)
    prov = province_of(per["registration_city_adcode_min"].combine_chunks()).to_numpy(zero_copy_only=False)
    keys = pa.array([f"{p}|{s}" for p, s in zip(prov.tolist(), per["emission_standard_min"].to_pylist(), strict=True)])
    return _Fleet(per["vehicle_id"].combine_chunks(), bootstrap_counts(_codes(keys), settings.draws, rng))


def _keys(month: str, view: str, city: pa.Array, t: pa.Table) -> pa.Array:
    n = t.num_rows
    return pc.binary_join_element_wise(
        pa.array([month] * n), pa.array([view] * n), pc.cast(city, pa.string()), t["emission_standard"], t["method"],
        "\x1f",
    )  # fmt: skip


def _gap_ends(t: pa.Table, gaps: pa.Table) -> tuple[pa.Table, FloatArray, FloatArray]:
    """The two ends of each unobserved gap of a month (its first fix's city, then its last's) as rows with the
    vehicle-month's attributes and its kg per km of each species (``<species>_kg``), the km each end takes
    at a draw being ``fixed + chord * circuity`` (the odometer's km, the straight line of the gaps without
    them), halved by the draw's choice of end; gaps of vehicle-months with no km attributed are left out (no
    rate of their own)."""
    per = t.group_by("vehicle_id").aggregate(
        [("distance_km", "sum"), ("driving_h", "sum"), *((f"{s}_kg", "sum") for s in SPECIES),
         ("registration_city_adcode", "min"), ("emission_standard", "min"), ("vehicle_class", "min"),
         ("method", "min"), ("weight", "max"), ("fuel_type", "min")]
    )  # fmt: skip
    per = per.filter(pc.greater(per["distance_km_sum"], 0.0))
    g = gaps.join(per, "vehicle_id", join_type="inner")
    km = _col(g, "distance_km_sum")
    attrs = {
        "vehicle_id": g["vehicle_id"], "registration_city_adcode": g["registration_city_adcode_min"],
        "emission_standard": g["emission_standard_min"], "vehicle_class": g["vehicle_class_min"],
        "method": g["method_min"], "weight": g["weight_max"], "distance_km": g["distance_km_sum"],
        "driving_h": g["driving_h_sum"], "fuel_type": g["fuel_type_min"],
        **{f"{s}_kg": pa.array(_col(g, f"{s}_kg_sum") / km) for s in SPECIES},
    }  # fmt: skip
    ends = pa.concat_tables([pa.table({**attrs, "city_adcode": g[f"{end}_city_adcode"]}) for end in ("from", "to")])
    share = np.clip(_col(g, "odometer_gaps") / np.maximum(_col(g, "gaps"), 1.0), 0.0, 1.0)
    fixed = _col(g, "odometer_km")
    chord = _col(g, "unobserved_km") * (1.0 - share)
    return ends, np.concatenate([fixed, fixed]), np.concatenate([chord, chord])


class _Groups:
    """Group numbers of each interval table's keys, grown as a month's rows show them."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, int]] = {table: {} for table in TABLES}

    def number(self, table: str, keys: list[str]) -> IntArray:
        own = self.keys[table]
        return np.array([own.setdefault(k, len(own)) for k in keys], np.int64)

    def size(self, table: str) -> int:
        return len(self.keys[table])


def _rows(t: pa.Table, month: str, fleet: _Fleet, groups: _Groups, per_km: bool, fuel_table: str = "") -> _Rows:
    """The draw inputs of a month's activity rows, or (``per_km``) of its gap ends (:func:`_gap_ends`)."""
    n = t.num_rows
    km = _col(t, "distance_km")
    kg = {s: _col(t, f"{s}_kg") for s in SPECIES}
    band = speed_band(km, _col(t, "driving_h"))
    if per_km:  # gap ends: modelled at the vehicle-month's rate, load as its rows'
        model_share, unknown = np.ones(n), np.zeros(n)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            missed = np.where(km > 0, np.clip(1.0 - _col(t, "distance_km_fuel_measured") / km, 0.0, 1.0), 0.0)
            unknown = np.where(km > 0, _col(t, "distance_km_unknown_load") / km, 0.0)
        gauge = np.asarray(pc.equal(t["method"], "measured_fuel").to_numpy(zero_copy_only=False), dtype=bool)
        model_share = np.where(gauge, missed, 1.0)
    klass = _class_codes(t)
    city = t["city_adcode"]
    inside = np.asarray(city.to_numpy(zero_copy_only=False), dtype=np.int64) != 0
    op = groups.number("inventory", _keys(month, "operating", city, t).to_pylist())
    reg = groups.number("inventory", _keys(month, "registration", t["registration_city_adcode"], t).to_pylist())
    cities = groups.number("city", [f"{month}\x1f{c}" for c in city.to_pylist()])
    national = groups.number("national", [month])[0]
    return _Rows(
        kg, _col(t, "weight"), fleet.number(t["vehicle_id"]), klass * N_BANDS + band, klass, model_share, unknown,
        _std_codes(t),
        {"inventory": np.where(inside, op, -1), "registration": reg, "city": np.where(inside, cities, -1),
         "national": np.where(inside, national, -1)},
        _fuel_ranges(t, fuel_table),
    )  # fmt: skip


def _fuel_ranges(t: pa.Table, fuel_table: str = "") -> FloatArray:
    """(rows, 2): each row's fuel's low and high per diesel litre over its value (the run's fuel table)."""
    table = fuels(fuel_table)
    ranges = np.array([(table[f].low / table[f].per_diesel_l, table[f].high / table[f].per_diesel_l) for f in FUELS])
    found = pc.index_in(t["fuel_type"], value_set=pa.array([f.value for f in FUELS]))
    at = np.asarray(pc.fill_null(found, 0).to_numpy(zero_copy_only=False), np.int64)  # unknown: diesel's (1, 1)
    out: FloatArray = ranges[at].reshape(-1, 2)
    return out


class _Sums:
    """Each interval table's (groups, draws) sums of each species, accumulated chunk by chunk."""

    def __init__(self, groups: _Groups, draws: int) -> None:
        self.sums = {table: {s: np.zeros((groups.size(table), draws)) for s in SPECIES} for table in TABLES}
        self.point = {table: np.zeros(groups.size(table)) for table in self.sums}

    def add(self, rows: _Rows, sl: slice, draws: tuple[FloatArray, FloatArray], point: FloatArray | None) -> None:
        """Add the rows ``sl`` with their (rows, draws) multipliers of CO2 and of the pollutants (:func:`_draws`):
        each table's sums are sparse (groups, rows) matrices of the rows' kg times them, the four pollutants
        stacked in one (the draws are read once per table and species kind)."""
        co2, pollutant = draws
        for table, column in (("inventory", "inventory"), ("inventory", "registration"), ("city", "city"),
                              ("national", "national")):  # fmt: skip
            g = rows.groups[column][sl]
            if not (g >= 0).any():
                continue
            n = self.point[table].size
            self.sums[table]["co2"] += group_matrix(g, n, rows.kg["co2"][sl]) @ co2
            stacked = sparse.vstack([group_matrix(g, n, rows.kg[p][sl]) for p in POLLUTANTS], format="csr")
            sums = stacked @ pollutant
            for k, p in enumerate(POLLUTANTS):
                self.sums[table][p] += sums[k * n : (k + 1) * n]
            if point is not None:  # the chunk's point kg
                keep = g >= 0
                self.point[table] += np.bincount(g[keep], point[keep], n)


def _draws(
    rows: _Rows,
    sl: slice,
    factors: FactorSampler,
    fleet: _Fleet,
    settings: UncertaintySettings,
    rng: np.random.Generator,
    speed_kmh: int,
    km: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """(rows, draws) multipliers of the rows ``sl``'s kg of CO2 and of each pollutant (``km``: the gap ends' km
    per draw): the factor error and the unknown load's effect, times the weight and the bootstrap count."""
    draws = settings.draws
    factor = factors.sample(rows.stratum[sl], rows.klass[sl])
    share = rows.model_share[sl][:, None]
    factor -= 1.0
    factor *= share
    factor += 1.0
    ranged = np.flatnonzero(rows.fuel_range[sl, 1] > rows.fuel_range[sl, 0])
    if ranged.size:  # another fuel's units per diesel litre: uniform on its range, per vehicle-month and draw
        present, at = np.unique(rows.vehicle[sl][ranged], return_inverse=True)
        u = rng.random((present.size, draws))[at]
        low, high = rows.fuel_range[sl][ranged, 0:1], rows.fuel_range[sl][ranged, 1:2]
        factor[ranged] *= low + u * (high - low)
    unknown = rows.unknown[sl]
    weight = rows.weight[sl][:, None] * (fleet.counts[rows.vehicle[sl]] if fleet.counts is not None else 1.0)
    if km is not None:
        weight = weight * km
    some = np.flatnonzero(unknown > 0)
    if some.size == 0:
        factor *= weight
        return factor, np.broadcast_to(weight, factor.shape)
    vehicles = rows.vehicle[sl][some]
    present, at = np.unique(vehicles, return_inverse=True)
    lo, hi = settings.unknown_full_share
    shares = rng.uniform(lo, hi, (present.size, draws))[at]  # one share per vehicle-month and draw
    u = unknown[some][:, None]
    load = np.ones(factor.shape)
    load[some] = 1.0 - u + u * _unknown_load_ratio(rows.std[sl][some], shares, speed_kmh)
    factor[some] *= 1.0 + (load[some] - 1.0) * share[some]  # a gauge's litres took no load split
    factor *= weight
    load *= weight
    return factor, load


def _table(groups: _Groups, sums: _Sums, table: str, names: tuple[str, ...]) -> pa.Table:
    keys = list(groups.keys[table])
    if not keys:
        return pa.table({})
    parts = [k.split("\x1f") for k in keys]
    columns: dict[str, pa.Array] = {}
    for i, name in enumerate(names):
        values = [p[i] for p in parts]
        columns[name] = pa.array([int(v) for v in values], pa.int32()) if name == "city_adcode" else pa.array(values)
    columns["co2_t"] = pa.array(sums.point[table] / 1000.0)
    for s in SPECIES:
        q = quantiles(sums.sums[table][s]) / 1000.0
        for k, tag in enumerate(("p05", "p50", "p95")):
            columns[f"{s}_t_{tag}"] = pa.array(q[:, k])
    return pa.table(columns)


def inventory_intervals(
    folder: RunFolder,
    settings: UncertaintySettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> Intervals:
    """The interval tables of a run (module docstring), written under ``RUN/analysis/``."""
    settings = settings or UncertaintySettings()
    settings.validate()
    say = progress or (lambda _: None)
    run = folder.latest_run()
    emissions = (run.config if run is not None else {}).get("emissions", {})
    method = str(emissions.get("method", "report"))
    method = method if method in MODEL_COLUMN else "report"
    speed = int(emissions.get("reference_speed_kmh", 60))
    fuel_table = str(emissions.get("fuel_factors", ""))
    files = folder.month_files("activity")
    if not files:
        raise InputError(
            f"{folder.path}: no activity (expected {folder.activity}/YYYY-MM.parquet); run `truckcarbon run` first"
        )
    say("intervals: the fuel gauges and the fleet")
    gauge_cols = ("vehicle_id", "vehicle_class", "distance_km", "driving_h", "fuel_l_measured", MODEL_COLUMN[method])
    fleet_cols = ("vehicle_id", "registration_city_adcode", "emission_standard")
    gauge_rows, firsts = [], []
    for f in files:  # the first pass reads only what the gauges and the fleet need (the second reads it all)
        t = _read(f, tuple(dict.fromkeys((*gauge_cols, *fleet_cols, "fuel_gauge_used"))))
        gauge_rows.append(t.filter(t["fuel_gauge_used"]).select(list(dict.fromkeys(gauge_cols))))
        firsts.append(t.select(list(fleet_cols)))
    errors = gauge_errors(pa.concat_tables(gauge_rows), method)
    rng = np.random.default_rng(settings.seed)
    fleet = _fleet(pa.concat_tables(firsts), settings, rng)
    factors = FactorSampler(errors, settings.draws, settings.fallback_sigma, rng)
    del gauge_rows, firsts
    tables: dict[str, list[pa.Table]] = {table: [] for table in TABLES}
    names = {"inventory": KEYS, "city": ("month", "city_adcode"), "national": ("month",)}
    unobserved_km = 0.0
    annual: dict[str, dict[str, FloatArray]] = {}  # year -> species (and "point") -> its months' draws summed
    for i, f in enumerate(files):
        month = f.stem
        say(f"intervals {month} ({i + 1}/{len(files)})")
        t = _read(f, COLUMNS)
        groups = _Groups()
        rows = _rows(t, month, fleet, groups, False, fuel_table)
        gap_file = folder.month_file("unobserved", month)
        ends = None
        if gap_file.is_file():
            gaps = _read(gap_file, GAP_COLUMNS)
            unobserved_km += float(pc.sum(gaps["unobserved_km"]).as_py() or 0.0)
            table, fixed, chord = _gap_ends(t, gaps)
            if table.num_rows:
                ends = (_rows(table, month, fleet, groups, True, fuel_table), fixed, chord)
        sums = _Sums(groups, settings.draws)
        point = _col(t, "co2_kg") * rows.weight
        for lo in range(0, t.num_rows, CHUNK_ROWS):
            sl = slice(lo, min(lo + CHUNK_ROWS, t.num_rows))
            sums.add(rows, sl, _draws(rows, sl, factors, fleet, settings, rng, speed), point[sl])
        if ends is not None:
            end_rows, fixed, chord = ends
            half = fixed.size // 2
            for lo in range(0, half, CHUNK_ROWS):  # a gap's two ends together: its km go to one of them
                hi = min(lo + CHUNK_ROWS, half)
                c_lo, c_hi = UNOBSERVED_CIRCUITY
                km = fixed[lo:hi, None] + chord[lo:hi, None] * rng.uniform(c_lo, c_hi, (hi - lo, settings.draws))
                first = rng.random((hi - lo, settings.draws)) < 0.5
                both = np.r_[lo:hi, half + lo : half + hi]
                km_ends = np.concatenate([km * first, km * ~first])
                sub = _subset(end_rows, both)
                drawn = _draws(sub, slice(None), factors, fleet, settings, rng, speed, km_ends)
                sums.add(sub, slice(None), drawn, None)
        for name in tables:
            tables[name].append(_table(groups, sums, name, names[name]))
        if groups.size("national"):  # the year's draws: its months' national draws summed, draw by draw
            year = annual.setdefault(
                month[:4], {"point": np.zeros(1), **{sp: np.zeros(settings.draws) for sp in SPECIES}}
            )
            for sp in SPECIES:
                year[sp] += sums.sums["national"][sp][0]
            year["point"] += sums.point["national"][:1]
    out = {name: pa.concat_tables([p for p in ps if p.num_rows]) if any(p.num_rows for p in ps) else pa.table({})
           for name, ps in tables.items()}  # fmt: skip
    out["national_annual"] = _annual(annual)
    for name, table in out.items():
        folder.write_analysis(f"{name}_intervals", table)
    n_gauge = int(errors.truck_class.size) if errors.measured else 0
    return Intervals(
        out["inventory"], out["city"], out["national"], out["national_annual"], n_gauge, settings.draws, unobserved_km
    )


def _annual(years: dict[str, dict[str, FloatArray]]) -> pa.Table:
    """``national_annual_intervals``: per year (with its count of months), the point CO2 and every species'
    quantiles of the yearly sums."""
    if not years:
        return pa.table({})
    columns: dict[str, pa.Array] = {
        "year": pa.array([int(y) for y in years], pa.int32()),
        "co2_t": pa.array([float(v["point"][0]) / 1000.0 for v in years.values()]),
    }
    for s in SPECIES:
        q = quantiles(np.stack([v[s] for v in years.values()])) / 1000.0
        for k, tag in enumerate(("p05", "p50", "p95")):
            columns[f"{s}_t_{tag}"] = pa.array(q[:, k])
    return pa.table(columns)


def _subset(rows: _Rows, at: IntArray) -> _Rows:
    return _Rows(
        {s: v[at] for s, v in rows.kg.items()}, rows.weight[at], rows.vehicle[at], rows.stratum[at], rows.klass[at],
        rows.model_share[at], rows.unknown[at], rows.std[at], {k: v[at] for k, v in rows.groups.items()},
        rows.fuel_range[at],
    )  # fmt: skip


__all__ = ["COLUMNS", "UNOBSERVED_CIRCUITY", "Intervals", "gauge_errors", "inventory_intervals"]
