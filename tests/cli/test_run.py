"""The run commands: run (a world's pings to a run folder) and quality (its data-quality report)."""

from __future__ import annotations

from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_run_writes_a_run_folder_and_prints_its_summary(small_world, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--pings", str(small_world / "pings"), "--vehicles", str(small_world / "vehicles.parquet")]
    result = runner.invoke(app, [*args, "--out", str(out), "--months", "2022-06"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "months" in result.output and "1 (2022-06 .. 2022-06)" in result.output
    assert "vehicles kept / read" in result.output and "6 / 6" in result.output
    assert (out / "inventory" / "2022-06.parquet").exists() and not (out / "inventory" / "2022-05.parquet").exists()


def test_run_names_the_input_that_is_missing_or_wrong(small_world, tmp_path):
    args = ["run", "--pings", str(small_world / "pings"), "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--vehicles", str(tmp_path / "none.csv")], env=WIDE)
    assert result.exit_code == 2
    assert f"{tmp_path / 'none.csv'} does not exist" in result.output and "Traceback" not in result.output
    vehicles = str(small_world / "vehicles.parquet")
    result = runner.invoke(app, [*args, "--vehicles", vehicles, "--columns", "车辆ID"], env=WIDE)
    assert result.exit_code == 2 and "--columns: '车辆ID' has no '='" in result.output


def test_quality_reports_a_run_and_refuses_a_folder_that_is_not_one(small_run, tmp_path):
    result = runner.invoke(app, ["quality", "--run", str(small_run)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "fixes by cleaning rule (per month)" in result.output and "2022-05" in result.output
    assert "pings" in result.output and "vehicles" in result.output and "read 6, kept 6" in result.output
    result = runner.invoke(app, ["quality", "--run", str(tmp_path / "norun")], env=WIDE)
    assert result.exit_code == 2
    assert "is not a folder; give a run folder written by `truckcarbon run`" in result.output
    assert "Traceback" not in result.output


def test_run_help():
    result = runner.invoke(app, ["run", "--help"], env=WIDE)
    assert result.exit_code == 0 and "--encoding" in result.output and "GPS时间/定位时间" in result.output
    result = runner.invoke(app, ["quality", "--help"], env=WIDE)
    assert result.exit_code == 0 and "--run" in result.output
