"""Terminal channels: noisy speed, an odometer continued month to month, a fuel gauge that drains and refuels."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from truckcarbon.sim.channels import REFUEL_BELOW, TANK_L, terminal_channels
from truckcarbon.sim.drive import Track

from .worlds import pings


def _track(step_km: np.ndarray, load: np.ndarray, speed: float = 60.0) -> Track:
    n = step_km.size
    return Track(
        t_s=np.arange(n, dtype=np.int64) * 60,
        lon=np.zeros(n),
        lat=np.zeros(n),
        speed_kmh=np.full(n, speed),
        load=load.astype(np.int8),
        odometer_km=np.cumsum(step_km),
        step_km=step_km,
    )


def test_odometer_continues_and_rounds_to_a_tenth():
    step = np.concatenate([[0.0], np.full(99, 1.234)])
    tr = _track(step, np.zeros(100))
    ch = terminal_channels(tr, np.array([20.0, 25.0, 30.0]), 1000.0, 500.0, np.random.default_rng(1))
    assert ch.odometer_km[0] == 1000.0
    assert np.all(np.diff(ch.odometer_km) >= 0)  # monotone
    assert np.allclose(ch.odometer_km, np.round((1000.0 + np.cumsum(step)) * 10) / 10, atol=1e-9)
    assert ch.odometer_end_km == pytest.approx(1000.0 + 99 * 1.234)
    none = terminal_channels(_track(np.empty(0), np.empty(0)), np.ones(3), 7.5, 300.0, np.random.default_rng(1))
    assert none.odometer_end_km == 7.5 and none.tank_end_l == 300.0 and none.speed_kmh.size == 0


def test_fuel_drains_by_distance_times_the_rate_of_the_load_and_refuels_below_15_percent():
    # 10 km steps; empty at 20 L/100 km (2 L per step), full at 40 (4 L per step).
    load = np.array([0] * 50 + [2] * 150)
    step = np.concatenate([[0.0], np.full(199, 10.0)])
    ch = terminal_channels(_track(step, load), np.array([20.0, 30.0, 40.0]), 0.0, 200.0, np.random.default_rng(2))
    level = ch.fuel_level_l.astype(np.float64)
    d = np.diff(level)
    refuels = np.flatnonzero(d > 0)
    assert refuels.size >= 2
    drained = -d[d <= 0]
    expected = np.where(load[1:] == 0, 2.0, 4.0)[d <= 0]
    assert np.allclose(drained, expected, atol=0.11)  # the gauge reads 0.1 L
    for i in refuels + 1:  # a refuel: the tank had fallen below 15% and is filled to 90-100%
        assert level[i - 1] - (4.0 if load[i] == 2 else 2.0) < REFUEL_BELOW * TANK_L + 0.1
        assert 0.9 * TANK_L - 0.1 <= level[i] <= TANK_L
    assert level.min() >= REFUEL_BELOW * TANK_L - 0.1
    assert ch.tank_end_l == pytest.approx(level[-1], abs=0.05)


def test_the_gauge_drains_by_the_true_fuel_when_it_is_given_not_by_the_rates():
    """Road world: the physical fuel burnt up to each fix drains the tank (idling too: no km, fuel burnt)."""
    step = np.concatenate([[0.0], np.full(99, 1.0)])
    step[40:60] = 0.0  # standing with the engine on: fuel, no km
    burnt = np.cumsum(np.where(step > 0, 0.35, 0.04))  # 35 L/100 km driving, 0.04 L per idle interval
    burnt -= burnt[0]
    ch = terminal_channels(_track(step, np.zeros(100)), np.array([99.0, 99.0, 99.0]), 0.0, 300.0,
                           np.random.default_rng(4), fuel_l=burnt)  # fmt: skip
    level = ch.fuel_level_l.astype(np.float64)
    assert np.allclose(level, 300.0 - burnt, atol=0.051)  # the gauge reads 0.1 L; no refuel: 300 L is enough
    assert level[59] - level[40] == pytest.approx(-19 * 0.04, abs=0.11)  # idling drains the tank


def test_speed_carries_three_percent_noise():
    tr = _track(np.zeros(20_000), np.zeros(20_000), speed=80.0)
    ch = terminal_channels(tr, np.ones(3), 0.0, 500.0, np.random.default_rng(3))
    ratio = ch.speed_kmh.astype(np.float64) / 80.0 - 1
    assert ch.speed_kmh.dtype == np.float32
    assert abs(ratio.mean()) < 4 * 0.03 / np.sqrt(ratio.size)
    assert ratio.std() == pytest.approx(0.03, rel=0.03)


def test_odometer_is_monotone_and_measures_the_true_path(clean_run):
    """In a clean straight world the odometer of each truck rises over the run by its true kilometres."""
    p = pings(clean_run)
    vid = p["vehicle_id"].to_numpy()
    odo = p["odometer_km"].to_numpy()
    same = vid[1:] == vid[:-1]
    assert np.all(np.diff(odo)[same] >= 0)
    truth = pq.read_table(clean_run / "truth.parquet").group_by("vehicle_id").aggregate([("distance_km", "sum")])
    km = dict(zip(truth["vehicle_id"].to_pylist(), truth["distance_km_sum"].to_pylist(), strict=True))
    starts = np.flatnonzero(np.concatenate([[True], ~same]))
    ends = np.concatenate([starts[1:], [vid.size]]) - 1
    assert len(km) >= 2  # the trucks reporting in the small world
    for a, b in zip(starts, ends, strict=True):
        assert odo[a] < 0.05  # a truck's odometer starts at zero with the world
        assert odo[b] - odo[a] == pytest.approx(km.get(int(vid[a]), 0.0), abs=0.1), int(vid[a])


def test_fuel_gauge_drains_by_the_truth_and_jumps_at_refuels(clean_run):
    p = pings(clean_run)
    vid = p["vehicle_id"].to_numpy()
    level = p["fuel_level_l"].to_numpy().astype(np.float64)
    same = vid[1:] == vid[:-1]
    d = np.diff(level)[same]
    refuels = d > 50
    assert refuels.sum() >= 5  # trucks refuel
    assert (level[1:][same][refuels] >= 0.9 * 600 - 0.1).all()  # to 90-100% of the 600 L tank
    assert (level > 0).all() and (level <= 600).all()
    consumed = -d[~refuels].sum()
    truth_fuel = pc.sum(pq.read_table(clean_run / "truth.parquet")["fuel_l"]).as_py()
    assert consumed == pytest.approx(truth_fuel, rel=0.01)
