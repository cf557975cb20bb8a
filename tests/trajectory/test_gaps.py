"""Gaps bounded in time, the unobserved table and the duration bins, against figures computed here.

Distances are the haversine on the IUGG mean sphere (R = 6371.0088 km), computed in this file; the
kernel's short steps take a flat-earth form within 1e-7 of it, hence the tolerances of 1e-6.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow.compute as pc
import pytest

from truckcarbon.trajectory.kernel import run_kernel
from truckcarbon.trajectory.rules import CleaningRules
from truckcarbon.trajectory.schema import GAP_BIN_COLUMNS, GAP_BIN_LABELS, GAP_COLUMNS

R_KM = 6371.0088
BEIJING, SHANGHAI = 110100, 310100
EAST_KM = 1 / (111.32 * math.cos(math.radians(39.9)))  # about a km of longitude at 39.9 N


def hav(lon0: float, lat0: float, lon1: float, lat1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(lon1 - lon0) / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(h))


def path_km(lon, lat) -> float:
    return sum(hav(lon[k], lat[k], lon[k + 1], lat[k + 1]) for k in range(len(lon) - 1))


def ts(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp())


def km_by_city(r) -> dict[int, float]:
    g = r.activity.group_by("city_adcode").aggregate([("distance_km", "sum")])
    return dict(zip(g["city_adcode"].to_pylist(), g["distance_km_sum"].to_pylist(), strict=True))


def total_km(r) -> float:
    return float(pc.sum(r.activity["distance_km"]).as_py() or 0.0)


def bins(r) -> dict[tuple[str, str], dict[str, float]]:
    return {(x["month"], x["gap_bin"]): {k: x[k] for k in GAP_BIN_COLUMNS[2:]} for x in r.gap_bins.to_pylist()}


def check_consistent(r) -> None:
    """The gaps table, the bins and the scalar stats tell the same totals."""
    assert r.gaps.column_names == list(GAP_COLUMNS)
    assert r.gap_bins.column_names == list(GAP_BIN_COLUMNS)
    gap_km = sum(r.gaps["unobserved_km"].to_pylist())
    assert gap_km == pytest.approx(r.unobserved_km, rel=1e-12, abs=1e-12)
    assert sum(r.gap_bins["unobserved_km"].to_pylist()) == pytest.approx(r.unobserved_km, rel=1e-12, abs=1e-12)
    assert sum(r.gaps["gaps"].to_pylist()) == r.counts["unobserved_segments"]
    assert sum(r.gap_bins["unobserved_segments"].to_pylist()) == r.counts["unobserved_segments"]
    assert sum(r.gap_bins["implausible_segments"].to_pylist()) == r.counts["implausible_speed_segments"]
    assert sum(r.gap_bins["implausible_km"].to_pylist()) == pytest.approx(r.implausible_speed_km, rel=1e-12, abs=1e-12)
    assert sum(r.gap_bins["attributed_km"].to_pylist()) == pytest.approx(total_km(r), rel=1e-9, abs=1e-12)


def beijing_to_shanghai(gap_s: int):
    """Ten minutes of driving in Beijing (1 km a minute east), a gap of ``gap_s`` seconds, ten minutes in
    Shanghai; the gap starts on 30 January 2022, 20:10 local time."""
    t0 = ts(2022, 1, 30, 20)
    t = [t0 + 60 * k for k in range(11)]
    lon = [116.30 + k * EAST_KM for k in range(11)]
    lat = [39.90] * 11
    east_sh = 1 / (111.32 * math.cos(math.radians(31.23)))
    t += [t[-1] + gap_s + 60 * k for k in range(11)]
    lon += [121.40 + k * east_sh for k in range(11)]
    lat += [31.23] * 11
    return t, lon, lat


def test_a_three_day_gap_is_unobserved_not_driven_through_the_cities_between(wgs_locator):
    t, lon, lat = beijing_to_shanghai(3 * 86400)
    n = len(t)
    odo = [1000.0 + k for k in range(11)] + [2400.0 + k for k in range(11)]  # 1390 km driven over the gap
    r = run_kernel([7] * n, t, lon, lat, wgs_locator, [60.0] * n, odometer_km=odo)
    beijing, shanghai = path_km(lon[:11], lat[:11]), path_km(lon[11:], lat[11:])
    chord = hav(lon[10], lat[10], lon[11], lat[11])
    # Only the driving in the two cities; nothing along the chord (Langfang, Tianjin, Shandong, Jiangsu).
    assert km_by_city(r) == pytest.approx({BEIJING: beijing, SHANGHAI: shanghai}, rel=1e-6)
    months = {(x["month"], x["city_adcode"]) for x in r.activity.to_pylist()}
    assert months == {("2022-01", BEIJING), ("2022-02", SHANGHAI)}
    assert r.gaps.to_pylist() == [
        {
            "vehicle_id": 7,
            "month": "2022-01",  # the month of the gap's first fix
            "from_city_adcode": BEIJING,
            "to_city_adcode": SHANGHAI,
            "gaps": 1,
            "unobserved_km": pytest.approx(chord, rel=1e-12),
            "gap_hours": pytest.approx(72.0, rel=1e-12),
            "odometer_gaps": 1,  # a plausible reading: reported, its route unknown, not attributed
            "odometer_km": pytest.approx(1390.0, rel=1e-12),
        }
    ]
    assert r.unobserved_km == pytest.approx(chord, rel=1e-12) and r.counts["unobserved_segments"] == 1
    assert r.bridged_km == 0.0
    assert bins(r)[("2022-01", "1d-7d")] == {
        "attributed_segments": 0,
        "attributed_km": 0.0,
        "unobserved_segments": 1,
        "unobserved_km": pytest.approx(chord, rel=1e-12),
        "implausible_segments": 0,
        "implausible_km": 0.0,
    }
    check_consistent(r)
    # The same gap without the time bound (15 km/h over the chord: a plausible speed) was bridged through
    # a dozen cities, the odometer's km shared out along the chord: what the bound prevents.
    unbounded = run_kernel(
        [7] * n, t, lon, lat, wgs_locator, [60.0] * n, CleaningRules(max_bridge_s=1e9), odometer_km=odo
    )
    assert len(km_by_city(unbounded)) > 10
    assert total_km(unbounded) == pytest.approx(beijing + shanghai + 1390.0, rel=1e-6)
    assert unbounded.gaps.num_rows == 0


def test_a_two_hour_gap_at_60_kmh_is_still_bridged(wgs_locator):
    t0 = ts(2022, 3, 1, 8)
    t = [t0, t0 + 60, t0 + 60 + 7200, t0 + 120 + 7200]
    lon = [116.10, 116.10 + EAST_KM, 116.10 + 121 * EAST_KM, 116.10 + 122 * EAST_KM]  # 120 km in 2 hours
    lat = [39.90] * 4
    r = run_kernel([1] * 4, t, lon, lat, wgs_locator, [60.0] * 4)
    chord = hav(lon[1], lat[1], lon[2], lat[2])
    ends = hav(lon[0], lat[0], lon[1], lat[1]) + hav(lon[2], lat[2], lon[3], lat[3])
    assert total_km(r) == pytest.approx(ends + 1.05 * chord, rel=1e-6)  # the chord times gap_circuity
    assert r.bridged_km == pytest.approx(0.05 * chord, rel=1e-9)
    assert r.gaps.num_rows == 0 and r.unobserved_km == 0.0
    b = bins(r)
    assert b[("2022-03", "1h-4h")]["attributed_segments"] == 1
    assert b[("2022-03", "1h-4h")]["attributed_km"] == pytest.approx(1.05 * chord, rel=1e-9)
    assert b[("2022-03", "<=20min")]["attributed_segments"] == 2
    check_consistent(r)


@pytest.mark.parametrize(("bound", "extra", "bridged"), [(14400, 0, True), (14400, 1, False), (7200, 0, True)])
def test_a_gap_at_the_bound_is_bridged_one_second_more_is_not(wgs_locator, bound, extra, bridged):
    """A segment longer than max_bridge_s is unobserved; one exactly as long is bridged (60 km/h)."""
    t0 = ts(2022, 3, 1, 8)
    t = [t0, t0 + bound + extra]
    lon = [116.10, 116.10 + bound / 60 * EAST_KM]  # a km a minute
    lat = [39.90, 39.90]
    rules = CleaningRules(max_bridge_s=bound)
    r = run_kernel([1, 1], t, lon, lat, wgs_locator, [60.0, 60.0], rules)
    chord = hav(lon[0], lat[0], lon[1], lat[1])
    if bridged:
        assert total_km(r) == pytest.approx(1.05 * chord, rel=1e-9)
        assert r.gaps.num_rows == 0
    else:
        assert total_km(r) == 0.0
        (row,) = r.gaps.to_pylist()
        assert row["unobserved_km"] == pytest.approx(chord, rel=1e-12)
        assert row["gap_hours"] == pytest.approx((bound + extra) / 3600, rel=1e-12)
        assert row["odometer_gaps"] == 0 and row["odometer_km"] == 0.0
        assert (row["from_city_adcode"], row["to_city_adcode"]) == tuple(wgs_locator.locate(lon, lat).tolist())
        assert row["from_city_adcode"] == BEIJING and row["to_city_adcode"] != BEIJING
    label = "1h-4h" if bound + extra <= 14400 else "4h-24h"
    assert r.gap_bins.to_pylist() == [
        {
            "month": "2022-03",
            "gap_bin": label,
            "attributed_segments": int(bridged),
            "attributed_km": pytest.approx(1.05 * chord if bridged else 0.0, rel=1e-9),
            "unobserved_segments": int(not bridged),
            "unobserved_km": pytest.approx(0.0 if bridged else chord, rel=1e-12),
            "implausible_segments": 0,
            "implausible_km": 0.0,
        }
    ]
    check_consistent(r)


def test_a_long_gap_takes_no_odometer_a_short_one_does(wgs_locator):
    """The odometer bridges a hole up to max_bridge_s (its km attributed along the chord); over a longer
    gap its km are reported in the gaps table, not attributed."""
    t0 = ts(2022, 3, 1, 8)
    lon = [116.10, 116.10 + 100 * EAST_KM]
    lat = [39.90, 39.90]
    chord = hav(lon[0], lat[0], lon[1], lat[1])
    odo = [500.0, 650.0]  # 150 km driven, 1.5 times the chord
    short = run_kernel([1, 1], [t0, t0 + 3 * 3600], lon, lat, wgs_locator, odometer_km=odo)
    assert total_km(short) == pytest.approx(150.0, rel=1e-9)
    assert short.bridged_km == pytest.approx(150.0 - chord, rel=1e-9)
    long = run_kernel([1, 1], [t0, t0 + 5 * 3600], lon, lat, wgs_locator, odometer_km=odo)
    assert total_km(long) == 0.0 and long.bridged_km == 0.0
    (row,) = long.gaps.to_pylist()
    assert row["odometer_gaps"] == 1 and row["odometer_km"] == pytest.approx(150.0, rel=1e-12)
    assert row["unobserved_km"] == pytest.approx(chord, rel=1e-12)
    # An implausible odometer (below the chord) is not reported either.
    low = run_kernel([1, 1], [t0, t0 + 5 * 3600], lon, lat, wgs_locator, odometer_km=[500.0, 550.0])
    (row,) = low.gaps.to_pylist()
    assert row["odometer_gaps"] == 0 and row["odometer_km"] == 0.0


def test_segments_by_duration_bin_month_and_outcome(wgs_locator):
    """One vehicle, each segment of a chosen duration; km a minute unless said otherwise."""
    t0 = ts(2022, 1, 31, 14)
    # (duration s, km): ordinary, 30 min bridged, 30 min too fast, 2 h bridged, 4 h exactly bridged,
    # 5 h unobserved (from 21:01 on 31 January to February: a segment's month is its first fix's),
    # 2 days parked (unobserved, a few metres), 8 days unobserved, ordinary.
    steps = [
        (60, 1.0),
        (1800, 30.0),
        (1800, 70.0),  # 140 km/h over a gap: above max_bridge_kmh (not above max_speed_kmh: not a jump)
        (7200, 120.0),
        (14400, 240.0),
        (18000, 50.0),
        (2 * 86400, 0.004),
        (8 * 86400, 80.0),
        (60, 1.0),
    ]
    t, lon = [t0], [115.60]
    for s, km in steps:
        t.append(t[-1] + s)
        lon.append(lon[-1] + km * EAST_KM * 0.2)  # heading east-north-east: a fifth of the km east ...
    lat = [39.50]
    for _, km in steps:
        lat.append(lat[-1] + km * 0.98 / 110.574)  # ... the rest north (kept within about 500 km)
    n = len(t)
    r = run_kernel([3] * n, t, lon, lat, wgs_locator, [60.0] * n)
    d = [hav(lon[k], lat[k], lon[k + 1], lat[k + 1]) for k in range(n - 1)]
    month = ["2022-01" if t[k] < ts(2022, 2, 1, 0) else "2022-02" for k in range(n - 1)]
    assert month[:6] == ["2022-01"] * 6 and month[6:] == ["2022-02"] * 3
    want: dict[tuple[str, str], dict[str, float]] = {}

    def add(k: int, label: str, kind: str, km: float) -> None:
        row = want.setdefault((month[k], label), dict.fromkeys(GAP_BIN_COLUMNS[2:], 0))
        row[f"{kind}_segments"] += 1
        row[f"{kind}_km"] += km

    add(0, "<=20min", "attributed", d[0])
    add(1, "20min-1h", "attributed", 1.05 * d[1])
    add(2, "20min-1h", "unobserved", d[2])
    add(3, "1h-4h", "attributed", 1.05 * d[3])
    add(4, "1h-4h", "attributed", 1.05 * d[4])
    add(5, "4h-24h", "unobserved", d[5])
    add(6, "1d-7d", "unobserved", d[6])
    add(7, ">7d", "unobserved", d[7])
    add(8, "<=20min", "attributed", d[8])
    got = bins(r)
    assert got.keys() == want.keys()
    for key, row in want.items():
        assert got[key] == pytest.approx(row, rel=1e-6, abs=1e-12), key
    assert set(GAP_BIN_LABELS) == {"<=20min", "20min-1h", "1h-4h", "4h-24h", "1d-7d", ">7d"}
    assert r.counts["unobserved_segments"] == 4
    assert r.unobserved_km == pytest.approx(d[2] + d[5] + d[6] + d[7], rel=1e-12)
    by_month = {}
    for row in r.gaps.to_pylist():
        by_month[row["month"]] = by_month.get(row["month"], 0.0) + row["unobserved_km"]
    assert by_month == pytest.approx({"2022-01": d[2] + d[5], "2022-02": d[6] + d[7]}, rel=1e-12)
    assert total_km(r) == pytest.approx(d[0] + 1.05 * (d[1] + d[3] + d[4]) + d[8], rel=1e-6)
    check_consistent(r)


def test_more_unobserved_gaps_than_the_first_gap_arrays_hold(wgs_locator):
    """600 vehicles of two fixes 5 hours apart: more gaps than the kernel's first gap arrays (n / 64 + 256
    places); it says so and is run again, and the table lists them all."""
    k = 600
    rng = np.random.default_rng(3)
    lon0, lat0 = rng.uniform(112.0, 118.0, k), rng.uniform(28.0, 36.0, k)
    lon1, lat1 = lon0 + rng.uniform(0.1, 1.0, k), lat0 + rng.uniform(-0.5, 0.5, k)
    vid = np.repeat(np.arange(k), 2)
    t = np.tile([1_650_000_000, 1_650_000_000 + 5 * 3600], k)
    r = run_kernel(vid, t, np.column_stack([lon0, lon1]).ravel(), np.column_stack([lat0, lat1]).ravel(), wgs_locator)
    assert r.gaps.num_rows == k and r.counts["unobserved_segments"] == k
    want = [hav(*p) for p in zip(lon0, lat0, lon1, lat1, strict=True)]
    got = r.gaps.sort_by("vehicle_id")
    assert got["vehicle_id"].to_pylist() == list(range(k))
    assert np.allclose(got["unobserved_km"].to_numpy(), want, rtol=1e-12)
    assert np.allclose(got["gap_hours"].to_numpy(), 5.0, rtol=1e-12)
    assert np.array_equal(got["from_city_adcode"].to_numpy(), wgs_locator.locate(lon0, lat0))
    assert np.array_equal(got["to_city_adcode"].to_numpy(), wgs_locator.locate(lon1, lat1))
    assert total_km(r) == 0.0
    check_consistent(r)


def test_no_segment_gives_empty_tables(wgs_locator):
    assert GAP_COLUMNS == (
        "vehicle_id",
        "month",
        "from_city_adcode",
        "to_city_adcode",
        "gaps",
        "unobserved_km",
        "gap_hours",
        "odometer_gaps",
        "odometer_km",
    )
    assert GAP_BIN_COLUMNS == (
        "month",
        "gap_bin",
        "attributed_segments",
        "attributed_km",
        "unobserved_segments",
        "unobserved_km",
        "implausible_segments",
        "implausible_km",
    )
    r = run_kernel([1], [1_650_000_000], [116.3], [39.9], wgs_locator)
    assert r.gaps.num_rows == 0 and r.gap_bins.num_rows == 0
    assert r.gaps.column_names == list(GAP_COLUMNS) and r.gap_bins.column_names == list(GAP_BIN_COLUMNS)
    assert r.implausible_speed_km == 0.0 and r.counts["implausible_speed_segments"] == 0
    empty = run_kernel(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), wgs_locator)
    assert empty.gaps.num_rows == 0 and empty.gap_bins.num_rows == 0
