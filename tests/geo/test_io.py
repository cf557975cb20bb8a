"""Point files streamed through the locator: columns added, statuses counted, errors naming file, row and column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.geo.io import count_rows, locate_file

# Tiananmen (Beijing), the Bund (Shanghai), the Yellow Sea, and a point with no coordinates.
LON = [116.3975, 121.4903, 123.5, None]
LAT = [39.9087, 31.2380, 34.0, None]


def test_csv_in_parquet_out_keeps_the_columns_and_adds_city_province_and_status(wgs_locator, tmp_path: Path) -> None:
    src = tmp_path / "p.csv"
    pacsv.write_csv(pa.table({"id": ["a", "b", "c", "d"], "lon": LON, "lat": LAT}), src)
    summary = locate_file(src, tmp_path / "o.parquet", wgs_locator)
    out = pq.read_table(tmp_path / "o.parquet")
    assert out["id"].to_pylist() == ["a", "b", "c", "d"]
    assert out["city_adcode"].to_pylist() == [110100, 310100, None, None]
    assert out["province_adcode"].to_pylist() == [110000, 310000, None, None]
    assert [str(s) for s in out["location_status"].to_pylist()] == ["ok", "ok", "outside", "invalid"]
    assert (summary.rows, summary.located, summary.outside, summary.invalid) == (4, 2, 1, 1)
    assert count_rows(tmp_path / "o.parquet") == 4 and count_rows(src) is None


def test_named_columns_and_parquet_to_csv(wgs_locator, tmp_path: Path) -> None:
    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"x": LON[:2], "y": LAT[:2]}), src)
    locate_file(src, tmp_path / "o.csv", wgs_locator, lon_col="x", lat_col="y")
    assert pacsv.read_csv(tmp_path / "o.csv")["city_adcode"].to_pylist() == [110100, 310100]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "lon,lat\n116.4,39.9\n116.4,north\n", "row 2 (line 3), column 'lat': 'north' is not a number"),
        ("cols.csv", "x,y\n1,2\n", "missing column(s) 'lon', 'lat'"),
        ("empty.csv", "lon,lat\n", "the file has no rows"),
        ("p.json", "{}", "unsupported file type '.json'"),
    ],
)
def test_bad_files_are_input_errors_naming_file_row_and_column(
    wgs_locator, tmp_path: Path, name: str, content: str, message: str
) -> None:
    src = tmp_path / name
    src.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        locate_file(src, tmp_path / "o.parquet", wgs_locator)
    assert str(src) in str(err.value)
    assert not (tmp_path / "o.parquet").exists()  # nothing half-written
