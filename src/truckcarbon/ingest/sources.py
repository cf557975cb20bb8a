"""Input files: discovery, hashing and streaming reads with row numbers.

A pings or vehicles input is one file or a folder (searched recursively, e.g. a
``month=YYYY-MM`` partitioned dataset) of Parquet (``.parquet``, ``.pq``) and CSV
(``.csv``, ``.csv.gz``) files. Parquet is read by DuckDB; CSV by Arrow with every
column as text (validation parses it), so one odd value never fails a file.
A CSV line with the wrong number of fields is returned as a malformed line
(with its line number) rather than stopping the read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz")
_HIVE_MONTH = re.compile(r"month=(\d{4})-(\d{2})")
BATCH_ROWS = 1 << 20


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET):
        return "parquet"
    if name.endswith(CSV):
        return "csv"
    return None


def discover(path: Path, what: str) -> list[Path]:
    """The data files of an input, sorted by path; a clear error when there are none."""
    if not path.exists():
        raise InputError(f"{what}: {path} does not exist")
    if path.is_file():
        if _kind(path) is None:
            raise InputError(f"{what}: {path} is neither Parquet (.parquet) nor CSV (.csv, .csv.gz)")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p) and not p.name.startswith((".", "_")))
    if not files:
        raise InputError(f"{what}: no .parquet or .csv files under {path}")
    return files


def hive_month(path: Path) -> int | None:
    """Month number of a ``month=YYYY-MM`` folder in the path, if any."""
    m = None
    for part in path.parts:
        hit = _HIVE_MONTH.fullmatch(part)
        if hit:
            m = int(hit.group(1)) * 12 + int(hit.group(2)) - 1
    return m


DIGEST_PREFIX = "blake3:"


def file_digest(path: Path) -> str:
    """``blake3:<hex>`` of a file's bytes (BLAKE3, 256 bits).

    A cryptographic hash like SHA-256, at about twice its speed on inputs of
    gigabytes (the manifest hashes every input file of a run).
    """
    with path.open("rb") as f:
        # blake3's stubs declare digest(length=...), not hashlib's protocol; the object is a hashlib-style hash.
        return DIGEST_PREFIX + hashlib.file_digest(f, blake3.blake3).hexdigest()  # type: ignore[arg-type]


def bytes_digest(data: bytes) -> str:
    """``blake3:<hex>`` of ``data`` (see :func:`file_digest`)."""
    return DIGEST_PREFIX + blake3.blake3(data).hexdigest()


def estimated_rows(path: Path) -> int:
    """Rows of a Parquet file (from its footer) or an estimate for CSV (bytes / 40)."""
    if _kind(path) == "parquet":
        try:
            return int(pq.read_metadata(path).num_rows)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}); re-export or remove it") from None
    return max(1, path.stat().st_size // 40)


@dataclass
class MalformedLines:
    """CSV lines with the wrong number of fields: 1-based data row number (header excluded) and text."""

    lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Batch:
    """A batch of a file's rows; ``first_row`` data rows of the file precede it.

    ``rows`` holds each row's 1-based data row number in the file when rows were
    skipped before or within the batch (malformed CSV lines), else None
    (row ``i`` of the batch is data row ``first_row + i + 1``).
    """

    table: pa.Table
    first_row: int
    rows: npt.NDArray[np.int64] | None = None

    def source_rows(self, local: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """1-based data row numbers of the batch rows ``local`` (0-based)."""
        return self.rows[local] if self.rows is not None else self.first_row + local + 1


def _csv_batches(path: Path, columns: list[str] | None, bad: MalformedLines) -> Iterator[Batch]:
    try:
        head = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 16),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        )
        names = head.schema.names
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise InputError(f"{path}: empty file (no header line); remove it or add the data") from None
        raise InputError(f"{path}: cannot read the CSV header ({exc})") from None

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # ``number`` is the physical line (header = line 1); data row = line - 1.
        bad.lines.append((int(row.number) - 1 if row.number is not None else -1, row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            include_columns=[c for c in names if columns is None or c in columns],
            strings_can_be_null=True,
        ),
    )
    row = 0
    try:
        for rb in reader:
            rows = None
            if bad.lines:
                # Kept row k is data row k + (number of skipped rows at or before it).
                skipped = np.sort(np.array([n - 1 for n, _ in bad.lines if n > 0], dtype=np.int64))
                k = row + np.arange(rb.num_rows, dtype=np.int64)
                rows = k + np.searchsorted(skipped - np.arange(skipped.size), k, side="right") + 1
            yield Batch(pa.Table.from_batches([rb]), row, rows)
            row += rb.num_rows
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: CSV read failed after data row {row} ({exc})") from None


def _parquet_batches(path: Path, columns: list[str] | None, con: duckdb.DuckDBPyConnection) -> Iterator[Batch]:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); remove it or re-export it")
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); it may be truncated; re-export it") from None
    wanted = [c for c in names if columns is None or c in columns]
    select = ", ".join('"' + c.replace('"', '""') + '"' for c in wanted)
    literal = "'" + str(path).replace("'", "''") + "'"
    row = 0
    try:
        reader = con.sql(f"SELECT {select} FROM read_parquet({literal})").to_arrow_reader(BATCH_ROWS)
        for rb in reader:
            yield Batch(pa.Table.from_batches([rb]), row)
            row += rb.num_rows
    except duckdb.Error as exc:
        raise InputError(
            f"{path}: Parquet read failed after data row {row} ({exc}); the file may be truncated; re-export it"
        ) from None


def read_batches(
    path: Path, columns: list[str] | None = None, con: duckdb.DuckDBPyConnection | None = None
) -> tuple[Iterator[Batch], MalformedLines]:
    """Stream a file's rows (only ``columns`` that exist, when given) in input order.

    Returns the batch iterator and the (initially empty) list it fills with
    malformed CSV lines as it goes.
    """
    bad = MalformedLines()
    if _kind(path) == "csv":
        return _csv_batches(path, columns, bad), bad
    return _parquet_batches(path, columns, con or duckdb.connect()), bad


def read_table(path: Path, what: str) -> pa.Table:
    """A whole (small) table, e.g. vehicles, from one Parquet or CSV file."""
    files = discover(path, what)
    if len(files) > 1:
        raise InputError(f"{what}: {path} holds {len(files)} files; give one file")
    batches, bad = read_batches(files[0])
    parts = [b.table for b in batches]
    if bad.lines:
        line, text = bad.lines[0]
        raise InputError(
            f"{files[0]}: line {line} has the wrong number of fields ({text[:80]!r}); "
            f"{len(bad.lines)} such line(s); fix the file"
        )
    if not parts or sum(t.num_rows for t in parts) == 0:
        raise InputError(f"{what}: {files[0]} has no rows")
    return pa.concat_tables(parts)


__all__ = [
    "Batch",
    "MalformedLines",
    "discover",
    "estimated_rows",
    "file_digest",
    "hive_month",
    "read_batches",
    "read_table",
]
