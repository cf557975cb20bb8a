"""Run the simulator: write the pings dataset, the vehicles, the ground truth and a manifest.

Output folder layout::

    OUT/pings/month=YYYY-MM/part-NNNNN.parquet   vehicle_id, ts (UTC), lon, lat (WGS-84),
                                                 speed_kmh, load_state, odometer_km, fuel_level_l
    OUT/vehicles.parquet                         one row per sampled truck
    OUT/truth.parquet                            vehicle_id, month, city_adcode, distance_km,
                                                 distance_km_empty/_half/_full, fuel_l, co2_kg,
                                                 fuel_l_unknown_load, co2_kg_unknown_load
    OUT/manifest.json                            configuration, seed, row and defect counts

Months are local (Asia/Shanghai) calendar months. The run is deterministic for a
given configuration: each truck-month draws from its own random stream
``(seed, vehicle_id, month)``. Everything is written into a temporary folder
beside ``OUT`` and renamed into place at the end, so an interrupted run leaves no
folder that looks complete. Memory stays bounded: pings are written month by
month in parts of at most ``rows_per_file`` rows.
"""

from __future__ import annotations

import atexit
import heapq
import json
import multiprocessing
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon import __version__
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_bounds_utc, month_label, month_labels, parse_month
from truckcarbon.core.runtime import fewer_collections
from truckcarbon.core.schemas import LOAD_STATES, PINGS
from truckcarbon.emissions.factors import DEFAULT_EF, EmissionStandard, ef_kg_per_l, fuel_rates
from truckcarbon.geo.distance import haversine_many
from truckcarbon.geo.locator import CityLocator
from truckcarbon.sim.activity import ANNUAL_KM, age_factor, season, shock, utilisation
from truckcarbon.sim.defects import DEFECT_NAMES, DefectRates, apply_defects, standard_normal
from truckcarbon.sim.drive import Destinations, Track, TruckState, drive_month, gravity_attraction
from truckcarbon.sim.fleet import Fleet, Role, active, city_fleet_2022, make_fleet
from truckcarbon.sim.road import drive_month_road, path_truth, receiver_quality, road_noise
from truckcarbon.sim.world import World, load_world

LOAD_NAMES = pa.array(LOAD_STATES)  # load codes 0, 1, 2 index this
# The channels a configuration may leave out (written as nulls then).
OPTIONAL_CHANNELS = ("load_state", "odometer_km", "fuel_level_l")
# The pings contract (:data:`truckcarbon.core.schemas.PINGS`) as the simulator writes it: integer ids (text
# with ``id_format``), the driving channels never null.
PING_SCHEMA = pa.schema(
    [PINGS.column("vehicle_id").field().with_type(pa.int64())]
    + [PINGS.column(name).field().with_nullable(False) for name in ("ts", "lon", "lat", "speed_kmh")]
    + [PINGS.column(name).field() for name in OPTIONAL_CHANNELS]
)

GROUPS_PER_WORKER = 4
# How ping files are written (:func:`write_pings`), chosen for the work of writing and of reading back:
# - columns that are never null are REQUIRED: no definition levels to write and decode (a quarter of the
#   writer's work);
# - vehicle ids (long runs) and times (steps of about 30 s) are delta-encoded (DELTA_BINARY_PACKED),
#   which packs them as tightly as a compressor would and decodes faster;
# - coordinates are noise to any codec: stored plain;
# - speed, odometer and fuel level, whose values repeat, are LZ4-compressed (LZ4_RAW), the fastest codec
#   to decode.
# Against plain columns with snappy (the previous layout) files are 17% smaller and Arrow decodes them
# in less than half the time.
PING_ENCODING = {"vehicle_id": "DELTA_BINARY_PACKED", "ts": "DELTA_BINARY_PACKED"}
PING_COMPRESSION = {
    name: "lz4" if name in ("speed_kmh", "odometer_km", "fuel_level_l") else "none" for name in PING_SCHEMA.names
}
# Values the Parquet writer encodes at a time (its default, 1024, costs about 10% more work per row
# on contiguous columns; pages still close at the default 1 MB).
PING_WRITE_BATCH = 2**16


# Writer options of ping files (pq.write_table, pq.ParquetWriter); see PING_ENCODING.
PING_WRITER_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["load_state"],
    "column_encoding": PING_ENCODING,
    "write_statistics": ["vehicle_id", "ts"],  # what readers prune and check order by
    "compression": PING_COMPRESSION,
    "write_batch_size": PING_WRITE_BATCH,
}


def text_ids(table: pa.Table, id_format: str, dictionary: bool = False) -> pa.Table:
    """``table`` with its integer ``vehicle_id`` written as text by ``id_format`` (dictionary-encoded when
    ``dictionary``: a vehicle's pings repeat its id)."""
    ids = table["vehicle_id"].combine_chunks()
    if len(ids) == 0:
        return table.set_column(table.schema.get_field_index("vehicle_id"), "vehicle_id", pa.array([], pa.string()))
    encoded = pc.dictionary_encode(ids)
    words = pa.array([id_format.format(v) for v in encoded.dictionary.to_pylist()], pa.string())
    column = pa.DictionaryArray.from_arrays(encoded.indices, words)
    if not dictionary:
        column = column.dictionary_decode()
    return table.set_column(
        table.schema.get_field_index("vehicle_id"), pa.field("vehicle_id", column.type, False), column
    )


def write_pings(table: pa.Table, path: Path) -> None:
    """Write a table of pings (:data:`PING_SCHEMA`, optional channels may be all null) as the simulator's
    Parquet layout (see :data:`PING_ENCODING`); a channel with no null is written REQUIRED."""
    fields = [
        f.with_nullable(False) if f.name in OPTIONAL_CHANNELS and table.column(f.name).null_count == 0 else f
        for f in table.schema
    ]
    if fields != list(table.schema):
        table = table.cast(pa.schema(fields))
    options = PING_WRITER_OPTIONS
    if not pa.types.is_integer(table.schema.field("vehicle_id").type):  # text ids: dictionary pages, not deltas
        encoding = {k: v for k, v in PING_ENCODING.items() if k != "vehicle_id"}
        options = {**options, "use_dictionary": ["load_state", "vehicle_id"], "column_encoding": encoding}
    pq.write_table(table, path, **options)


GEOMETRIES = ("straight", "road")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated world."""

    trucks: int = 200
    start_month: str = "2018-01"
    end_month: str = "2023-12"
    interval_s: int = 30
    parked_interval_s: int = 300
    seed: int = 20240601
    defects: DefectRates = field(default_factory=DefectRates)
    load_channel: bool = True
    odometer_channel: bool = True
    fuel_channel: bool = True
    rows_per_file: int = 2_000_000
    # Vehicle ids written as text (a str.format pattern of the number, e.g. "0139{:08d}": 12-digit terminal
    # phone numbers with a leading zero, as platforms key them); empty: integers.
    id_format: str = ""
    # "straight": trucks move straight between their true fixes, i.i.d. Gaussian noise (the calibrated
    # world); "road": curved roads driven second by second, lights and idling, receivers of varying
    # quality with correlated, heavy-tailed noise and multipath (truckcarbon.sim.road).
    geometry: str = "straight"

    def months(self) -> list[int]:
        """Month numbers (year * 12 + month - 1) from start to end, inclusive."""
        a, b = parse_month(self.start_month), parse_month(self.end_month)
        if b < a:
            raise InputError(
                f"month range {self.start_month}:{self.end_month} is empty; give START:END with START <= END"
            )
        return list(range(a, b + 1))

    def validate(self) -> None:
        if self.trucks <= 0:
            raise InputError(f"--trucks must be a positive number of trucks, got {self.trucks}")
        if self.interval_s <= 0 or self.parked_interval_s < self.interval_s:
            raise InputError("--interval-s must be positive and the parked interval at least as long")
        self.months()
        if self.geometry not in GEOMETRIES:
            raise InputError(f"geometry {self.geometry!r} is not one of {', '.join(GEOMETRIES)}")
        if self.id_format:
            try:
                texts = {self.id_format.format(1), self.id_format.format(2)}
            except (IndexError, KeyError, ValueError) as exc:
                raise InputError(f"id_format {self.id_format!r} is not a pattern of one number ({exc})") from None
            if len(texts) < 2:
                raise InputError(f"id_format {self.id_format!r} gives every vehicle the same id; use e.g. 0139{{:08d}}")
        try:
            self.defects.validate()
        except ValueError as exc:
            raise InputError(str(exc)) from exc


PRESETS: dict[str, SimConfig] = {
    # Small enough for `make demo` on two cores, large enough for every figure of the report.
    "demo": SimConfig(trucks=1000, interval_s=120, parked_interval_s=1800),
    # Hundreds of millions of pings for benchmarks.
    "bench": SimConfig(trucks=3000, start_month="2023-01", end_month="2023-12", interval_s=30),
}


@dataclass
class SimSummary:
    """What a run wrote."""

    out: Path
    trucks: int
    months: int
    pings: int
    truth_rows: int
    defects: dict[str, int]
    seconds: float


def _prepare_out(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} exists and is not empty; choose another folder or pass --overwrite")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
    except OSError as exc:
        raise InputError(f"cannot write to {parent}: {exc.strerror}; choose a writable folder") from None
    return tmp


def _truth_rows(
    locator: CityLocator, prev: tuple[float, float] | None, tr: Track
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None:
    """Units, km and km by load state (empty, half, full) of a truck-month's true path.

    ``prev`` is the truck's last true fix of the month before (parked: no distance,
    but it keeps the path continuous); None when the truck-month has no segment.
    """
    lon, lat, load, step = tr.lon, tr.lat, tr.load, tr.step_km[1:]
    if prev is not None and tr.t_s.size:
        lon = np.concatenate([[prev[0]], lon])
        lat = np.concatenate([[prev[1]], lat])
        load = np.concatenate([load[:1], load])
        step = np.concatenate([haversine_many(lon[:1], lat[:1], lon[1:2], lat[1:2]), tr.step_km[1:]])
    if lon.size < 2:
        return None
    uniq, by_load_km = locator.path_km(lon, lat, load[1:], 3, segment_km=step)
    total = by_load_km.sum(axis=1)
    by_load = [by_load_km[:, s] for s in range(3)]
    return uniq, total, by_load


@dataclass
class _World:
    """What every worker derives from the configuration (deterministic, so each process builds its own)."""

    world: World
    fleet: Fleet
    destinations: Destinations
    utilisation: np.ndarray  # of each truck (sim.activity.utilisation)
    locator: CityLocator
    rates: np.ndarray  # L/100 km [standard, load]


# The sampled fleet and its utilisations by configuration. The main process samples them and hands
# them to its helpers (:func:`_start_helper`), which load the world and the compiled kernels meanwhile.
_FLEETS: dict[SimConfig, tuple[Fleet, np.ndarray]] = {}


def _fleet(config: SimConfig) -> tuple[Fleet, np.ndarray]:
    """The fleet of ``config`` and each truck's utilisation (sim.activity.utilisation)."""
    if config not in _FLEETS:
        world = load_world()
        fleet = make_fleet(world, config.trucks, np.random.default_rng([config.seed, 0]))
        _FLEETS[config] = fleet, utilisation(fleet.utilisation_draw, world.province[fleet.city])
    return _FLEETS[config]


class _FleetSource(Protocol):
    def get(self) -> tuple[Fleet, np.ndarray]: ...


# How helpers start: forked on Linux under Python 3.11, ready at once with this process's modules
# imported (a spawned helper imports them and loads its compiled kernels first: about 2 s, during which
# this process works alone); spawned elsewhere. Python 3.12 warns about forking a process that runs
# threads (numpy's BLAS, Arrow's and DuckDB's pools run some), so it spawns too. A forked helper only
# simulates with numpy and numba and writes Parquet files (OpenBLAS and Arrow restart their pools in a
# forked process).
HELPER_START = "fork" if sys.platform == "linux" and sys.version_info < (3, 12) else "spawn"


def _start_helper(config: SimConfig, fleets: _FleetSource) -> None:
    """Start-up of a helper process: load the world and the compiled kernels, then take the fleet the
    main process sampled meanwhile from ``fleets``.

    A helper ends without the interpreter's teardown (:func:`_exit_now`): by then it has sent every
    result and holds nothing to flush, and the teardown of its modules took about half a second,
    which the main process would wait for.
    """
    with fewer_collections():
        _warm_up()
    _FLEETS[config] = fleets.get()
    atexit.register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _ready() -> None:
    """A helper's first task: it returns once the helper has started (see :func:`_start_helper`)."""


@cache
def _static_context() -> tuple[World, Destinations, CityLocator, np.ndarray]:
    """What every process derives from the reference data alone: the world, the destinations, the
    locator and the fuel rates (L/100 km by standard and load)."""
    world = load_world()
    fleet_by_unit = city_fleet_2022(world)
    destinations = Destinations.build(world, gravity_attraction(world, fleet_by_unit), fleet_by_unit)
    return world, destinations, CityLocator("wgs84"), fuel_rates().matrix()


@cache
def _context(config: SimConfig) -> _World:
    world, destinations, locator, rates = _static_context()
    fleet, use = _fleet(config)
    return _World(world, fleet, destinations, use, locator, rates)


@dataclass
class _Group:
    """The trucks one worker simulates, with their state between months."""

    index: int
    trucks: np.ndarray
    states: list[TruckState]
    last_fix: list[tuple[float, float] | None]
    odometer: np.ndarray
    tank_l: np.ndarray


@dataclass
class _MonthResult:
    group: _Group
    pings: int
    defects: dict[str, int]
    truth: dict[str, np.ndarray]


def _simulate_group_month(config: SimConfig, group: _Group, m: int, part_dir: Path) -> _MonthResult:
    """Simulate one month of one group of trucks; write its pings as part files in ``part_dir``."""
    ctx = _context(config)
    world, fleet = ctx.world, ctx.fleet
    y, mo = divmod(m, 12)
    m_start, m_end = month_bounds_utc(m)
    roles = list(Role)
    defects = dict.fromkeys(DEFECT_NAMES, 0)
    truth: dict[str, list[np.ndarray]] = {k: [] for k in ("vid", "city", "km", "e", "h", "f")}
    buf = _PartBuffer.reused(config.rows_per_file)
    part = pings = 0

    def flush() -> None:
        nonlocal part
        if buf.rows:
            buf.write(config, part_dir / f"part-{group.index:03d}-{part:05d}.parquet")
            part += 1

    in_service = active(fleet, m)
    for pos, k in enumerate(group.trucks.tolist()):
        if not in_service[k]:
            continue
        vid = int(fleet.vehicle_id[k])
        rng = np.random.default_rng([config.seed, vid, m])
        role = roles[int(fleet.role[k])]
        province = int(world.province[fleet.city[k]])
        age = (m - int(fleet.registered_month[k])) / 12.0
        km = (
            ANNUAL_KM[role] / 12 * ctx.utilisation[k] * age_factor(age) * season(y, mo + 1) * shock(y, mo + 1, province)
        )
        state = group.states[pos]
        start = (state.lon, state.lat, int(state.route_load[0]) if state.route_load.size else 0)
        road = config.geometry == "road"
        if road:
            tr, path, setting = drive_month_road(
                world, state, role, ctx.destinations, m_start, m_end, km, config.interval_s,
                config.parked_interval_s, rng,
            )  # fmt: skip
            rows = path_truth(ctx.locator, *start, path)
        else:
            tr = drive_month(
                world, state, role, ctx.destinations, m_start, m_end, km, config.interval_s,
                config.parked_interval_s, rng,
            )  # fmt: skip
            rows = _truth_rows(ctx.locator, group.last_fix[pos], tr)
        if rows is not None:
            uniq, total, by_load = rows
            truth["vid"].append(np.full(uniq.size, vid))
            truth["city"].append(uniq)
            truth["km"].append(total)
            for key, arr in zip(("e", "h", "f"), by_load, strict=True):
                truth[key].append(arr)
        if tr.t_s.size:
            group.last_fix[pos] = (float(tr.lon[-1]), float(tr.lat[-1]))
        speed, odo, fuel = terminal_channels(tr, ctx.rates[int(fleet.standard[k])], group, pos, rng)
        rates = config.defects
        lon, lat, multipath = tr.lon, tr.lat, 0
        if road:
            sigma = rates.gps_noise_m * receiver_quality(config.seed, vid)
            lon, lat, multipath = road_noise(tr.t_s, tr.lon, tr.lat, setting, sigma, rng)
            rates = replace(rates, gps_noise_m=0.0)
        emitted, lon, lat, counts = apply_defects(tr.t_s, lon, lat, rates, rng)
        counts["multipath"] = multipath
        for name, c in counts.items():
            defects[name] += int(c)
        buf.add(vid, emitted, (tr.t_s, lon, lat, speed, tr.load, odo, fuel))
        pings += emitted.size
        if buf.rows >= config.rows_per_file:
            flush()
    flush()
    cat = {k: np.concatenate(v) if v else np.empty(0) for k, v in truth.items()}
    return _MonthResult(group, pings, defects, cat)


# The numpy type of each ping column (PING_SCHEMA; ts in epoch milliseconds, load_state the load code).
PING_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float32, np.int8, np.float64, np.float32)


@nb.njit(cache=True)
def _gather(rows, at, vid, t, lon, lat, speed, load, odo, fuel, *out):  # type: ignore[no-untyped-def]
    """Rows ``rows`` of a truck's fixes into the part columns ``out`` (PING_DTYPES) from position ``at``."""
    for i in range(rows.shape[0]):
        r = rows[i]
        j = at + i
        out[0][j] = vid
        out[1][j] = t[r] * 1000  # s -> ms
        out[2][j] = lon[r]
        out[3][j] = lat[r]
        out[4][j] = speed[r]
        out[5][j] = load[r]
        out[6][j] = odo[r]
        out[7][j] = fuel[r]


class _PartBuffer:
    """The pings of one part file, gathered truck by truck into contiguous columns.

    Parquet writes contiguous columns faster than a table of one small batch per
    truck, and writing the emitted rows straight into the columns spares a copy.
    """

    kept: ClassVar[list[_PartBuffer]] = []  # this process's buffer, from task to task: new memory costs page faults

    def __init__(self, rows: int) -> None:
        self.rows = 0
        self.columns = [np.empty(rows + 2**17, dtype) for dtype in PING_DTYPES]

    @classmethod
    def reused(cls, rows: int) -> _PartBuffer:
        """An empty buffer for parts of ``rows`` rows: the one this process used last when it is large enough."""
        if not cls.kept or cls.kept[0].columns[0].size < rows + 2**17:
            cls.kept[:] = [cls(rows)]
        cls.kept[0].rows = 0
        return cls.kept[0]

    def add(self, vid: int, emitted: np.ndarray, fixes: tuple[np.ndarray, ...]) -> None:
        """Append the ``emitted`` rows of a truck's ``fixes`` (time in s, lon, lat, speed, load, odometer, fuel)."""
        a, b = self.rows, self.rows + emitted.size
        if b > self.columns[0].size:
            self.columns = [np.concatenate([c[:a], np.empty(max(b, 2 * a) - a, c.dtype)]) for c in self.columns]
        _gather(emitted, a, vid, *fixes, *self.columns)
        self.rows = b

    def write(self, config: SimConfig, path: Path) -> None:
        """Write the pings as a Parquet file (the channels the configuration leaves out as nulls); empty the buffer."""
        n = self.rows
        arrays = []
        for spec, column in zip(PING_SCHEMA, self.columns, strict=True):
            values = [None, pa.py_buffer(column[:n])]
            if pa.types.is_dictionary(spec.type):
                arrays.append(pa.DictionaryArray.from_buffers(spec.type, n, values, LOAD_NAMES))
            else:
                arrays.append(pa.Array.from_buffers(spec.type, n, values))
        for name, kept in (
            ("load_state", config.load_channel),
            ("odometer_km", config.odometer_channel),
            ("fuel_level_l", config.fuel_channel),
        ):
            if not kept:
                i = PING_SCHEMA.get_field_index(name)
                arrays[i] = pa.nulls(n, PING_SCHEMA.field(i).type)
        table = pa.Table.from_arrays(arrays, schema=PING_SCHEMA)
        if config.id_format:
            table = text_ids(table, config.id_format, dictionary=True)
        write_pings(table, path)
        self.rows = 0


TANK_L = 600.0  # a common tank size of Chinese tractor units (two 300 L tanks)
REFUEL_BELOW = 0.15


def terminal_channels(
    tr: Track, rates: np.ndarray, group: _Group, pos: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the terminal reports besides the position: speed, odometer and fuel level of each fix.

    - Speed (km/h, float32): the true speed times 1 + 3% Gaussian noise.
    - Odometer (JT/T 808 item 0x01, 0.1 km): the truck's true distance so far,
      continued from month to month (``group.odometer[pos]``).
    - Fuel level (item 0x02, 0.1 L): a tank that drains by the distance between
      fixes times the fuel rate of the truck's standard and load; below 15% of
      the tank the truck refuels to 90-100% at that fix (the level jumps up).
      ``group.tank_l[pos]`` carries the level between months.
    """
    n = tr.t_s.size
    z = standard_normal(rng, n)
    refill = rng.uniform(0.9, 1.0, 64) * TANK_L
    l_per_km = np.asarray(rates, dtype=np.float64)[tr.load] / 100.0
    odo0, tank0 = float(group.odometer[pos]), float(group.tank_l[pos])
    out = _channels_kernel(tr.speed_kmh, z, tr.odometer_km, odo0, l_per_km, tank0, refill)
    while out[4] > refill.size:  # more refuels than draws: draw more and redo (a very long month)
        refill = np.concatenate([refill, rng.uniform(0.9, 1.0, refill.size) * TANK_L])
        out = _channels_kernel(tr.speed_kmh, z, tr.odometer_km, odo0, l_per_km, tank0, refill)
    speed, odo, level, group.tank_l[pos], _ = out
    if n:
        group.odometer[pos] += tr.odometer_km[-1]
    return speed, odo, level


@nb.njit(cache=True)
def _channels_kernel(speed_kmh, z, odometer_km, odo0, l_per_km, start_l, refill):  # type: ignore[no-untyped-def]
    """Speed, odometer and fuel-level channels (see :func:`terminal_channels`) in one pass.

    Returns them with the tank level after the last fix and the refuels used
    (``refill.size + 1`` when the refuel levels ran out).
    """
    n = odometer_km.shape[0]
    speed = np.empty(n, np.float32)
    odo = np.empty(n)
    level = np.empty(n, np.float32)
    current = start_l
    used = 0
    for i in range(n):
        speed[i] = speed_kmh[i] * (1.0 + 0.03 * z[i])
        odo[i] = np.round((odo0 + odometer_km[i]) * 10.0) / 10.0
        if i > 0:
            current -= (odometer_km[i] - odometer_km[i - 1]) * l_per_km[i]
        if current < REFUEL_BELOW * TANK_L:
            if used == refill.shape[0]:
                return speed, odo, level, start_l, used + 1
            current = refill[used]
            used += 1
        level[i] = np.round(current * 10.0) / 10.0
    return speed, odo, level, current, used


def _truth_emissions(config: SimConfig, fleet: Fleet, cat: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    """Fuel and CO2 of the truth rows by the report's method.

    ``fuel_l``/``co2_kg`` use the load state when the pings carry it (the
    kilometres by load state times each state's rate), else the report's
    unknown-load rate; the ``*_unknown_load`` columns always use the latter.
    """
    rates = fuel_rates()
    matrix = rates.matrix()  # [standard, load: empty, half, full], L/100 km
    std = fleet.standard[cat["vid"].astype(np.int64) - 1]
    known = (cat["e"] * matrix[std, 0] + cat["h"] * matrix[std, 1] + cat["f"] * matrix[std, 2]) / 100.0
    unknown = cat["km"] * np.array([rates.unknown_load_rate(s) for s in EmissionStandard])[std] / 100.0
    fuel = known if config.load_channel else unknown
    ef = ef_kg_per_l()
    return {
        "fuel_l": pa.array(fuel),
        "co2_kg": pa.array(fuel * ef),
        "fuel_l_unknown_load": pa.array(unknown),
        "co2_kg_unknown_load": pa.array(unknown * ef),
    }


def _warm_up() -> None:
    """Build a process's static context and load the compiled kernels before the first month arrives."""
    locator = _static_context()[2]
    locator.path_km(np.array([116.4, 116.5]), np.array([39.9, 39.9]), np.zeros(1, np.int64), 1)


def _collect(
    results: list[_MonthResult],
    m: int,
    defects: dict[str, int],
    truth: dict[str, list[np.ndarray]],
    on_month: Callable[[str, int], None] | None,
) -> int:
    """Add one month's group results to the run's defect counts and truth; returns the month's pings."""
    month_pings = 0
    for r in results:
        month_pings += r.pings
        for name, c in r.defects.items():
            defects[name] += c
        for key, arr in r.truth.items():
            truth[key].append(arr)
        truth["month"].append(np.full(r.truth["vid"].size, m))
    if on_month is not None:
        on_month(month_label(m), month_pings)
    return month_pings


def simulate(
    out: Path,
    config: SimConfig,
    *,
    overwrite: bool = False,
    workers: int = 1,
    on_month: Callable[[str, int], None] | None = None,
) -> SimSummary:
    """Simulate the world of ``config`` into ``out`` (see the module docstring).

    ``workers`` processes (this one and ``workers - 1`` helpers) share the
    trucks in groups (the data do not depend on it);
    ``on_month(label, pings)`` is called after each month is written (progress).
    """
    config.validate()
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    with fewer_collections():
        return _simulate(out, config, overwrite, workers, on_month)


def _simulate(
    out: Path, config: SimConfig, overwrite: bool, workers: int, on_month: Callable[[str, int], None] | None
) -> SimSummary:
    months = config.months()
    tmp = _prepare_out(out, overwrite)
    t_start = time.perf_counter()
    pool: ProcessPoolExecutor | None = None
    try:
        if workers > 1 and config.trucks > 1:
            # Start the helper processes first: they load while this process samples the fleet, which they
            # then take from a queue (this process is one of the ``workers``).
            helpers = workers - 1
            mp = multiprocessing.get_context(HELPER_START)
            fleets = mp.Queue()
            fleets.cancel_join_thread()  # a helper that died before taking the fleet must not hold up the exit
            pool = ProcessPoolExecutor(helpers, mp_context=mp, initializer=_start_helper, initargs=(config, fleets))
            for _ in range(helpers):
                pool.submit(_ready)  # starts a helper
            sampled = _fleet(config)
            for _ in range(helpers):
                fleets.put(sampled)
        ctx = _context(config)
        fleet, world = ctx.fleet, ctx.world
        # Several groups per process, so that work moves to whichever process is free.
        n_groups = 1 if pool is None else min(fleet.n, GROUPS_PER_WORKER * workers)
        groups = {}
        for g, trucks in enumerate(np.array_split(np.arange(fleet.n), n_groups)):
            states = [
                TruckState(home=int(c), lon=float(world.lon[c]), lat=float(world.lat[c])) for c in fleet.city[trucks]
            ]
            tanks = np.full(trucks.size, TANK_L * 0.8)
            groups[g] = _Group(g, trucks, states, [None] * trucks.size, np.zeros(trucks.size), tanks)
        for m in months:
            (tmp / "pings" / f"month={month_label(m)}").mkdir(parents=True)
        defects = dict.fromkeys(DEFECT_NAMES, 0)
        truth: dict[str, list[np.ndarray]] = {k: [] for k in ("vid", "month", "city", "km", "e", "h", "f")}
        n_pings = 0

        # Tasks are (month position, group); a group's months run in order, groups never wait for each
        # other. Each helper has one task at a time, handed to it by a thread of this process as soon as
        # its last one is done; this process takes tasks between its own.
        ready = [(0, g) for g in groups]
        heapq.heapify(ready)
        done_by_month: dict[int, list[_MonthResult]] = {}
        next_k = 0  # the earliest month not yet collected
        running = 0  # tasks taken and not finished
        failed: list[BaseException] = []
        lock = threading.Condition()

        def task(k: int, g: int) -> tuple[SimConfig, _Group, int, Path]:
            return config, groups[g], months[k], tmp / "pings" / f"month={month_label(months[k])}"

        def take() -> tuple[int, int] | None:
            """The next task (earliest month first), once there is one; None when all are done or one failed."""
            nonlocal running
            with lock:
                while not ready and running and not failed:
                    lock.wait()
                if failed or not ready:
                    return None
                running += 1
                return heapq.heappop(ready)

        def finished(k: int, r: _MonthResult | BaseException) -> None:
            nonlocal next_k, n_pings, running
            with lock:
                running -= 1
                lock.notify_all()
                if isinstance(r, BaseException):
                    failed.append(r)
                    return
                try:
                    groups[r.group.index] = r.group
                    done_by_month.setdefault(k, []).append(r)
                    if k + 1 < len(months):
                        heapq.heappush(ready, (k + 1, r.group.index))
                    while len(done_by_month.get(next_k, ())) == n_groups:
                        results = sorted(done_by_month.pop(next_k), key=lambda x: x.group.index)
                        n_pings += _collect(results, months[next_k], defects, truth, on_month)
                        next_k += 1
                except BaseException as exc:  # e.g. from on_month, on a helper's thread: the run stops
                    failed.append(exc)

        def work(run: Callable[..., _MonthResult]) -> None:
            """Take tasks and run them with ``run`` until none is left (a failure is raised by the main thread)."""
            while (kg := take()) is not None:
                try:
                    r: _MonthResult | BaseException = run(*task(*kg))
                except BaseException as exc:
                    r = exc
                finished(kg[0], r)

        def on_helper(*args: Any) -> _MonthResult:
            assert pool is not None
            return pool.submit(_simulate_group_month, *args).result()

        feeders = [threading.Thread(target=work, args=(on_helper,)) for _ in range(workers - 1 if pool else 0)]
        for th in feeders:
            th.start()
        try:
            work(_simulate_group_month)
        except BaseException as exc:  # e.g. an interrupt while waiting: the helpers' threads stop too
            with lock:
                failed.append(exc)
                lock.notify_all()
            raise
        finally:
            for th in feeders:
                th.join()
        if failed:
            raise failed[0]

        vehicles_table = fleet.table()
        if config.id_format:
            vehicles_table = text_ids(vehicles_table, config.id_format)
        pq.write_table(vehicles_table, tmp / "vehicles.parquet")
        cat = {k: np.concatenate(v) if v else np.empty(0) for k, v in truth.items()}
        order = np.lexsort((cat["city"], cat["month"], cat["vid"]))
        cat = {k: v[order] for k, v in cat.items()}
        truth_table = pa.table(
            {
                "vehicle_id": pa.array(cat["vid"].astype(np.int64)),
                "month": pa.array(month_labels(cat["month"]), pa.string()),
                "city_adcode": pa.array(cat["city"].astype(np.int32)),
                "distance_km": pa.array(cat["km"]),
                "distance_km_empty": pa.array(cat["e"]),
                "distance_km_half": pa.array(cat["h"]),
                "distance_km_full": pa.array(cat["f"]),
                **_truth_emissions(config, fleet, cat),
            }
        )
        if config.id_format:
            truth_table = text_ids(truth_table, config.id_format)
        pq.write_table(truth_table, tmp / "truth.parquet")
        seconds = time.perf_counter() - t_start
        manifest = {
            "generator": f"truckcarbon {__version__} simulator",
            "config": asdict(config),
            "months": [month_label(m) for m in months],
            "trucks": fleet.n,
            "pings": n_pings,
            "truth_rows": truth_table.num_rows,
            "defects": defects,
            "workers": workers if pool is not None else 1,
            "truck_groups": n_groups,
            "seconds": round(seconds, 2),
            "coordinate_system": "WGS-84",
            "truth_method": {
                "formula": "co2_kg = distance_km * fuel_rate_l_per_100km(standard, load) / 100 * ef_kg_per_l",
                "load_state": "known (from the pings)" if config.load_channel else "unknown: 0.4 empty + 0.6 full",
                "emission_factor": DEFAULT_EF,
                "ef_kg_per_l": ef_kg_per_l(),
            },
            "month_definition": "local calendar month, Asia/Shanghai (UTC+8)",
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _PartBuffer.kept.clear()
    return SimSummary(out, fleet.n, len(months), n_pings, truth_table.num_rows, defects, seconds)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary folder onto ``out`` (an old ``out`` is removed after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def preset(name: str, **overrides: object) -> SimConfig:
    """A named configuration with some fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
