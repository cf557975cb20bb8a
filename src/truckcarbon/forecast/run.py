"""Forecast, rolling-origin backtest and peak assessment of the national monthly CO2 series.

- **Forecast**: Prophet ``horizon`` months ahead with 80% and 95% intervals
  (quantiles of its simulated paths), beside the seasonal-naive and ETS baselines.
- **Backtest**: rolling origins (the last ``origins`` cut-offs, every
  ``step`` months); at each, every model is fitted on the months up to the
  cut-off only and scored on the following months; MAPE per model and horizon.
- **Peak**: annual totals of history and forecast; the year of the forecast
  maximum; the share of Prophet's simulated paths whose highest complete year
  lies in the history (the peak is behind us).

The history's shock months (Prophet's shock regressor) are the ones ``analyze``
flagged (``analysis/national_monthly``); where that table is absent or does not
match the inventory, the forecast finds them from the inventory with the same
rule (:func:`truckcarbon.analysis.trends.shock_months`) and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from truckcarbon.analysis.tables import RunTables
from truckcarbon.analysis.trends import national_monthly_totals, shock_months, shocks_in
from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import OutputError, RunFolder
from truckcarbon.forecast.models import F64, HoltWintersETS, Model, ProphetModel, SeasonalNaive, future_months

MIN_HISTORY = 36


def default_models(shocks: set[str]) -> list[Callable[[], Model]]:
    """The backtest's models: Prophet with the history's ``shocks`` (no paths sampled) and both baselines."""
    return [lambda: ProphetModel(shocks, uncertainty_samples=0), SeasonalNaive, HoltWintersETS]


def backtest(
    months: list[str],
    values: F64,
    models: list[Callable[[], Model]],
    horizon: int = 12,
    origins: int = 4,
    step: int = 6,
) -> pa.Table:
    """Rolling-origin backtest: ``model``, ``horizon`` (1..), ``mape``, ``n`` (forecasts scored).

    Each fit sees only ``months[:cut]`` and ``values[:cut]``.
    """
    n = len(months)
    cuts = [n - horizon - step * k for k in range(origins)]
    cuts = sorted(c for c in cuts if c >= MIN_HISTORY)
    if not cuts:
        raise InputError(f"backtest needs at least {MIN_HISTORY + horizon} months; the series has {n}")
    errors: dict[tuple[str, int], list[float]] = {}
    for cut in cuts:
        for make in models:
            model = make()
            model.fit(months[:cut], np.asarray(values[:cut]))
            pred = model.predict(horizon)
            actual = np.asarray(values[cut : cut + horizon])
            for k in range(min(horizon, actual.size)):
                if actual[k] != 0:
                    errors.setdefault((model.name, k + 1), []).append(abs(pred[k] / actual[k] - 1.0))
    rows = [
        {"model": m, "horizon": h, "mape": float(np.mean(e)), "n": len(e), "origins": len(cuts)}
        for (m, h), e in sorted(errors.items())
    ]
    return pa.Table.from_pylist(rows)


def peak_assessment(months: list[str], values: F64, future: list[str], paths: F64, point: F64) -> dict[str, Any]:
    """Year of the maximum annual total (history + point forecast) and the share of paths peaking in the past."""

    def annual(ms: list[str], vs: F64) -> dict[int, float]:
        out: dict[int, list[float]] = {}
        for m, v in zip(ms, vs.tolist(), strict=True):
            out.setdefault(int(m[:4]), []).append(v)
        return {y: float(sum(v)) for y, v in out.items() if len(v) == 12}

    hist = annual(months, values)
    if not hist:
        raise InputError("the peak assessment needs at least one complete year of history")
    fut = annual(future, point)
    combined = {**hist, **fut}
    peak_year = max(combined, key=lambda y: combined[y])
    best_hist = max(hist.values())
    past = 0
    for path in paths:
        years = annual(future, path)
        if not years or max(years.values()) < best_hist:
            past += 1
    return {
        "peak_year": peak_year,
        "peak_in_history": peak_year in hist,
        "history_max_year": max(hist, key=lambda y: hist[y]),
        "share_of_paths_peaked": past / len(paths) if len(paths) else None,
        "paths": len(paths),
        "complete_future_years": sorted(fut),
    }


@dataclass
class ForecastSummary:
    """Where the forecast was written, its peak assessment, and what of the run folder it lacked."""

    out: Path
    peak: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)  # e.g. a month's file, analyze's table of shock months


def forecast_series(
    months: list[str], values: F64, horizon: int = 36, paths: int = 1000, shocks: set[str] | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    """Point forecasts of every model and Prophet's 80%/95% intervals; plus the peak assessment.

    ``shocks``: the history's shock months (default: found by :func:`shock_months`)."""
    if len(months) < MIN_HISTORY:
        raise InputError(f"a forecast needs at least {MIN_HISTORY} months of history; the series has {len(months)}")
    if shocks is None:
        shocks = set(shock_months(months, values))
    future = future_months(months[-1], horizon)
    prophet = ProphetModel(shocks, uncertainty_samples=paths)
    prophet.fit(months, values)
    point = prophet.predict(horizon)
    sampled = prophet.sample_paths(horizon)
    q = np.quantile(sampled, [0.025, 0.10, 0.90, 0.975], axis=0)
    rows: list[dict[str, Any]] = []
    for m, v in zip(months, values.tolist(), strict=True):
        rows.append({"month": m, "model": "actual", "co2_t": v, "lo95": None, "lo80": None, "hi80": None, "hi95": None})
    for k, m in enumerate(future):
        rows.append(
            {"month": m, "model": "prophet", "co2_t": float(point[k]),
             "lo95": float(q[0, k]), "lo80": float(q[1, k]), "hi80": float(q[2, k]), "hi95": float(q[3, k])}
        )  # fmt: skip
    for make in (SeasonalNaive, HoltWintersETS):
        model = make()
        model.fit(months, values)
        for m, v in zip(future, model.predict(horizon).tolist(), strict=True):
            rows.append(
                {"month": m, "model": model.name, "co2_t": v, "lo95": None, "lo80": None, "hi80": None, "hi95": None}
            )
    schema = pa.schema(
        [("month", pa.string()), ("model", pa.string()), ("co2_t", pa.float64())]
        + [(c, pa.float64()) for c in ("lo95", "lo80", "hi80", "hi95")]
    )
    peak = peak_assessment(months, values, future, sampled, point)
    peak["shock_months_in_history"] = sorted(shocks)
    return pa.Table.from_pylist(rows, schema=schema), peak


def forecast_run(run: Path, horizon: int = 36, progress: Callable[[str], None] | None = None) -> ForecastSummary:
    """Forecast, backtest and peak assessment of a run's national series into ``run/forecast/``."""
    started = time.perf_counter()
    say = progress or (lambda _: None)
    folder = RunFolder.open(run)
    with folder.lock(exclusive=False):  # not while a run is replacing the folder
        return _forecast(folder, horizon, say, started)


def _forecast(folder: RunFolder, horizon: int, say: Callable[[str], None], started: float) -> ForecastSummary:
    with RunTables.of(folder) as tables:
        monthly = national_monthly_totals(tables)
    with folder.collect() as missed:
        folder.check_months("inventory")  # months the manifest names that the inventory lacks
    months = [str(m) for m in monthly["month"].to_pylist()]
    values = np.asarray(monthly["co2_t"].to_numpy(), dtype=np.float64)
    expected = future_months(months[0], len(months) - 1)
    if [months[0], *expected] != months:
        raise InputError(f"{folder.path}: the inventory's months are not consecutive; run the missing months first")
    with folder.collect() as noted:
        shocks = history_shocks(folder, months, values)
    out = folder.forecast
    out.mkdir(parents=True, exist_ok=True)
    say("forecast")
    table, peak = forecast_series(months, values, horizon, shocks=shocks)
    folder.write_forecast("forecast", table)
    say("backtest")
    bt = backtest(months, values, default_models(shocks), horizon=min(12, horizon))
    folder.write_forecast("backtest", bt)
    summary = ForecastSummary(out, peak, time.perf_counter() - started, [str(m) for m in missed + noted])
    folder.write_json("forecast", "peak", {**peak, "horizon_months": horizon})
    return summary


def history_shocks(folder: RunFolder, months: list[str], values: F64) -> set[str]:
    """The shock months ``analyze`` flagged for this series (``analysis/national_monthly``).

    When that table is absent, unreadable or of another series (the inventory changed
    since), the months are found from ``values`` by :func:`shock_months` and the folder
    notes why (:meth:`RunFolder.note`)."""
    found = "the forecast found the shock months from the inventory"
    try:
        table = folder.read_analysis("national_monthly")
    except OutputError as exc:
        folder.note(exc.source, "", f"{exc.why}; {found} (`truckcarbon analyze` writes them)")
        return set(shock_months(months, values))
    source = "analysis/national_monthly.parquet"
    if not {"month", "co2_t", "shock"} <= set(table.column_names):
        folder.note(source, "", f"lacks month, co2_t or shock; {found} (run `truckcarbon analyze` again)")
        return set(shock_months(months, values))
    same = table["month"].to_pylist() == months and np.allclose(
        np.asarray(table["co2_t"].to_numpy(zero_copy_only=False), dtype=np.float64), values, rtol=1e-9, atol=0.0
    )
    if not same:
        folder.note(source, "", f"of another inventory; {found} (run `truckcarbon analyze` again)")
        return set(shock_months(months, values))
    return set(shocks_in(table))


__all__ = ["backtest", "forecast_run", "forecast_series", "peak_assessment"]
