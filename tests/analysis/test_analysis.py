"""Analyses on hand-built inventories whose answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.analysis import analyze
from truckcarbon.analysis.places import cluster_groups, group_monthly, standard_shares, yearly_monthly_mean
from truckcarbon.analysis.rankings import read_gdp, registration_vs_operating, top_cities
from truckcarbon.analysis.trends import monthly_analysis, national_annual
from truckcarbon.cli.main import app
from truckcarbon.core.calendar import new_year_month
from truckcarbon.core.errors import InputError

# Spring Festival months (from published calendars, not from the library under test).
PUBLISHED_NEW_YEAR = {
    2018: "2018-02", 2019: "2019-02", 2020: "2020-01", 2021: "2021-02", 2022: "2022-02",
    2023: "2023-01", 2024: "2024-02", 2025: "2025-01", 2026: "2026-02",
}  # fmt: skip

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


def test_new_year_months_match_the_published_calendar() -> None:
    assert {y: new_year_month(y) for y in PUBLISHED_NEW_YEAR} == PUBLISHED_NEW_YEAR


def test_shocks_are_found_in_a_series_with_known_trend_and_seasonality() -> None:
    months = [f"{y}-{m:02d}" for y in range(2018, 2024) for m in range(1, 13)]
    season = {1: 0.95, 2: 1.0, 3: 0.97, 4: 1.0, 5: 1.0, 6: 1.0, 7: 0.98, 8: 1.0, 9: 1.05, 10: 1.04, 11: 1.08, 12: 1.04}
    values = []
    for k, m in enumerate(months):
        f = season[int(m[5:])]
        if m == new_year_month(int(m[:4])):
            f *= 0.65  # the holiday month
        values.append(100.0 * 1.01**k * f)
    values = np.array(values)
    values[months.index("2020-02")] *= 0.6  # a 40% shock
    values[months.index("2022-04")] *= 0.8  # a 20% shock
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


def _two_years() -> pa.Table:
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


def test_annual_totals_growth_shares_and_means() -> None:
    inv = _two_years()
    annual = national_annual(inv).to_pylist()
    assert [r["co2_t"] for r in annual] == pytest.approx([65.0 * 12, 97.5 * 12])
    assert annual[0]["growth"] is None and annual[1]["growth"] == pytest.approx(0.5)
    shares = {(r["month"], r["emission_standard"]): r["share"] for r in standard_shares(inv).to_pylist()}
    assert shares[("2021-03", "China V")] == pytest.approx(30 / 65)
    assert shares[("2021-03", "China VI")] == pytest.approx(35 / 65)
    monthly = group_monthly(inv, {"pair": [BEIJING, SHANGHAI], "ln": [LINYI]})
    means = {
        (r["group_id"], r["city_adcode"], r["year"]): r["co2_t_monthly_mean"]
        for r in yearly_monthly_mean(monthly).to_pylist()
    }
    assert means[("pair", 0, 2022)] == pytest.approx(90.0)
    assert means[("pair", BEIJING, 2021)] == pytest.approx(40.0)
    assert means[("ln", LINYI, 2021)] == 0.0  # no operating emissions: listed with 0, not dropped
    assert set(cluster_groups()) == {"jjj", "yrd", "prd"} and len(cluster_groups()["jjj"]) == 13


def test_rankings_with_gdp_intensity_and_missing_gdp(tmp_path: Path) -> None:
    gdp_file = tmp_path / "gdp.csv"
    gdp_file.write_text(
        "city,year,gdp_100m_yuan\n北京,2022,41610.9\nShanghai,2022,44652.8\n120100,2021,15695\n", encoding="utf-8"
    )
    gdp = read_gdp(gdp_file)
    top = top_cities(_two_years(), gdp, n=2).to_pylist()
    assert [(r["year"], r["rank"], r["city_adcode"]) for r in top] == [
        (2021, 1, BEIJING), (2021, 2, SHANGHAI), (2022, 1, BEIJING), (2022, 2, SHANGHAI),
    ]  # fmt: skip
    b22 = top[2]
    assert b22["co2_t"] == pytest.approx(60.0 * 12)
    assert b22["t_co2_per_100m_yuan"] == pytest.approx(60.0 * 12 / 41610.9)
    assert top[0]["gdp_status"] == "missing" and top[0]["t_co2_per_100m_yuan"] is None


def test_registration_vs_operating_ratios() -> None:
    rows = {r["adcode"]: r for r in registration_vs_operating(_two_years(), "city", year=2021).to_pylist()}
    assert rows[BEIJING]["ratio"] == pytest.approx(20 / 40)
    assert rows[BEIJING]["role"] == "receiver"
    assert rows[LINYI]["ratio"] is None and rows[LINYI]["role"] == "exporter"
    assert rows[SHANGHAI]["registration_co2_t"] == 0.0
    prov = {r["adcode"]: r for r in registration_vs_operating(_two_years(), "province").to_pylist()}
    assert prov[370000]["net_export_t"] == pytest.approx(45 * 12 + 67.5 * 12)
    total = sum(r["net_export_t"] for r in prov.values())
    assert total == pytest.approx(0.0, abs=1e-9)  # both views hold the same national total


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("city,year,gdp_100m_yuan\nAtlantis,2022,100\n", "row 1: city 'Atlantis'"),
        ("city,year,gdp_100m_yuan\n北京,2022,41610\n110100,2022,41610\n", "row 2: duplicate of row 1"),
        ("city,year,gdp_100m_yuan\n北京,2022,416109000000\n", "is it in 元"),
        ("city,year,gdp_100m_yuan\n北京,2022,416109000\n", "is it in 万元"),
        ("city,year,gdp,unit\n北京,2022,41610,万元\n", "unit '万元'"),
        ("city,gdp\n北京,41610\n", "missing column(s) year"),
    ],
)
def test_gdp_table_errors_name_the_rows(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gdp.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_gdp(path)


def test_analyze_writes_every_table_and_the_cli_reports_missing_runs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "inventory").mkdir(parents=True)
    inv = _two_years()
    for month in sorted(set(inv["month"].to_pylist())):
        pq.write_table(inv.filter(pa.compute.equal(inv["month"], month)), run / "inventory" / f"{month}.parquet")
    summary = analyze(run)
    for name in ("national_monthly", "top_cities", "registration_vs_operating_city", "clusters_monthly"):
        assert (run / "analysis" / f"{name}.parquet").exists() and (run / "analysis" / f"{name}.csv").exists()
    assert summary.tables["national_monthly"] == 24
    runner = CliRunner()
    result = runner.invoke(app, ["analyze", "--run", str(run), "--group", "north=110100,120100"])
    assert result.exit_code == 0, result.output
    own = pq.read_table(run / "analysis" / "groups_yearly.parquet").to_pylist()
    total = [r for r in own if r["group_id"] == "north" and r["city_adcode"] == 0 and r["year"] == 2021]
    assert total[0]["co2_t_monthly_mean"] == pytest.approx(45.0)  # Beijing 40 + Tianjin 5
    result = runner.invoke(app, ["analyze", "--run", str(run), "--group", "north=110100,999999"])
    assert result.exit_code == 2 and "999999" in result.output
    result = runner.invoke(app, ["analyze", "--run", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no inventory" in result.output


def test_sample_gdp_table_is_valid_and_sourced() -> None:
    import csv

    from truckcarbon.analysis.rankings import sample_gdp_path
    from truckcarbon.geo.reference import cities

    gdp = read_gdp(sample_gdp_path())
    assert gdp.num_rows >= 30 and set(gdp["year"].to_pylist()) == {2022}
    names = dict(zip(cities()["city_adcode"].to_pylist(), cities()["name_zh"].to_pylist(), strict=True))
    with sample_gdp_path().open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            assert row["source"] and row["name_zh"] in row["source"]
            assert names[int(row["city"])] == row["name_zh"]
