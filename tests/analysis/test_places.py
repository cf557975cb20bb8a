"""Cities, groups of cities and emission standards on a hand-built inventory."""

from __future__ import annotations

import pytest

from truckcarbon.analysis.places import (
    MAJOR_CITIES,
    city_standard_period,
    cluster_groups,
    group_monthly,
    standard_shares,
    yearly_monthly_mean,
)
from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.errors import InputError

BEIJING, SHANGHAI, LINYI = 110100, 310100, 371300


def test_standard_shares_group_and_yearly_means(tables: RunTables) -> None:
    shares = {(r["month"], r["emission_standard"]): r["share"] for r in standard_shares(tables).to_pylist()}
    assert shares[("2021-03", "China V")] == pytest.approx(30 / 65)
    assert shares[("2021-03", "China VI")] == pytest.approx(35 / 65)
    monthly = group_monthly(tables, {"pair": [BEIJING, SHANGHAI], "ln": [LINYI]})
    means = {
        (r["group_id"], r["city_adcode"], r["year"]): r["co2_t_monthly_mean"]
        for r in yearly_monthly_mean(tables, monthly).to_pylist()
    }
    assert means[("pair", 0, 2022)] == pytest.approx(90.0)
    assert means[("pair", BEIJING, 2021)] == pytest.approx(40.0)
    assert means[("ln", LINYI, 2021)] == 0.0  # no operating emissions: listed with 0, not dropped
    assert set(cluster_groups()) == {"jjj", "yrd", "prd"} and len(cluster_groups()["jjj"]) == 13
    assert MAJOR_CITIES["beijing"] == BEIJING and len(MAJOR_CITIES) == 6


def test_group_members_must_be_mainland_units(tables: RunTables) -> None:
    with pytest.raises(InputError, match="group 'x': 999999 is not a mainland"):
        group_monthly(tables, {"x": [999999]})
    with pytest.raises(InputError, match="no group members"):
        group_monthly(tables, {"x": []})


def test_city_standard_period_totals_and_monthly_means(tables: RunTables) -> None:
    rows = {
        (r["period"], r["city_adcode"], r["emission_standard"]): r for r in city_standard_period(tables).to_pylist()
    }
    assert {p for p, _, _ in rows} == {"2021", "2022"}  # calendar years by default
    assert rows[("2021", BEIJING, "China VI")]["co2_t"] == pytest.approx(30.0 * 12)
    assert rows[("2022", BEIJING, "China VI")]["co2_t_monthly_mean"] == pytest.approx(45.0)
    assert rows[("2021", BEIJING, "China VI")]["province_adcode"] == 110000
    assert ("2021", LINYI, "China VI") not in rows  # the operating view only
    h1 = city_standard_period(tables, {"2021H1": ("2021-01", "2021-06")}).to_pylist()
    shanghai = [r for r in h1 if r["city_adcode"] == SHANGHAI]
    assert shanghai[0]["co2_t"] == pytest.approx(20.0 * 6) and shanghai[0]["co2_t_monthly_mean"] == pytest.approx(20.0)
