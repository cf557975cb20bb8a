"""Forecasts on synthetic series with known trend and seasonality; the backtest never sees the future."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.forecast import backtest, forecast_series, peak_assessment
from truckcarbon.forecast.models import HoltWintersETS, ProphetModel, SeasonalNaive, future_months

SEASON = np.array([0.9, 0.8, 0.95, 1.0, 1.0, 1.0, 0.98, 1.0, 1.05, 1.07, 1.12, 1.13])


def series(n: int = 72, slope: float = 1.0, start: str = "2018-01") -> tuple[list[str], np.ndarray]:
    months = [start, *future_months(start, n - 1)]
    k = np.arange(n)
    return months, (100.0 + slope * k) * SEASON[k % 12]


def test_prophet_recovers_trend_and_seasonality() -> None:
    months, values = series(84)
    model = ProphetModel(uncertainty_samples=0)
    model.fit(months[:72], values[:72])
    pred = model.predict(12)
    assert np.max(np.abs(pred / values[72:] - 1)) < 0.03


def test_baselines() -> None:
    months, values = series(48, slope=0.0)
    naive = SeasonalNaive()
    naive.fit(months[:36], values[:36])
    np.testing.assert_allclose(naive.predict(12), values[36:])
    months, values = series(84)
    ets = HoltWintersETS()
    ets.fit(months[:72], values[:72])
    assert np.max(np.abs(ets.predict(12) / values[72:] - 1)) < 0.03


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


def test_backtest_never_sees_data_after_its_cutoff() -> None:
    months, values = series(72)
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


def test_forecast_intervals_and_cli(tmp_path: Path) -> None:
    months, values = series(60, start="2019-01")
    table, peak = forecast_series(months, values, horizon=12, paths=200)
    prophet = table.filter(pa.compute.equal(table["model"], "prophet")).to_pylist()
    assert len(prophet) == 12
    for r in prophet:
        assert r["lo95"] <= r["lo80"] <= r["co2_t"] <= r["hi80"] <= r["hi95"]
    assert peak["peak_year"] == 2024 and not peak["peak_in_history"]  # a rising series
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
    result = CliRunner().invoke(app, ["forecast", "--run", str(run), "--horizon", "12"])
    assert result.exit_code == 0, result.output
    assert "peak year" in result.output
    assert json.loads((run / "forecast" / "peak.json").read_text())["horizon_months"] == 12
    bt = pq.read_table(run / "forecast" / "backtest.parquet")
    assert set(bt["model"].to_pylist()) == {"prophet", "seasonal_naive", "ets"}
