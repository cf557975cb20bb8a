"""Truth rows: the true path's km split at borders by load, the truth table sorted and priced by the report's method."""

from __future__ import annotations

import csv
from importlib.resources import files

import numpy as np
import pyarrow.parquet as pq
import pytest

from truckcarbon.sim.drive import Track
from truckcarbon.sim.road import Path1s
from truckcarbon.sim.truth import RunTruth, TruthRows, UnitKm, path_truth, track_truth

from .worlds import haversine, local_month, pings

BEIJING_TO_TIANJIN = (np.linspace(116.40, 117.20, 41), np.linspace(39.90, 39.13, 41))


def _track(lon: np.ndarray, lat: np.ndarray, load: np.ndarray) -> Track:
    step = np.concatenate([[0.0], haversine(lon[:-1], lat[:-1], lon[1:], lat[1:])])
    return Track(np.arange(lon.size, dtype=np.int64), lon, lat, np.zeros(lon.size), load, np.cumsum(step), step)


def test_truth_rows_sum_to_the_path_km_by_load(wgs_locator):
    lon, lat = BEIJING_TO_TIANJIN
    load = np.array([0] * 20 + [2] * 21, np.int8)  # segment s takes the load of fix s + 1
    rows = track_truth(wgs_locator, None, _track(lon, lat, load))
    assert rows is not None
    step = haversine(lon[:-1], lat[:-1], lon[1:], lat[1:])
    assert rows.km.sum() == pytest.approx(step.sum(), rel=1e-9)
    assert {110100, 120100} <= set(rows.units.tolist()) and len(set(rows.units.tolist())) == rows.units.size
    assert rows.by_load[0].sum() == pytest.approx(step[:19].sum(), rel=1e-9)
    assert rows.by_load[1].sum() == 0.0
    assert rows.by_load[2].sum() == pytest.approx(step[19:].sum(), rel=1e-9)
    assert np.allclose(rows.km, rows.by_load[0] + rows.by_load[1] + rows.by_load[2])


def test_the_path_continues_from_the_month_before(wgs_locator):
    lon, lat = BEIJING_TO_TIANJIN
    tr = _track(lon[20:], lat[20:], np.full(21, 1, np.int8))
    alone = track_truth(wgs_locator, None, tr)
    joined = track_truth(wgs_locator, (float(lon[19]), float(lat[19])), tr)
    assert alone is not None and joined is not None
    gap = haversine(lon[19], lat[19], lon[20], lat[20])
    assert joined.km.sum() - alone.km.sum() == pytest.approx(gap, rel=1e-9)
    assert joined.by_load[1].sum() == pytest.approx(joined.km.sum())  # the gap takes the first fix's load
    one_fix = _track(lon[:1], lat[:1], np.zeros(1, np.int8))
    assert track_truth(wgs_locator, None, one_fix) is None
    assert track_truth(wgs_locator, (116.0, 39.0), _track(lon[:0], lat[:0], np.zeros(0, np.int8))) is None


def test_road_truth_is_the_1s_path_from_the_start(wgs_locator):
    lon, lat = BEIJING_TO_TIANJIN
    n = lon.size - 1
    path = Path1s(
        lon[1:], lat[1:], np.zeros(n), np.zeros(n, np.int8), np.full(n, 2, np.int8), np.zeros(n),
        np.zeros(1, np.int64), np.zeros(1, np.int64),
    )  # fmt: skip
    rows = path_truth(wgs_locator, float(lon[0]), float(lat[0]), 2, path)
    assert rows is not None
    assert rows.km.sum() == pytest.approx(haversine(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum(), rel=1e-9)
    assert rows.by_load[2].sum() == pytest.approx(rows.km.sum())
    empty = Path1s(*(np.zeros(0) for _ in range(6)), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert path_truth(wgs_locator, 116.0, 39.0, 0, empty) is None


def test_the_truth_table_is_sorted_and_prices_the_unknown_load_when_the_pings_lack_it():
    group = TruthRows()
    group.add(2, UnitKm(np.array([120100, 110100], np.int32), np.array([10.0, 5.0]), [np.array([10.0, 5.0])] * 3))
    group.add(1, UnitKm(np.array([110100], np.int32), np.array([3.0]), [np.array([1.0]), np.zeros(1), np.array([2.0])]))
    run = RunTruth()
    run.add(2022 * 12 + 1, group.columns())
    run.add(2022 * 12, TruthRows().columns())  # a month without rows
    run.add(2022 * 12, group.columns())
    standard = np.array([2, 3], np.int8)
    table = run.table(standard, load_known=True)
    keys = list(zip(*(table[c].to_pylist() for c in ("vehicle_id", "month", "city_adcode")), strict=True))
    assert keys == sorted(keys) and len(keys) == 6
    assert keys[0] == (1, "2022-01", 110100) and keys[-1] == (2, "2022-02", 120100)
    # Vehicle 1 burns LNG, vehicle 2 is electric: their CO2 from the fuel and grid tables (Beijing and Tianjin,
    # 2022), the diesel litres of the work as for a diesel truck.
    fuels = run.table(standard, load_known=True, fuel=np.array([1, 3], np.int8))
    assert fuels["fuel_l"].equals(table["fuel_l"]) and fuels["fuel_type"].to_pylist()[0] == "LNG"
    grid = {110000: 0.5580, 120000: 0.7041}  # data/factors/grid_factors.csv, 2022
    for row, diesel in zip(fuels.to_pylist(), table.to_pylist(), strict=True):
        if row["vehicle_id"] == 1:
            assert row["co2_kg"] == pytest.approx(row["fuel_l"] * 0.831 * 2.693, rel=1e-12)
            assert row["co2_kg"] < diesel["co2_kg"]
        else:  # Tianjin's coal-heavy grid: more CO2 than the diesel's (3.977 x 0.7041 = 2.80 kg per litre of work)
            per_kwh = grid[row["city_adcode"] // 10000 * 10000]
            assert row["co2_kg"] == pytest.approx(row["fuel_l"] * 3.977 * per_kwh, rel=1e-12)
    unknown = run.table(standard, load_known=False)
    assert unknown["fuel_l"].equals(unknown["fuel_l_unknown_load"])
    assert not table["fuel_l"].equals(table["fuel_l_unknown_load"])
    assert table["fuel_l_unknown_load"].equals(unknown["fuel_l_unknown_load"])


def test_truth_is_the_length_of_the_true_path(clean_run, reference):
    """Clean pings are the true fixes: their segment lengths add up to the truth, per vehicle-month and city."""
    from truckcarbon.geo.crs import wgs84_to_gcj02

    p = pings(clean_run)
    t = pq.read_table(clean_run / "truth.parquet")
    vid = p["vehicle_id"].to_numpy()
    lon, lat = p["lon"].to_numpy(), p["lat"].to_numpy()
    ts = p["ts"].cast("int64").to_numpy() // 1000
    same = vid[1:] == vid[:-1]
    km = np.where(same, haversine(lon[:-1], lat[:-1], lon[1:], lat[1:]), 0.0)
    month = np.array([f"{(m // 12):04d}-{m % 12 + 1:02d}" for m in local_month(ts[1:])])
    start_city = reference.locate(*wgs84_to_gcj02(lon[:-1], lat[:-1]))
    totals: dict[tuple[int, str], float] = {}
    by_city: dict[tuple[int, str, int], float] = {}
    for v, m, c, d in zip(vid[1:], month, start_city, km, strict=True):
        if d > 0:
            totals[(int(v), m)] = totals.get((int(v), m), 0.0) + d
            by_city[(int(v), m, int(c))] = by_city.get((int(v), m, int(c)), 0.0) + d
    truth_tot: dict[tuple[int, str], float] = {}
    for row in t.to_pylist():
        key = (row["vehicle_id"], row["month"])
        truth_tot[key] = truth_tot.get(key, 0.0) + row["distance_km"]
    assert set(truth_tot) == set(totals)
    for key, km_sum in totals.items():
        assert truth_tot[key] == pytest.approx(km_sum, rel=1e-9)
    # Per city, the truth (split exactly at borders) is within the length of one
    # segment per crossing of the start-city approximation.
    for row in t.to_pylist():
        approx = by_city.get((row["vehicle_id"], row["month"], row["city_adcode"]), 0.0)
        assert abs(row["distance_km"] - approx) < 5.0 + 0.01 * row["distance_km"]
    assert len(truth_tot) >= 6 and min(truth_tot.values()) > 300  # the trucks in the world drove


def test_truth_fuel_and_co2_follow_the_report_method(clean_run):
    """Recomputed here from the factor files: km by load state x L/100 km, x 2.6765 kg/L."""
    with files("truckcarbon.data").joinpath("factors", "fuel_rates.csv").open(encoding="utf-8") as f:
        rate = {
            (r["emission_standard"], r["load_state"]): float(r["fuel_rate_l_per_100km"])
            for r in csv.DictReader(f)
            if r["reference_speed_kmh"] == "60"
        }
    std = dict(
        zip(
            *pq.read_table(clean_run / "vehicles.parquet", columns=["vehicle_id", "emission_standard"])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    t = pq.read_table(clean_run / "truth.parquet").to_pylist()
    for row in t:
        s = std[row["vehicle_id"]]
        fuel = sum(row[f"distance_km_{ld}"] * rate[(s, ld)] / 100 for ld in ("empty", "half", "full"))
        assert row["fuel_l"] == pytest.approx(fuel, rel=1e-9, abs=1e-9)
        if row["fuel_type"] == "diesel":
            assert row["co2_kg"] == pytest.approx(fuel * 2.6765, rel=1e-9, abs=1e-9)
        unknown = row["distance_km"] * (0.4 * rate[(s, "empty")] + 0.6 * rate[(s, "full")]) / 100
        assert row["fuel_l_unknown_load"] == pytest.approx(unknown, rel=1e-9, abs=1e-9)
        assert row["distance_km"] == pytest.approx(
            row["distance_km_empty"] + row["distance_km_half"] + row["distance_km_full"], rel=1e-9, abs=1e-9
        )
