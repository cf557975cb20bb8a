"""The embedded engine: DuckDB reads and aggregates; the trajectory kernel does the per-vehicle work.

Flow of :func:`run_pipeline`:

1. **Vehicles** are validated (:func:`validate_vehicles`); failures are quarantined.
2. **Pass 1** streams every pings file once (DuckDB for Parquet, Arrow for CSV),
   validates each batch (:func:`validate_pings`, failures quarantined with file and
   row), keeps the fixes within ``context_hours`` of a requested month, and
   routes them by a hash of the vehicle id into partitions: in memory when the
   input fits ``rows_per_partition``, else spilled to Arrow files, so peak memory
   does not grow with the input.
3. **Pass 2** runs the kernel per partition (all of a vehicle's fixes are in one
   partition), keeps the activity of the requested months, applies the emission
   method and the vehicle's attributes, and spills the rows.
4. **Aggregation** in DuckDB SQL writes per month ``activity/YYYY-MM.parquet`` and
   ``inventory/YYYY-MM.parquet`` (each atomically; a folder reads as one table), rebuilds ``truckcarbon.duckdb`` and
   writes ``manifest.json`` last.

The run writes into a staging folder beside the run folder (holding hard links to
the old folder's files it keeps) and swaps it in at the end, under a lock
(:meth:`truckcarbon.core.runfolder.RunFolder.rerun`): killed at any point, the run
folder is the old run byte for byte or the new one complete.

Months are Asia/Shanghai calendar months. Because every month is computed from
the same window of fixes (the month plus ``context_hours`` either side), a month
run alone gives the same figures as in a run of many months.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from truckcarbon import __version__
from truckcarbon.core.errors import InputError
from truckcarbon.core.faults import fault_point
from truckcarbon.core.files import atomic_path
from truckcarbon.core.months import month_label, month_labels, parse_month
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.runtime import fewer_collections
from truckcarbon.core.schemas import UNOBSERVED
from truckcarbon.emissions.factors import emission_factors, fuel_rates
from truckcarbon.emissions.method import apply_method
from truckcarbon.geo.boundaries import boundary_data_version
from truckcarbon.geo.locator import CityLocator
from truckcarbon.geo.reference import cities
from truckcarbon.ingest.files import bytes_digest, discover, estimated_rows, file_digest, hive_month
from truckcarbon.ingest.ids import VehicleIds
from truckcarbon.ingest.quarantine import LINE_REASONS, IngestCounts
from truckcarbon.ingest.sources import SourceOptions, column_names, read_table
from truckcarbon.ingest.vehicles import VehicleCounts, validate_vehicles, vehicle_ids
from truckcarbon.pipeline.checks import input_warnings, refuse_empty_input
from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.pipeline.reading import KERNEL_SCHEMA, FixReader, Reading, vehicle_sorted_hint
from truckcarbon.trajectory.kernel import Scratch, run_kernel
from truckcarbon.trajectory.schema import GAP_BIN_SCHEMA, GAP_SCHEMA, KEPT, QUARANTINED
from truckcarbon.trajectory.schema import REASONS as KERNEL_REASONS

Progress = Callable[[str, int, int], None]
MAX_PARTITIONS = 512
# Sorted streaming hands the kernels a chunk once this many rows are held: below a row group's usual
# 2^20 rows, so that every such batch completes a chunk and passes as a view (:class:`_Stream`).
STREAM_CHUNK_ROWS = 1 << 19


@dataclass
class RunSummary:
    """What a run read, kept, set aside and produced."""

    out: Path
    months: list[str]
    pings_read: int = 0
    pings_kept: int = 0
    pings_quarantined: int = 0
    pings_outside_window: int = 0
    vehicles_read: int = 0
    vehicles_kept: int = 0
    vehicles_quarantined: int = 0
    distance_km: float = 0.0
    co2_t: float = 0.0
    seconds: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)
    fixes_used: int = 0  # fixes of the months computed that the cleaning rules kept (the inventory's input)
    fixes_cleaned: int = 0  # fixes of those months set aside by the cleaning rules (duplicate, jump, ...)
    warnings: list[str] = field(default_factory=list)  # about the inputs (also in the manifest's input entries)


def _noop(stage: str, done: int, total: int) -> None:
    return None


class _Partitions:
    """Kernel inputs routed by vehicle hash: in memory (one partition) or spilled to Arrow files.

    Input held in memory that outgrows ``max_rows`` is spilled after all, and a
    partition file that ends up with more than ``max_rows`` rows (the input was
    larger than estimated, or larger than ``MAX_PARTITIONS`` partitions hold) is
    split again by another hash, streaming, before it is loaded: whatever the
    input size, one loaded partition holds about ``max_rows`` rows.
    """

    def __init__(self, n: int, work: Path, max_rows: int) -> None:
        self.n = n
        self.work = work
        self.max_rows = max_rows
        self.memory: list[pa.RecordBatch] = []
        self.writers: dict[int, ipc.RecordBatchFileWriter] = {}
        self.counts: dict[int, int] = {}
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self.n == 1:
            self.memory.append(batch)
            if self.rows <= self.max_rows * 1.5:
                return
            # More rows than planned (a compressed CSV holds more than its size suggests): spill after all.
            self.n = min(MAX_PARTITIONS, max(2, math.ceil(4 * self.rows / self.max_rows)))
            held, self.memory, self.rows = self.memory, [], 0
            for b in held:
                self.add(b)
            return
        for p, part in _route(batch, self.n, 0):
            w = self.writers.get(p)
            if w is None:
                w = ipc.new_file(self.work / f"pings-{p:04d}.arrow", KERNEL_SCHEMA)
                self.writers[p] = w
            w.write_batch(part)
            self.counts[p] = self.counts.get(p, 0) + part.num_rows

    def close(self) -> None:
        for w in self.writers.values():
            w.close()

    def each(self) -> list[Callable[[], pa.Table]]:
        """One loader per partition, so that only one partition is in memory at a time."""
        if self.n == 1:
            memory = self.memory
            return [lambda: pa.Table.from_batches(memory, KERNEL_SCHEMA)]
        loaders: list[Callable[[], pa.Table]] = []
        for p in sorted(self.writers):
            path = self.work / f"pings-{p:04d}.arrow"
            if self.counts[p] <= self.max_rows * 1.5:
                loaders.append(functools.partial(_read_arrow, path))
            else:
                loaders += [functools.partial(_read_arrow, f) for f in self._split(path, self.counts[p])]
        return loaders

    def _split(self, path: Path, rows: int) -> list[Path]:
        """Route the rows of a partition file into smaller files by a second hash (streaming); remove it."""
        k = math.ceil(rows / self.max_rows)
        writers: dict[int, ipc.RecordBatchFileWriter] = {}
        with ipc.open_file(path) as f:
            for i in range(f.num_record_batches):
                for q, part in _route(f.get_batch(i), k, 1):
                    if q not in writers:
                        writers[q] = ipc.new_file(path.with_name(f"{path.stem}-{q:04d}.arrow"), KERNEL_SCHEMA)
                    writers[q].write_batch(part)
        for w in writers.values():
            w.close()
        path.unlink()
        return [path.with_name(f"{path.stem}-{q:04d}.arrow") for q in sorted(writers)]


def _route(batch: pa.RecordBatch, n: int, level: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The rows of ``batch`` by partition ``hash(vehicle) % n`` (a vehicle's rows all go to one partition).

    ``level`` picks independent bits of the hash, so that a partition can be split again.
    """
    order, bounds = _route_order(batch.column(0).to_numpy(), n, level)
    routed = batch.take(pa.array(order))
    for p in np.flatnonzero(np.diff(bounds)).tolist():
        yield p, routed.slice(int(bounds[p]), int(bounds[p + 1] - bounds[p]))


@nb.njit(cache=True, nogil=True)
def _route_order(vid, n, level):  # type: ignore[no-untyped-def]
    """(the stable order of the rows by partition, the partitions' bounds in it: n + 1 offsets).

    A row's partition is the 20 bits from bit ``20 * level`` of splitmix64's
    finaliser of its vehicle (every bit depends on every bit), modulo ``n``; a
    counting sort orders the rows, keeping their order within a partition.
    """
    m = vid.shape[0]
    part = np.empty(m, np.int32)
    counts = np.zeros(n + 1, np.int64)
    shift = np.uint64(20 * level)
    parts = np.uint64(n)
    for i in range(m):
        h = np.uint64(vid[i])
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        h >>= shift
        q = np.int64((h & np.uint64(0xFFFFF)) % parts)
        part[i] = q
        counts[q + 1] += 1
    for k in range(n):  # offsets: where each partition's rows start
        counts[k + 1] += counts[k]
    bounds = counts.copy()
    order = np.empty(m, np.int64)
    for i in range(m):
        r = part[i]
        order[counts[r]] = i
        counts[r] += 1
    return order, bounds


def _read_arrow(path: Path) -> pa.Table:
    """A spilled partition, memory-mapped: its columns are views of the file's pages (no copy, no fresh
    memory); the kernel's input buffers take one copy of them."""
    with ipc.open_file(pa.memory_map(str(path))) as f:
        return f.read_all()


def _attach(activity: pa.Table, vehicles: pa.Table, config: PipelineConfig) -> pa.Table:
    """Emission method, vehicle attributes and weight on activity rows whose ``vehicle_id`` is the run's
    vehicle key (the row of ``vehicles``): the key becomes ``vehicle_key``, the id its text."""
    keys = np.asarray(activity["vehicle_id"].to_numpy(), dtype=np.int64)
    if keys.size and (keys.min() < 0 or keys.max() >= vehicles.num_rows):
        raise InputError("activity of a vehicle that is not in the vehicles table")
    take = pa.array(keys)
    std = vehicles["standard_code"].take(take).to_numpy()
    out = apply_method(activity, std, config.emissions)
    out = out.set_column(0, "vehicle_key", pa.array(keys)).add_column(
        0, "vehicle_id", vehicles["vehicle_id"].take(take)
    )
    for name in ("emission_standard", "weight", "registration_city_adcode"):
        out = out.append_column(name, vehicles[name].take(take))
    return out


def _quarantine_writer(path: Path) -> Callable[[pa.Table], None]:
    """Append quarantine tables as numbered Parquet files under ``path``."""
    count = [0]

    def write(table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / f"part-{count[0]:05d}.parquet") as tmp:
            pq.write_table(table, tmp)
        count[0] += 1

    return write


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy_parquet(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        con.execute(f"COPY ({query}) TO {_sql_str(tmp)} (FORMAT parquet, COMPRESSION zstd)")


def _inventory_sql(spill: str, month: str) -> str:
    """Operating and registration inventories of one month from the activity spill."""
    # Sums in a fixed order (ORDER BY inside the aggregate): floating-point addition is not associative,
    # and a parallel aggregation would otherwise make reruns differ in the last bits.
    cols = (
        "count(*) AS vehicles, sum(weight ORDER BY vehicle_key) AS vehicles_weighted, "
        "sum(km * weight ORDER BY vehicle_key) AS distance_km, sum(km ORDER BY vehicle_key) AS distance_km_unweighted, "
        "sum(fuel * weight ORDER BY vehicle_key) AS fuel_l, sum(co2 * weight ORDER BY vehicle_key) / 1000 AS co2_t, "
        "sum(co2 ORDER BY vehicle_key) / 1000 AS co2_t_unweighted"
    )
    per_vehicle = """
        SELECT month, '{view}' AS view, {city} AS city_adcode, emission_standard, method, vehicle_key,
               any_value(weight) AS weight, sum(distance_km ORDER BY city_adcode) AS km,
               sum(fuel_l ORDER BY city_adcode) AS fuel, sum(co2_kg ORDER BY city_adcode) AS co2
        FROM read_parquet({spill}) WHERE month = '{month}' AND city_adcode <> 0
        GROUP BY ALL
    """
    union = " UNION ALL ".join(
        per_vehicle.format(view=v, city=c, spill=spill, month=month)
        for v, c in (("operating", "city_adcode"), ("registration", "registration_city_adcode"))
    )
    return f"""
        SELECT v.month, v.view, v.city_adcode, c.province_adcode, v.emission_standard, v.method, {cols}
        FROM ({union}) v JOIN cities c USING (city_adcode)
        GROUP BY ALL ORDER BY view, city_adcode, emission_standard, method
    """


def _activity_sql(spill: str, month: str) -> str:
    return f"""
        SELECT vehicle_id, month, city_adcode, distance_km, distance_km_empty, distance_km_half,
               distance_km_full, distance_km_unknown_load, distance_km_fuel_measured, fuel_measured_l,
               fuel_l, co2_kg, method, emission_standard, registration_city_adcode, weight, gps_noise_m,
               fix_interval_s
        FROM read_parquet({spill}) WHERE month = '{month}'
        ORDER BY vehicle_key, city_adcode
    """


def _factor_versions() -> dict[str, str]:
    from importlib.resources import files

    out = {}
    for name in ("fuel_rates.csv", "emission_factors.csv"):
        out[name] = bytes_digest(files("truckcarbon.data").joinpath("factors", name).read_bytes())
    return out


def run_pipeline(
    pings: Path | str | None,
    vehicles: Path,
    out: Path,
    months: list[str] | None = None,
    config: PipelineConfig | None = None,
    *,
    activity: Path | None = None,
    progress: Progress | None = None,
    engine: str = "embedded",
    spark_master: str | None = None,
) -> RunSummary:
    """Compute the activity and inventories of ``months`` (default: every month in the pings).

    Parameters
    ----------
    pings
        A pings file or folder (Parquet/CSV, e.g. ``pings/month=YYYY-MM/``); None
        when ``activity`` is given instead. With the Spark engine also any URI Spark
        reads (``hdfs://``, ``s3a://``, ``file://``), given as a string.
    vehicles
        The vehicles table (one Parquet or CSV file).
    out
        Run folder; existing months not in ``months`` are kept (incremental runs). The run
        is built beside it and swapped in when complete; a second run into the same
        folder at the same time is refused (:class:`~truckcarbon.core.errors.BusyError`).
    months
        'YYYY-MM' labels to (re)compute.
    config
        Cleaning, emission and partitioning settings.
    activity
        A pre-aggregated activity table (``vehicle_id, month, city_adcode,
        distance_km`` and optional ``fuel_l``) used instead of pings.
    progress
        Called as ``progress(stage, done, total)``.
    engine
        ``embedded`` (DuckDB, this machine) or ``spark`` (PySpark; ``spark_master``
        such as ``local[2]``, ``spark://host:7077``, ``yarn``; default: the active
        session or ``local[2]``).
    """
    started = time.perf_counter()
    config = config or PipelineConfig()
    config.validate()
    report = progress or _noop
    if engine not in ("embedded", "spark"):
        raise InputError(f"unknown engine {engine!r}; use embedded or spark")
    if (pings is None) == (activity is None):
        raise InputError("give either pings or a pre-aggregated activity table, not both or neither")
    requested = {parse_month(m) for m in months} if months else None
    files = _ping_files(pings, requested, engine)
    report = _with_fault_points(report)
    # Built in a staging folder beside ``out`` (the work folder too), swapped in when complete.
    with RunFolder(out).rerun() as stage, fewer_collections(), _hashing(files, engine) as digests:
        summary = _run(
            files, digests, vehicles, stage.path, stage.work, requested, config, activity, report, engine, spark_master
        )
        stage.commit()
    summary.out = out
    summary.seconds = time.perf_counter() - started
    return summary


def _with_fault_points(report: Progress) -> Progress:
    """``report`` with the test hook's fault points ``reading`` (half-way through the files) and
    ``month_written`` (the first month written) (:mod:`truckcarbon.core.faults`)."""

    def wrapped(stage: str, done: int, total: int) -> None:
        report(stage, done, total)
        if stage == "read" and done == total // 2 and done < total:
            fault_point("reading")
        elif stage == "write" and done == 1:
            fault_point("month_written")

    return wrapped


def _ping_files(pings: Path | str | None, requested: set[int] | None, engine: str) -> list[Path] | list[str]:
    """The pings files a run reads (a URI for Spark as one string); none when ``pings`` is None."""
    if pings is None:
        return []
    uri = isinstance(pings, str) and "://" in pings
    if uri and engine != "spark":
        if not str(pings).startswith("file://"):
            raise InputError(f"pings: {pings} is a URI; read it with --engine spark, or give a local path")
        pings, uri = Path(str(pings)[len("file://") :]), False
    files: list[Path] | list[str] = [str(pings)] if uri else discover(Path(pings), "pings")
    if requested is not None and not uri:
        files = [f for f in files if isinstance(f, Path) and _may_hold(f, requested)]
        if not files:
            raise InputError(f"pings: no file under {pings} can hold the months asked for")
    return files


@contextmanager
def _hashing(files: list[Path] | list[str], engine: str) -> Iterator[dict[Path, Future[str]]]:
    """The hashes of the local ``files`` (for the manifest), computed from the start on a thread of their own:
    hashing releases the GIL, so it fills the second core while the first starts the run up (imports, the
    vehicles). Hashes not begun are cancelled when the block ends."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="truckcarbon-hash") as hasher:
        local = [f for f in files if isinstance(f, Path)] if engine == "embedded" else []
        digests = {f: hasher.submit(file_digest, f) for f in local}
        try:
            yield digests
        finally:
            for d in digests.values():
                d.cancel()


def _run(
    files: list[Path] | list[str],
    digests: dict[Path, Future[str]],
    vehicles_path: Path,
    out: Path,
    work: Path,
    requested: set[int] | None,
    config: PipelineConfig,
    activity_path: Path | None,
    report: Progress,
    engine: str = "embedded",
    spark_master: str | None = None,
) -> RunSummary:
    con = duckdb.connect()
    con.execute(f"SET temp_directory = {_sql_str(work / 'duckdb')}")
    vehicles_table = read_table(vehicles_path, "vehicles", options=_vehicle_options(vehicles_path, config))
    vehicles, v_quarantine, v_counts = validate_vehicles(vehicles_table, str(vehicles_path))
    if vehicles.num_rows == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in v_counts.quarantined.items() if v)
        raise InputError(
            f"{vehicles_path}: no valid vehicle (all {v_counts.rows} rows set aside: {reasons}); fix the table"
        )
    _quarantine_writer(work / "quarantine" / "vehicles")(v_quarantine)
    ids = vehicle_ids(vehicles, v_counts)
    inputs: list[dict[str, Any]] = [
        {"role": "vehicles", "path": str(vehicles_path), "hash": file_digest(vehicles_path)}
    ]
    ingest = IngestCounts()
    for reason in LINE_REASONS:
        ingest.quarantined[reason] = 0
    outside_window = 0
    spill = work / "activity"
    spill.mkdir()
    tally = Tally()
    seen_months: set[int] = set()

    if activity_path is not None:
        table = _read_activity(activity_path, ids)
        if requested is not None:
            table = table.filter(pc.is_in(table["month"], pa.array(month_labels(sorted(requested)))))
        seen_months = {parse_month(m) for m in pc.unique(table["month"]).to_pylist()}
        pq.write_table(_attach(table, vehicles, config), spill / "part-00000.parquet")
        inputs.append({"role": "activity", "path": str(activity_path), "hash": file_digest(activity_path)})
    else:
        if engine == "spark":
            from truckcarbon.pipeline.spark import attribute_pings_spark

            report("read, clean and attribute (Spark)", 0, 1)
            reading, tally = attribute_pings_spark(files, vehicles, ids, requested, config, work, spill, spark_master)
            report("read, clean and attribute (Spark)", 1, 1)
        else:
            local = [f for f in files if isinstance(f, Path)]
            reading, tally = _attribute_pings(local, vehicles, ids, requested, config, work, spill, report, digests)
        ingest, outside_window = reading.ingest, reading.outside_window
        inputs += reading.inputs
        refuse_empty_input(inputs, ingest, config.ingest_rules())
        seen_months = set(tally.by_month) if requested is None else set(requested)
    warnings = input_warnings(inputs, v_counts, config.max_quarantine_share)

    summary = _write_outputs(
        con, out, spill, vehicles, sorted(seen_months), config, inputs, ingest, v_counts,
        outside_window, tally, report, engine, spark_master,
    )  # fmt: skip
    for m in seen_months:
        counts = tally.by_month.get(m)
        if counts is not None:
            summary.fixes_used += int(counts[KEPT])
            summary.fixes_cleaned += int(counts[:QUARANTINED].sum() - counts[KEPT])
    summary.warnings = warnings
    return summary


def _vehicle_options(path: Path, config: PipelineConfig) -> SourceOptions:
    """How the vehicles table is read: the built-in vehicles headers and the ``[columns]`` entries that name
    one of its columns and a header it has (the others are for the pings)."""
    options = config.source_options("vehicles")
    files = discover(path, "vehicles")
    if options.columns and len(files) == 1:
        have = set(column_names(files[0], options.encoding))
        options = SourceOptions(options.encoding, {k: v for k, v in options.columns.items() if k in have}, "vehicles")
    return options


def _pyspark_version() -> str:
    import pyspark

    return str(pyspark.__version__)


def _may_hold(f: Path, months: set[int]) -> bool:
    """False only for a ``month=YYYY-MM`` file more than a month away from every month asked for."""
    m = hive_month(f)
    return m is None or any(k in months for k in (m - 1, m, m + 1))


_STATS = (
    "unobserved_km",
    "bridged_km",
    "implausible_speed_km",
    "out_of_order",
    "unobserved_segments",
    "implausible_speed_segments",
    "fixes_outside_mainland",
)


class _NotSortedError(Exception):
    """The input turned out not to be sorted by vehicle: start again with partitions."""


@dataclass
class Tally:
    """What the kernels of a run counted (merged from every chunk): fixes by rule per month, trajectory
    statistics, the unobserved gaps (:data:`GAP_SCHEMA`, the vehicle as its key) and the segments by
    duration bin (:data:`GAP_BIN_SCHEMA`)."""

    by_month: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_STATS, 0.0))
    gaps: list[pa.Table] = field(default_factory=list)
    gap_bins: list[pa.Table] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for m, c in other.by_month.items():
            self.by_month[m] = self.by_month.get(m, np.zeros(QUARANTINED, np.int64)) + c
        for k, v in other.stats.items():
            self.stats[k] = self.stats.get(k, 0.0) + v
        self.gaps += other.gaps
        self.gap_bins += other.gap_bins
        if len(self.gaps) > 64:  # bounded: merged as they come
            self.gaps = [_sum_gaps(self.gaps)]
        if len(self.gap_bins) > 64:
            self.gap_bins = [_sum_gap_bins(self.gap_bins)]

    def gaps_table(self) -> pa.Table:
        return _sum_gaps(self.gaps)

    def gap_bins_table(self) -> pa.Table:
        return _sum_gap_bins(self.gap_bins)


def _summed(tables: list[pa.Table], schema: pa.Schema, keys: list[str]) -> pa.Table:
    """Rows of ``schema`` summed by ``keys`` (its other columns are counts and km), sorted by them."""
    if not tables:
        return schema.empty_table()
    values = [c for c in schema.names if c not in keys]
    summed = pa.concat_tables(tables).group_by(keys).aggregate([(c, "sum") for c in values])
    return summed.rename_columns([*keys, *values]).select(schema.names).sort_by([(k, "ascending") for k in keys])


def _sum_gaps(tables: list[pa.Table]) -> pa.Table:
    """Gap rows summed by (vehicle, month, from city, to city)."""
    return _summed(tables, GAP_SCHEMA, ["vehicle_id", "month", "from_city_adcode", "to_city_adcode"])


def _sum_gap_bins(tables: list[pa.Table]) -> pa.Table:
    """Segment counts summed by (month, duration bin)."""
    return _summed(tables, GAP_BIN_SCHEMA, ["month", "gap_bin"])


_scratch = threading.local()


def _thread_scratch(name: str) -> Scratch:
    """This thread's buffers called ``name``, made on first use."""
    found: Scratch | None = getattr(_scratch, name, None)
    if found is None:
        found = Scratch()
        setattr(_scratch, name, found)
    return found


def _numpy(fixes: pa.Table | pa.RecordBatch, i: int) -> npt.NDArray[Any]:
    """Column ``i`` of kernel inputs (no nulls) as one numpy array: a view of a single chunk, else the
    chunks copied into this thread's buffer for the column (reused chunk after chunk: fresh memory for
    every chunk would cost page faults and zeroing)."""
    column = fixes.column(i)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if len(chunks) == 1:
        return np.asarray(chunks[0].to_numpy())
    parts = [c.to_numpy() for c in chunks]
    return np.concatenate(parts, out=_thread_scratch("columns").buffer(i, sum(p.size for p in parts), parts[0].dtype))


def _process(
    chunks: list[pa.Table],
    k: int,
    locator: CityLocator,
    vehicles: pa.Table,
    months: set[int] | None,
    config: PipelineConfig,
    spill: Path,
    held: _SpillBuffer | None = None,
) -> Tally:
    """Kernel, emission method and vehicle attributes for chunks of whole vehicles; spills their activity
    (into ``held``, which writes it in larger files, when given)."""
    tally = Tally()
    activity = []
    asked = None if months is None else pa.array(month_labels(sorted(months)))
    for fixes in chunks:
        if fixes.num_rows == 0:
            continue
        vid, t, lon, lat, speed, load, fuel, odometer, aside = (_numpy(fixes, i) for i in range(9))
        result = run_kernel(
            vid, t, lon, lat, locator, speed, config.rules,
            load=load, fuel_level_l=fuel, odometer_km=odometer, skip=aside >= 0,
            scratch=_thread_scratch("kernel"),
        )  # fmt: skip
        # Rows set aside before the kernel (QUARANTINED) are counted by the ingest.
        by_month = {
            m: c[:QUARANTINED]
            for m, c in result.by_month.items()
            if (months is None or m in months) and c[:QUARANTINED].any()
        }
        stats = {
            "unobserved_km": result.unobserved_km,
            "bridged_km": result.bridged_km,
            "implausible_speed_km": result.implausible_speed_km,
            "out_of_order": float(result.counts["out_of_order"]),
            "unobserved_segments": float(result.counts["unobserved_segments"]),
            "implausible_speed_segments": float(result.counts["implausible_speed_segments"]),
            "fixes_outside_mainland": float(result.counts["outside_mainland"]),
        }
        act, gaps, gap_bins = result.activity, result.gaps, result.gap_bins
        if asked is not None:
            act = act.filter(pc.is_in(act["month"], asked))
            gaps = gaps.filter(pc.is_in(gaps["month"], asked))
            gap_bins = gap_bins.filter(pc.is_in(gap_bins["month"], asked))
        tally.add(Tally(by_month, stats, [gaps] if gaps.num_rows else [], [gap_bins] if gap_bins.num_rows else []))
        if act.num_rows:
            activity.append(act)
    if held is not None:
        held.add(activity)
    elif activity:
        pq.write_table(_attach(pa.concat_tables(activity), vehicles, config), spill / f"part-{k:06d}.parquet")
    return tally


SPILL_ROWS = 1 << 20  # activity rows held before they are written to a spill file


class _SpillBuffer:
    """Activity rows of the kernels' tasks, written to the spill folder in files of at least ``SPILL_ROWS``
    rows (with the emission method and vehicle attributes): the final aggregation then reads a few files,
    not one per task. Safe to add to from several threads."""

    def __init__(self, spill: Path, vehicles: pa.Table, config: PipelineConfig) -> None:
        self.spill, self.vehicles, self.config = spill, vehicles, config
        self.tables: list[pa.Table] = []
        self.rows = 0
        self.files = 0
        self.lock = threading.Lock()

    def add(self, tables: list[pa.Table]) -> None:
        with self.lock:
            self.tables += tables
            self.rows += sum(t.num_rows for t in tables)
            if self.rows < SPILL_ROWS:
                return
            batch, k = self._take()
        self._write(batch, k)

    def flush(self) -> None:
        """Write the rows held."""
        with self.lock:
            batch, k = self._take()
        self._write(batch, k)

    def _take(self) -> tuple[list[pa.Table], int]:
        batch, self.tables, self.rows = self.tables, [], 0
        self.files += 1
        return batch, self.files

    def _write(self, batch: list[pa.Table], k: int) -> None:
        if batch:
            table = _attach(pa.concat_tables(batch), self.vehicles, self.config)
            pq.write_table(table, self.spill / f"part-{k:06d}.parquet")


class _Stream:
    """Chunks of whole vehicles from input sorted by vehicle (the last vehicle waits for more rows).

    Rows already set aside (quarantine code >= 0, e.g. a missing vehicle id) take
    no part in the order: they go with the chunk they arrive in. A batch that
    completes a chunk gives two: the rows held before it with its rows of the
    vehicle they end with (copied into one), and its own whole vehicles (a view
    of the batch, not copied).
    """

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self.pending: list[pa.RecordBatch] = []
        self.rows = 0
        self.last = int(np.iinfo(np.int64).min)  # the last vehicle seen

    def add(self, batch: pa.RecordBatch) -> list[pa.Table]:
        """The chunks this batch completes (none while fewer than ``chunk_rows`` rows are held)."""
        ordered, last, head_end, tail_start = _vehicle_runs(
            batch.column(0).to_numpy(), batch.column(8).to_numpy(), self.last
        )
        if not ordered:
            raise _NotSortedError
        self.last = int(last)
        self.pending.append(batch)
        self.rows += batch.num_rows
        if self.rows < self.chunk_rows or tail_start == 0:
            return []  # too few rows yet, or the batch is all one vehicle, which may go on
        held = [*self.pending[:-1], batch.slice(0, head_end)]
        self.pending = [batch.slice(tail_start)]
        self.rows = batch.num_rows - tail_start
        chunks = []
        if sum(b.num_rows for b in held):
            chunks.append(pa.Table.from_batches(held, KERNEL_SCHEMA))
        if tail_start > head_end:
            chunks.append(pa.Table.from_batches([batch.slice(head_end, tail_start - head_end)], KERNEL_SCHEMA))
        return chunks

    def rest(self) -> pa.Table | None:
        return pa.Table.from_batches(self.pending, KERNEL_SCHEMA) if self.rows else None


@nb.njit(cache=True, nogil=True)
def _vehicle_runs(vid, aside, last):  # type: ignore[no-untyped-def]
    """(rows not set aside run through vehicles in order after ``last``?, their last vehicle, head end,
    tail start).

    The head ends at the first row of a vehicle after ``last``; the tail starts
    at the first row of the batch's last vehicle: 0 when the whole batch is that
    vehicle (or is all set aside).
    """
    head_end = -1
    tail_start = 0
    for i in range(vid.shape[0]):
        if aside[i] >= 0:
            continue
        v = vid[i]
        if v < last:
            return False, last, 0, 0
        if v > last:
            tail_start = i
            if head_end < 0:
                head_end = i
        last = v
    return True, last, max(head_end, 0), tail_start


def _attribute_pings(
    files: list[Path],
    vehicles: pa.Table,
    ids: VehicleIds,
    months: set[int] | None,
    config: PipelineConfig,
    work: Path,
    spill: Path,
    report: Progress,
    digests: dict[Path, Future[str]],
) -> tuple[Reading, Tally]:
    """Pass 1 and 2: stream vehicle-sorted input, else route fixes to partitions; kernels on worker threads.

    ``digests`` holds the hash of every file, being computed."""
    locator = CityLocator(config.crs)
    context_s = int(config.context_hours * 3600)
    threads = max(1, min(config.threads, os.cpu_count() or 1))
    numeric_keys = bool(ids.int_ids.size == len(ids))
    streaming = vehicle_sorted_hint(files, numeric_keys)
    while True:
        quarantine_dir = work / "quarantine" / "pings"
        shutil.rmtree(quarantine_dir, ignore_errors=True)
        for old in spill.glob("*.parquet"):
            old.unlink()
        reader = FixReader(
            files, ids, months, context_s, _quarantine_writer(quarantine_dir), report, digests,
            config.ingest_rules(), config.crs, config.source_options("pings"),
        )  # fmt: skip
        tally = Tally()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            held = _SpillBuffer(spill, vehicles, config)

            def submit(chunks: list[pa.Table], k: int, held: _SpillBuffer = held) -> Future[Tally]:
                return pool.submit(_process, chunks, k, locator, vehicles, months, config, spill, held)

            pending: deque[Future[Tally]] = deque()
            try:
                if streaming:
                    stream = _Stream(min(config.rows_per_partition, STREAM_CHUNK_ROWS))
                    k = 0
                    for batch in reader.batches():
                        chunks = stream.add(batch)
                        if chunks:
                            pending.append(submit(chunks, k))
                            k += 1
                            while len(pending) > threads:
                                tally.add(pending.popleft().result())
                    last = stream.rest()
                    if last is not None:
                        pending.append(submit([last], k))
                else:
                    est = sum(estimated_rows(f) for f in files)
                    n_parts = min(MAX_PARTITIONS, max(1, math.ceil(est / config.rows_per_partition)))
                    parts = _Partitions(n_parts, work, config.rows_per_partition)
                    # Routing and spilling (on one thread, in order) overlap the reading of the next batches.
                    with ThreadPoolExecutor(max_workers=1) as router:
                        routed: deque[Future[None]] = deque()
                        for batch in reader.batches():
                            routed.append(router.submit(parts.add, batch))
                            while len(routed) > 2:
                                routed.popleft().result()
                        while routed:
                            routed.popleft().result()
                    parts.close()
                    loaders = parts.each()
                    for k, load in enumerate(loaders):
                        report("clean and attribute", k, len(loaders))
                        pending.append(submit([load()], k))
                        while len(pending) >= threads:
                            tally.add(pending.popleft().result())
                    report("clean and attribute", len(loaders), len(loaders))
                while pending:
                    tally.add(pending.popleft().result())
                held.flush()
            except _NotSortedError:
                for fut in pending:
                    fut.cancel()
                pool.shutdown(wait=True)
                streaming = False
                continue
        return reader.state, tally


def _read_activity(path: Path, ids: VehicleIds) -> pa.Table:
    """A pre-aggregated activity table as kernel activity rows (load state unknown)."""
    t = read_table(path, "activity")
    for c in ("vehicle_id", "month", "city_adcode", "distance_km"):
        if c not in t.column_names:
            raise InputError(f"{path}: missing column {c}; activity needs vehicle_id, month, city_adcode, distance_km")
    from truckcarbon.core.arrow import parse_float64
    from truckcarbon.ingest.ids import id_text

    text = id_text(t["vehicle_id"], f"{path}: column vehicle_id")
    keys = ids.keys(text)
    city, _ = parse_float64(t["city_adcode"].combine_chunks())
    km, _ = parse_float64(t["distance_km"].combine_chunks())
    month = pc.cast(t["month"], pa.string()).to_pylist()
    units = set(cities()["city_adcode"].to_pylist()) | {0}
    for i in range(t.num_rows):
        row = i + 1
        if keys[i] < 0:
            raise InputError(
                f"{path}: row {row}, column vehicle_id: {text[i].as_py()!r} is not a vehicle of the vehicles table"
            )
        if not np.isfinite(city[i]) or int(city[i]) not in units:
            raise InputError(f"{path}: row {row}, column city_adcode: {city[i]} is not a mainland unit adcode")
        if not (np.isfinite(km[i]) and km[i] >= 0):
            raise InputError(f"{path}: row {row}, column distance_km: {km[i]} is not a distance >= 0")
        try:
            parse_month(str(month[i]))
        except InputError as exc:
            raise InputError(f"{path}: row {row}, column month: {exc}") from None
    fuel = np.full(t.num_rows, np.nan)
    if "fuel_l" in t.column_names:
        fuel, bad = parse_float64(t["fuel_l"].combine_chunks())
        if bad.any() or np.any(fuel < 0):
            row = int(np.flatnonzero(bad | (fuel < 0))[0]) + 1
            raise InputError(f"{path}: row {row}, column fuel_l: not a fuel quantity >= 0")
    has_fuel = np.isfinite(fuel)
    return pa.table(
        {
            "vehicle_id": pa.array(keys),  # the run's key, as the kernel's activity rows carry it
            "month": pa.array([month_label(parse_month(str(m))) for m in month]),
            "city_adcode": pa.array(city.astype(np.int32)),
            "distance_km": pa.array(km),
            "distance_km_empty": pa.array(np.zeros(km.size)),
            "distance_km_half": pa.array(np.zeros(km.size)),
            "distance_km_full": pa.array(np.zeros(km.size)),
            "distance_km_unknown_load": pa.array(km),
            "fuel_measured_l": pa.array(np.where(has_fuel, fuel, 0.0)),
            "distance_km_fuel_measured": pa.array(np.where(has_fuel, km, 0.0)),
            "gps_noise_m": pa.nulls(km.size, pa.float64()),  # not estimated: the activity was given
            "fix_interval_s": pa.nulls(km.size, pa.float64()),
        }
    )


def _write_outputs(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    spill: Path,
    vehicles: pa.Table,
    months: list[int],
    config: PipelineConfig,
    inputs: list[dict[str, Any]],
    ingest: IngestCounts,
    v_counts: VehicleCounts,
    outside_window: int,
    tally: Tally,
    report: Progress,
    engine: str = "embedded",
    spark_master: str | None = None,
) -> RunSummary:
    """Write every output; the Spark engine aggregates the inventories with Spark SQL, the embedded one with DuckDB."""
    kernel_counts, run_stats = tally.by_month, tally.stats
    gaps, gap_bins = tally.gaps_table(), tally.gap_bins_table()
    engine_name = f"embedded (DuckDB {duckdb.__version__})"
    inventories: dict[str, pa.Table] | None = None
    if engine == "spark":
        from truckcarbon.pipeline.spark import inventories_spark

        engine_name = f"spark (PySpark {_pyspark_version()})"
        inventories = inventories_spark(spill, month_labels(months), spark_master)
    con.register("cities_arrow", cities().select(["city_adcode", "province_adcode"]))
    con.execute("CREATE OR REPLACE TABLE cities AS SELECT * FROM cities_arrow")  # not TEMP: the months' cursors read it
    spill_glob = _sql_str(spill / "*.parquet")
    has_rows = any(spill.glob("*.parquet"))
    summary = RunSummary(out=out, months=month_labels(months))
    folder = RunFolder(out)  # the staging folder: its files are replaced, never written into
    manifest = folder.manifest_data()
    month_entries: dict[str, Any] = manifest.get("months", {})
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]

    def write_month(label: str) -> tuple[int, float, float, float]:
        """One month's activity and inventory files (on a cursor of its own); its totals."""
        if not has_rows:
            for sub in ("activity", "inventory"):
                folder.month_file(sub, label).unlink(missing_ok=True)
            return (0, 0.0, 0.0, 0.0)
        cur = con.cursor()
        try:
            _copy_parquet(cur, _activity_sql(spill_glob, label), folder.month_file("activity", label))
            if inventories is None:
                _copy_parquet(cur, _inventory_sql(spill_glob, label), folder.month_file("inventory", label))
            else:
                with atomic_path(folder.month_file("inventory", label)) as tmp:
                    pq.write_table(inventories[label], tmp, compression="zstd")
            row = cur.execute(
                f"SELECT count(DISTINCT vehicle_key), coalesce(sum(distance_km ORDER BY vehicle_key, city_adcode), 0), "
                f"coalesce(sum(distance_km ORDER BY vehicle_key) FILTER (WHERE city_adcode = 0), 0), "
                f"coalesce(sum(co2_kg * weight ORDER BY vehicle_key, city_adcode), 0) "
                f"FROM read_parquet({spill_glob}) WHERE month = '{label}'"
            ).fetchone()
        finally:
            cur.close()
        assert row is not None
        return (int(row[0]), float(row[1]), float(row[2]), float(row[3]))

    # Months are independent: two at a time (each query alone keeps about one core busy).
    report("write", 0, len(months))
    with ThreadPoolExecutor(max_workers=2) as pool:
        written = [pool.submit(write_month, month_label(m)) for m in months]
        for i, m in enumerate(months):
            label = month_label(m)
            try:
                totals = written[i].result()
            except BaseException:
                for later in written[i + 1 :]:  # a failed month stops the months not begun
                    later.cancel()
                raise
            report("write", i + 1, len(months))
            counts = kernel_counts.get(m, np.zeros(QUARANTINED, np.int64))
            month_gaps = _write_unobserved(folder, label, gaps, vehicles)
            month_entries[label] = {
                "run_id": run_id,
                "vehicles_active": totals[0],
                "distance_km_unweighted": totals[1],
                "distance_km_outside_mainland_unweighted": totals[2],
                "co2_t": totals[3] / 1000.0,
                "fixes": {name: int(counts[code]) for code, name in enumerate(KERNEL_REASONS[:QUARANTINED])},
                **month_gaps,
                "segments_by_duration": _duration_bins(gap_bins, label),
            }
            summary.distance_km += totals[1]
            summary.co2_t += totals[3] / 1000.0
    _rebuild_database(out, vehicles)
    # This run's quarantine replaces the last one's (the manifest lists the months each run covered).
    shutil.rmtree(folder.quarantine, ignore_errors=True)
    (spill.parent / "quarantine").mkdir(exist_ok=True)
    os.replace(spill.parent / "quarantine", folder.quarantine)
    fault_point("quarantine")
    quality = {
        "pings": {
            "read": ingest.rows,
            "kept": ingest.kept,
            "quarantined": {k: v for k, v in ingest.quarantined.items()},
            "outside_months_asked": outside_window,
        },
        "vehicles": {
            "read": v_counts.rows,
            "kept": v_counts.kept,
            "registration_from_plate": v_counts.registration_from_plate,
            "identical_duplicates": v_counts.identical_duplicates,
            "quarantined": v_counts.quarantined,
        },
        "trajectories": run_stats,
    }
    runs = manifest.get("runs", [])
    runs.append(
        {
            "run_id": run_id,
            "months": month_labels(months),
            "inputs": inputs,
            "quality": quality,
            "config": config.to_dict(),
        }
    )
    manifest = {
        "generator": f"truckcarbon {__version__}",
        "engine": engine_name,
        "month_definition": "local calendar month, Asia/Shanghai (UTC+8)",
        "method": {
            "formula": "co2_kg = fuel_l * ef_kg_per_l; fuel_l = sum_s distance_km_s * rate(standard, s) / 100 "
            "(unknown load: 0.4 empty + 0.6 full), or the measured fuel when plausible",
            "reference_speed_kmh": config.emissions.reference_speed_kmh,
            "fuel_rates_rows": fuel_rates(config.emissions.reference_speed_kmh).table.num_rows,
            "emission_factor": config.emissions.emission_factor,
            "emission_factors": emission_factors().select(["factor_id", "ef_kg_per_l"]).to_pylist(),
        },
        "factor_tables": _factor_versions(),
        "boundaries": boundary_data_version(),
        "months": dict(sorted(month_entries.items())),
        "runs": runs,
    }
    folder.write_manifest(manifest)
    summary.pings_read = ingest.rows
    summary.pings_kept = ingest.kept
    summary.pings_quarantined = sum(ingest.quarantined.values())
    summary.pings_outside_window = outside_window
    summary.vehicles_read = v_counts.rows
    summary.vehicles_kept = v_counts.kept
    summary.vehicles_quarantined = sum(v_counts.quarantined.values())
    summary.quality = quality
    return summary


def _write_unobserved(folder: RunFolder, label: str, gaps: pa.Table, vehicles: pa.Table) -> dict[str, Any]:
    """``unobserved/YYYY-MM.parquet`` (:data:`UNOBSERVED`): one month's gaps that were not attributed, by
    vehicle and city pair (their straight-line displacement, never driven km); the month's totals."""
    part = gaps.filter(pc.equal(gaps["month"], label))
    keys = part["vehicle_id"].to_numpy()
    table = pa.table(
        {
            "vehicle_id": vehicles["vehicle_id"].take(pa.array(keys, pa.int64())),
            **{name: part[name] for name in UNOBSERVED.names[1:]},
        },
        schema=UNOBSERVED.arrow(),
    )
    with atomic_path(folder.month_file("unobserved", label)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return {
        "unobserved_gaps": int(pc.sum(table["gaps"]).as_py() or 0),
        "unobserved_km_unweighted": float(pc.sum(table["unobserved_km"]).as_py() or 0.0),
    }


def _duration_bins(gap_bins: pa.Table, label: str) -> dict[str, dict[str, float]]:
    """The month's kept segments by duration bin: segments and km attributed (above 20 min: bridged gaps),
    unobserved and of implausible motion."""
    part = gap_bins.filter(pc.equal(gap_bins["month"], label)).to_pylist()
    return {row.pop("gap_bin"): {k: v for k, v in row.items() if k != "month"} for row in part}


def _rebuild_database(out: Path, vehicles: pa.Table) -> None:
    """``truckcarbon.duckdb`` with tables inventory, activity and vehicles (written aside, then renamed)."""
    folder = RunFolder(out)
    with atomic_path(folder.database) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            for name in ("inventory", "activity"):
                glob = folder.output(name) / "*.parquet"
                if any(folder.output(name).glob("*.parquet")):
                    source = f"read_parquet({_sql_str(glob)}, hive_partitioning = false)"
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM {source}")
            con.register("vehicles_arrow", vehicles)
            con.execute("CREATE TABLE vehicles AS SELECT * FROM vehicles_arrow")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        fault_point("database")
        wal = Path(str(tmp) + ".wal")
        if wal.exists():
            os.remove(wal)


__all__ = ["RunSummary", "run_pipeline"]
