"""The commands on a run's results: analyze, forecast and report, and their refusals."""

from __future__ import annotations

from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_analyze_writes_its_tables(small_run):
    result = runner.invoke(app, ["analyze", "--run", str(small_run), "--group", "jing=110100"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "national_monthly" in result.output and "(Parquet and CSV)" in result.output
    assert (small_run / "analysis" / "national_monthly.parquet").exists()


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
