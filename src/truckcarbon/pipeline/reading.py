"""Pass 1 of the embedded engine: every pings file read once into kernel-input batches.

Typed Parquet files (the contract's column types) are validated by DuckDB while
it reads them (:func:`typed_select`, several threads); other files (CSV, text
columns) go through :func:`validate_pings`. Both apply the same rules with the
same reason codes; rejected rows are written to the quarantine with their file
and row, and only fixes within ``context_s`` of a requested month are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_start_utc_s
from truckcarbon.ingest.pings import REASONS, IngestCounts, quote_identifier, typed_select, validate_pings
from truckcarbon.ingest.sources import file_digest, read_batches

KERNEL_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),
        ("t", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("speed", pa.float32()),
        ("load", pa.int8()),
        ("fuel", pa.float64()),
        ("odometer", pa.float64()),
        ("quarantine", pa.int8()),  # -1: a fix; else the ingest reason code of a quarantined row
    ]
)
PING_COLUMNS = ["vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "fuel_level_l", "odometer_km"]
UNKNOWN_VEHICLE = REASONS.index("unknown_vehicle")
BATCH_ROWS = 1 << 20
GROUP_FILES = 256  # typed Parquet files read by one query


@nb.njit(cache=True, nogil=True)
def _flag_unknown(vid, reason, known, code):  # type: ignore[no-untyped-def]
    """Set ``reason`` to ``code`` where a still-valid row's vehicle is not in sorted ``known``."""
    n = vid.shape[0]
    have = False
    last = 0
    last_ok = True
    for i in range(n):
        if reason[i] >= 0:
            continue
        v = vid[i]
        if not (have and v == last):
            j = np.searchsorted(known, v)
            last_ok = j < known.shape[0] and known[j] == v
            last = v
            have = True
        if not last_ok:
            reason[i] = code


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
        self.ingest.quarantined.setdefault("malformed_line", 0)


class FixReader:
    """Reads pings files into kernel-input record batches (:data:`KERNEL_SCHEMA`)."""

    def __init__(
        self,
        files: list[Path],
        known: npt.NDArray[np.int64],
        months: set[int] | None,
        context_s: int,
        write_quarantine: Callable[[pa.Table], None],
        progress: Callable[[str, int, int], None],
    ) -> None:
        self.files = files
        self.known = np.ascontiguousarray(known, dtype=np.int64)
        self.bounds = window_bounds(months, context_s)
        self.write_quarantine = write_quarantine
        self.progress = progress
        self.state = Reading()
        self.con = duckdb.connect(config={"memory_limit": "1GB"})
        self.con.execute("SET enable_progress_bar = false")  # the run has its own progress bars

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Kernel inputs of every file in order (a file's rows in file order)."""
        # Input hashes (for the manifest) are computed on a side thread while the files are read.
        with ThreadPoolExecutor(max_workers=1) as hasher:
            digests = [hasher.submit(file_digest, f) for f in self.files]
            done = 0
            for group, schema, select in self._groups():
                self.progress("read", done, len(self.files))
                yield from self._typed(group, schema, select) if schema and select else self._general(group[0])
                done += len(group)
            self.progress("read", len(self.files), len(self.files))
            for f, digest in zip(self.files, digests, strict=True):
                self.state.inputs.append({"role": "pings", "path": str(f), "hash": digest.result()})

    def _groups(self) -> Iterator[tuple[list[Path], pa.Schema | None, str | None]]:
        """Runs of consecutive typed Parquet files with one schema, with that schema and its select (read by
        one query, DuckDB reading several files at once: small files cost little), and every other file
        alone (schema and select None)."""
        group: list[Path] = []
        key: pa.Schema | None = None
        select: str | None = None
        for f in self.files:
            schema = _parquet_schema(f).remove_metadata() if f.name.lower().endswith((".parquet", ".pq")) else None
            typed = typed_select(schema) if schema is not None else None
            if group and (typed is None or schema != key or len(group) >= GROUP_FILES):
                yield group, key, select
                group = []
            if typed is None:
                yield [f], None, None
                continue
            group.append(f)
            key, select = schema, typed
        if group:
            yield group, key, select

    def _keep(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        need = in_window(batch.column(1).to_numpy(), self.bounds)
        if need is not None and not need.all():
            self.state.outside_window += int(need.size - need.sum())
            batch = batch.filter(pa.array(need))
        return batch if batch.num_rows else None

    def _typed(self, files: list[Path], schema: pa.Schema, select: str) -> Iterator[pa.RecordBatch]:
        literal = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        # The original values of a row rejected by the SQL rules travel with it as a list of text
        # (NULL for every other row: DuckDB builds the list only for the rows it rejects).
        names = [c for c in PING_COLUMNS if c in set(schema.names)]
        originals = ", ".join(f"{quote_identifier(c)} AS __original_{i}" for i, c in enumerate(names))
        as_text = ", ".join(f"__original_{i}::VARCHAR" for i in range(len(names)))
        excluded = ", ".join(f"__original_{i}" for i in range(len(names)))
        query = (
            f"SELECT * EXCLUDE ({excluded}), CASE WHEN reason >= 0 THEN [{as_text}] END AS original "
            f"FROM (SELECT {select}, file_index, {originals} FROM read_parquet({literal}, file_row_number = true))"
        )
        bad_files: list[npt.NDArray[np.int64]] = []
        bad_rows: list[npt.NDArray[np.int64]] = []
        bad_reasons: list[npt.NDArray[np.int8]] = []
        bad_originals: list[pa.Array] = []
        at = (0, 0)  # the file being read and its rows read so far, for errors
        try:
            reader = self.con.sql(query).to_arrow_reader(BATCH_ROWS)
            for rb in reader:
                reason = rb.column("reason").to_numpy().copy()
                vid = rb.column(0).to_numpy()
                _flag_unknown(vid, reason, self.known, UNKNOWN_VEHICLE)
                counts = np.bincount(reason[reason >= 0], minlength=len(REASONS))
                self.state.ingest.rows += rb.num_rows
                source_row = rb.column("source_row").to_numpy()
                file_index = rb.column("file_index").to_numpy().astype(np.int64)
                at = (int(file_index[-1]), int(source_row[-1]))
                ok = reason < 0
                n_ok = int(ok.sum())
                self.state.ingest.kept += n_ok
                for code, name in enumerate(REASONS):
                    self.state.ingest.quarantined[name] += int(counts[code])
                # Quarantined rows stay in the batch, marked: the kernel passes over them (no copy).
                fixes = pa.RecordBatch.from_arrays([*rb.columns[:8], pa.array(reason)], schema=KERNEL_SCHEMA)
                if n_ok < rb.num_rows:
                    bad = ~ok
                    bad_files.append(file_index[bad])
                    bad_rows.append(source_row[bad])
                    bad_reasons.append(reason[bad])
                    bad_originals.append(rb.column("original").filter(pa.array(bad)))
                kept = self._keep(fixes)
                if kept is not None:
                    yield kept
        except duckdb.Error as exc:
            named = [k for k, f in enumerate(files) if str(f) in str(exc)]  # DuckDB names the file it failed on
            k = named[0] if named else at[0]
            f, done = files[k], at[1] if k == at[0] else 0
            raise InputError(
                f"{f}: Parquet read failed after data row {done} ({exc}); the file may be truncated; re-export it"
            ) from None
        if not bad_rows:
            return
        which, rows = np.concatenate(bad_files), np.concatenate(bad_rows)
        reasons, carried = np.concatenate(bad_reasons), pa.concat_arrays(bad_originals)
        for k in np.unique(which).tolist():
            mine = which == k
            self._quarantine_typed(files[k], names, rows[mine], reasons[mine], carried.filter(pa.array(mine)))

    def _quarantine_typed(
        self,
        f: Path,
        names: list[str],
        rows: npt.NDArray[np.int64],
        reasons: npt.NDArray[np.int8],
        originals: pa.ListArray,
    ) -> None:
        """The rejected rows' original values, as text, with reason, file and row.

        Rows rejected by the SQL rules carry their values (``originals``); rows
        rejected afterwards (a vehicle missing from the vehicles table) are read
        again from the file, which only happens when there are such rows.
        """
        order = np.argsort(rows, kind="stable")
        rows, reasons, originals = rows[order], reasons[order], originals.take(pa.array(order))
        missing = originals.is_null().to_numpy(zero_copy_only=False)
        values = np.empty((rows.size, len(names)), dtype=object)
        if not missing.all():
            carried = originals.filter(pa.array(~missing)).flatten().to_pylist()
            values[~missing] = np.array(carried, dtype=object).reshape(-1, len(names))
        if missing.any():
            values[missing] = np.array(self._read_rows(f, names, rows[missing]), dtype=object).T
        table = pa.table({c: pa.array(values[:, i].tolist(), pa.string()) for i, c in enumerate(names)})
        table = table.append_column("reason", pa.array(np.asarray(REASONS)[reasons]))
        table = table.append_column("source_file", pa.array([str(f)] * table.num_rows, pa.string()))
        table = table.append_column("source_row", pa.array(rows, pa.int64()))
        self.write_quarantine(table)

    def _read_rows(self, f: Path, names: list[str], rows: npt.NDArray[np.int64]) -> list[list[str | None]]:
        """Columns ``names`` (as text) of the 1-based data ``rows`` (ascending) of ``f``, read again."""
        literal = "'" + str(f).replace("'", "''") + "'"
        self.con.register("quarantine_rows", pa.table({"file_row": pa.array(rows - 1)}))
        try:
            # A semi-join (not a join): DuckDB skips the row groups without a wanted row.
            select = ", ".join(f"{quote_identifier(c)}::VARCHAR" for c in names)
            original = self.con.sql(
                f"SELECT {select}, file_row_number FROM read_parquet({literal}, file_row_number = true) "
                f"WHERE file_row_number IN (SELECT file_row FROM quarantine_rows) ORDER BY file_row_number"
            ).to_arrow_table()
        finally:
            self.con.unregister("quarantine_rows")
        if not np.array_equal(original.column(len(names)).to_numpy() + 1, rows):
            raise InputError(f"{f}: changed while it was read (rows set aside could not be read again); rerun")
        return [original.column(i).to_pylist() for i in range(len(names))]

    def _general(self, f: Path) -> Iterator[pa.RecordBatch]:
        batches, bad = read_batches(f, PING_COLUMNS, self.con)
        for batch in batches:
            valid, quarantine, counts = validate_pings(batch.table, str(f), batch.first_row, self.known)
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
            self.state.ingest.quarantined["malformed_line"] += len(bad.lines)
            self.state.ingest.rows += len(bad.lines)
            self.write_quarantine(
                pa.table(
                    {
                        "raw_line": pa.array([text for _, text in bad.lines], pa.string()),
                        "reason": pa.array(["malformed_line"] * len(bad.lines), pa.string()),
                        "source_file": pa.array([str(f)] * len(bad.lines), pa.string()),
                        "source_row": pa.array([n for n, _ in bad.lines], pa.int64()),
                    }
                )
            )


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
    return pa.RecordBatch.from_arrays(
        [
            valid["vehicle_id"].combine_chunks(),
            pa.array(t),
            valid["lon"].combine_chunks(),
            valid["lat"].combine_chunks(),
            pa.array(speed),
            pa.array(load),
            pa.array(fuel),
            pa.array(odometer),
            pa.array(np.full(n, -1, np.int8)),
        ],
        schema=KERNEL_SCHEMA,
    )


def vehicle_sorted_hint(files: list[Path]) -> bool:
    """True when Parquet row-group statistics say the files, in order, run through vehicles in order.

    A hint only: rows inside a row group are checked while streaming.
    """
    last_max: int | None = None
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
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(col).statistics
            if stats is None or not stats.has_min_max:
                return False
            lo, hi = int(stats.min), int(stats.max)
            if last_max is not None and lo < last_max:
                return False
            last_max = hi
    return True
