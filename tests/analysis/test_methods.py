"""The methods side by side and the pollutants, on a hand-built inventory."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.analysis.methods import method_tables
from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder

from .conftest import BEIJING, PROVINCE, TIANJIN


def write(run: Path, rows: list[tuple[str, str, int, float, float, float, float]]) -> RunFolder:
    """Rows of (month, view, city, report L, copert L, measured L, NOx t); fuel_l is report's, 2.5 kg CO2/L."""
    (run / "inventory").mkdir(parents=True)
    t = pa.table({
        "month": [r[0] for r in rows], "view": [r[1] for r in rows],
        "city_adcode": pa.array([r[2] for r in rows], pa.int32()),
        "province_adcode": pa.array([PROVINCE[r[2]] for r in rows], pa.int32()),
        "emission_standard": ["China V"] * len(rows), "method": ["load_state"] * len(rows),
        "vehicles": [1] * len(rows), "distance_km": [1.0] * len(rows), "fuel_l": [r[3] for r in rows],
        "co2_t": [r[3] * 2.5 for r in rows], "co2_t_unweighted": [1.0] * len(rows),
        "fuel_l_report": [r[3] for r in rows], "fuel_l_copert": [r[4] for r in rows],
        "fuel_l_measured": [r[5] for r in rows], "nox_t": [r[6] for r in rows], "pm25_t": [r[6] / 100 for r in rows],
        "co_t": [r[6] / 2 for r in rows], "hc_t": [r[6] / 10 for r in rows],
    })  # fmt: skip
    for month in sorted(set(t["month"].to_pylist())):
        pq.write_table(t.filter(pa.compute.equal(t["month"], month)), run / "inventory" / f"{month}.parquet")
    return RunFolder.open(run)


def test_each_method_and_pollutant_summed_by_month_year_and_city(tmp_path: Path) -> None:
    folder = write(tmp_path / "run", [
        ("2022-01", "operating", BEIJING, 100.0, 120.0, 110.0, 2.0),
        ("2022-01", "operating", TIANJIN, 300.0, 270.0, 300.0, 4.0),
        ("2022-02", "operating", BEIJING, 200.0, 200.0, 180.0, 1.0),
        ("2022-01", "registration", BEIJING, 400.0, 390.0, 410.0, 6.0),  # the other view: not counted again
    ])  # fmt: skip
    with RunTables.of(folder) as tables:
        out = method_tables(folder, tables)
    jan, feb = out["methods_national_monthly"].to_pylist()
    assert (jan["fuel_l_report"], jan["fuel_l_copert"], jan["fuel_l_measured"]) == (400.0, 390.0, 410.0)
    assert jan["co2_t_copert"] == pytest.approx(390.0 * 2.5)  # the run's CO2 per litre
    assert jan["copert_vs_report"] == pytest.approx(-0.025) and feb["measured_vs_report"] == pytest.approx(-0.1)
    cities = {r["city_adcode"]: r for r in out["methods_city_annual"].to_pylist()}
    assert cities[BEIJING]["fuel_l_copert"] == 320.0 and cities[TIANJIN]["copert_vs_report"] == pytest.approx(-0.1)
    (national,) = out["pollutants_national_annual"].to_pylist()
    assert (national["year"], national["nox_t"], national["co_t"], national["co2_t"]) == (2022, 7.0, 3.5, 1500.0)
    city = {r["city_adcode"]: r for r in out["pollutants_city_annual"].to_pylist()}
    assert city[BEIJING]["pm25_t"] == pytest.approx(0.03) and city[TIANJIN]["hc_t"] == pytest.approx(0.4)


def test_an_inventory_without_the_methods_columns_is_named(tmp_path: Path, two_years: pa.Table) -> None:
    (tmp_path / "inventory").mkdir()
    pq.write_table(two_years, tmp_path / "inventory" / "2021-01.parquet")
    folder = RunFolder.open(tmp_path)
    with RunTables.of(folder) as tables, pytest.raises(InputError, match="fuel_l_report"):
        method_tables(folder, tables)
