"""Routed pings of the embedded engine: partitions by vehicle hash, held in memory within a budget, else spilled.

Input that is not sorted by vehicle (a platform's time-ordered dump, the
simulator's month folders) is cut by a hash of the vehicle key into partitions
(:class:`Partitions`), each holding whole vehicles in the input's order. Its rows
are kept in narrow columns (:mod:`truckcarbon.pipeline.engines.narrow`); within
a cut batch a partition's rows are grouped by vehicle, so that the kernel's
placement of a partition in vehicle order moves runs of rows, not single rows.
Partitions are held in memory while they fit ``memory_bytes``; past it the last
held ones are spilled to Arrow IPC files (optionally LZ4 or Zstandard
compressed), so peak memory does not grow with the input. A partition that ends
up with more than ``max_rows`` rows is split again by another hash before it is
loaded: whatever the input size, one loaded partition holds about ``max_rows`` rows.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.ipc as ipc

from truckcarbon.pipeline.attribute import thread_scratch
from truckcarbon.pipeline.engines.narrow import codecs, decode, decode_column, encode, recode, vehicle_keys, widened
from truckcarbon.pipeline.reading import KERNEL_SCHEMA
from truckcarbon.trajectory.kernel import placing_buffers, time_ordered_places

MAX_PARTITIONS = 512

Routed = tuple[int, list[tuple[int, pa.RecordBatch]]]  # (partitions when cut, their parts of a batch)


class _Sink:
    """A partition's spill files, written in the input's order: one file while the codecs of its parts
    agree; a part that needs wider codecs closes the file and opens the next one in the wider codecs (the
    later parts are recoded to them), so a partition has a file or two, read back in order."""

    def __init__(self, stem: Path, options: ipc.IpcWriteOptions) -> None:
        self.stem, self.options = stem, options
        self.files: list[Path] = []
        self.writer: ipc.RecordBatchFileWriter | None = None
        self.codecs: tuple[str, ...] = ()

    def write(self, part: pa.RecordBatch) -> None:
        own = codecs(part.schema)
        if self.writer is None or widened(self.codecs, own) != self.codecs:
            self.codecs = own if self.writer is None else widened(self.codecs, own)
            self.close()
            self.files.append(self.stem.with_name(f"{self.stem.name}-{len(self.files)}.arrow"))
            self.writer = None
        part = recode(part, self.codecs)
        if self.writer is None:
            self.writer = ipc.new_file(self.files[-1], part.schema, options=self.options)
        self.writer.write_batch(part)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Partitions:
    """Kernel inputs routed by vehicle hash: in memory (one partition per thread), or ``n`` partitions held
    within ``memory_bytes`` and spilled past it.

    Input planned to fit in memory (``n`` = 1) that outgrows ``max_rows`` is routed
    into partitions after all.
    """

    def __init__(
        self,
        n: int,
        work: Path,
        max_rows: int,
        compression: str = "none",
        ways: int = 1,
        memory_bytes: int = 0,
        rows_expected: int = 0,
    ) -> None:
        """``ways``: input planned to fit in memory is routed into this many parts (one per kernel thread);
        ``rows_expected``: the input's estimated rows, which plans the partitions held."""
        self.n = n
        self.rows_expected = rows_expected
        self.planned = threading.Lock()
        self.ways = max(1, ways)
        self.work = work
        self.max_rows = max_rows
        self.memory_bytes = memory_bytes
        # Spill files compressed buffer by buffer (LZ4 or Zstandard: Arrow IPC's codecs), read back as they are.
        self.options = ipc.IpcWriteOptions(compression=None if compression == "none" else compression)
        self.memory: list[list[pa.RecordBatch]] = [[] for _ in range(self.ways)]
        self.held: dict[int, list[pa.RecordBatch]] = {}  # narrow parts of partitions held in memory
        self.held_bytes = 0
        self.spilling_from = -1  # partitions from this one on are spilled (planned on the first batch cut)
        self.sinks: dict[int, _Sink] = {}  # the spill files of each partition spilled
        self.counts: dict[int, int] = {}
        self.rows = 0
        self.spilled = 0  # bytes written to the partition files

    def route(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, Routed]:
        """``batch`` cut by partition, for :meth:`add_routed` (thread-safe: batches are cut on several threads)."""
        n = self.n
        return batch, (n, list(_cut(batch, n, self._held_below(batch))) if n > 1 else [])

    def _held_below(self, batch: pa.RecordBatch) -> int:
        """The partitions held (those below it): as many as the budget holds at the first batch's narrow
        bytes per row, the input's estimated rows spread evenly; fewer once it is found larger."""
        with self.planned:
            if self.spilling_from < 0:
                per_row = max(1.0, encode(batch.slice(0, 4096)).nbytes / max(1, min(4096, batch.num_rows)))
                per_part = max(1.0, max(self.rows_expected, batch.num_rows) / self.n * per_row)
                self.spilling_from = min(self.n, int(self.memory_bytes // per_part))
            return self.spilling_from

    def add_routed(self, routed: tuple[pa.RecordBatch, Routed]) -> None:
        """Add a batch :meth:`route` cut (in the input's order); cut again if the partitions changed since."""
        batch, (n, parts) = routed
        if n != self.n or n == 1:
            self.add(batch)
            return
        self.rows += batch.num_rows
        self._put(parts)

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        if self.n > 1:
            self._put(_cut(batch, self.n, self._held_below(batch)))
            return
        for p, part in _route(batch, self.ways, 0) if self.ways > 1 else [(0, batch)]:
            self.memory[p].append(part)
        if self.rows <= self.max_rows * 1.5:
            return
        # More rows than planned (a compressed CSV holds more than its size suggests): partitions after all.
        self.n = min(MAX_PARTITIONS, max(2, math.ceil(4 * self.rows / self.max_rows)))
        self.rows_expected = 2 * self.rows  # at least: the estimate was short
        held, self.memory, self.rows = self.memory, [], 0
        for b in (b for part in held for b in part):
            self.add(b)

    def _put(self, parts: Iterable[tuple[int, pa.RecordBatch]]) -> None:
        for p, part in parts:
            self.counts[p] = self.counts.get(p, 0) + part.num_rows
            if p < self.spilling_from:
                self.held.setdefault(p, []).append(part)
                self.held_bytes += part.nbytes
            else:
                self._write(p, part)
        while self.held_bytes > self.memory_bytes and self.held:
            self._spill(max(self.held))

    def _spill(self, p: int) -> None:
        """Spill held partition ``p`` (and every partition after it from now on)."""
        self.spilling_from = min(self.spilling_from, p)
        for part in self.held.pop(p):
            self.held_bytes -= part.nbytes
            self._write(p, part)

    def _write(self, p: int, part: pa.RecordBatch) -> None:
        sink = self.sinks.get(p)
        if sink is None:
            sink = self.sinks[p] = _Sink(self.work / f"pings-{p:04d}", self.options)
        sink.write(part)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.spilled += sum(f.stat().st_size for sink in self.sinks.values() for f in sink.files)

    def each(self) -> list[Callable[[], pa.Table]]:
        """One loader per partition (held ones first, freeing their memory), so that only the partitions
        being attributed are loaded: call each on the thread that attributes it (it decodes into that
        thread's buffers)."""
        if self.n == 1:
            return [functools.partial(pa.Table.from_batches, part, KERNEL_SCHEMA) for part in self.memory if part]
        loaders: list[Callable[[], pa.Table]] = []
        for p in sorted(self.held):
            parts = self.held.pop(p)
            self.held_bytes -= sum(b.nbytes for b in parts)
            pieces = _split_batches(parts, self.counts[p], self.max_rows)
            loaders += [functools.partial(_decoded, piece) for piece in pieces]
        for p in sorted(self.sinks):
            if self.counts[p] <= self.max_rows * 1.5:
                loaders.append(functools.partial(_read_spilled, self.sinks[p].files))
            else:
                loaders += [functools.partial(_read_spilled, files) for files in self._split(p)]
        return loaders

    def _split(self, p: int) -> list[list[Path]]:
        """Route the rows of partition ``p``'s files into smaller ones by a second hash (streaming), in their
        order; remove them."""
        k = math.ceil(self.counts[p] / self.max_rows)
        sinks: dict[int, _Sink] = {}
        for path in self.sinks[p].files:
            with ipc.open_file(path) as f:
                for i in range(f.num_record_batches):
                    batch = f.get_batch(i)
                    for q, part in _route(batch, k, 1, vehicle_keys(batch)):
                        if q not in sinks:
                            sinks[q] = _Sink(self.work / f"pings-{p:04d}-split-{q:04d}", self.options)
                        sinks[q].write(part)
            path.unlink()
        for sink in sinks.values():
            sink.close()
        self.spilled += sum(f.stat().st_size for sink in sinks.values() for f in sink.files)
        return [sinks[q].files for q in sorted(sinks)]


def _cut(batch: pa.RecordBatch, n: int, held_below: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``batch`` in narrow columns, cut by partition; within a part, rows grouped by vehicle (in order).

    A part of a partition below ``held_below`` (held in memory) is a copy of its own
    rows, so that it frees its memory when spilled later; the other parts are
    slices of one copy of their rows (written at once).
    """
    narrow = encode(batch)
    order, bounds = _route_vehicle_order(batch.column(0).to_numpy(), n)
    nonempty = np.flatnonzero(np.diff(bounds)).tolist()
    rest = int(bounds[min(held_below, n)])
    for p in (p for p in nonempty if p < held_below):
        yield p, _taken(narrow, order[bounds[p] : bounds[p + 1]])
    if rest < order.size:
        spilled = _taken(narrow, order[rest:])
        for p in (p for p in nonempty if p >= held_below):
            yield p, spilled.slice(int(bounds[p]) - rest, int(bounds[p + 1] - bounds[p]))


def _taken(batch: pa.RecordBatch, rows: npt.NDArray[np.int64]) -> pa.RecordBatch:
    """The ``rows`` of a narrow batch (NumPy's gather: no nulls to carry, a fraction of Arrow's take)."""
    arrays = [
        pa.nulls(rows.size) if pa.types.is_null(c.type) else pa.array(np.take(c.to_numpy(), rows))
        for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _route(
    batch: pa.RecordBatch, n: int, level: int, vid: npt.NDArray[np.int64] | None = None
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The rows of ``batch`` by partition ``hash(vehicle) % n`` (a vehicle's rows all go to one partition).

    ``level`` picks independent bits of the hash, so that a partition can be split again; ``vid``: the
    vehicle keys (the batch's first column when None).
    """
    order, bounds = _route_order(batch.column(0).to_numpy() if vid is None else vid, n, level)
    routed = batch.take(pa.array(order))
    for p in np.flatnonzero(np.diff(bounds)).tolist():
        yield p, routed.slice(int(bounds[p]), int(bounds[p + 1] - bounds[p]))


@nb.njit(cache=True, nogil=True)
def _partition_of(v, n, level):  # type: ignore[no-untyped-def]
    """The 20 bits from bit ``20 * level`` of splitmix64's finaliser of ``v`` (every bit depends on every
    bit), modulo ``n``."""
    h = np.uint64(v)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    h >>= np.uint64(20 * level)
    return np.int64((h & np.uint64(0xFFFFF)) % np.uint64(n))


@nb.njit(cache=True, nogil=True)
def _counting_order(bucket, k):  # type: ignore[no-untyped-def]
    """(the stable order of the rows by ``bucket`` (0 to k - 1), the buckets' bounds in it: k + 1 offsets):
    a counting sort, rows keeping their order within a bucket."""
    counts = np.zeros(k + 1, np.int64)
    for b in bucket:
        counts[b + 1] += 1
    for j in range(k):  # offsets: where each bucket's rows start
        counts[j + 1] += counts[j]
    bounds = counts.copy()
    order = np.empty(bucket.shape[0], np.int64)
    for i in range(bucket.shape[0]):
        b = bucket[i]
        order[counts[b]] = i
        counts[b] += 1
    return order, bounds


@nb.njit(cache=True, nogil=True)
def _route_order(vid, n, level):  # type: ignore[no-untyped-def]
    """(the stable order of the rows by partition, the partitions' bounds in it: n + 1 offsets)."""
    part = np.empty(vid.shape[0], np.int64)
    for i in range(vid.shape[0]):
        part[i] = _partition_of(vid[i], n, level)
    return _counting_order(part, n)


@nb.njit(cache=True, nogil=True)
def _route_vehicle_order(vid, n):  # type: ignore[no-untyped-def]
    """As :func:`_route_order` at level 0, a partition's rows also grouped by vehicle (stable within it).

    The batch's vehicles are ranked by (partition, key): by a table over the keys'
    range when it is narrow (the run's keys are rows of its vehicles table), else by
    a binary search; a counting sort by rank orders the rows.
    """
    m = vid.shape[0]
    if m == 0:
        return np.empty(0, np.int64), np.zeros(n + 1, np.int64)
    lo, hi = vid.min(), vid.max()
    dense = hi - lo < max(4 * m, 1 << 16)
    if dense:
        seen = np.zeros(hi - lo + 1, np.bool_)
        for i in range(m):
            seen[vid[i] - lo] = True
        keys = np.flatnonzero(seen) + lo
    else:
        keys = np.unique(vid)
    k = keys.shape[0]
    parts = np.empty(k, np.int64)
    for j in range(k):
        parts[j] = _partition_of(keys[j], n, 0)
    by_part = np.argsort(parts, kind="mergesort")  # the vehicles by partition, then key
    rank = np.empty(k, np.int64)
    rank[by_part] = np.arange(k)
    table = np.empty(hi - lo + 1 if dense else 1, np.int64)
    if dense:
        table[keys - lo] = rank
    row_rank = np.empty(m, np.int64)
    for i in range(m):
        row_rank[i] = table[vid[i] - lo] if dense else rank[np.searchsorted(keys, vid[i])]
    order, starts = _counting_order(row_rank, k)
    bounds = np.zeros(n + 1, np.int64)
    for j in range(k):  # a partition's rows end where its last vehicle's do
        bounds[parts[by_part[j]] + 1] = starts[j + 1]
    for q in range(n):
        bounds[q + 1] = max(bounds[q + 1], bounds[q])
    return order, bounds


def _split_batches(parts: list[pa.RecordBatch], rows: int, max_rows: int) -> list[list[pa.RecordBatch]]:
    """A held partition's batches, split again by a second hash when it holds more than planned."""
    if rows <= max_rows * 1.5:
        return [parts]
    k = math.ceil(rows / max_rows)
    pieces: list[list[pa.RecordBatch]] = [[] for _ in range(k)]
    for batch in parts:
        for q, part in _route(batch, k, 1, vehicle_keys(batch)):
            pieces[q].append(part)
    return [p for p in pieces if p]


def _kernel_input(batches: list[pa.RecordBatch]) -> pa.Table:
    """Narrow batches of one partition as kernel input, in this thread's buffers; rows of a time-ordered
    dump put in (vehicle, time) order on the way, where the kernel would place them (it then uses them as
    they are: :func:`~truckcarbon.trajectory.kernel.time_ordered_places`)."""
    rows = sum(b.num_rows for b in batches)
    kernel = thread_scratch("kernel")
    vid_buffer, t_buffer, flag_buffer = placing_buffers(kernel, rows)
    vid = decode_column(batches, 0, vid_buffer)
    t = decode_column(batches, 1, t_buffer)
    aside = np.greater_equal(decode_column(batches, 9, flag_buffer), 0)
    places = time_ordered_places(vid, t, aside, kernel)
    scratch = thread_scratch("columns")
    out = [scratch.buffer(i, rows, f.type.to_pandas_dtype()) for i, f in enumerate(KERNEL_SCHEMA)]
    return decode(batches, out, places)


def _decoded(batches: list[pa.RecordBatch]) -> pa.Table:
    """Held narrow batches as kernel input (:func:`_kernel_input`)."""
    table = _kernel_input(batches)
    batches.clear()  # their memory goes as soon as they are decoded
    return table


def _read_spilled(paths: list[Path]) -> pa.Table:
    """A spilled partition (its files memory-mapped, read in order) as kernel input (:func:`_kernel_input`)."""
    with contextlib.ExitStack() as stack:  # the maps are closed (their pages unmapped) once decoded
        sources = [ipc.open_file(stack.enter_context(pa.memory_map(str(p)))) for p in paths]
        batches = [f.get_batch(i) for f in sources for i in range(f.num_record_batches)]
        table = _kernel_input(batches)
        batches.clear()
        return table


__all__ = ["MAX_PARTITIONS", "Partitions"]
