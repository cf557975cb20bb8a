"""Pass 1 of the embedded engine: every pings file read once into kernel-input batches.

Typed Parquet files (the contract's column types) are read by Arrow, row group
by row group, and validated by the compiled rules (:func:`validate_typed`);
other files (CSV, text columns) go through :func:`validate_pings`. Both apply the same rules with the
same reason codes; rejected rows are written to the quarantine with their file
and row, and only fixes within ``context_s`` of a requested month are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_start_utc_s
from truckcarbon.geo.crs import bd09_to_gcj02
from truckcarbon.ingest.ids import VehicleIds
from truckcarbon.ingest.pings import validate_pings
from truckcarbon.ingest.quarantine import LINE_REASONS, REASONS, IngestCounts, quarantine_table
from truckcarbon.ingest.rules import IngestRules
from truckcarbon.ingest.sources import SourceOptions, mapped_names, read_batches
from truckcarbon.ingest.typed import PING_COLUMNS, TypedPlan, typed_plan, validate_typed

KERNEL_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),  # the run's vehicle key (:class:`VehicleIds`)
        ("t", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("speed", pa.float32()),
        ("load", pa.int8()),
        ("fuel", pa.float64()),
        ("odometer", pa.float64()),
        ("acc", pa.int8()),  # ignition: 1 on, 0 off, -1 not reported
        ("quarantine", pa.int8()),  # -1: a fix; else the ingest reason code of a quarantined row
    ]
)
BATCH_ROWS = 1 << 20
UNIT_ROWS = 4 << 20  # a row group larger than this is read in batches
ASIDE_ROWS = 1 << 20  # rows set aside are written out at least this often


def window_bounds(months: set[int] | None, context_s: int) -> npt.NDArray[np.int64] | None:
    """Sorted [start, end) UTC bounds of the fixes a run needs (months widened by the context)."""
    if months is None:
        return None
    bounds: list[list[int]] = []
    for m in sorted(months):
        lo, hi = (int(x) for x in month_start_utc_s([m, m + 1]))
        lo, hi = lo - context_s, hi + context_s
        if bounds and lo <= bounds[-1][1]:
            bounds[-1][1] = max(bounds[-1][1], hi)
        else:
            bounds.append([lo, hi])
    return np.array(bounds, dtype=np.int64).ravel()


def in_window(t: npt.NDArray[np.int64], bounds: npt.NDArray[np.int64] | None) -> npt.NDArray[np.bool_] | None:
    """True where a fix is needed; None when every fix is."""
    if bounds is None:
        return None
    return np.asarray(np.searchsorted(bounds, t, side="right") % 2 == 1)


@dataclass
class Reading:
    """Counters and records of pass 1."""

    ingest: IngestCounts = field(default_factory=IngestCounts)
    outside_window: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for reason in LINE_REASONS:
            self.ingest.quarantined.setdefault(reason, 0)


class FixReader:
    """Reads pings files into kernel-input record batches (:data:`KERNEL_SCHEMA`)."""

    def __init__(
        self,
        files: list[Path],
        ids: VehicleIds,
        months: set[int] | None,
        context_s: int,
        write_quarantine: Callable[[pa.Table], None],
        progress: Callable[[str, int, int], None],
        digests: Mapping[Path, Future[str]],
        rules: IngestRules | None = None,
        crs: str = "wgs84",
        options: SourceOptions | None = None,
    ) -> None:
        self.files = files
        self.digests = digests  # every file's hash, being computed by the caller (for the manifest)
        self.ids = ids
        self.crs = crs
        self.options = options or SourceOptions()
        self.rules = rules or IngestRules()
        self.bounds = window_bounds(months, context_s)
        self.write_quarantine = write_quarantine
        self.progress = progress
        self.state = Reading()
        self.con = duckdb.connect(config={"memory_limit": "1GB"})
        self.con.execute("SET enable_progress_bar = false")  # the run has its own progress bars

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Kernel inputs of every file in order (a file's rows in file order)."""
        # Typed files are read and validated on a side thread, one row group ahead (:meth:`_typed`).
        with ThreadPoolExecutor(max_workers=1) as ahead:
            per_file: dict[Path, dict[str, Any]] = {}
            for done, f in enumerate(self.files):
                self.progress("read", done, len(self.files))
                schema = _parquet_schema(f) if f.name.lower().endswith((".parquet", ".pq")) else None
                names: dict[str, str] = {}
                if schema is not None:
                    # Read by the file's own column names, validated under the contract's.
                    names = mapped_names(f, self.options)
                    contract = [pa.field(names[x.name], x.type) for x in schema if x.name in names]
                    schema = pa.schema(contract) if len({x.name for x in contract}) == len(contract) else None
                plan = typed_plan(schema) if schema is not None else None
                before = IngestCounts(
                    self.state.ingest.rows, self.state.ingest.kept, dict(self.state.ingest.quarantined)
                )
                yield from self._typed(f, plan, ahead, names) if plan is not None else self._general(f)
                per_file[f] = _difference(self.state.ingest, before)
            self.progress("read", len(self.files), len(self.files))
            for f in self.files:
                entry = {"role": "pings", "path": str(f), "hash": self.digests[f].result(), **per_file.get(f, {})}
                self.state.inputs.append(entry)

    def _keep(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        batch = in_index_crs(batch, self.crs)
        need = in_window(batch.column(1).to_numpy(), self.bounds)
        if need is not None and not need.all():
            self.state.outside_window += int(need.size - need.sum())
            batch = batch.filter(pa.array(need))
        return batch if batch.num_rows else None

    def _typed(
        self, f: Path, plan: TypedPlan, ahead: ThreadPoolExecutor, names: dict[str, str]
    ) -> Iterator[pa.RecordBatch]:
        """A typed Parquet file read by Arrow row group by row group (columns decoded on several threads) and
        validated by the compiled rules (:func:`validate_typed`), both on ``ahead`` one row group ahead of
        the caller. ``names``: the file's column of each contract column it gives."""
        aside = _SetAside(f, plan.columns, self.write_quarantine)
        row = 0  # data rows of the file read so far, for errors and source rows
        source = {contract: own for own, contract in names.items()}
        renamed = any(source.get(c, c) != c for c in plan.columns)
        try:
            pf = pq.ParquetFile(f, read_dictionary=[source.get(c, c) for c in plan.read_dictionary] or None)
            units = _read_units(pf, [source.get(c, c) for c in plan.columns])

            def read_and_validate() -> list[tuple[pa.RecordBatch, list[pa.Array], Any, Any]] | None:
                table = next(units, None)
                if table is None:
                    return None
                if renamed:
                    table = table.rename_columns(list(plan.columns))
                return [(rb, *validate_typed(rb, plan, self.ids, self.rules, str(f))) for rb in table.to_batches()]

            nxt = ahead.submit(read_and_validate)
            while True:
                validated = nxt.result()
                if validated is None:
                    break
                nxt = ahead.submit(read_and_validate)
                for rb, columns, reason, counts in validated:
                    bad = int(counts.sum())
                    quarantined = dict(zip(REASONS, counts.tolist(), strict=True))
                    self.state.ingest.add(IngestCounts(rb.num_rows, rb.num_rows - bad, quarantined))
                    if bad:
                        aside.add(rb, reason, row)
                    row += rb.num_rows
                    # Rows set aside stay in the batch, marked: the kernel passes over them (no copy).
                    kept = self._keep(pa.RecordBatch.from_arrays([*columns, pa.array(reason)], schema=KERNEL_SCHEMA))
                    if kept is not None:
                        yield kept
        except InputError as exc:  # a value of a typed column that the contract's type cannot hold
            raise InputError(f"{f}: in the data rows after row {row}, {exc}") from None
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"{f}: Parquet read failed after data row {row} ({exc}); the file may be truncated; re-export it"
            ) from None
        aside.flush()

    def _general(self, f: Path) -> Iterator[pa.RecordBatch]:
        batches, bad = read_batches(f, list(PING_COLUMNS), self.con, options=self.options)
        for batch in batches:
            valid, quarantine, counts = validate_pings(batch.table, str(f), batch.first_row, self.ids, self.rules)
            if batch.rows is not None and quarantine.num_rows:
                local = quarantine["source_row"].to_numpy() - batch.first_row - 1
                quarantine = quarantine.set_column(
                    quarantine.num_columns - 1, "source_row", pa.array(batch.source_rows(local))
                )
            self.state.ingest.add(counts)
            self.write_quarantine(quarantine)
            kept = self._keep(kernel_inputs(valid))
            if kept is not None:
                yield kept
        if bad.lines:
            lines = sorted(bad.lines)  # lines that are not rows, each with its reason (unterminated quote, ...)
            quarantined = self.state.ingest.quarantined
            for reason, n in bad.counts().items():
                quarantined[reason] = quarantined.get(reason, 0) + n
            self.state.ingest.rows += len(lines)
            self.write_quarantine(
                pa.table(
                    {
                        "raw_line": pa.array([text for _, text, _ in lines], pa.string()),
                        "reason": pa.array([reason for _, _, reason in lines], pa.string()),
                        "source_file": pa.array([str(f)] * len(lines), pa.string()),
                        "source_row": pa.array([n for n, _, _ in lines], pa.int64()),
                    }
                )
            )


def in_index_crs(batch: pa.RecordBatch, crs: str) -> pa.RecordBatch:
    """Kernel inputs with their coordinates in the locator index's CRS: BD-09 (Baidu) converted to GCJ-02;
    WGS-84 and GCJ-02 are located as they are."""
    if crs != "bd09" or batch.num_rows == 0:
        return batch
    lon, lat = bd09_to_gcj02(batch.column(2).to_numpy(), batch.column(3).to_numpy())
    return batch.set_column(2, "lon", pa.array(lon)).set_column(3, "lat", pa.array(lat))


def _difference(now: IngestCounts, before: IngestCounts) -> dict[str, Any]:
    """A file's own rows, kept rows and quarantine by reason (the counts after it less those before)."""
    quarantined = {k: v - before.quarantined.get(k, 0) for k, v in now.quarantined.items()}
    return {
        "rows": now.rows - before.rows,
        "kept": now.kept - before.kept,
        "quarantined": {k: v for k, v in quarantined.items() if v},
    }


def _read_units(pf: pq.ParquetFile, columns: list[str]) -> Iterator[pa.Table]:
    """The file's rows in order: whole row groups, or batches of ``BATCH_ROWS`` for very large ones."""
    for g in range(pf.metadata.num_row_groups):
        if pf.metadata.row_group(g).num_rows <= UNIT_ROWS:
            yield pf.read_row_group(g, columns=columns, use_threads=True)
        else:
            for rb in pf.iter_batches(BATCH_ROWS, row_groups=[g], columns=columns, use_threads=True):
                yield pa.Table.from_batches([rb])


class _SetAside:
    """Rows of one file set aside by the typed rules, written to the quarantine as text with their
    reason and 1-based data row (in bounded pieces)."""

    def __init__(self, f: Path, columns: tuple[str, ...], write: Callable[[pa.Table], None]) -> None:
        self.f = f
        self.columns = list(columns)
        self.write = write
        self.parts: list[pa.Table] = []
        self.reasons: list[npt.NDArray[np.int8]] = []
        self.source_rows: list[npt.NDArray[np.int64]] = []
        self.rows = 0

    def add(self, rb: pa.RecordBatch, reason: npt.NDArray[np.int8], first_row: int) -> None:
        bad = np.flatnonzero(reason >= 0)
        self.parts.append(pa.Table.from_batches([rb.select(self.columns)]).take(pa.array(bad)))
        self.reasons.append(reason[bad])
        self.source_rows.append(bad + first_row + 1)
        self.rows += bad.size
        if self.rows >= ASIDE_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write the rows held so far (their values as text, in one conversion)."""
        if not self.parts:
            return
        taken = pa.concat_tables(self.parts)
        rows = np.concatenate(self.source_rows)
        self.write(quarantine_table(taken, np.concatenate(self.reasons), str(self.f), rows))
        self.parts, self.reasons, self.source_rows, self.rows = [], [], [], 0


def _parquet_schema(f: Path) -> pa.Schema:
    if f.stat().st_size == 0:
        raise InputError(f"{f}: empty file (0 bytes); remove it or re-export it")
    try:
        return pq.read_schema(f)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{f}: not a readable Parquet file ({exc}); it may be truncated; re-export it") from None


def kernel_inputs(valid: pa.Table) -> pa.RecordBatch:
    """Kernel inputs from rows normalised by :func:`validate_pings`."""
    names = valid.column_names
    n = valid.num_rows
    t = pc.cast(valid["ts"], pa.int64()).to_numpy() // 1000
    speed = (
        pc.fill_null(valid["speed_kmh"], 0.0).to_numpy().astype(np.float32)
        if "speed_kmh" in names
        else np.zeros(n, np.float32)
    )
    if "load_state" in names:
        idx = valid["load_state"].combine_chunks().indices
        load = pc.fill_null(idx, -1).to_numpy().astype(np.int8)
    else:
        load = np.full(n, -1, np.int8)
    fuel, odometer = (
        pc.fill_null(valid[c], np.nan).to_numpy().astype(np.float64) if c in names else np.full(n, np.nan)
        for c in ("fuel_level_l", "odometer_km")
    )
    acc = (
        pc.fill_null(pc.cast(valid["acc_on"], pa.int8()), -1).to_numpy().astype(np.int8)
        if "acc_on" in names
        else np.full(n, -1, np.int8)
    )
    return pa.RecordBatch.from_arrays(
        [
            valid["vehicle_key"].combine_chunks(),
            pa.array(t),
            valid["lon"].combine_chunks(),
            valid["lat"].combine_chunks(),
            pa.array(speed),
            pa.array(load),
            pa.array(fuel),
            pa.array(odometer),
            pa.array(acc),
            pa.array(np.full(n, -1, np.int8)),
        ],
        schema=KERNEL_SCHEMA,
    )


def vehicle_sorted_hint(files: list[Path], numeric_keys: bool = True) -> bool:
    """True when Parquet row-group statistics say the files, in order, run through vehicles in key order.

    ``numeric_keys``: the run's keys follow the ids' numeric order (every id a
    plain integer), so an integer id column sorted by value is sorted by key;
    else they follow the text order, as a sorted text column is. A hint only:
    rows inside a row group are checked while streaming.
    """
    last_max: Any = None
    for f in files:
        if not f.name.lower().endswith((".parquet", ".pq")):
            return False
        try:
            meta = pq.read_metadata(f)
        except (OSError, pa.ArrowInvalid):
            return False  # the read itself will report the file
        names = meta.schema.names
        if "vehicle_id" not in names:
            return False
        col = names.index("vehicle_id")
        physical = meta.schema.column(col).physical_type
        if (physical in ("INT32", "INT64")) != numeric_keys or physical not in ("INT32", "INT64", "BYTE_ARRAY"):
            return False
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(col).statistics
            if stats is None or not stats.has_min_max:
                return False
            lo, hi = stats.min, stats.max
            if isinstance(lo, str):  # text compares as its UTF-8 bytes, as the keys' text order does
                lo, hi = lo.encode(), hi.encode()
            if last_max is not None and lo < last_max:
                return False
            last_max = hi
    return True
