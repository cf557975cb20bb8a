"""Benchmark: forecast (Prophet, 36 months, 1000 paths) and rolling-origin backtest of a 72-month series.

    python benchmarks/bench_forecast.py [--months 72] [--horizon 36]

The series has a trend, the seasonality and New Year dip of the national
inventory and two shocks. The baseline, measured in the same run, is the same
backtest with the seasonal-naive model only (the cost of the loop itself).
Target: forecast + backtest under 60 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from truckcarbon.core.calendar import new_year_month
from truckcarbon.forecast import backtest, forecast_series
from truckcarbon.forecast.models import SeasonalNaive, future_months
from truckcarbon.forecast.run import default_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--months", type=int, default=72)
    ap.add_argument("--horizon", type=int, default=36)
    ap.add_argument("--paths", type=int, default=1000)
    args = ap.parse_args()
    months = ["2018-01", *future_months("2018-01", args.months - 1)]
    k = np.arange(args.months)
    season = np.array([0.95, 1.0, 0.97, 1.0, 1.0, 1.0, 0.98, 1.0, 1.05, 1.04, 1.08, 1.04])
    values = 1e7 * (1 + 0.012 * k) * season[k % 12]
    values *= np.array([0.65 if m == new_year_month(int(m[:4])) else 1.0 for m in months])
    rng = np.random.default_rng(0)
    values *= 1 + 0.02 * rng.standard_normal(args.months)
    for shock, f in (("2020-02", 0.6), ("2022-04", 0.85)):
        if shock in months:
            values[months.index(shock)] *= f
    t0 = time.perf_counter()
    naive = backtest(months, values, [SeasonalNaive], horizon=12)
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, peak = forecast_series(months, values, args.horizon, args.paths)
    t_forecast = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = backtest(months, values, default_models(set(peak["shock_months_in_history"])), horizon=12)
    t_backtest = time.perf_counter() - t0
    total = t_forecast + t_backtest
    print(f"series: {args.months} months; horizon {args.horizon}; {args.paths} paths; {naive.num_rows} naive rows")
    print(
        f"forecast: {t_forecast:.1f} s; backtest ({table['origins'][0].as_py()} origins x 3 models): {t_backtest:.1f} s"
    )
    print(f"total: {total:.1f} s (target < 60 s)")
    print(
        f"baseline seasonal-naive backtest: {base * 1000:.1f} ms; "
        f"ratio total / baseline: {total / max(base, 1e-9):.0f}x"
    )
    by_model: dict[str, list[float]] = {}
    for m, e in zip(table["model"].to_pylist(), table["mape"].to_pylist(), strict=True):
        by_model.setdefault(m, []).append(e)
    print(
        "backtest MAPE (mean over horizons): " + ", ".join(f"{m} {np.mean(v):.1%}" for m, v in sorted(by_model.items()))
    )


if __name__ == "__main__":
    main()
