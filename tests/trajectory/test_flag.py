"""The cleaning pass (trajectory._flag): reasons of rules 2-6 and step distances on hand-built rows, the
order check, and its refusal of a short scratch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.geo.distance import step_km, step_km_cos
from truckcarbon.trajectory._flag import flag_kernel, order_check
from truckcarbon.trajectory.schema import DUPLICATE, INVALID, JUMP, KEPT, QUARANTINED, STUCK

R_KM = 6371.0088
T0 = 1_650_000_000


def hav(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(h))


def flag(vid, t, lon, lat, speed=None, reason=None, max_kmh=150.0, reanchor_after=3):
    """flag_kernel on lists; returns (reason, dseg, (t_lo, t_hi))."""
    n = len(vid)
    reason = np.zeros(n, np.int8) if reason is None else np.asarray(reason, np.int8)
    dseg = np.full(n, np.nan)
    speed = np.zeros(n) if speed is None else np.asarray(speed, np.float64)
    args = (np.asarray(vid, np.int64), np.asarray(t, np.int64), np.asarray(lon, float), np.asarray(lat, float))
    span = flag_kernel(*args, speed, reason, dseg, np.empty(n), max_kmh, reanchor_after)
    return reason, dseg, span


def test_duplicates_invalid_fixes_and_a_stuck_receiver():
    lon = [116.30, 116.31, 116.31, float("nan"), 200.0, 0.0, 116.32, 116.32, 116.32]
    lat = [39.90, 39.90, 39.90, 39.90, 39.90, 0.0, 39.90, 39.90, 39.90]
    t = [T0, T0 + 60, T0 + 60, T0 + 120, T0 + 180, T0 + 240, T0 + 300, T0 + 360, T0 + 420]
    speed = [30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0, 0.0]
    reason, dseg, span = flag([1] * 9, t, lon, lat, speed)
    # Row 2 repeats row 1's time; NaN, out of range and (0, 0) are invalid; row 7 repeats row 6's position
    # at 30 km/h (stuck), row 8 at 0 km/h (a standing truck: kept).
    assert reason.tolist() == [KEPT, KEPT, DUPLICATE, INVALID, INVALID, INVALID, KEPT, STUCK, KEPT]
    assert span == (T0, T0 + 420)
    assert math.isnan(dseg[0])  # a vehicle's first fix closes no segment
    assert dseg[1] == pytest.approx(hav(116.30, 39.90, 116.31, 39.90), rel=1e-6)
    assert dseg[6] == pytest.approx(hav(116.31, 39.90, 116.32, 39.90), rel=1e-6)
    assert dseg[8] == 0.0


def test_rows_set_aside_are_passed_over_and_a_new_vehicle_starts_afresh():
    lon = [116.30, 0.0, 116.31, 113.60, 113.61]
    lat = [39.90, 0.0, 39.90, 34.75, 34.75]
    t = [T0, T0, T0 + 60, T0 + 60, T0 + 120]
    reason, dseg, span = flag([1, 0, 1, 2, 2], t, lon, lat, reason=[0, QUARANTINED, 0, 0, 0])
    assert reason.tolist() == [KEPT, QUARANTINED, KEPT, KEPT, KEPT]
    assert math.isnan(dseg[1]) and math.isnan(dseg[3])  # vehicle 2's first fix: no step from vehicle 1
    assert dseg[2] == pytest.approx(hav(116.30, 39.90, 116.31, 39.90), rel=1e-6)
    assert span == (T0, T0 + 120)
    assert flag([1, 1], [T0, T0 + 60], [0.0, 0.0], [0.0, 0.0])[2] == (0, -1)  # nothing kept


def test_a_short_run_of_far_fixes_is_set_aside_a_long_one_re_anchors():
    """Fixes 50 km away a minute later (3000 km/h): two of them are jumps; three that agree with each other
    (reanchor_after) re-anchor the track, the first measured from the old anchor."""
    a, b = (116.30, 39.90), (116.30 + 50 / (111.32 * math.cos(math.radians(39.9))), 39.90)
    t = [T0 + 60 * k for k in range(7)]

    def track(places):
        lon, lat = zip(*places, strict=True)
        return flag([1] * len(places), t[: len(places)], list(lon), list(lat))

    reason, _, _ = track([a, a, a, b, b, a, a])
    assert reason.tolist() == [KEPT, KEPT, KEPT, JUMP, JUMP, KEPT, KEPT]
    reason, dseg, _ = track([a, a, a, b, b, b, b])
    assert reason.tolist() == [KEPT] * 7
    assert dseg[3] == pytest.approx(hav(*a, *b), rel=1e-6)  # a single fast segment: not implausible motion
    assert dseg[4] == dseg[5] == dseg[6] == 0.0
    reason, _, _ = flag([1] * 7, t, *zip(*[a, a, a, b, b, b, b], strict=True), reanchor_after=5)
    assert reason.tolist() == [KEPT, KEPT, KEPT, JUMP, JUMP, JUMP, JUMP]


def test_sustained_motion_too_fast_for_a_truck_is_marked_negative():
    """Three segments of 3 km a minute (180 km/h: under max_speed 300, above max_vehicle 130) over 3 minutes
    are implausible motion: their distances turn negative; the slow segments around them stay positive."""
    east = 1 / (111.32 * math.cos(math.radians(39.9)))
    km = [0.0, 1.0, 4.0, 7.0, 10.0, 11.0]  # 60 km/h, three at 180 km/h, 60 km/h
    lon = [116.30 + k * east for k in km]
    t = [T0 + 60 * k for k in range(6)]
    reason, dseg, _ = flag([1] * 6, t, lon, [39.90] * 6, max_kmh=300.0)
    assert reason.tolist() == [KEPT] * 6
    want = [hav(lon[k - 1], 39.90, lon[k], 39.90) for k in range(1, 6)]
    assert dseg[1:].tolist() == pytest.approx([want[0], -want[1], -want[2], -want[3], want[4]], rel=1e-6)
    # One fast segment alone is not a stretch (MIN_FAST_SEGMENTS): it keeps its distance.
    lon1 = [116.30 + k * east for k in (0.0, 1.0, 4.0, 5.0)]
    _, dseg1, _ = flag([1] * 4, t[:4], lon1, [39.90] * 4, max_kmh=300.0)
    assert (dseg1[1:] > 0).all()


def test_order_check_counts_late_fixes_and_ignores_rows_set_aside():
    vid = np.array([1, 1, 1, 2, 2], np.int64)
    t = np.array([0, 60, 120, 0, 60], np.int64)
    aside = np.zeros(5, np.bool_)
    assert order_check(vid, t, aside) == (True, 0)
    assert order_check(vid, t[[0, 2, 1, 3, 4]], aside) == (False, 1)  # one fix earlier than the one before
    assert order_check(vid[[3, 4, 0, 1, 2]], t[[3, 4, 0, 1, 2]], aside) == (False, 0)  # vehicles out of order
    # A row set aside (any vehicle, any time) between sorted fixes does not count.
    vid_q = np.array([1, 9, 1, 0, 2], np.int64)
    t_q = np.array([0, 5, 60, -1, 0], np.int64)
    assert order_check(vid_q, t_q, np.array([0, 1, 0, 1, 0], np.bool_)) == (True, 0)
    assert order_check(vid_q, t_q, np.zeros(5, np.bool_)) == (False, 0)


def test_cleaning_pass_distances_are_those_of_the_kept_segments():
    """flag_kernel's dseg: for every kept fix where it is given, the step distance from the kept fix before it."""
    rng = np.random.default_rng(4)
    n = 6000
    vid = np.repeat(np.arange(1, 7), n // 6)
    t = np.tile(np.arange(n // 6) * 30, 6) + 1_650_000_000
    lon = 113.0 + np.cumsum(rng.normal(0.002, 0.001, n))
    lat = 30.0 + np.cumsum(rng.normal(0.0, 0.001, n))
    for i in rng.choice(n - 10, 40, replace=False):  # runs of 1-5 displaced fixes: spikes, jumps, re-anchoring
        lon[i : i + rng.integers(1, 6)] += 0.4
    lon[rng.choice(n, 20, replace=False)] = 0.0  # invalid fixes
    reason = np.zeros(n, np.int8)
    dseg = np.full(n, np.nan)
    flag_kernel(vid, t, lon, lat, np.full(n, 40.0), reason, dseg, np.empty(n), 150.0, 3)
    kept = np.flatnonzero(reason == 0)
    assert (reason == 4).sum() > 20 and kept.size > n * 0.9
    a, b = kept[:-1], kept[1:]
    same = vid[a] == vid[b]
    cos = np.cos(np.radians(lat))
    want = np.array([step_km(*p) for p in zip(lon[a], lat[a], lon[b], lat[b], strict=True)])
    given = ~np.isnan(dseg[b]) & same
    assert given.mean() > 0.9
    assert np.allclose(dseg[b][given], want[given], rtol=1e-14, atol=0)
    by_cos = np.array([step_km_cos(*p) for p in zip(lon[a], lat[a], lon[b], lat[b], cos[a], cos[b], strict=True)])
    assert np.allclose(dseg[b][given], by_cos[given], rtol=1e-15, atol=0)  # the library cosine: to the last bits


def test_cleaning_pass_refuses_a_short_cosine_scratch():
    n = 5
    args = (np.ones(n, np.int64), np.arange(n, dtype=np.int64), np.full(n, 116.0), np.full(n, 40.0), np.zeros(n))
    with pytest.raises(ValueError, match="cos scratch") as raised:
        flag_kernel(*args, np.zeros(n, np.int8), np.full(n, np.nan), np.empty(n - 1), 150.0, 3)
    assert isinstance(raised.value, TruckcarbonError)


def _eastward(n: int, kmh: float, step_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = T0 + step_s * np.arange(n)
    km = kmh * step_s * np.arange(n) / 3600.0
    return t, 116.0 + km / (111.32 * math.cos(math.radians(39.9))), np.full(n, 39.9)


def test_a_frozen_receiver_without_speed_is_stuck_and_its_drive_bridged(wgs_locator):
    """Positions only: a receiver repeating one position while the truck drives, then a jump no truck
    makes in one interval. The repeats are stuck, the drive is the straight line from the first of them."""
    from truckcarbon.trajectory.kernel import run_kernel
    from truckcarbon.trajectory.rules import NOISY_ROAD_RULES, CleaningRules

    t, lon, lat = _eastward(61, 72.0, 30)  # 30 min at 72 km/h: 36 km
    lon[21:40], lat[21:40] = lon[20], lat[20]  # frozen for ten minutes on fix 20's position
    reason, dseg, _ = flag(np.ones(61), t, lon, lat, speed=np.full(61, np.nan))
    assert (reason[21:40] == STUCK).all() and (reason[:21] == KEPT).all() and (reason[40:] == KEPT).all()
    assert dseg[40] == pytest.approx(hav(lon[20], lat[20], lon[40], lat[40]))
    for rules in (CleaningRules(), NOISY_ROAD_RULES):
        r = run_kernel(np.ones(61, np.int64), t, lon, lat, wgs_locator, rules=rules)
        assert float(np.sum(r.activity["distance_km"])) == pytest.approx(hav(lon[0], lat[0], lon[-1], lat[-1]))
        assert r.gaps.num_rows == 0  # nothing unobserved


def test_a_standing_truck_whose_receiver_holds_its_position_is_not_stuck():
    """A receiver that holds one position while the truck stands (static hold), then a normal departure:
    no jump, so the repeats are fixes of a standing truck."""
    t, lon, lat = _eastward(40, 60.0, 30)
    lon[:20], lat[:20] = lon[0], lat[0]  # ten minutes standing, then driving off at 60 km/h
    lon[20:] = lon[0] + (lon[20:] - lon[20]) + 1e-4
    reason, _, _ = flag(np.ones(40), t, lon, lat, speed=np.full(40, np.nan))
    assert (reason == KEPT).all()
    # The same repeats followed by a jump too fast even from the first of them: a jump, nothing stuck.
    lon2 = lon.copy()
    lon2[20:] += 1.0  # 85 km away
    reason, _, _ = flag(np.ones(40), t, lon2, lat, speed=np.full(40, np.nan))
    assert not (reason == STUCK).any()  # (the track re-anchors on the far fixes: rule 5)
