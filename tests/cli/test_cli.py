"""The command line: help on every command, cities, locate, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args", [[], ["cities"], ["locate"], ["index"], ["index", "build"], ["simulate"], ["calibrate"], ["demo"]]
)
def test_help_on_every_command(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


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


def test_demo_writes_a_summary(tmp_path):
    result = runner.invoke(
        app, ["demo", "--out", str(tmp_path / "demo"), "--trucks", "8", "--months", "2022-01:2022-02"]
    )
    assert result.exit_code == 0, result.output
    summary = (tmp_path / "demo" / "summary.md").read_text(encoding="utf-8")
    assert "Beijing" in summary and "Guangzhou" in summary
    km = pacsv.read_csv(tmp_path / "demo" / "km_by_city.csv")
    assert km.num_rows > 15
    assert "The simulated demo world" in summary and "| 2022 |" in summary
    assert (tmp_path / "demo" / "world" / "truth.parquet").exists()
    assert "## The accounting pipeline on the demo world" in summary and "## Analyses" in summary
    assert (tmp_path / "demo" / "run" / "analysis" / "national_monthly.parquet").exists()
    assert "Not made: a forecast needs at least 36 months" in summary  # two months cannot be forecast


def test_simulate_command(tmp_path):
    out = tmp_path / "w"
    args = ["simulate", "--out", str(out), "--trucks", "5", "--months", "2021-06:2021-06", "--interval-s", "120"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 trucks" in result.output and (out / "manifest.json").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite", "--clean"]).exit_code == 0
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--months", "2021-06"])
    assert bad.exit_code == 2 and "START:END" in bad.output
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--trucks", "-3"])
    assert bad.exit_code == 2 and "positive" in bad.output
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--preset", "huge"])
    assert bad.exit_code == 2 and "unknown preset" in bad.output


def test_calibrate_check_on_a_world(tmp_path):
    out = tmp_path / "w"
    args = ["simulate", "--out", str(out), "--trucks", "30", "--months", "2022-05:2022-06", "--interval-s", "600"]
    assert runner.invoke(app, [*args, "--workers", "1"]).exit_code == 0
    result = runner.invoke(app, ["calibrate", "--check", "--world", str(out)])
    assert result.exit_code in (0, 1), result.output
    assert "China V share of 2022-06 CO2" in result.output and "checks within tolerance" in result.output
    assert runner.invoke(app, ["calibrate"]).exit_code == 2
    missing = runner.invoke(app, ["calibrate", "--check", "--world", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "truckcarbon simulate" in missing.output
