"""Forecast models on synthetic series with known trend and seasonality."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from truckcarbon.forecast.models import HoltWintersETS, ProphetModel, SeasonalNaive, future_months

Series = Callable[..., tuple[list[str], np.ndarray]]


def test_future_months_cross_the_year() -> None:
    assert future_months("2022-11", 3) == ["2022-12", "2023-01", "2023-02"]
    assert future_months("2022-11", 0) == []


def test_prophet_recovers_trend_and_seasonality(make_series: Series) -> None:
    months, values = make_series(84)
    model = ProphetModel(uncertainty_samples=0)
    model.fit(months[:72], values[:72])
    pred = model.predict(12)
    assert np.max(np.abs(pred / values[72:] - 1)) < 0.03


def test_baselines(make_series: Series) -> None:
    months, values = make_series(48, slope=0.0)
    naive = SeasonalNaive()
    naive.fit(months[:36], values[:36])
    np.testing.assert_allclose(naive.predict(12), values[36:])
    months, values = make_series(84)
    ets = HoltWintersETS()
    ets.fit(months[:72], values[:72])
    assert np.max(np.abs(ets.predict(12) / values[72:] - 1)) < 0.03
