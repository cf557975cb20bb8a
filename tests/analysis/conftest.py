"""Hand-built inventories whose answers are known, shared by the analysis tests."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from truckcarbon.analysis.tables import RunTables

BEIJING, SHANGHAI, TIANJIN, LINYI = 110100, 310100, 120100, 371300
PROVINCE = {BEIJING: 110000, SHANGHAI: 310000, TIANJIN: 120000, LINYI: 370000}


def inventory(rows: list[tuple[str, str, int, str, float]]) -> pa.Table:
    """Rows of (month, view, city, standard, co2_t)."""
    return pa.table(
        {
            "month": [r[0] for r in rows],
            "view": [r[1] for r in rows],
            "city_adcode": pa.array([r[2] for r in rows], pa.int32()),
            "province_adcode": pa.array([PROVINCE[r[2]] for r in rows], pa.int32()),
            "emission_standard": [r[3] for r in rows],
            "method": ["unknown_load"] * len(rows),
            "vehicles": pa.array([1] * len(rows), pa.int64()),
            "distance_km": [1.0] * len(rows),
            "fuel_l": [1.0] * len(rows),
            "co2_t": [r[4] for r in rows],
            "co2_t_unweighted": [r[4] / 1000 for r in rows],
        }
    )


@pytest.fixture
def two_years() -> pa.Table:
    """2021 and 2022 (2022 = 1.5 x 2021), four cities, both views; registration and operating totals are equal."""
    rows = []
    for y, scale in ((2021, 1.0), (2022, 1.5)):
        for m in range(1, 13):
            month = f"{y}-{m:02d}"
            rows += [
                (month, "operating", BEIJING, "China V", 10.0 * scale),
                (month, "operating", BEIJING, "China VI", 30.0 * scale),
                (month, "operating", SHANGHAI, "China V", 20.0 * scale),
                (month, "operating", TIANJIN, "China VI", 5.0 * scale),
                (month, "registration", BEIJING, "China V", 15.0 * scale),
                (month, "registration", BEIJING, "China VI", 5.0 * scale),
                (month, "registration", LINYI, "China VI", 45.0 * scale),
            ]
    return inventory(rows)


@pytest.fixture
def tables(two_years: pa.Table) -> Iterator[RunTables]:
    """The two years as the analyses see them."""
    with RunTables(two_years) as t:
        yield t
