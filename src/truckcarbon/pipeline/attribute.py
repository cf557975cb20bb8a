"""The one attribution step of both engines: kernel, emission method and vehicle attributes on whole vehicles.

:func:`attribute` takes kernel inputs (:data:`~truckcarbon.pipeline.reading.KERNEL_SCHEMA`)
holding all the fixes of each of their vehicles, runs the trajectory kernel
(cleaning, km per vehicle, city and month), keeps what falls in the months asked
for, and spills the activity rows with the emission method and the vehicle's
attributes applied (:func:`attach_vehicles`) as Parquet files of the run's spill
folder. What the kernels counted comes back as a :class:`Tally`, which merges
across chunks, threads and Spark tasks. The embedded engine calls it on worker
threads (its spill batched by :class:`SpillBuffer`), the Spark engine once per
partition.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_labels
from truckcarbon.emissions.method import apply_method
from truckcarbon.geo.locator import CityLocator
from truckcarbon.geo.reference import province_of
from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.trajectory.kernel import Scratch, run_kernel
from truckcarbon.trajectory.schema import GAP_BIN_SCHEMA, GAP_SCHEMA, QUARANTINED, SPEED_COLUMNS

# The trajectory statistics a run sums over every chunk (the manifest's ``trajectories``).
STATS = (
    "unobserved_km",
    "bridged_km",
    "implausible_speed_km",
    "out_of_order",
    "unobserved_segments",
    "implausible_speed_segments",
    "fixes_outside_mainland",
)
SPILL_ROWS = 1 << 20  # activity rows held before they are written to a spill file


@dataclass
class Tally:
    """What the kernels of a run counted (merged from every chunk): fixes by rule per month, trajectory
    statistics, the unobserved gaps (:data:`GAP_SCHEMA`, the vehicle as its key) and the segments by
    duration bin (:data:`GAP_BIN_SCHEMA`)."""

    by_month: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATS, 0.0))
    gaps: list[pa.Table] = field(default_factory=list)
    gap_bins: list[pa.Table] = field(default_factory=list)
    spill_bytes: int = 0  # bytes the engine wrote to disk to route unsorted input (0: streamed or in memory)

    def add(self, other: Tally) -> None:
        """Merge ``other`` into this tally (counts and km summed; gap rows summed as they pile up)."""
        self.spill_bytes += other.spill_bytes
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
        """The unobserved gaps summed by (vehicle key, month, from city, to city)."""
        return _sum_gaps(self.gaps)

    def gap_bins_table(self) -> pa.Table:
        """The kept segments summed by (month, duration bin)."""
        return _sum_gap_bins(self.gap_bins)


def _summed(tables: list[pa.Table], schema: pa.Schema, keys: list[str], across: bool = False) -> pa.Table:
    """Rows of ``schema`` summed by ``keys`` (its other columns are counts and km), sorted by them.

    ``across``: a key's rows come from several partitions (not one vehicle's); they are then sorted on
    every column and summed in one thread, so that the float sums do not depend on the order in which the
    partitions finished (a rerun writes the same bytes).
    """
    if not tables:
        return schema.empty_table()
    values = [c for c in schema.names if c not in keys]
    rows = pa.concat_tables(tables)
    if across:
        rows = rows.sort_by([(c, "ascending") for c in schema.names])
    summed = rows.group_by(keys, use_threads=not across).aggregate([(c, "sum") for c in values])
    return summed.rename_columns([*keys, *values]).select(schema.names).sort_by([(k, "ascending") for k in keys])


def _sum_gaps(tables: list[pa.Table]) -> pa.Table:
    """Gap rows summed by (vehicle, month, from city, to city)."""
    return _summed(tables, GAP_SCHEMA, ["vehicle_id", "month", "from_city_adcode", "to_city_adcode"])


def _sum_gap_bins(tables: list[pa.Table]) -> pa.Table:
    """Segment counts summed by (month, duration bin)."""
    return _summed(tables, GAP_BIN_SCHEMA, ["month", "gap_bin"], across=True)


def attach_vehicles(activity: pa.Table, vehicles: pa.Table, config: PipelineConfig) -> pa.Table:
    """Emission method, vehicle attributes and weight on activity rows whose ``vehicle_id`` is the run's
    vehicle key (the row of ``vehicles``): the key becomes ``vehicle_key``, the id its text."""
    keys = np.asarray(activity["vehicle_id"].to_numpy(), dtype=np.int64)
    if keys.size and (keys.min() < 0 or keys.max() >= vehicles.num_rows):
        raise InputError("activity of a vehicle that is not in the vehicles table")
    take = pa.array(keys)
    std = vehicles["standard_code"].take(take).to_numpy()
    klass = vehicles["class_code"].take(take).to_numpy()
    fuel = vehicles["fuel_code"].take(take).to_numpy()
    province = pc.fill_null(province_of(activity["city_adcode"].combine_chunks()), 0).to_numpy(zero_copy_only=False)
    out = apply_method(activity, std, config.emissions, klass, fuel, province)
    out = out.drop_columns([c for c in SPEED_COLUMNS if c in out.column_names])  # the methods' input only
    out = out.set_column(0, "vehicle_key", pa.array(keys)).add_column(
        0, "vehicle_id", vehicles["vehicle_id"].take(take)
    )
    for name in ("emission_standard", "vehicle_class", "fuel_type", "weight", "registration_city_adcode"):
        out = out.append_column(name, vehicles[name].take(take))
    return out


_scratch = threading.local()


def thread_scratch(name: str) -> Scratch:
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
    return np.concatenate(parts, out=thread_scratch("columns").buffer(i, sum(p.size for p in parts), parts[0].dtype))


def attribute(
    chunks: list[pa.Table],
    k: int,
    locator: CityLocator,
    vehicles: pa.Table,
    months: set[int] | None,
    config: PipelineConfig,
    spill: Path,
    held: SpillBuffer | None = None,
) -> Tally:
    """Kernel, emission method and vehicle attributes for chunks of whole vehicles; spills their activity
    (as ``spill/part-<k>.parquet``, or into ``held``, which writes it in larger files, when given)."""
    tally = Tally()
    activity = []
    asked = None if months is None else pa.array(month_labels(sorted(months)))
    for fixes in chunks:
        if fixes.num_rows == 0:
            continue
        vid, t, lon, lat, speed, load, fuel, odometer, acc, aside = (_numpy(fixes, i) for i in range(10))
        result = run_kernel(
            vid, t, lon, lat, locator, speed, config.rules,
            load=load, fuel_level_l=fuel, odometer_km=odometer, acc_on=acc, skip=aside >= 0,
            scratch=thread_scratch("kernel"),
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
        pq.write_table(attach_vehicles(pa.concat_tables(activity), vehicles, config), spill / f"part-{k:06d}.parquet")
    return tally


class SpillBuffer:
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
        """Hold ``tables``; write what is held once it reaches ``SPILL_ROWS`` rows."""
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
            table = attach_vehicles(pa.concat_tables(batch), self.vehicles, self.config)
            pq.write_table(table, self.spill / f"part-{k:06d}.parquet")


__all__ = ["SPILL_ROWS", "STATS", "SpillBuffer", "Tally", "attach_vehicles", "attribute"]
