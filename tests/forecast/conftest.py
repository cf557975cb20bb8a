"""A synthetic monthly series with known trend and seasonality, shared by the forecast tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from truckcarbon.forecast.models import future_months

SEASON = np.array([0.9, 0.8, 0.95, 1.0, 1.0, 1.0, 0.98, 1.0, 1.05, 1.07, 1.12, 1.13])


def series(n: int = 72, slope: float = 1.0, start: str = "2018-01") -> tuple[list[str], np.ndarray]:
    months = [start, *future_months(start, n - 1)]
    k = np.arange(n)
    return months, (100.0 + slope * k) * SEASON[k % 12]


@pytest.fixture
def make_series() -> Callable[..., tuple[list[str], np.ndarray]]:
    """``make_series(n, slope, start)``: ``n`` months of ``(100 + slope * k) * SEASON``."""
    return series
