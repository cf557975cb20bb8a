"""Streaming point files through the locator: CSV or Parquet in, CSV or Parquet out.

Files are read in record batches (never whole), each batch is located and
written at once, and the output goes to a temporary name that is renamed into
place only when complete, so an interrupted run never leaves a file that looks
finished.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.arrow import is_number_type, is_text, parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_path
from truckcarbon.geo.locator import INVALID, OUTSIDE, CityLocator
from truckcarbon.geo.reference import cities

BATCH_ROWS = 1_000_000


@dataclass
class LocateSummary:
    """Counts of a :func:`locate_file` run."""

    rows: int = 0
    located: int = 0
    outside: int = 0
    invalid: int = 0


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt") or path.name.lower().endswith(".csv.gz"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def count_rows(path: Path) -> int | None:
    """Row count when cheap to know (Parquet metadata), else None."""
    if _kind(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def _batches(path: Path, columns: tuple[str, str]) -> Iterator[pa.RecordBatch]:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if _kind(path) == "parquet":
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        _require(path, names, columns)
        yield from pf.iter_batches(batch_size=BATCH_ROWS)
    else:
        # Coordinates are read as text and converted here, so that a bad value is
        # reported with its row instead of failing inside the CSV reader.
        opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns})
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=64 << 20), convert_options=opts)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a readable CSV file ({exc})") from exc
        _require(path, reader.schema.names, columns)
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise InputError(f"{path}: malformed CSV ({exc})") from exc


def _require(path: Path, names: list[str], columns: tuple[str, str]) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(names)}. Name the columns with --lon-col/--lat-col."
        )


def _numeric(path: Path, batch: pa.RecordBatch, column: str, first_row: int) -> np.ndarray:
    """Column as float64 degrees (NaN where empty); a clear error for text that is no number."""
    arr = batch.column(column)
    if not (is_number_type(arr) or is_text(arr)):
        raise InputError(f"{path}: column {column!r} has type {arr.type}, expected numbers (degrees)")
    values, unreadable = parse_float64(arr)
    bad = np.flatnonzero(unreadable)
    if bad.size:
        row = first_row + int(bad[0]) + 1
        where = f"row {row} (line {row + 1})" if _kind(path) == "csv" else f"row {row}"
        raise InputError(
            f"{path}: {where}, column {column!r}: {arr[int(bad[0])].as_py()!r} is not a number; fix or remove the row"
        )
    return values


def locate_file(
    src: Path,
    dst: Path,
    locator: CityLocator,
    lon_col: str = "lon",
    lat_col: str = "lat",
    on_batch: Callable[[int], None] | None = None,
) -> LocateSummary:
    """Locate every row of ``src`` and write it with ``city_adcode`` and ``province_adcode``.

    The output has the input columns plus ``city_adcode`` and ``province_adcode``
    (int32, null where the point is outside every unit or invalid) and
    ``location_status`` (``ok``, ``outside`` or ``invalid``). Missing
    coordinates are ``invalid``.
    """
    out_kind = _kind(dst)
    summary = LocateSummary()
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    status_names = pa.array(["ok", "outside", "invalid"])
    # adcode -> province adcode by direct indexing (adcodes are 6-digit numbers).
    province_by_code = np.zeros(1_000_000, np.int32)
    units = cities(include_non_mainland=True)
    province_by_code[units["city_adcode"].to_numpy()] = units["province_adcode"].to_numpy()
    with atomic_path(dst) as tmp:
        for batch in _batches(src, (lon_col, lat_col)):
            lon = _numeric(src, batch, lon_col, summary.rows)
            lat = _numeric(src, batch, lat_col, summary.rows)
            codes = locator.locate(lon, lat)
            status = np.where(codes > 0, 0, np.where(codes == OUTSIDE, 1, 2)).astype(np.int32)
            city = pa.array(codes, pa.int32(), mask=codes <= 0)
            result = batch.append_column("city_adcode", city)
            province = province_by_code[np.maximum(codes, 0)]
            result = result.append_column("province_adcode", pa.array(province, pa.int32(), mask=codes <= 0))
            result = result.append_column(
                "location_status", pa.DictionaryArray.from_arrays(pa.array(status.astype(np.int8)), status_names)
            )
            if writer is None:
                if out_kind == "parquet":
                    writer = pq.ParquetWriter(tmp, result.schema)
                else:
                    writer = pacsv.CSVWriter(tmp, result.schema)
            writer.write_batch(result)
            n = batch.num_rows
            summary.rows += n
            summary.located += int((codes > 0).sum())
            summary.outside += int((codes == OUTSIDE).sum())
            summary.invalid += int((codes == INVALID).sum())
            if on_batch is not None:
                on_batch(n)
        if writer is None:
            raise InputError(f"{src}: the file has no rows")
        writer.close()
    return summary
