"""Reading an input file as batches of rows with their row numbers, columns renamed to the contract names.

Parquet (``.parquet``, ``.pq``) is read by DuckDB; CSV (``.csv``, ``.csv.gz``,
``.csv.zst``) by Arrow from a :class:`~truckcarbon.ingest.csvstream.CsvStream`
(decompressed, decoded, lines that are not rows taken out), with every column as
text (validation parses it), so one odd value never fails a file. Columns are
renamed to the contract names on the way (:mod:`truckcarbon.ingest.columns`,
:class:`SourceOptions`). :func:`read_batches` streams a file of any size;
:func:`read_table` reads a small table whole; :func:`column_names` and
:func:`mapped_names` read only a file's header or schema. Which files an input
is, and their digests, are in :mod:`.files`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.columns import CONTRACT, map_columns
from truckcarbon.ingest.csvstream import CsvStream, MalformedLines, csv_header
from truckcarbon.ingest.files import discover, file_kind
from truckcarbon.ingest.quarantine import MALFORMED_LINE, UNTERMINATED_QUOTE

BATCH_ROWS = 1 << 20
CSV_BLOCK = 1 << 24  # bytes per block of Arrow's CSV parser (one batch): filtered blocks joined


@dataclass(frozen=True)
class SourceOptions:
    """How to read an input file.

    ``encoding``: the CSV text encoding (a Python codec name such as ``"utf-8"``,
    ``"gbk"``, ``"gb18030"``); None detects it (see :mod:`.encoding`).
    ``columns``: the user's column mapping ``{source header: contract name}``.
    ``kind``: ``"pings"`` or ``"vehicles"`` (which built-in header aliases apply and
    which names ``columns`` may give), or None for other tables (no aliases).
    """

    encoding: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    kind: str | None = "pings"


@dataclass
class Batch:
    """A batch of a file's rows; ``first_row`` data rows of the file precede it.

    ``rows`` holds each row's 1-based data row number in the file when lines were
    skipped before or within the batch (CSV lines that are not rows, blank lines),
    else None (row ``i`` of the batch is data row ``first_row + i + 1``).
    """

    table: pa.Table
    first_row: int
    rows: npt.NDArray[np.int64] | None = None

    def source_rows(self, local: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """1-based data row numbers of the batch rows ``local`` (0-based)."""
        return self.rows[local] if self.rows is not None else self.first_row + local + 1


def _wanted(names: list[str], rename: Mapping[str, str], columns: list[str] | None) -> list[str]:
    """The file columns to read: those giving ``columns`` (every column when none does, so that a
    caller's message about missing columns can list them)."""
    wanted = [c for c in names if columns is None or rename.get(c, c) in columns]
    return wanted or names


def _csv_batches(path: Path, columns: list[str] | None, bad: MalformedLines, options: SourceOptions) -> Iterator[Batch]:
    stream = CsvStream(path, options.encoding, bad)
    try:
        names = stream.names()
        rename = map_columns(names, options.columns, options.kind, str(path))
        wanted = _wanted(names, rename, columns)

        def on_invalid(row: pacsv.InvalidRow) -> str:
            # ``number`` is the stream's line (header = line 1): its data row is number - 1.
            n = stream.source_row(int(row.number) - 1) if row.number is not None else -1
            bad.lines.append((n, row.text, MALFORMED_LINE))
            if n > 0:
                stream.skipped.skip(n)
            return "skip"

        row = 0
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(wanted, pa.string()),
                    include_columns=wanted,
                    strings_can_be_null=True,
                    check_utf8=False,  # the stream is valid UTF-8 (decoded or checked)
                ),
            )
            for rb in reader:
                rows = stream.skipped.rows(row, rb.num_rows)
                table = pa.Table.from_batches([rb])
                if rename:
                    table = table.rename_columns([rename.get(c, c) for c in table.column_names])
                yield Batch(table, row, rows)
                row += rb.num_rows
        except pa.ArrowException as exc:
            raise InputError(
                f"{path}: CSV read failed after data row {row} ({exc}); check the file's quoting and separators "
                "or re-export it"
            ) from None
    finally:
        stream.close()


def _parquet_names(path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); remove it or re-export it")
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); it may be truncated; re-export it") from None


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parquet_batches(
    path: Path, columns: list[str] | None, con: duckdb.DuckDBPyConnection, options: SourceOptions
) -> Iterator[Batch]:
    names = _parquet_names(path)
    rename = map_columns(names, options.columns, options.kind, str(path))
    wanted = _wanted(names, rename, columns)
    select = ", ".join(_sql_name(c) + (f" AS {_sql_name(rename[c])}" if c in rename else "") for c in wanted)
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
    path: Path,
    columns: list[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    options: SourceOptions | None = None,
) -> tuple[Iterator[Batch], MalformedLines]:
    """Stream a file's rows in input order, columns renamed to their contract names.

    ``columns`` (contract names) limits the columns read to those that exist
    (all of them when none does); ``options`` gives the encoding and column
    mapping (default :class:`SourceOptions`: detected encoding, pings aliases).
    Returns the batch iterator and the (initially empty) list it fills with the
    CSV lines that are not rows as it goes. Errors (:class:`InputError`) are
    raised by the iterator.
    """
    opts = options or SourceOptions()
    bad = MalformedLines()
    if file_kind(path) == "csv":
        return _csv_batches(path, columns, bad, opts), bad
    return _parquet_batches(path, columns, con or duckdb.connect(), opts), bad


def column_names(path: Path, encoding: str | None = None) -> list[str]:
    """A file's own column names, in order (the CSV header or the Parquet schema; nothing else is read)."""
    if file_kind(path) == "csv":
        return csv_header(path, encoding)
    return _parquet_names(path)


def mapped_names(path: Path, options: SourceOptions | None = None) -> dict[str, str]:
    """``{source column: contract name}`` of a file's columns that give contract columns (unchanged names
    included; with ``kind`` None, the user's mapping only), e.g. to read a Parquet file by its own
    column names. Reads only the header (CSV) or schema (Parquet)."""
    opts = options or SourceOptions()
    names = column_names(path, opts.encoding)
    rename = map_columns(names, opts.columns, opts.kind, str(path))
    contract = set(CONTRACT[opts.kind]) if opts.kind is not None else set(rename.values())
    return {c: rename.get(c, c) for c in names if rename.get(c, c) in contract}


def read_table(path: Path, what: str, *, options: SourceOptions | None = None) -> pa.Table:
    """A whole (small) table, e.g. vehicles, from one Parquet or CSV file.

    ``options`` default: detected encoding, no built-in column aliases
    (``SourceOptions(kind=None)``). A CSV line that is not a row is an error.
    """
    files = discover(path, what)
    if len(files) > 1:
        raise InputError(f"{what}: {path} holds {len(files)} files; give one file")
    batches, bad = read_batches(files[0], options=options or SourceOptions(kind=None))
    parts = [b.table for b in batches]
    if bad.lines:
        row, text, reason = min(bad.lines)
        problem = "has an unterminated quote" if reason == UNTERMINATED_QUOTE else "has the wrong number of fields"
        counts = ", ".join(f"{n} {r}" for r, n in sorted(bad.counts().items()))
        raise InputError(
            f"{files[0]}: line {row + bad.header_line} (data row {row}) {problem} ({text[:80]!r}); "
            f"lines that are not rows: {counts}; fix the file"
        )
    if not parts or sum(t.num_rows for t in parts) == 0:
        raise InputError(f"{what}: {files[0]} has no rows")
    return pa.concat_tables(parts)


__all__ = [
    "BATCH_ROWS",
    "CSV_BLOCK",
    "Batch",
    "SourceOptions",
    "column_names",
    "mapped_names",
    "read_batches",
    "read_table",
]
