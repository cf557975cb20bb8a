"""Top cities with GDP intensity, registration versus operating emissions, and the GDP table's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from truckcarbon.analysis.rankings import read_gdp, registration_vs_operating, sample_gdp_path, top_cities
from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.errors import InputError

BEIJING, SHANGHAI, LINYI = 110100, 310100, 371300


def test_rankings_with_gdp_intensity_and_missing_gdp(tables: RunTables, tmp_path: Path) -> None:
    gdp_file = tmp_path / "gdp.csv"
    gdp_file.write_text(
        "city,year,gdp_100m_yuan\n北京,2022,41610.9\nShanghai,2022,44652.8\n120100,2021,15695\n", encoding="utf-8"
    )
    gdp = read_gdp(gdp_file)
    top = top_cities(tables, gdp, n=2).to_pylist()
    assert [(r["year"], r["rank"], r["city_adcode"]) for r in top] == [
        (2021, 1, BEIJING), (2021, 2, SHANGHAI), (2022, 1, BEIJING), (2022, 2, SHANGHAI),
    ]  # fmt: skip
    b22 = top[2]
    assert b22["co2_t"] == pytest.approx(60.0 * 12)
    assert b22["t_co2_per_100m_yuan"] == pytest.approx(60.0 * 12 / 41610.9)
    assert top[0]["gdp_status"] == "missing" and top[0]["t_co2_per_100m_yuan"] is None


def test_registration_vs_operating_ratios(tables: RunTables) -> None:
    rows = {r["adcode"]: r for r in registration_vs_operating(tables, "city", year=2021).to_pylist()}
    assert rows[BEIJING]["ratio"] == pytest.approx(20 / 40)
    assert rows[BEIJING]["role"] == "receiver"
    assert rows[LINYI]["ratio"] is None and rows[LINYI]["role"] == "exporter"
    assert rows[SHANGHAI]["registration_co2_t"] == 0.0
    prov = {r["adcode"]: r for r in registration_vs_operating(tables, "province").to_pylist()}
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


def test_sample_gdp_table_is_valid_and_sourced() -> None:
    import csv

    from truckcarbon.geo.reference import cities

    gdp = read_gdp(sample_gdp_path())
    assert gdp.num_rows >= 30 and set(gdp["year"].to_pylist()) == {2022}
    names = dict(zip(cities()["city_adcode"].to_pylist(), cities()["name_zh"].to_pylist(), strict=True))
    with sample_gdp_path().open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            assert row["source"] and row["name_zh"] in row["source"]
            assert names[int(row["city"])] == row["name_zh"]


def test_registration_vs_operating_needs_a_known_level(tables: RunTables) -> None:
    with pytest.raises(InputError, match="level must be 'province' or 'city'"):
        registration_vs_operating(tables, "county")
