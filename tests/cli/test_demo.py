"""The demo command: the whole flow on a small world, and its refusals."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


@pytest.mark.slow
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


def test_demo_refuses_a_month_range_without_its_end(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--months", "2022-01"], env=WIDE)
    assert result.exit_code == 2
    assert "--months '2022-01': use START:END" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "d").exists()


def test_demo_help():
    result = runner.invoke(app, ["demo", "--help"], env=WIDE)
    assert result.exit_code == 0 and "--trucks" in result.output and "--months" in result.output
