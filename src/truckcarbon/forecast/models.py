"""Forecast models of a monthly series: Prophet (as the source report), seasonal naive, Holt-Winters ETS.

Every model has the same interface: ``fit(months, values)`` on a history, then
``predict(h)`` giving ``h`` months of point forecasts and, when the model can,
``sample_paths(h, n)``: ``n`` simulated future paths (for intervals and the peak
assessment).

Prophet setup: multiplicative yearly seasonality (Fourier order 6 on monthly
data), a regressor for the Chinese New Year month (lunar calendar, so the model
knows in which future month the holiday falls), and a regressor marking the
history's shock months (found by :mod:`truckcarbon.analysis.trends`; zero in
the future), so that one-off shocks such as 2020-02 do not bend the trend.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from truckcarbon.core.calendar import new_year_month

F64 = npt.NDArray[np.float64]


def future_months(last: str, h: int) -> list[str]:
    """The ``h`` months after ``last`` ('YYYY-MM')."""
    y, m = int(last[:4]), int(last[5:7])
    out = []
    for _ in range(h):
        m += 1
        if m > 12:
            y, m = y + 1, 1
        out.append(f"{y:04d}-{m:02d}")
    return out


class Model(Protocol):
    name: str

    def fit(self, months: list[str], values: F64) -> None: ...

    def predict(self, h: int) -> F64: ...


class SeasonalNaive:
    """Each future month repeats the same month of the last observed year."""

    name = "seasonal_naive"

    def fit(self, months: list[str], values: F64) -> None:
        if len(values) < 12:
            raise ValueError("seasonal naive needs at least 12 months")
        self.last_year = np.asarray(values[-12:], dtype=np.float64)

    def predict(self, h: int) -> F64:
        return np.array([self.last_year[k % 12] for k in range(h)])


class HoltWintersETS:
    """Additive-trend (damped), multiplicative-season exponential smoothing (statsmodels)."""

    name = "ets"

    def fit(self, months: list[str], values: F64) -> None:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        self.result = ExponentialSmoothing(
            np.asarray(values, dtype=np.float64),
            trend="add",
            damped_trend=True,
            seasonal="mul",
            seasonal_periods=12,
            initialization_method="estimated",
        ).fit()

    def predict(self, h: int) -> F64:
        return np.asarray(self.result.forecast(h), dtype=np.float64)


@contextlib.contextmanager
def _prophet_warnings() -> Iterator[None]:
    """Prophet 1.5 calls pandas APIs that pandas 3.1 deprecates; those warnings are Prophet's, not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="prophet")
        yield


def _quiet() -> None:
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("prophet.plot").disabled = True  # "plotly failed": we draw no Prophet plots
    logging.getLogger("cmdstanpy").disabled = True  # it resets its own level on first use


class ProphetModel:
    """Prophet with the New Year and shock regressors (see the module docstring)."""

    name = "prophet"

    def __init__(self, shocks: set[str] | None = None, uncertainty_samples: int = 1000, seed: int = 0) -> None:
        self.shocks = shocks or set()
        self.uncertainty_samples = uncertainty_samples
        self.seed = seed

    def _frame(self, months: list[str], values: F64 | None = None) -> Any:
        import pandas as pd

        df = pd.DataFrame(
            {
                "ds": pd.to_datetime([f"{m}-01" for m in months]),
                "new_year_month": [1.0 if m == new_year_month(int(m[:4])) else 0.0 for m in months],
                "shock": [1.0 if m in self.shocks else 0.0 for m in months],
            }
        )
        if values is not None:
            df["y"] = np.asarray(values, dtype=np.float64)
        return df

    def fit(self, months: list[str], values: F64) -> None:
        _quiet()
        from prophet import Prophet

        _quiet()  # again: cmdstanpy sets up its own logging when imported

        self.months = list(months)
        self.model = Prophet(
            growth="linear",
            yearly_seasonality=6,
            weekly_seasonality=False,
            daily_seasonality=False,
            seasonality_mode="multiplicative",
            uncertainty_samples=self.uncertainty_samples,
        )
        self.model.add_regressor("new_year_month", mode="multiplicative")
        if any(m in self.shocks for m in months):
            self.model.add_regressor("shock", mode="multiplicative")
        np.random.seed(self.seed)  # Prophet samples its intervals with numpy's global generator
        with _prophet_warnings():
            self.model.fit(self._frame(months, values))

    def predict(self, h: int) -> F64:
        future = self._frame(future_months(self.months[-1], h))
        with _prophet_warnings():
            return np.asarray(self.model.predict(future)["yhat"].to_numpy(), dtype=np.float64)

    def sample_paths(self, h: int) -> F64:
        """``uncertainty_samples`` simulated paths, shape (paths, h)."""
        np.random.seed(self.seed + 1)
        future = self._frame(future_months(self.months[-1], h))
        with _prophet_warnings():
            samples = self.model.predictive_samples(future)["yhat"]  # (h, paths)
        return np.asarray(samples, dtype=np.float64).T
