"""Forecast runs: the backtest never sees the future, the peak assessment, intervals, the shock months of analyze."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.analysis import analyze
from truckcarbon.analysis.trends import shock_months
from truckcarbon.cli.main import app
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.forecast import backtest, forecast_run, forecast_series, peak_assessment
from truckcarbon.forecast import run as forecast_module
from truckcarbon.forecast.models import ProphetModel, future_months
from truckcarbon.forecast.run import history_shocks

Series = Callable[..., tuple[list[str], np.ndarray]]


def _run(tmp_path: Path, months: list[str], values: np.ndarray) -> Path:
    """A run folder whose national operating series is ``values`` (one city, both views)."""
    run = tmp_path / "run"
    (run / "inventory").mkdir(parents=True)
    for m, v in zip(months, values, strict=True):
        inv = pa.table(
            {
                "month": [m, m], "view": ["operating", "registration"],
                "city_adcode": pa.array([110100, 110100], pa.int32()),
                "province_adcode": pa.array([110000, 110000], pa.int32()),
                "emission_standard": ["China V", "China V"], "method": ["unknown_load"] * 2,
                "vehicles": [1, 1], "distance_km": [1.0, 1.0], "fuel_l": [1.0, 1.0],
                "co2_t": [float(v), float(v)], "co2_t_unweighted": [1.0, 1.0],
            }
        )  # fmt: skip
        pq.write_table(inv, run / "inventory" / f"{m}.parquet")
    return run


def _shocked() -> tuple[list[str], np.ndarray]:
    """48 months of a straight line without seasonality, and one shock: 2020-06 at 60% of the line."""
    months = ["2019-01", *future_months("2019-01", 47)]
    values = 100.0 + np.arange(48.0)
    values[months.index("2020-06")] *= 0.6
    return months, values


def _edit_shocks(folder: RunFolder, shocks: set[str]) -> None:
    table = folder.read_analysis("national_monthly")
    flags = pa.array([m in shocks for m in table["month"].to_pylist()])
    folder.write_analysis("national_monthly", table.set_column(table.schema.get_field_index("shock"), "shock", flags))


class Spy:
    """Records the last month of every history it is fitted on; forecasts the last value."""

    name = "spy"
    seen: ClassVar[list[str]] = []

    def fit(self, months: list[str], values: np.ndarray) -> None:
        Spy.seen.append(months[-1])
        self.last = float(values[-1])
        assert len(months) == len(values)

    def predict(self, h: int) -> np.ndarray:
        return np.full(h, self.last)


def test_backtest_never_sees_data_after_its_cutoff(make_series: Series) -> None:
    months, values = make_series(72)
    Spy.seen = []
    table = backtest(months, values, [Spy], horizon=12, origins=4, step=6)
    # Cut-offs at 72 - 12 - 6k months: histories end at months 60, 54, 48, 42 (1-based).
    assert sorted(Spy.seen) == [months[41], months[47], months[53], months[59]]
    rows = {r["horizon"]: r for r in table.to_pylist()}
    assert set(rows) == set(range(1, 13)) and all(r["n"] == 4 for r in rows.values())
    # Horizon-1 error of "last value" forecasts, computed by hand.
    cuts = [42, 48, 54, 60]
    expected = np.mean([abs(values[c - 1] / values[c] - 1) for c in cuts])
    assert rows[1]["mape"] == pytest.approx(expected)


def test_peak_assessment() -> None:
    months = [f"{y}-{m:02d}" for y in (2020, 2021) for m in range(1, 13)]
    history = np.array([10.0] * 12 + [12.0] * 12)
    future = future_months(months[-1], 24)
    falling = np.array([11.0] * 12 + [10.0] * 12)
    paths = np.vstack([falling] * 3 + [np.full(24, 13.0)])  # one path of four beats 2021
    peak = peak_assessment(months, history, future, paths, falling)
    assert peak["peak_year"] == 2021 and peak["peak_in_history"]
    assert peak["share_of_paths_peaked"] == pytest.approx(0.75)
    rising = peak_assessment(months, history, future, paths[-1:], np.full(24, 13.0))
    assert rising["peak_year"] == 2022 and rising["share_of_paths_peaked"] == 0.0


def test_forecast_intervals_and_cli(make_series: Series, tmp_path: Path) -> None:
    months, values = make_series(60, start="2019-01")
    table, peak = forecast_series(months, values, horizon=12, paths=200)
    prophet = table.filter(pa.compute.equal(table["model"], "prophet")).to_pylist()
    assert len(prophet) == 12
    for r in prophet:
        assert r["lo95"] <= r["lo80"] <= r["co2_t"] <= r["hi80"] <= r["hi95"]
    assert peak["peak_year"] == 2024 and not peak["peak_in_history"]  # a rising series
    run = _run(tmp_path, months, values)
    result = CliRunner().invoke(app, ["forecast", "--run", str(run), "--horizon", "12"])
    assert result.exit_code == 0, result.output
    assert "peak year" in result.output
    # Without analyze's table the forecast finds the shock months itself, and says so.
    assert "analysis/national_monthly.parquet: absent; the forecast found the shock months" in result.output
    assert json.loads((run / "forecast" / "peak.json").read_text())["horizon_months"] == 12
    bt = pq.read_table(run / "forecast" / "backtest.parquet")
    assert set(bt["model"].to_pylist()) == {"prophet", "seasonal_naive", "ets"}


def test_the_forecast_takes_the_shock_months_analyze_wrote(tmp_path: Path) -> None:
    months, values = _shocked()
    assert shock_months(months, values) == ["2020-06"]
    folder = RunFolder(_run(tmp_path, months, values))
    with folder.collect() as noted:
        assert history_shocks(folder, months, values) == {"2020-06"}  # no analysis yet: found from the series
    assert [(m.source, m.why.split(";")[0]) for m in noted] == [("analysis/national_monthly.parquet", "absent")]
    analyze(folder.path)
    with folder.collect() as noted:
        assert history_shocks(folder, months, values) == {"2020-06"}
    assert noted == []
    _edit_shocks(folder, {"2019-03", "2021-11"})
    with folder.collect() as noted:
        assert history_shocks(folder, months, values) == {"2019-03", "2021-11"}  # analyze's, not recomputed
    assert noted == []
    # A table of another series (the inventory changed since analyze ran) is not used.
    changed = values.copy()
    changed[-1] *= 1.01
    with folder.collect() as noted:
        assert history_shocks(folder, months, changed) == set(shock_months(months, changed))
    assert [m.why.split(";")[0] for m in noted] == ["of another inventory"]
    table = folder.read_analysis("national_monthly")
    folder.write_analysis("national_monthly", table.drop_columns(["shock"]))
    with folder.collect() as noted:
        assert history_shocks(folder, months, values) == {"2020-06"}
    assert [m.why.split(";")[0] for m in noted] == ["lacks month, co2_t or shock"]


def test_forecast_run_passes_analyzes_shocks_to_every_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    months, values = _shocked()
    run = _run(tmp_path, months, values)
    analyze(run)
    _edit_shocks(RunFolder(run), {"2019-08"})
    seen: dict[str, Any] = {}

    def fake_series(ms: list[str], vs: np.ndarray, horizon: int, shocks: set[str]) -> tuple[pa.Table, dict[str, Any]]:
        seen["forecast"] = shocks
        return pa.table({"month": future_months(ms[-1], horizon)}), {"shock_months_in_history": sorted(shocks)}

    def fake_backtest(ms: list[str], vs: np.ndarray, models: list[Callable[[], Any]], horizon: int) -> pa.Table:
        prophet = models[0]()
        assert isinstance(prophet, ProphetModel)
        seen["backtest"] = prophet.shocks
        return pa.table({"model": ["prophet"], "horizon": [1], "mape": [0.0]})

    monkeypatch.setattr(forecast_module, "forecast_series", fake_series)
    monkeypatch.setattr(forecast_module, "backtest", fake_backtest)
    summary = forecast_run(run, horizon=12)
    assert seen == {"forecast": {"2019-08"}, "backtest": {"2019-08"}}
    assert not [m for m in summary.missing if "national_monthly" in m]  # analyze's table was used
    peak = json.loads((run / "forecast" / "peak.json").read_text(encoding="utf-8"))
    assert peak["shock_months_in_history"] == ["2019-08"] and peak["horizon_months"] == 12
