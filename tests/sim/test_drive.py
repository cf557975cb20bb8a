"""A truck's month in the straight world: shifts, fix times, a route long enough, fixes on the true path."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.core.months import month_bounds_utc, month_number
from truckcarbon.sim.context import static_context
from truckcarbon.sim.drive import CRUISE_KMH, TruckState, drive_month, fix_times, route_ahead, schedule
from truckcarbon.sim.fleet import Role

from .worlds import haversine

MARCH = month_bounds_utc(month_number(2023, 3))


def _local_hour(t_s: np.ndarray) -> np.ndarray:
    return ((t_s + 8 * 3600) % 86400) / 3600.0


def test_step_distance_series_is_the_haversine():
    """The truth's step distance (Taylor series of sin and asin for short steps) equals the haversine to
    1e-14, from centimetres to steps well past the series' range, at every latitude."""
    from truckcarbon.geo.distance import haversine_cos

    rng = np.random.default_rng(8)
    lat0, lon0 = rng.uniform(-70, 70, 4000), rng.uniform(70, 140, 4000)
    km, heading = 10 ** rng.uniform(-5, 1.7, 4000), rng.uniform(0, 2 * np.pi, 4000)
    lat1 = lat0 + km / 111.0 * np.sin(heading)
    lon1 = lon0 + km / 111.0 * np.cos(heading) / np.cos(np.radians(lat0))
    got = np.array(
        [
            haversine_cos(
                np.radians(b) - np.radians(a), np.radians(d - c), np.cos(np.radians(a)), np.cos(np.radians(b))
            )
            for a, b, c, d in zip(lat0, lat1, lon0, lon1, strict=True)
        ]
    )
    want = haversine(lon0, lat0, lon1, lat1)
    assert np.all(np.abs(got / want - 1) < 1e-14)
    assert (km > 25).sum() > 100 and (km < 1).sum() > 1000  # both branches


@pytest.mark.parametrize("role", list(Role))
def test_shifts_keep_the_working_day(role):
    start = MARCH[0]
    starts, ends, speeds = schedule(start, 31, 200.0, role, np.random.default_rng(4))
    hours = (ends - starts) / 3600.0
    assert np.all(hours > 0) and np.all(hours <= 4.0 + 1e-9)
    assert np.all(_local_hour(starts) >= 5.0) and np.all(_local_hour(ends) <= 23.5 + 1e-9)
    assert np.all(starts[1:] - ends[:-1] >= 20 * 60 - 1e-6)  # breaks of at least 20 minutes
    day = ((starts + 8 * 3600) // 86400).astype(np.int64)
    per_day = np.bincount(day - day.min(), weights=hours)
    assert per_day.max() <= 14.0 + 1e-9
    assert hours.sum() == pytest.approx(200.0, rel=0.1)  # the month's hours, +/-20% a day
    assert np.all(np.abs(speeds / CRUISE_KMH[role] - 1) <= 0.15 + 1e-9)
    days_off = 31 - np.unique(day).size
    assert days_off in ({4, 5} if role is Role.REGIONAL else {0})  # regional trucks: one day in seven off


def test_fixes_every_interval_while_driving_and_every_parked_interval_while_parked():
    start, end = MARCH
    starts = np.array([start + 6 * 3600.0, start + 12 * 3600.0])
    ends = np.array([start + 9 * 3600.0, start + 13 * 3600.0])
    t = fix_times(start, end, starts, ends, 30, 600)
    assert np.all(np.diff(t) > 0) and t[0] == start and t[-1] < end
    driving = ((t >= starts[0]) & (t < ends[0])) | ((t >= starts[1]) & (t < ends[1]))
    assert driving.sum() == (3 + 1) * 3600 // 30
    gaps = np.diff(t)
    assert set(gaps[driving[1:] & driving[:-1]].tolist()) == {30}
    assert set(gaps[~driving[1:] & ~driving[:-1]].tolist()) == {600}


def test_the_route_ahead_is_long_enough():
    world, destinations, _, _ = static_context()
    home = int(world.index_of([370100])[0])  # Jinan
    state = TruckState(home=home, lon=float(world.lon[home]), lat=float(world.lat[home]))
    lon, lat, s, load = route_ahead(world, state, Role.LONG_HAUL, destinations, 3000.0, np.random.default_rng(5))
    assert s[0] == 0.0 and s[-1] >= 3001.0 and np.all(np.diff(s) >= 0)
    assert s[-1] == pytest.approx(haversine(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum(), rel=1e-9)
    assert (lon[0], lat[0]) == (state.lon, state.lat) and set(np.unique(load).tolist()) <= {0, 1, 2}
    assert state.trips >= 1 and state.dest >= 0


def test_a_month_of_fixes_on_the_true_path():
    world, destinations, _, _ = static_context()
    home = int(world.index_of([410100])[0])  # Zhengzhou
    state = TruckState(home=home, lon=float(world.lon[home]), lat=float(world.lat[home]))
    start, end = MARCH
    tr = drive_month(world, state, Role.LONG_HAUL, destinations, start, end, 4000.0, 60, 600, np.random.default_rng(6))
    assert np.all(np.diff(tr.t_s) > 0) and tr.t_s[0] >= start and tr.t_s[-1] < end
    step = haversine(tr.lon[:-1], tr.lat[:-1], tr.lon[1:], tr.lat[1:])
    assert np.allclose(tr.step_km[1:], step, rtol=1e-9, atol=1e-12) and tr.step_km[0] == 0.0
    assert np.allclose(tr.odometer_km, np.cumsum(tr.step_km), rtol=1e-12)
    assert tr.odometer_km[-1] == pytest.approx(4000.0, rel=0.25)  # the month's distance, as the shifts drew it
    parked = tr.speed_kmh[1:] == 0
    assert np.all(tr.step_km[1:][parked & (tr.speed_kmh[:-1] == 0)] == 0)  # parked to parked: no distance
    assert (state.lon, state.lat) == pytest.approx((tr.lon[-1], tr.lat[-1]), abs=1e-9)  # parked at the month's end
