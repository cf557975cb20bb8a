"""``truckcarbon analyze``: every table written, one DuckDB connection for all of them, the CLI's messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.analysis import analyze
from truckcarbon.cli.main import app


def _write_run(inv: pa.Table, run: Path) -> None:
    (run / "inventory").mkdir(parents=True)
    for month in sorted(set(inv["month"].to_pylist())):
        pq.write_table(inv.filter(pa.compute.equal(inv["month"], month)), run / "inventory" / f"{month}.parquet")


def test_analyze_writes_every_table_and_the_cli_reports_missing_runs(two_years: pa.Table, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_run(two_years, run)
    summary = analyze(run)
    for name in ("national_monthly", "top_cities", "registration_vs_operating_city", "clusters_monthly"):
        assert (run / "analysis" / f"{name}.parquet").exists() and (run / "analysis" / f"{name}.csv").exists()
    assert summary.tables["national_monthly"] == 24
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "--run", str(run), "--group", "north=110100,120100"])
    assert result.exit_code == 0, result.output
    own = pq.read_table(run / "analysis" / "groups_yearly.parquet").to_pylist()
    total = [r for r in own if r["group_id"] == "north" and r["city_adcode"] == 0 and r["year"] == 2021]
    assert total[0]["co2_t_monthly_mean"] == pytest.approx(45.0)  # Beijing 40 + Tianjin 5
    result = runner.invoke(app, ["analyze", "--run", str(run), "--group", "north=110100,999999"])
    assert result.exit_code == 2 and "999999" in result.output
    result = runner.invoke(app, ["analyze", "--run", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no inventory" in result.output


def test_every_analysis_shares_one_connection(
    two_years: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _write_run(two_years, run)
    connect = duckdb.connect
    made: list[Any] = []

    def counted(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        made.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counted)
    summary = analyze(run, groups={"north": [110100, 120100]})
    assert len(made) == 1  # the inventory is copied into DuckDB once, not once per analysis
    assert len(summary.tables) == 14
    # A hand-built inventory: no methods' columns and no activity (the intervals are drawn over it).
    notices = [m.split(":")[0].split("/")[-1] for m in summary.missing]
    assert notices == ["manifest.json", "methods and pollutants", "activity"]
    index = json.loads((run / "analysis" / "analysis.json").read_text(encoding="utf-8"))
    assert index == {"tables": summary.tables, "gdp": None, "top_n": 10}
    assert summary.tables["groups_yearly"] == 3 * 2  # the group and its two cities, for each of the two years
