"""The road world: its truth is the 1 s path the odometer measures, longer than the chords of its fixes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.road import QUALITY_RANGE, STANDING, receiver_quality, road_noise, sample_index
from truckcarbon.sim.run import simulate

WORLD = SimConfig(trucks=40, start_month="2023-05", end_month="2023-05", interval_s=120, seed=3, geometry="road")


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("road") / "w"
    simulate(out, WORLD)
    return out


def test_truth_is_the_odometer_path_and_longer_than_the_chords(road: Path) -> None:
    con = duckdb.connect()
    rows = con.execute(f"""
        WITH p AS (
            SELECT DISTINCT vehicle_id, ts, odometer_km FROM read_parquet('{road}/pings/**/*.parquet')
        ), s AS (
            SELECT vehicle_id, max(odometer_km) - min(odometer_km) odo_km FROM p GROUP BY 1
        ), t AS (SELECT vehicle_id, sum(distance_km) km FROM read_parquet('{road}/truth.parquet') GROUP BY 1)
        SELECT t.vehicle_id, t.km, s.odo_km FROM t JOIN s USING (vehicle_id) WHERE t.km > 100""").fetchall()
    assert len(rows) >= 5
    for vid, km, odo in rows:  # the odometer reads the 1 s path to 0.1 km at each fix
        assert odo == pytest.approx(km, abs=0.25), vid


def test_standing_fixes_report_no_speed_and_multipath_is_counted(road: Path) -> None:
    import json

    manifest = json.loads((road / "manifest.json").read_text())
    assert manifest["defects"]["multipath"] > 0
    con = duckdb.connect()
    (moving_zero, standing_fast) = con.execute(f"""
        WITH d AS (SELECT DISTINCT vehicle_id, ts, odometer_km, speed_kmh
                   FROM read_parquet('{road}/pings/**/*.parquet')),
        p AS (SELECT speed_kmh, lead(odometer_km) OVER (PARTITION BY vehicle_id ORDER BY ts) - odometer_km AS ahead
              FROM d)
        SELECT count(*) FILTER (WHERE ahead > 1.0 AND speed_kmh = 0) * 1.0 / count(*),
               count(*) FILTER (WHERE ahead = 0 AND speed_kmh > 90)
        FROM p""").fetchone()
    assert standing_fast == 0  # a truck that does not move does not report motorway speeds
    assert moving_zero < 0.05  # nor does a truck driving a km before the next fix report standing (lights aside)


def test_fixes_sample_the_1s_path_at_their_second():
    """Within a shift a fix takes its own second; while parked, the shift before's last second (-1: none yet)."""
    first_s = np.array([100, 200], np.int64)
    offset = np.array([0, 10], np.int64)  # shifts of 10 and 5 seconds: 15 path seconds
    t = np.array([50, 100, 105, 109, 110, 150, 200, 204, 205, 300], np.int64)
    idx, on = sample_index(t, first_s, offset, 15)
    assert idx.tolist() == [-1, 0, 5, 9, 9, 9, 10, 14, 14, 14]
    assert on.tolist() == [False, True, True, True, False, False, True, True, False, False]


def test_receivers_differ_by_truck_within_their_range():
    q = np.array([receiver_quality(3, vid) for vid in range(1, 2001)])
    assert q.min() >= QUALITY_RANGE[0] and q.max() <= QUALITY_RANGE[1]
    assert np.median(q) == pytest.approx(1.0, abs=0.05)  # log-normal around the median receiver
    assert np.log(q).std() == pytest.approx(0.35, rel=0.1)
    assert receiver_quality(3, 7) == receiver_quality(3, 7) != receiver_quality(4, 7)


def test_parked_noise_wanders_slowly_and_moving_noise_decorrelates():
    n = 4000
    t = np.arange(n, dtype=np.int64) * 30
    lon, lat = np.full(n, 116.0), np.full(n, 39.0)
    rng = np.random.default_rng(8)
    parked = road_noise(t, lon, lat, np.full(n, STANDING, np.int8), 5.0, rng)
    moving = road_noise(t, lon, lat, np.full(n, 2, np.int8), 5.0, rng)  # expressway
    for (_, y, outliers), rho in ((parked, np.exp(-30 / 900)), (moving, np.exp(-30 / 20))):
        e = (y - 39.0) * 110_574.0  # metres north
        plain = (np.abs(e[:-1]) < 40) & (np.abs(e[1:]) < 40)  # the multipath outliers (30-300 m) left out
        assert outliers > 0 and plain.mean() > 0.98
        assert np.corrcoef(e[:-1][plain], e[1:][plain])[0, 1] == pytest.approx(rho, abs=0.1)
    assert road_noise(t, lon, lat, np.full(n, 2, np.int8), 0.0, rng)[2] == 0
    assert np.array_equal(road_noise(t, lon, lat, np.full(n, 2, np.int8), 0.0, rng)[0], lon)
