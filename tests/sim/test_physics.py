"""The road world's true fuel (sim.physics): the tractive-power model by hand, and the truth table's columns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pytest

from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.fleet import Role
from truckcarbon.sim.physics import AREA_M2, CD, CRR, GROSS_T, KERB_T, TruckPhysics, path_fuel_g, truck_physics
from truckcarbon.sim.run import simulate

TRUCK = TruckPhysics(
    cd=0.6, area_m2=10.0, crr=0.007, eta=0.9, bsfc_g_per_kwh=195.0, idle_l_per_h=3.0,
    kerb_kg=15_000.0, payload_kg=34_000.0,
)  # fmt: skip


def litres(speed_kmh: np.ndarray, load: int, offset: tuple[int, ...] = (0,)) -> float:
    fuel = path_fuel_g(speed_kmh, np.full(speed_kmh.size, load, np.int8), np.array(offset, np.int64), TRUCK)
    return float(fuel.sum()) / 835.0


def test_steady_speed_by_hand():
    """An hour at 80 km/h, full (49 t) and empty (15 t): rolling and drag over the driveline, on the idle fuel."""
    v = 80 / 3.6
    for load, mass in ((2, 49_000.0), (0, 15_000.0)):
        wheel = mass * 9.80665 * 0.007 * v + 0.5 * 1.2 * 0.6 * 10.0 * v**3  # W
        grams = 3.0 * 835.0 + 195.0 * wheel / 0.9 / 1000.0  # idle L/h * g/L + g/kWh * kW * 1 h
        assert litres(np.full(3600, 80.0), load) == pytest.approx(grams / 835.0, rel=1e-9)
    full, empty = litres(np.full(3600, 80.0), 2) / 0.8, litres(np.full(3600, 80.0), 0) / 0.8  # L/100 km
    assert 35 < full < 45 and 20 < empty < 28  # COPERT articulated 40-50 t, Euro V at 80 km/h: 36.1 / 21.1


def test_idling_burns_the_idle_rate_and_half_load_sits_between():
    assert litres(np.zeros(3600), 0) == pytest.approx(3.0)  # an hour standing with the engine on
    half, full, empty = (litres(np.full(3600, 60.0), k) for k in (1, 2, 0))
    assert empty < half < full and half == pytest.approx((empty + full) / 2, rel=0.05)
    # An unknown load state is taken as half.
    assert litres(np.full(3600, 60.0), -1) == pytest.approx(half)


def test_acceleration_costs_fuel_and_braking_burns_idle():
    stops = np.tile(np.concatenate([np.linspace(0, 60, 30), np.full(60, 60.0), np.linspace(60, 0, 30)]), 10)
    steady = np.full(stops.size, stops.mean())  # the same distance at an even pace
    assert litres(stops, 2) > 1.2 * litres(steady, 2)
    braking = path_fuel_g(np.linspace(60, 0, 120), np.full(120, 2, np.int8), np.array([0]), TRUCK)
    assert np.allclose(braking[10:-10], 3.0 * 0.835 * 1000 / 3600)  # slowing down: idle fuel only
    # A shift's first second starts from rest whatever the second before it was.
    two_shifts = np.concatenate([np.full(10, 80.0), np.full(10, 80.0)])
    assert litres(two_shifts, 2, (0, 10)) == pytest.approx(litres(np.full(20, 80.0), 2))


def test_parameters_are_seeded_and_within_their_documented_ranges():
    for vid in range(1, 60):
        role = Role.LONG_HAUL if vid % 2 else Role.REGIONAL
        p = truck_physics(7, vid, role)
        assert p == truck_physics(7, vid, role)
        assert CD[0] <= p.cd <= CD[1] and AREA_M2[0] <= p.area_m2 <= AREA_M2[1] and CRR[0] <= p.crr <= CRR[1]
        assert KERB_T[role][0] * 1000 <= p.kerb_kg <= KERB_T[role][1] * 1000
        assert p.masses_kg()[2] == pytest.approx(GROSS_T[role] * 1000)
    assert truck_physics(7, 1, Role.LONG_HAUL) != truck_physics(8, 1, Role.LONG_HAUL)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    config = SimConfig(trucks=20, start_month="2023-05", end_month="2023-05", interval_s=60, seed=4)
    out = {}
    for geometry in ("road", "straight"):
        out[geometry] = tmp_path_factory.mktemp(geometry) / "w"
        simulate(out[geometry], replace(config, geometry=geometry))
    return out


def test_the_road_world_truth_has_the_physical_fuel_per_unit(worlds: dict[str, Path]) -> None:
    con = duckdb.connect()
    road = f"read_parquet('{worlds['road']}/truth.parquet')"
    rate, nulls, ratio = con.execute(f"""
        SELECT sum(fuel_l_physical) / sum(distance_km) * 100, count(*) FILTER (WHERE fuel_l_physical IS NULL),
               sum(co2_kg_physical) / sum(fuel_l_physical)
        FROM {road}""").fetchone()
    assert 22 < rate < 45 and nulls == 0  # L/100 km of a mixed fleet over urban, arterial and expressway driving
    assert ratio == pytest.approx(2.6765)  # the report's kg CO2 per litre
    straight = f"read_parquet('{worlds['straight']}/truth.parquet')"
    assert con.execute(f"SELECT count(*) FILTER (WHERE fuel_l_physical IS NOT NULL) FROM {straight}").fetchone() == (0,)
