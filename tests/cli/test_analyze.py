"""The commands on a run's results: analyze, forecast and report, and their refusals."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_analyze_writes_its_tables(small_run):
    result = runner.invoke(app, ["analyze", "--run", str(small_run), "--group", "jing=110100"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "national_monthly" in result.output and "(Parquet and CSV)" in result.output
    assert (small_run / "analysis" / "national_monthly.parquet").exists()


def test_analyze_draws_the_intervals_seeded(small_run):
    out = small_run / "analysis"
    result = runner.invoke(app, ["analyze", "--run", str(small_run), "--draws", "200", "--seed", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "national_intervals" in result.output
    first = pq.read_table(out / "national_intervals.parquet")
    keys = ["month", "view", "city_adcode", "emission_standard", "method"]
    inventory = pq.read_table(small_run / "inventory" / "2022-05.parquet").select([*keys, "co2_t"])
    joined = pq.read_table(out / "inventory_intervals.parquet").join(
        inventory.rename_columns([*keys, "co2_t_inventory"]), keys, join_type="inner"
    )
    assert joined.num_rows == inventory.num_rows  # every inventory row has its interval row, with its CO2
    for r in joined.to_pylist():
        assert abs(r["co2_t"] - r["co2_t_inventory"]) <= 1e-9 * max(1.0, r["co2_t_inventory"])
    for r in first.to_pylist():
        assert r["co2_t_p05"] <= r["co2_t_p50"] <= r["co2_t_p95"] and r["co2_t_p05"] < r["co2_t_p95"]
    index = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert index["uncertainty"]["draws"] == 200 and index["uncertainty"]["seed"] == 3
    again = runner.invoke(app, ["analyze", "--run", str(small_run), "--draws", "200", "--seed", "3"], env=WIDE)
    assert again.exit_code == 0 and pq.read_table(out / "national_intervals.parquet").equals(first)
    refused = runner.invoke(app, ["analyze", "--run", str(small_run), "--draws", "5"], env=WIDE)
    assert refused.exit_code == 2 and "[uncertainty] draws must be between 10 and 100000" in refused.output


def test_bad_options_name_what_is_wrong(small_run, tmp_path):
    for group in ("hub", "hub=", "hub=41x", "=410100"):
        result = runner.invoke(app, ["analyze", "--run", str(small_run), "--group", group], env=WIDE)
        assert result.exit_code == 2, group
        assert f"--group {group!r}: use NAME=ADCODE,ADCODE" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["report", "--run", str(small_run), "--lang", "fr"], env=WIDE)
    assert result.exit_code == 2 and "--lang 'fr': use zh, en or both" in result.output
    result = runner.invoke(app, ["forecast", "--run", str(tmp_path / "norun")], env=WIDE)
    assert result.exit_code == 2 and "no inventory" in result.output and "run `truckcarbon run` first" in result.output


def test_analyze_help():
    for command, option in (("analyze", "--group"), ("forecast", "--horizon"), ("report", "--lang")):
        result = runner.invoke(app, [command, "--help"], env=WIDE)
        assert result.exit_code == 0 and option in result.output, command
