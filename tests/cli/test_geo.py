"""The geography commands: cities (search, exports), locate (files of points) and index build."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_cities_search_and_exports(tmp_path):
    result = runner.invoke(app, ["cities", "郑州"])
    assert result.exit_code == 0 and "410100" in result.output
    csv_path = tmp_path / "henan.csv"
    assert runner.invoke(app, ["cities", "41", "--out", str(csv_path)]).exit_code == 0
    assert pacsv.read_csv(csv_path).num_rows == 18
    gj = tmp_path / "zz.geojson"
    result = runner.invoke(app, ["cities", "zhengzhou", "--out", str(gj), "--simplify-m", "100"])
    assert result.exit_code == 0, result.output
    doc = json.loads(gj.read_text(encoding="utf-8"))
    assert doc["features"][0]["properties"]["city_adcode"] == 410100
    assert doc["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert not list(tmp_path.glob(".*.part"))


def test_locate_csv_to_parquet_and_back(tmp_path):
    src = tmp_path / "pings.csv"
    src.write_text(
        "vehicle_id,lon,lat\na,116.3975,39.9087\na,121.4998,31.2397\nb,125.0,30.0\nb,,39.9\nc,0,0\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["locate", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    t = pq.read_table(out)
    assert t.column_names == ["vehicle_id", "lon", "lat", "city_adcode", "province_adcode", "location_status"]
    assert t["city_adcode"].to_pylist() == [110100, 310100, None, None, None]
    assert t["province_adcode"].to_pylist() == [110000, 310000, None, None, None]
    assert t["location_status"].to_pylist() == ["ok", "ok", "outside", "invalid", "invalid"]
    assert "2 located" in result.output and "1 outside" in result.output and "2 invalid" in result.output
    # Parquet in, CSV out, GCJ-02 input.
    gcj = tmp_path / "gcj.parquet"
    pq.write_table(pa.table({"x": [116.40367162595768], "y": [39.91063350638631]}), gcj)
    out_csv = tmp_path / "gcj.csv"
    result = runner.invoke(
        app, ["locate", str(gcj), "-o", str(out_csv), "--crs", "gcj02", "--lon-col", "x", "--lat-col", "y"]
    )
    assert result.exit_code == 0, result.output
    assert pacsv.read_csv(out_csv)["city_adcode"].to_pylist() == [110100]


def test_locate_errors_name_file_row_and_column(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("longitude,lat\n116.4,39.9\n", encoding="utf-8")
    out = tmp_path / "o.csv"
    result = runner.invoke(app, ["locate", str(src), "--out", str(out)])
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "'lon'" in result.output and "--lon-col" in result.output
    src.write_text("lon,lat\n116.4,39.9\n116.5,north\n", encoding="utf-8")
    result = runner.invoke(app, ["locate", str(src), "--out", str(out)])
    assert result.exit_code == 2
    assert "row 2 (line 3)" in result.output and "'lat'" in result.output and "'north'" in result.output
    assert not out.exists() and not list(tmp_path.glob(".*.part"))
    result = runner.invoke(app, ["locate", str(tmp_path / "missing.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "no such file" in result.output
    pq.write_table(pa.table({"lon": ["116.4"], "lat": [np.datetime64("2024-01-01", "ms")]}), tmp_path / "t.parquet")
    result = runner.invoke(app, ["locate", str(tmp_path / "t.parquet"), "--out", str(out)])
    assert result.exit_code == 2 and "'lat'" in result.output and "expected numbers" in result.output
    result = runner.invoke(app, ["locate", str(src), "--out", str(tmp_path / "o.xlsx")])
    assert result.exit_code == 2 and "unsupported" in result.output


def test_cities_lists_and_refuses_an_unknown_export_type(tmp_path):
    result = runner.invoke(app, ["cities", "--limit", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "more; use --limit or --out" in result.output
    result = runner.invoke(app, ["cities", "41", "--out", str(tmp_path / "h.xlsx")], env=WIDE)
    assert result.exit_code == 2
    assert "unsupported output type '.xlsx'; use .csv, .parquet or .geojson" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "h.xlsx").exists()


def test_geo_help():
    for args in (["cities"], ["locate"], ["index", "build"]):
        result = runner.invoke(app, [*args, "--help"], env=WIDE)
        assert result.exit_code == 0 and ("--crs" in result.output or "--all" in result.output), args


def test_an_unknown_coordinate_system_is_an_input_error_naming_the_choices(tmp_path):
    src = tmp_path / "p.csv"
    src.write_text("lon,lat\n116.4,39.9\n")
    for args in (
        ["index", "build", "--crs", "xyz"],
        ["locate", str(src), "--out", str(tmp_path / "o.csv"), "--crs", "xyz"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "unknown coordinate system 'xyz'" in result.output and "gcj02" in result.output
