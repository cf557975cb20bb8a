"""The embedded engine: every pings file read once on this machine, fixes routed by vehicle, kernels on threads.

Pass 1 streams every pings file once (:class:`~truckcarbon.pipeline.reading.FixReader`:
Arrow for Parquet, DuckDB for CSV), validates each batch (failures quarantined with
file and row) and keeps the fixes within ``context_hours`` of a requested month.
Input that Parquet statistics say is sorted by vehicle is **streamed**: chunks of
whole vehicles go to the kernels as they arrive (:class:`_Stream`), and a batch out
of order starts the run again with partitions. Other input is **routed** by a hash
of the vehicle id into partitions
(:class:`~truckcarbon.pipeline.engines.partitions.Partitions`): in memory when it
fits ``rows_per_partition`` (one part per kernel thread), else in narrow columns,
held within ``partition_memory_mb`` and spilled to Arrow files past it, so peak
memory does not grow with the input. A partition of time-ordered input
(vehicles interleaved, each in time order) is put in vehicle order by the kernel
in linear time. Pass 2 runs the attribution step
(:func:`~truckcarbon.pipeline.attribute.attribute`) per chunk or partition on
worker threads; the run's outputs are then aggregated by DuckDB
(:mod:`truckcarbon.pipeline.outputs`).
"""

from __future__ import annotations

import math
import os
import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import numba as nb
import numpy as np
import pyarrow as pa

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.geo.locator import CityLocator
from truckcarbon.ingest.files import estimated_rows
from truckcarbon.pipeline.attribute import SpillBuffer, Tally, attribute
from truckcarbon.pipeline.engines import EngineName, Job
from truckcarbon.pipeline.engines.partitions import MAX_PARTITIONS, Partitions, Routed
from truckcarbon.pipeline.outputs import quarantine_writer
from truckcarbon.pipeline.reading import KERNEL_SCHEMA, FixReader, Reading, vehicle_sorted_hint

# Sorted streaming hands the kernels a chunk once this many rows are held: below a row group's usual
# 2^20 rows, so that every such batch completes a chunk and passes as a view (:class:`_Stream`).
STREAM_CHUNK_ROWS = 1 << 19


class EmbeddedEngine:
    """DuckDB and the kernels' threads on this machine (:class:`~truckcarbon.pipeline.engines.Engine`)."""

    name = EngineName.EMBEDDED
    reads_uris = False

    def description(self) -> str:
        """``embedded (DuckDB <version>)``."""
        return f"embedded (DuckDB {duckdb.__version__})"

    def attribute_pings(self, job: Job) -> tuple[Reading, Tally]:
        """Passes 1 and 2 on this machine (:func:`_attribute_pings`)."""
        return _attribute_pings(job, [f for f in job.files if isinstance(f, Path)])

    def inventories(self, spill: Path, months: list[str]) -> None:
        """None: the run's DuckDB aggregation writes the inventories."""
        return None


class _NotSortedError(TruckcarbonError):
    """The input turned out not to be sorted by vehicle: start again with partitions."""


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
            batch.column(0).to_numpy(), batch.column("quarantine").to_numpy(), self.last
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


def _attribute_pings(job: Job, files: list[Path]) -> tuple[Reading, Tally]:
    """Pass 1 and 2: stream vehicle-sorted input, else route fixes to partitions; kernels on worker threads.

    ``job.digests`` holds the hash of every file, being computed."""
    vehicles, months, config, work, spill, report = (
        job.vehicles,
        job.months,
        job.config,
        job.work,
        job.spill,
        job.report,
    )
    locator = CityLocator(config.crs)
    context_s = int(config.context_hours * 3600)
    threads = max(1, min(config.threads, os.cpu_count() or 1))
    numeric_keys = bool(job.ids.int_ids.size == len(job.ids))
    streaming = vehicle_sorted_hint(files, numeric_keys)
    while True:
        quarantine_dir = work / "quarantine" / "pings"
        shutil.rmtree(quarantine_dir, ignore_errors=True)
        for old in spill.glob("*.parquet"):
            old.unlink()
        reader = FixReader(
            files, job.ids, months, context_s, quarantine_writer(quarantine_dir), report, job.digests,
            config.ingest_rules(), config.crs, config.source_options("pings"),
        )  # fmt: skip
        tally = Tally()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            held = SpillBuffer(spill, vehicles, config)

            def submit(chunks: list[pa.Table], k: int, held: SpillBuffer = held) -> Future[Tally]:
                return pool.submit(attribute, chunks, k, locator, vehicles, months, config, spill, held)

            def submit_loaded(load: Callable[[], pa.Table], k: int, held: SpillBuffer = held) -> Future[Tally]:
                """Load a partition on the thread that attributes it (into that thread's buffers)."""
                return pool.submit(lambda: attribute([load()], k, locator, vehicles, months, config, spill, held))

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
                    parts = Partitions(
                        n_parts, work, config.rows_per_partition, config.spill_compression, threads,
                        config.partition_memory_mb << 20, est,
                    )  # fmt: skip
                    # Batches are cut by partition on every thread, overlapping the reading of the next ones;
                    # they are written (or held) in the input's order, so each vehicle's rows stay in it.
                    with ThreadPoolExecutor(max_workers=threads) as router:
                        routed: deque[Future[tuple[pa.RecordBatch, Routed]]] = deque()
                        for batch in reader.batches():
                            routed.append(router.submit(parts.route, batch))
                            while len(routed) > 2 * threads:
                                parts.add_routed(routed.popleft().result())
                        while routed:
                            parts.add_routed(routed.popleft().result())
                    parts.close()
                    loaders = parts.each()
                    for k, load in enumerate(loaders):
                        report("clean and attribute", k, len(loaders))
                        pending.append(submit_loaded(load, k))
                        while len(pending) >= threads:
                            tally.add(pending.popleft().result())
                    report("clean and attribute", len(loaders), len(loaders))
                    tally.spill_bytes += parts.spilled
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


__all__ = ["MAX_PARTITIONS", "STREAM_CHUNK_ROWS", "EmbeddedEngine"]
