"""A run of the pipeline, from the input files to a complete run folder: :func:`run_pipeline`.

Flow:

1. **Vehicles** are validated (:func:`validate_vehicles`); failures are quarantined.
2. The **engine** (:mod:`truckcarbon.pipeline.engines`: embedded or Spark) reads and
   validates the pings, keeps the fixes within ``context_hours`` of a requested
   month and runs the attribution step on every vehicle's fixes
   (:mod:`truckcarbon.pipeline.attribute`), leaving the activity rows in the run's
   spill folder. A pre-aggregated activity table (:mod:`truckcarbon.ingest.activity`)
   may be given instead of pings.
3. The **outputs** (:mod:`truckcarbon.pipeline.outputs`) are written per month
   (``activity/``, ``inventory/``, ``unobserved/``, each file atomically; a folder
   reads as one table), then ``truckcarbon.duckdb`` and the quarantine, and
   ``manifest.json`` last (:mod:`truckcarbon.pipeline.manifest`).

The run writes into a staging folder beside the run folder (holding hard links to
the old folder's files it keeps) and swaps it in at the end, under a lock
(:meth:`truckcarbon.core.runfolder.RunFolder.rerun`): killed at any point, the run
folder is the old run byte for byte or the new one complete.

Months are Asia/Shanghai calendar months. Because every month is computed from
the same window of fixes (the month plus ``context_hours`` either side), a month
run alone gives the same figures as in a run of many months.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.faults import fault_point
from truckcarbon.core.months import month_labels, parse_month
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.runtime import fewer_collections
from truckcarbon.ingest.activity import read_activity
from truckcarbon.ingest.files import discover, file_digest, hive_month
from truckcarbon.ingest.sources import SourceOptions, column_names, read_table
from truckcarbon.ingest.vehicles import validate_vehicles, vehicle_ids
from truckcarbon.pipeline.attribute import Tally, attach_vehicles
from truckcarbon.pipeline.checks import input_warnings, refuse_empty_input
from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.pipeline.engines import Engine, EngineName, Job, Progress
from truckcarbon.pipeline.engines.embedded import EmbeddedEngine
from truckcarbon.pipeline.engines.spark import SparkEngine
from truckcarbon.pipeline.manifest import new_run_id, quality_record, write_manifest
from truckcarbon.pipeline.outputs import quarantine_writer, write_outputs
from truckcarbon.pipeline.reading import Reading
from truckcarbon.trajectory.schema import KEPT, QUARANTINED


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
    spill_bytes: int = 0  # written to disk to route input not sorted by vehicle (0: streamed or held in memory)


def _noop(stage: str, done: int, total: int) -> None:
    return None


def engine_for(name: EngineName | str, spark_master: str | None = None) -> Engine:
    """The engine called ``name`` (an :class:`EngineName` or its value); :class:`InputError` for an unknown
    name, and for ``spark`` when PySpark is not installed."""
    try:
        engine = EngineName(name)
    except ValueError:
        raise InputError(f"unknown engine {name!r}; use one of {', '.join(EngineName)}") from None
    match engine:
        case EngineName.EMBEDDED:
            return EmbeddedEngine()
        case EngineName.SPARK:
            return SparkEngine(spark_master)


def run_pipeline(
    pings: Path | str | None,
    vehicles: Path,
    out: Path,
    months: list[str] | None = None,
    config: PipelineConfig | None = None,
    *,
    activity: Path | None = None,
    progress: Progress | None = None,
    engine: EngineName | str = EngineName.EMBEDDED,
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
        ``embedded`` (DuckDB, this machine) or ``spark`` (PySpark, the extra
        ``truckcarbon[spark]``; ``spark_master`` such as ``local[2]``,
        ``spark://host:7077``, ``yarn``; default: the active session or ``local[2]``).
    """
    started = time.perf_counter()
    config = config or PipelineConfig()
    config.validate()
    report = progress or _noop
    chosen = engine_for(engine, spark_master)
    if (pings is None) == (activity is None):
        raise InputError("give either pings or a pre-aggregated activity table, not both or neither")
    requested = {parse_month(m) for m in months} if months else None
    files = _ping_files(pings, requested, chosen)
    report = _with_fault_points(report)
    # Built in a staging folder beside ``out`` (the work folder too), swapped in when complete.
    with RunFolder(out).rerun() as stage, fewer_collections(), file_hashes(files) as digests:
        summary = _run(chosen, files, digests, vehicles, stage.path, stage.work, requested, config, activity, report)
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


def _ping_files(pings: Path | str | None, requested: set[int] | None, engine: Engine) -> list[Path] | list[str]:
    """The pings files a run reads (a URI, for an engine that reads URIs, as one string); none when ``pings``
    is None."""
    if pings is None:
        return []
    uri = isinstance(pings, str) and "://" in pings
    if uri and not engine.reads_uris:
        if not str(pings).startswith("file://"):
            raise InputError(f"pings: {pings} is a URI; read it with --engine spark, or give a local path")
        pings, uri = Path(str(pings)[len("file://") :]), False
    files: list[Path] | list[str] = [str(pings)] if uri else discover(Path(pings), "pings")
    if requested is not None and not uri:
        files = [f for f in files if isinstance(f, Path) and _may_hold(f, requested)]
        if not files:
            raise InputError(f"pings: no file under {pings} can hold the months asked for")
    return files


def _may_hold(f: Path, months: set[int]) -> bool:
    """False only for a ``month=YYYY-MM`` file more than a month away from every month asked for."""
    m = hive_month(f)
    return m is None or any(k in months for k in (m - 1, m, m + 1))


@contextmanager
def file_hashes(files: list[Path] | list[str]) -> Iterator[dict[Path, Future[str]]]:
    """The hashes of the local ``files`` (for the manifest), computed from the start on a thread of their own:
    hashing releases the GIL, so it fills the second core while the first starts the run up (imports, the
    vehicles). Hashes not begun are cancelled when the block ends; a URI is not hashed."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="truckcarbon-hash") as hasher:
        digests = {f: hasher.submit(file_digest, f) for f in files if isinstance(f, Path)}
        try:
            yield digests
        finally:
            for d in digests.values():
                d.cancel()


def _run(
    engine: Engine,
    files: list[Path] | list[str],
    digests: dict[Path, Future[str]],
    vehicles_path: Path,
    out: Path,
    work: Path,
    requested: set[int] | None,
    config: PipelineConfig,
    activity_path: Path | None,
    report: Progress,
) -> RunSummary:
    """The run into the staging folder ``out`` (its work folder ``work``): every output, the manifest last."""
    vehicles_table = read_table(vehicles_path, "vehicles", options=_vehicle_options(vehicles_path, config))
    vehicles, v_quarantine, v_counts = validate_vehicles(vehicles_table, str(vehicles_path))
    if vehicles.num_rows == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in v_counts.quarantined.items() if v)
        raise InputError(
            f"{vehicles_path}: no valid vehicle (all {v_counts.rows} rows set aside: {reasons}); fix the table"
        )
    quarantine_writer(work / "quarantine" / "vehicles")(v_quarantine)
    ids = vehicle_ids(vehicles, v_counts)
    inputs: list[dict[str, Any]] = [
        {"role": "vehicles", "path": str(vehicles_path), "hash": file_digest(vehicles_path)}
    ]
    spill = work / "activity"
    spill.mkdir()
    reading, tally = Reading(), Tally()
    if activity_path is not None:
        table = read_activity(activity_path, ids)
        if requested is not None:
            table = table.filter(pc.is_in(table["month"], pa.array(month_labels(sorted(requested)))))
        seen_months = {parse_month(m) for m in pc.unique(table["month"]).to_pylist()}
        pq.write_table(attach_vehicles(table, vehicles, config), spill / "part-00000.parquet")
        inputs.append({"role": "activity", "path": str(activity_path), "hash": file_digest(activity_path)})
    else:
        job = Job(files, vehicles, ids, requested, config, work, spill, report, digests)
        reading, tally = engine.attribute_pings(job)
        inputs += reading.inputs
        refuse_empty_input(inputs, reading.ingest, config.ingest_rules())
        seen_months = set(tally.by_month) if requested is None else set(requested)
    warnings = input_warnings(inputs, v_counts, config.max_quarantine_share)

    labels = month_labels(sorted(seen_months))
    folder = RunFolder(out)  # the staging folder: its files are replaced, never written into
    previous = folder.manifest_data()
    run_id = new_run_id()
    inventories = engine.inventories(spill, labels)
    totals = write_outputs(folder, work, vehicles, labels, tally.gaps_table(), inventories, report)
    quality = quality_record(reading.ingest, v_counts, reading.outside_window, tally.stats)
    write_manifest(folder, previous, run_id, totals, tally, inputs, quality, config, engine.description())

    summary = RunSummary(out=out, months=labels, quality=quality, warnings=warnings)
    for month in totals.values():
        summary.distance_km += month.distance_km_unweighted
        summary.co2_t += month.co2_t
    summary.pings_read = reading.ingest.rows
    summary.spill_bytes = tally.spill_bytes
    summary.pings_kept = reading.ingest.kept
    summary.pings_quarantined = sum(reading.ingest.quarantined.values())
    summary.pings_outside_window = reading.outside_window
    summary.vehicles_read = v_counts.rows
    summary.vehicles_kept = v_counts.kept
    summary.vehicles_quarantined = sum(v_counts.quarantined.values())
    for m in seen_months:
        counts = tally.by_month.get(m)
        if counts is not None:
            summary.fixes_used += int(counts[KEPT])
            summary.fixes_cleaned += int(counts[:QUARANTINED].sum() - counts[KEPT])
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


__all__ = ["RunSummary", "engine_for", "file_hashes", "run_pipeline"]
