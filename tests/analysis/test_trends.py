"""National trends on series whose answers are known: New Year months, shocks, annual totals and growth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.analysis.tables import RunTables
from truckcarbon.analysis.trends import (
    monthly_analysis,
    national_annual,
    national_monthly,
    national_monthly_totals,
    seasonal_profile,
    shock_months,
    shocks_in,
)
from truckcarbon.core.calendar import new_year_month

# Spring Festival months (from published calendars, not from the library under test).
PUBLISHED_NEW_YEAR = {
    2018: "2018-02", 2019: "2019-02", 2020: "2020-01", 2021: "2021-02", 2022: "2022-02",
    2023: "2023-01", 2024: "2024-02", 2025: "2025-01", 2026: "2026-02",
}  # fmt: skip


def test_new_year_months_match_the_published_calendar() -> None:
    assert {y: new_year_month(y) for y in PUBLISHED_NEW_YEAR} == PUBLISHED_NEW_YEAR


def _seasonal_series() -> tuple[list[str], np.ndarray]:
    """Six years: 1%/month growth, a seasonal pattern, the New Year dip, shocks of -40% (2020-02) and -20% (2022-04)."""
    months = [f"{y}-{m:02d}" for y in range(2018, 2024) for m in range(1, 13)]
    season = {1: 0.95, 2: 1.0, 3: 0.97, 4: 1.0, 5: 1.0, 6: 1.0, 7: 0.98, 8: 1.0, 9: 1.05, 10: 1.04, 11: 1.08, 12: 1.04}
    values = []
    for k, m in enumerate(months):
        f = season[int(m[5:])]
        if m == new_year_month(int(m[:4])):
            f *= 0.65  # the holiday month
        values.append(100.0 * 1.01**k * f)
    out = np.array(values)
    out[months.index("2020-02")] *= 0.6  # a 40% shock
    out[months.index("2022-04")] *= 0.8  # a 20% shock
    return months, out


def test_shocks_are_found_in_a_series_with_known_trend_and_seasonality() -> None:
    months, values = _seasonal_series()
    table = monthly_analysis(months, values)
    assert [m for m, s in zip(table["month"].to_pylist(), table["shock"].to_pylist(), strict=True) if s] == [
        "2020-02",
        "2022-04",
    ]
    flagged = dict(zip(table["month"].to_pylist(), table["deviation"].to_pylist(), strict=True))
    assert flagged["2020-02"] == pytest.approx(-0.4, abs=0.05)
    assert flagged["2022-04"] == pytest.approx(-0.2, abs=0.05)
    ny = [m for m, f in zip(table["month"].to_pylist(), table["new_year_month"].to_pylist(), strict=True) if f]
    assert ny == [PUBLISHED_NEW_YEAR[y] for y in range(2018, 2024)]
    yoy = dict(zip(table["month"].to_pylist(), table["yoy"].to_pylist(), strict=True))
    assert yoy["2018-05"] is None
    assert yoy["2019-05"] == pytest.approx(1.01**12 - 1)


def test_the_shock_rule_has_one_home_read_back_from_the_analysis_table() -> None:
    months, values = _seasonal_series()
    assert shock_months(months, values) == ["2020-02", "2022-04"]
    assert shock_months(months, values * 0 + 100.0) == []  # a flat series has no shock
    table = monthly_analysis(months, values)
    assert shocks_in(table) == ["2020-02", "2022-04"]
    edited = table.set_column(
        table.schema.get_field_index("shock"), "shock", pa.array([m == "2019-07" for m in months])
    )
    assert shocks_in(edited) == ["2019-07"]  # what the table says, not a recomputation


def test_annual_totals_growth_and_the_national_series(tables: RunTables) -> None:
    annual = national_annual(tables).to_pylist()
    assert [r["co2_t"] for r in annual] == pytest.approx([65.0 * 12, 97.5 * 12])
    assert [r["months"] for r in annual] == [12, 12]
    assert annual[0]["growth"] is None and annual[1]["growth"] == pytest.approx(0.5)
    totals = national_monthly_totals(tables)
    assert totals["co2_t"].to_pylist()[:2] == pytest.approx([65.0, 65.0])
    assert national_monthly_totals(tables, "registration")["co2_t"].to_pylist()[-1] == pytest.approx(65.0 * 1.5)
    monthly = national_monthly(tables).to_pylist()
    assert len(monthly) == 24 and monthly[12]["yoy"] == pytest.approx(0.5)


def test_seasonal_profile_of_a_flat_year_is_one() -> None:
    rows = pa.table(
        {
            "month": [f"{y}-{m:02d}" for y in (2021, 2022, 2023) for m in range(1, 13)],
            "view": ["operating"] * 36,
            "co2_t": [10.0] * 36,
        }
    )
    with RunTables(rows) as t:
        profile = dict(zip(*seasonal_profile(t).to_pydict().values(), strict=True))
    assert profile["7"] == pytest.approx(1.0) and profile["new_year_month"] == pytest.approx(1.0)
    assert len(profile) == 14  # twelve calendar months, the New Year month, the month after a late one
