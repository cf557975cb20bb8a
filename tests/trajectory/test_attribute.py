"""The segment rules and attribution (trajectory._attribute), run through run_kernel on hand-built tracks:
load state and measured fuel by segment, the drift rule, the odometer across holes, paths summed per cell.

Distances are the haversine on the IUGG mean sphere (R = 6371.0088 km), computed in this file; the
kernel's short steps take a flat-earth form within 1e-7 of it, hence the tolerances of 1e-6.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from truckcarbon.trajectory.kernel import run_kernel
from truckcarbon.trajectory.rules import CleaningRules

R_KM = 6371.0088
BEIJING = 110100
LON0, LAT0 = 116.40, 39.93  # Dongcheng, well inside Beijing
EAST_KM = 1 / (111.32 * math.cos(math.radians(LAT0)))  # about a km of longitude


def hav(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(h))


def _ts(y, mo, d, h, mi=0):
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())


def _by(table, keys, outside=False):
    """Kilometres by ``keys``; those outside every city (code 0) too when ``outside``."""
    if not outside:
        table = table.filter(pc.not_equal(table["city_adcode"], 0))
    g = table.group_by(keys).aggregate([("distance_km", "sum")])
    return {tuple(r[k] for k in keys): r["distance_km_sum"] for r in g.to_pylist()}


def east_track(km: list[float], step_s: int = 60):
    """Fixes at ``km`` east of LON0 (in Beijing), one every ``step_s``; returns t, lon, lat, segment km."""
    t0 = _ts(2022, 3, 1, 8)
    lon = [LON0 + k * EAST_KM for k in km]
    seg = [hav(lon[i - 1], LAT0, lon[i], LAT0) for i in range(1, len(lon))]
    return [t0 + step_s * i for i in range(len(km))], lon, [LAT0] * len(km), seg


def test_a_segment_takes_the_load_state_of_its_end_fix(wgs_locator):
    t, lon, lat, seg = east_track([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    load = [2, 0, 1, 2, -1, 7]  # the first fix closes no segment; 7 is no load state (unknown)
    r = run_kernel([1] * 6, t, lon, lat, wgs_locator, [60.0] * 6, load=load)
    (row,) = r.activity.to_pylist()
    assert (row["vehicle_id"], row["month"], row["city_adcode"]) == (1, "2022-03", BEIJING)
    assert row["distance_km"] == pytest.approx(sum(seg), rel=1e-6)
    assert row["distance_km_empty"] == pytest.approx(seg[0], rel=1e-6)
    assert row["distance_km_half"] == pytest.approx(seg[1], rel=1e-6)
    assert row["distance_km_full"] == pytest.approx(seg[2], rel=1e-6)
    assert row["distance_km_unknown_load"] == pytest.approx(seg[3] + seg[4], rel=1e-6)
    # No load channel: every km of unknown load.
    (none,) = run_kernel([1] * 6, t, lon, lat, wgs_locator, [60.0] * 6).activity.to_pylist()
    assert none["distance_km_unknown_load"] == pytest.approx(sum(seg), rel=1e-6)
    assert none["distance_km_empty"] == none["distance_km_half"] == none["distance_km_full"] == 0.0


def test_measured_fuel_is_the_gauge_fall_refuels_glitches_and_gaps_in_the_gauge_unknown(wgs_locator):
    t, lon, lat, seg = east_track([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # Falls of 0.4 and 0.5 L; a refuel (+11 L); 0.3 L; no reading at one end twice.
    level = [300.0, 299.6, 299.1, 310.1, 309.8, float("nan"), 309.0]
    # Vehicle 2: a fall of 10 L over a km (above 1.5 L/km + refuel_l: a glitch), then 6 L (within it), then a
    # rise of 3 L (below refuel_l: the gauge's noise, telescoping).
    level2 = [300.0, 290.0, 284.0, 287.0]
    t2, lon2, lat2, seg2 = east_track([0.0, 1.0, 2.0, 3.0])
    r = run_kernel(
        [1] * 7 + [2] * 4, t + t2, lon + lon2, lat + lat2, wgs_locator, [60.0] * 11, fuel_level_l=level + level2
    )
    rows = {x["vehicle_id"]: x for x in r.activity.to_pylist()}
    assert rows[1]["fuel_measured_l"] == pytest.approx(0.4 + 0.5 + 0.3, abs=1e-9)
    assert rows[1]["distance_km_fuel_measured"] == pytest.approx(seg[0] + seg[1] + seg[3], rel=1e-6)
    assert rows[2]["fuel_measured_l"] == pytest.approx(6.0 - 3.0, abs=1e-9)
    assert rows[2]["distance_km_fuel_measured"] == pytest.approx(seg2[1] + seg2[2], rel=1e-6)
    assert rows[1]["distance_km"] == pytest.approx(sum(seg), rel=1e-6)  # fuel unknown: the km are still driven
    # refuel_l bounds the rise and the glitch allowance alike: at 0.1 L none of vehicle 2's segments is measured.
    tight = run_kernel(
        [2] * 4, t2, lon2, lat2, wgs_locator, [60.0] * 4, CleaningRules(refuel_l=0.1), fuel_level_l=level2
    )
    (row,) = tight.activity.to_pylist()
    assert row["fuel_measured_l"] == 0.0 and row["distance_km_fuel_measured"] == 0.0


def test_the_drift_rule_drops_short_slow_segments_only(wgs_locator):
    t0 = _ts(2022, 3, 1, 8)
    m = EAST_KM / 1000.0  # a metre of longitude
    # 20 m in 60 s (1.2 km/h: drift), 20 m in 5 s (14.4 km/h), 40 m in 600 s (longer than drift_m), 1 km in 60 s.
    t = [t0, t0 + 60, t0 + 65, t0 + 665, t0 + 725]
    lon = [LON0, LON0 + 20 * m, LON0 + 40 * m, LON0 + 80 * m, LON0 + 80 * m + EAST_KM]
    lat = [LAT0] * 5
    seg = [hav(lon[i - 1], LAT0, lon[i], LAT0) for i in range(1, 5)]
    r = run_kernel([1] * 5, t, lon, lat, wgs_locator)
    assert r.counts["kept"] == 5
    assert pc.sum(r.activity["distance_km"]).as_py() == pytest.approx(seg[1] + seg[2] + seg[3], rel=1e-6)
    off = run_kernel([1] * 5, t, lon, lat, wgs_locator, rules=CleaningRules(drift_m=0.0))
    assert pc.sum(off.activity["distance_km"]).as_py() == pytest.approx(sum(seg), rel=1e-6)
    # The drift segment is still a segment: counted among those attributed, with no km.
    (bins,) = r.gap_bins.to_pylist()
    assert bins["attributed_segments"] == 4
    assert bins["attributed_km"] == pytest.approx(seg[1] + seg[2] + seg[3], rel=1e-6)


def test_holes_take_the_odometer_when_it_is_plausible(wgs_locator):
    """A 10-minute hole (shorter than a gap) on a winding road: the odometer's km, not the chord's."""
    east = 1 / (111.32 * np.cos(np.radians(39.9)))  # degrees of longitude per km
    t0 = _ts(2022, 3, 1, 8)
    t = [t0, t0 + 30, t0 + 630, t0 + 660]  # 30 s fixes with a 600 s hole in the middle
    lon = [116.30, 116.30 + 0.5 * east, 116.30 + 6.5 * east, 116.30 + 7.0 * east]
    lat = [39.9] * 4
    odo = [100.0, 100.5, 110.5, 111.0]  # 10 km driven over the hole, the chord is 6 km

    def km(rules=None, odometer=odo):
        r = run_kernel([1] * 4, t, lon, lat, wgs_locator, [50.0] * 4, rules or CleaningRules(), odometer_km=odometer)
        return sum(r.activity.column("distance_km").to_pylist()), r.bridged_km

    total, bridged = km()
    assert total == pytest.approx(0.5 + 10.0 + 0.5, rel=2e-3)
    assert bridged == pytest.approx(4.0, rel=5e-3)
    assert km(odometer=None)[0] == pytest.approx(7.0, rel=2e-3)  # no odometer: the chord
    assert km(CleaningRules(odometer_after_s=900))[0] == pytest.approx(7.0, rel=2e-3)  # hole below the rule
    # An implausible odometer (below the chord, or faster than max_bridge_kmh) is not used.
    assert km(odometer=[100.0, 100.5, 103.5, 104.0])[0] == pytest.approx(7.0, rel=2e-3)
    assert km(odometer=[100.0, 100.5, 130.5, 131.0])[0] == pytest.approx(7.0, rel=2e-3)


def test_a_path_sums_as_its_steps_taken_alone(wgs_locator):
    """Steps of long paths (most of them within one borderless grid cell, summed at once) give, per vehicle,
    month and city, the kilometres of the same steps run as vehicles of two fixes each (where every step
    takes the month and border logic): paths across city borders, a local month start and the coast, with
    vehicle ids 0 and negative."""
    rng = np.random.default_rng(21)
    month_start = int(dt.datetime(2022, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())
    starts = {0: (116.62, 39.72), -7: (121.80, 31.05), 5: (113.60, 34.75), 12345: (114.05, 22.60)}
    n = 400
    vid, t, lon, lat = [], [], [], []
    for v, (x, y) in starts.items():
        heading = rng.uniform(0, 2 * np.pi)
        steps = rng.normal(0.0, 0.3, n - 1).cumsum() + heading  # a wandering heading, about 0.5 km per minute
        vid.append(np.full(n, v))
        t.append(month_start - 200 * 60 + np.arange(n) * 60)
        lon.append(x + np.concatenate([[0.0], np.cumsum(0.006 * np.cos(steps))]))
        lat.append(y + np.concatenate([[0.0], np.cumsum(0.0045 * np.sin(steps))]))
    vid, t, lon, lat = (np.concatenate(a) for a in (vid, t, lon, lat))
    rules = CleaningRules(drift_m=0.0, gap_s=1e9, max_speed_kmh=1e6)  # every fix kept, every step counted

    whole = run_kernel(vid, t, lon, lat, wgs_locator, rules=rules)
    a = np.flatnonzero(vid[:-1] == vid[1:])  # each step: rows a and a + 1
    pairs = np.column_stack([a, a + 1]).ravel()
    alone = run_kernel(np.repeat(np.arange(a.size), 2), t[pairs], lon[pairs], lat[pairs], wgs_locator, rules=rules)

    keys = ["vehicle_id", "month", "city_adcode"]
    steps = alone.activity["vehicle_id"].to_numpy()
    want = _by(alone.activity.set_column(0, "vehicle_id", pa.array(vid[a[steps]])), keys, outside=True)
    got = _by(whole.activity, keys, outside=True)
    assert len({m for _, m, _ in got}) == 2 and len({c for _, _, c in got}) >= 6  # two months, several cities
    assert got.keys() == want.keys()
    for key, km in want.items():
        assert got[key] == pytest.approx(km, rel=1e-12), key


def _stop_and_go() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """30 s fixes in Zhengzhou: 10 standing (ignition on), 20 segments at 36 km/h, 20 at 72 km/h, 80 standing
    (40 min, ignition off), 10 at 36 km/h; times, longitudes, latitudes, speeds and the ignition bit."""
    deg = 1.0 / (111.32 * math.cos(math.radians(34.75)))  # degrees of longitude per km
    steps = [0.0] * 10 + [0.3] * 20 + [0.6] * 20 + [0.0] * 80 + [0.3] * 10
    lon = 113.60 + np.cumsum(steps) * deg
    speed = np.array([0.0] * 10 + [36.0] * 20 + [72.0] * 20 + [0.0] * 80 + [36.0] * 10)
    acc = np.array([1] * 50 + [0] * 80 + [1] * 10, np.int8)
    t = 1_646_100_000 + 30 * np.arange(lon.size)
    return t, lon, np.full(lon.size, 34.75), speed, acc


def test_moving_km_and_hours_by_speed_bin_and_idle_by_the_ignition_or_the_stop_rule(wgs_locator):
    t, lon, lat, speed, acc = _stop_and_go()
    vid = np.ones(t.size, np.int64)
    (row,) = run_kernel(vid, t, lon, lat, wgs_locator, speed).activity.to_pylist()
    km, hours = np.array(row["speed_bin_km"]).reshape(4, 10), np.array(row["speed_bin_h"])
    assert km[3, 3] == pytest.approx(9.0, rel=2e-3) and km[3, 7] == pytest.approx(12.0, rel=2e-3)  # unknown load
    assert km.sum() == pytest.approx(row["distance_km"], rel=1e-12)
    assert hours[3] == pytest.approx(30 * 30 / 3600) and hours[7] == pytest.approx(20 * 30 / 3600)
    assert hours.sum() == pytest.approx(row["driving_h"]) and np.count_nonzero(hours) == 2
    # No ignition bit: each stop idles its first 15 min (the 270 s at the start, 900 s of the 40 min stop).
    assert row["idle_h"] == pytest.approx((270 + 900) / 3600)
    # A consistent bit (80 segments off, 59 on, no km with it off): only the ignition-on standing idles, the
    # segment that switches it off half.
    (with_acc,) = run_kernel(vid, t, lon, lat, wgs_locator, speed, acc_on=acc).activity.to_pylist()
    assert with_acc["idle_h"] == pytest.approx((270 + 15) / 3600)
    assert with_acc["distance_km"] == row["distance_km"]
    # The bit not used (use_acc off), or not consistent (too few segments off): the stop rule again.
    off = CleaningRules(use_acc=False)
    (no_use,) = run_kernel(vid, t, lon, lat, wgs_locator, speed, off, acc_on=acc).activity.to_pylist()
    assert no_use["idle_h"] == row["idle_h"]
    few_off = acc.copy()
    few_off[50:125] = 1
    (few,) = run_kernel(vid, t, lon, lat, wgs_locator, speed, acc_on=few_off).activity.to_pylist()
    assert few["idle_h"] == row["idle_h"]
    # A shorter stop rule.
    short = CleaningRules(idle_stop_s=120.0)
    (s,) = run_kernel(vid, t, lon, lat, wgs_locator, speed, short).activity.to_pylist()
    assert s["idle_h"] == pytest.approx((120 + 120) / 3600)


def test_a_truck_that_only_idles_has_a_row_with_no_km(wgs_locator):
    t = 1_646_100_000 + 30 * np.arange(20)
    r = run_kernel(np.ones(20, np.int64), t, np.full(20, 113.6), np.full(20, 34.75), wgs_locator, np.zeros(20))
    (row,) = r.activity.to_pylist()
    assert row["distance_km"] == 0.0 and row["idle_h"] == pytest.approx(19 * 30 / 3600)
    assert row["driving_h"] == 0.0
