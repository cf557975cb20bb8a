"""The road world: its truth is the 1 s path the odometer measures, longer than the chords of its fixes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from truckcarbon.sim.run import SimConfig, simulate

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
