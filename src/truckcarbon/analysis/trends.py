"""National trends: annual totals and growth, the monthly series, seasonality, New Year months, shocks.

Seasonal expectation (documented, robust, no model fitting):

1. each month falls in a seasonal category: its calendar month, except the
   Chinese New Year month (lunar calendar) and the month after a late New Year
   (day 15 or later, when the holiday runs on), which have categories of their own
   because the holiday moves between January and February;
2. the trend at a month is a straight line fitted to the deseasonalised values
   (value / index) within ``TREND_HALF_WINDOW`` months either side (the mean in
   the middle of the series, without lag at its ends); a category's index is the
   median of value / trend over its months;
3. a month's expectation is trend x index; a month is a **shock** when
   ``|log(actual / expected)|`` exceeds ``max(k * s, floor)`` with ``s`` the robust
   (MAD) spread of that log ratio; steps 2-3 repeat without the shock months until
   the flags settle.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.calendar import chinese_new_year, new_year_month

TREND_HALF_WINDOW = 6  # the trend is the mean of the deseasonalised values within 6 months either side
SHOCK_K = 3.0
SHOCK_FLOOR = 0.10  # a month at least 10% off its expectation


def national_monthly_totals(tables: RunTables, view: str = "operating") -> pa.Table:
    """``month``, ``co2_t`` (expanded) of the whole country, one view."""
    return tables.sql("SELECT month, sum(co2_t) AS co2_t FROM inv WHERE view = ? GROUP BY month ORDER BY month", [view])


def national_annual(tables: RunTables, view: str = "operating") -> pa.Table:
    """``year``, ``months`` (with data), ``co2_t``, ``growth`` (on the previous year; null when either is partial)."""
    monthly = national_monthly_totals(tables, view)
    years: dict[int, list[float]] = {}
    for m, v in zip(monthly["month"].to_pylist(), monthly["co2_t"].to_pylist(), strict=True):
        years.setdefault(int(m[:4]), []).append(float(v))
    rows = []
    for y in sorted(years):
        total = sum(years[y])
        prev = years.get(y - 1)
        growth = None
        if prev is not None and len(prev) == 12 and len(years[y]) == 12:
            growth = total / sum(prev) - 1.0
        rows.append({"year": y, "months": len(years[y]), "co2_t": total, "growth": growth})
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("year", pa.int32()), ("months", pa.int32()), ("co2_t", pa.float64()), ("growth", pa.float64())]
        ),
    )


def _category(month: str) -> str:
    """Seasonal category: the New Year month, the month after a late New Year, else the calendar month."""
    y = int(month[:4])
    ny = chinese_new_year(y)
    if month == new_year_month(y):
        return "new_year_month"
    after = f"{ny.year:04d}-{ny.month + 1:02d}" if ny.month < 12 else None
    if month == after and ny.day >= 15:
        return "after_late_new_year"
    return str(int(month[5:7]))


def _fit(months: list[str], values: np.ndarray) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Seasonal indices, each month's expectation and its shock flag (iterated without shock months)."""
    cats = [_category(m) for m in months]
    n = len(months)
    shock = np.zeros(n, bool)
    expected = np.full(n, np.nan)
    index: dict[str, float] = {}
    for _ in range(6):
        deseason = np.array([values[k] / index.get(cats[k], 1.0) for k in range(n)])
        trend = np.full(n, np.nan)
        for k in range(n):
            lo, hi = max(0, k - TREND_HALF_WINDOW), min(n, k + TREND_HALF_WINDOW + 1)
            pos = np.arange(lo, hi)[~shock[lo:hi]]
            if pos.size >= 3:  # a straight line through the window: the mean inside, no lag at the ends
                _, icept = np.polyfit(pos - k, deseason[pos], 1)
                trend[k] = float(icept)
            elif pos.size:
                trend[k] = float(np.mean(deseason[pos]))
        ratios: dict[str, list[float]] = {}
        for k in range(n):
            if np.isfinite(trend[k]) and trend[k] > 0 and not shock[k]:
                ratios.setdefault(cats[k], []).append(values[k] / trend[k])
        index = {c: float(np.median(r)) for c, r in ratios.items()}
        expected = np.array([trend[k] * index.get(cats[k], 1.0) for k in range(n)])
        with np.errstate(divide="ignore", invalid="ignore"):
            logdev = np.log(values / expected)
        ok = np.isfinite(logdev) & ~shock
        spread = 1.4826 * float(np.median(np.abs(logdev[ok] - np.median(logdev[ok])))) if ok.any() else 0.0
        limit = max(SHOCK_K * spread, math.log1p(SHOCK_FLOOR))
        new = np.isfinite(logdev) & (np.abs(logdev) > limit)
        if np.array_equal(new, shock):
            break
        shock = new
    return index, expected, shock


def national_monthly(tables: RunTables, view: str = "operating") -> pa.Table:
    """The national monthly series with year-on-year change, New Year months, expectation and shocks.

    Columns: ``month``, ``year``, ``co2_t``, ``yoy`` (on the same month a year
    before), ``new_year_month`` (the Spring Festival falls in it), ``expected_t``,
    ``deviation`` (actual / expected - 1) and ``shock``.
    """
    monthly = national_monthly_totals(tables, view)
    return monthly_analysis([str(m) for m in monthly["month"].to_pylist()], monthly["co2_t"].to_numpy())


def monthly_analysis(months: list[str], values_in: npt.ArrayLike) -> pa.Table:
    """:func:`national_monthly` for any monthly series (``months`` as 'YYYY-MM', ascending)."""
    values = np.asarray(values_in, dtype=np.float64)
    _, expected, shock = _fit(months, values)
    value_of = dict(zip(months, values.tolist(), strict=True))
    yoy = []
    for m in months:
        before = value_of.get(f"{int(m[:4]) - 1:04d}{m[4:]}")
        yoy.append(value_of[m] / before - 1.0 if before else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        deviation = values / expected - 1.0
    return pa.table(
        {
            "month": pa.array(months, pa.string()),
            "year": pa.array([int(m[:4]) for m in months], pa.int32()),
            "co2_t": pa.array(values),
            "yoy": pa.array(yoy, pa.float64()),
            "new_year_month": pa.array([m == new_year_month(int(m[:4])) for m in months]),
            "expected_t": pa.array(np.where(np.isfinite(expected), expected, np.nan), mask=~np.isfinite(expected)),
            "deviation": pa.array(deviation, mask=~np.isfinite(deviation)),
            "shock": pa.array(shock),
        }
    )


def shock_months(months: list[str], values_in: npt.ArrayLike) -> list[str]:
    """The shock months of a monthly series (the rule of the module), in month order.

    The one home of the rule: :func:`national_monthly` flags the same months in its ``shock`` column."""
    _, _, shock = _fit(months, np.asarray(values_in, dtype=np.float64))
    return [m for m, s in zip(months, shock.tolist(), strict=True) if s]


def shocks_in(national_monthly: pa.Table) -> list[str]:
    """The months flagged ``shock`` in a table of :func:`national_monthly` (as ``analyze`` writes it)."""
    flags = zip(national_monthly["month"].to_pylist(), national_monthly["shock"].to_pylist(), strict=True)
    return [str(m) for m, s in flags if s]


def seasonal_profile(tables: RunTables, view: str = "operating") -> pa.Table:
    """Seasonal index per calendar month (1.0 = an average month), the New Year month and the month after a late one."""
    monthly = national_monthly_totals(tables, view)
    index, _, _ = _fit([str(m) for m in monthly["month"].to_pylist()], monthly["co2_t"].to_numpy())
    labels = [str(c) for c in range(1, 13)] + ["new_year_month", "after_late_new_year"]
    return pa.table({"period": pa.array(labels), "index": pa.array([index.get(k) for k in labels], pa.float64())})


__all__ = [
    "monthly_analysis",
    "national_annual",
    "national_monthly",
    "national_monthly_totals",
    "seasonal_profile",
    "shock_months",
    "shocks_in",
]
