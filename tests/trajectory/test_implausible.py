"""Motion a heavy truck cannot make (rule 6) against figures computed here, and driving it leaves alone.

Before rule 6, a phone on a 300 km/h train between stretches of driving went two ways. At 30 s fixes
(2.5 km steps) every train fix was set aside as a jump: its step from the set-aside fix before it was
too fast for the re-anchoring, so the runs never agreed; the chord from the last fix before the train
to the first after it was then reported unobserved (49.9 km of 50 over 19 jumps and one segment). At
10 s fixes (steps under 1 km, which the speed rule never checks) every fix was kept and the train
counted as driving. Now the train's fixes are kept (a smooth fast chain re-anchors) and its segments
counted as implausible motion, in both cases; the driving either side is kept.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow.compute as pc
import pytest

from truckcarbon.trajectory.kernel import run_kernel
from truckcarbon.trajectory.rules import CleaningRules
from truckcarbon.trajectory.schema import JUMP

R_KM = 6371.0088
T0 = 1_650_000_000  # 2022-04-15 13:20 local


def hav(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(h))


def steps_km(lon, lat, idx) -> float:
    """Haversine of the steps ending at fixes ``idx`` (each from the fix before it)."""
    return sum(hav(lon[k - 1], lat[k - 1], lon[k], lat[k]) for k in idx)


def total_km(r) -> float:
    return float(pc.sum(r.activity["distance_km"]).as_py() or 0.0)


def track(pieces, lon0=114.0, lat0=30.5, heading_deg=80.0, turn_deg=0.0):
    """Fixes of (fixes, interval s, km/h) pieces, each fix a step on from the one before at that speed;
    the heading turns by ``turn_deg`` at every step. Returns t, lon, lat."""
    t, lon, lat = [T0], [lon0], [lat0]
    h = heading_deg
    for count, interval, kmh in pieces:
        for _ in range(count):
            km = kmh * interval / 3600
            lat.append(lat[-1] + km * math.cos(math.radians(h)) / 110.574)
            lon.append(lon[-1] + km * math.sin(math.radians(h)) / (111.320 * math.cos(math.radians(lat[-1]))))
            t.append(t[-1] + interval)
            h += turn_deg
    return np.array(t), np.array(lon), np.array(lat)


@pytest.mark.parametrize("interval", [30, 10, 5])
def test_a_train_between_drives_is_excluded_and_counted_the_driving_kept(wgs_locator, interval):
    # 40 steps at 60 km/h, 20 fixes at 300 km/h on a curve (a degree a step), 40 steps at 60 km/h.
    t, lon, lat = track([(40, interval, 60.0), (20, interval, 300.0), (40, interval, 60.0)], turn_deg=1.0)
    n = t.size
    r = run_kernel(np.ones(n, np.int64), t, lon, lat, wgs_locator, np.full(n, 50.0))
    train = range(41, 61)  # the steps ending at the 20 train fixes
    driving = [*range(1, 41), *range(61, n)]
    assert r.counts["jump"] == 0 and r.counts["kept"] == n
    assert r.counts["implausible_speed_segments"] == 20
    assert r.implausible_speed_km == pytest.approx(steps_km(lon, lat, train), rel=1e-6)
    assert total_km(r) == pytest.approx(steps_km(lon, lat, driving), rel=1e-6)
    assert r.unobserved_km == 0.0 and r.gaps.num_rows == 0
    (row,) = r.gap_bins.to_pylist()
    assert row["gap_bin"] == "<=20min" and row["attributed_segments"] == 80 and row["implausible_segments"] == 20
    assert row["implausible_km"] == pytest.approx(steps_km(lon, lat, train), rel=1e-6)
    # Without rule 6 the kept train is driving when its steps are under 1 km (never speed-checked), and
    # unobserved (faster than max_speed_kmh over more than 1 km) when longer.
    off = run_kernel(
        np.ones(n, np.int64), t, lon, lat, wgs_locator, np.full(n, 50.0), CleaningRules(max_vehicle_kmh=1e9)
    )
    assert off.counts["implausible_speed_segments"] == 0
    if interval * 300 / 3600 < 1.0:
        assert total_km(off) == pytest.approx(steps_km(lon, lat, range(1, n)), rel=1e-6)
    else:
        assert total_km(off) == pytest.approx(steps_km(lon, lat, driving), rel=1e-6)
        assert off.unobserved_km == pytest.approx(steps_km(lon, lat, train), rel=1e-6)


@pytest.mark.parametrize(
    ("steps", "interval", "implausible"),
    [(2, 30, True), (1, 60, False), (1, 30, False), (3, 19, False), (4, 20, True), (2, 29, False)],
)
def test_a_stretch_must_last_sustained_s_over_two_segments(wgs_locator, steps, interval, implausible):
    """140 km/h (below max_speed_kmh: no jump) between drives at 70 km/h: implausible when it has at least
    two segments and lasts at least sustained_s (60 s); a single segment, however long, is not."""
    t, lon, lat = track([(10, interval, 70.0), (steps, interval, 140.0), (10, interval, 70.0)])
    n = t.size
    r = run_kernel(np.ones(n, np.int64), t, lon, lat, wgs_locator)
    fast = range(11, 11 + steps)
    assert r.counts["jump"] == 0
    if implausible:
        assert r.counts["implausible_speed_segments"] == steps
        assert r.implausible_speed_km == pytest.approx(steps_km(lon, lat, fast), rel=1e-6)
        assert total_km(r) == pytest.approx(steps_km(lon, lat, [*range(1, 11), *range(11 + steps, n)]), rel=1e-6)
    else:
        assert r.counts["implausible_speed_segments"] == 0 and r.implausible_speed_km == 0.0
        assert total_km(r) == pytest.approx(steps_km(lon, lat, range(1, n)), rel=1e-6)


def test_a_single_spike_or_fast_fix_is_still_a_jump(wgs_locator):
    """One fix 300 km/h out and back, one 300 km/h ahead of the road: jumps, as before; no implausible motion."""
    t, lon, lat = track([(60, 30, 60.0)])
    lon_bad, lat_bad = lon.copy(), lat.copy()
    lat_bad[20] += 2.5 / 110.574  # 2.5 km north and back within a minute
    lon_bad[40] += 2.5 / (111.32 * math.cos(math.radians(lat[40])))  # 2.5 km east, then back on the road
    n = t.size
    r = run_kernel(np.ones(n, np.int64), t, lon_bad, lat_bad, wgs_locator)
    reasons = r.reason.tolist()
    assert reasons[20] == JUMP and reasons[40] == JUMP and r.counts["jump"] == 2
    assert r.counts["implausible_speed_segments"] == 0 and r.unobserved_km == 0.0
    kept = [k for k in range(n) if k not in (20, 40)]
    want = sum(hav(lon[a], lat[a], lon[b], lat[b]) for a, b in itertools.pairwise(kept))
    assert total_km(r) == pytest.approx(want, rel=1e-6)


def test_scattered_outliers_in_a_row_do_not_make_a_fast_chain(wgs_locator):
    """Three consecutive fixes thrown 2-50 km in random directions (none the same velocity): jumps."""
    rng = np.random.default_rng(12)
    t, lon, lat = track([(60, 30, 60.0)])
    for trial in range(20):
        lon_bad, lat_bad = lon.copy(), lat.copy()
        r_km, theta = rng.uniform(2.0, 50.0, 3), rng.uniform(0, 2 * np.pi, 3)
        lat_bad[30:33] += r_km * np.sin(theta) / 110.574
        lon_bad[30:33] += r_km * np.cos(theta) / (111.32 * np.cos(np.radians(lat[30:33])))
        r = run_kernel(np.ones(t.size, np.int64), t, lon_bad, lat_bad, wgs_locator)
        assert r.reason[30:33].tolist() == [JUMP] * 3, trial
        assert r.counts["implausible_speed_segments"] == 0
        kept = [*range(30), *range(33, t.size)]
        want = sum(hav(lon[a], lat[a], lon[b], lat[b]) for a, b in itertools.pairwise(kept))
        assert total_km(r) == pytest.approx(want, rel=1e-6), trial


@pytest.mark.parametrize(("interval", "noise_m"), [(1, 5.0), (1, 10.0), (5, 10.0), (10, 10.0), (30, 10.0)])
def test_truck_driving_at_80_to_120_kmh_with_gps_noise_is_untouched(wgs_locator, interval, noise_m):
    """Four hours of driving whose speed wanders between 80 and 120 km/h (held a few minutes at a time),
    with Gaussian position noise: no segment is implausible, and the activity is the same as with rule 6
    off."""
    rng = np.random.default_rng(interval * 100 + int(noise_m))
    n = 4 * 3600 // interval
    per = max(1, 300 // interval)  # a speed held five minutes
    kmh = np.repeat(rng.uniform(80.0, 120.0, n // per + 1), per)[:n]
    heading = np.radians(60.0) + np.cumsum(rng.normal(0.0, 0.01, n))
    km = kmh * interval / 3600
    lat = 30.0 + np.concatenate([[0.0], np.cumsum(km * np.cos(heading))]) / 110.574
    lon = 113.5 + np.concatenate([[0.0], np.cumsum(km * np.sin(heading))]) / (111.32 * np.cos(np.radians(lat)))
    lat += rng.normal(0.0, noise_m, n + 1) / 110_574
    lon += rng.normal(0.0, noise_m, n + 1) / (111_320 * np.cos(np.radians(lat)))
    t = T0 + np.arange(n + 1) * interval
    vid = np.ones(n + 1, np.int64)
    r = run_kernel(vid, t, lon, lat, wgs_locator, np.full(n + 1, 90.0))
    off = run_kernel(vid, t, lon, lat, wgs_locator, np.full(n + 1, 90.0), CleaningRules(max_vehicle_kmh=1e9))
    assert r.counts["implausible_speed_segments"] == 0 and r.implausible_speed_km == 0.0
    assert r.activity.equals(off.activity) and np.array_equal(r.reason, off.reason)
    assert r.counts["jump"] == 0 and r.unobserved_km == 0.0
