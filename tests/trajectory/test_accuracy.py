"""Kilometres against the road world's exact truth (1 s paths, noisy receivers), small worlds of two seeds.

The full grid (300 trucks, two months, three seeds, noise 5-25 m, fixes 10-300 s) is
``benchmarks/bench_noise_km.py``; docs/accuracy.md has its figures.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from truckcarbon.pipeline import PipelineConfig, run_pipeline
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.run import simulate
from truckcarbon.trajectory.rules import NOISY_ROAD_RULES

pytestmark = pytest.mark.slow  # long accuracy runs

POSITIONS = ["vehicle_id", "ts", "lon", "lat"]


def errors(world: Path, run: Path) -> tuple[float, float, int]:
    """Worst national monthly km error, share of city-months with >= 100 truth km within 3%, their count."""
    con = duckdb.connect()
    truth, act = f"read_parquet('{world}/truth.parquet')", f"read_parquet('{run}/activity/*.parquet')"
    national = con.execute(f"""
        WITH t AS (SELECT month, sum(distance_km) km FROM {truth} GROUP BY 1),
             p AS (SELECT month, sum(distance_km) km FROM {act} GROUP BY 1)
        SELECT max(abs(coalesce(p.km, 0) / t.km - 1)) FROM t LEFT JOIN p USING (month)""").fetchone()
    cells = con.execute(f"""
        WITH t AS (SELECT month, city_adcode, sum(distance_km) km FROM {truth} WHERE city_adcode <> 0 GROUP BY ALL),
             p AS (SELECT month, city_adcode, sum(distance_km) km FROM {act} GROUP BY ALL)
        SELECT avg(CASE WHEN abs(coalesce(p.km, 0) / t.km - 1) < 0.03 THEN 1.0 ELSE 0.0 END), count(*)
        FROM t LEFT JOIN p USING (month, city_adcode) WHERE t.km >= 100""").fetchone()
    assert national is not None and cells is not None
    return float(national[0]), float(cells[0]), int(cells[1])


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("interval_s", [30, 120])
def test_noisy_sparse_road_world_km_within_the_targets(tmp_path: Path, seed: int, interval_s: int) -> None:
    """15 m receivers (varying by truck, heavy-tailed, multipath, parked wander): national within 1% and at
    least 97% of city-months within 3%, with the speed channel and with positions only."""
    world = tmp_path / "world"
    config = SimConfig(
        trucks=120, start_month="2023-05", end_month="2023-05", interval_s=interval_s, parked_interval_s=300,
        seed=seed, geometry="road", defects=replace(DefectRates(), gps_noise_m=15.0),
    )  # fmt: skip
    simulate(world, config)
    only = tmp_path / "positions"
    only.mkdir()
    for k, f in enumerate(sorted((world / "pings").rglob("*.parquet"))):
        pq.write_table(pq.read_table(f, columns=POSITIONS), only / f"part-{k:05d}.parquet")
    for name, pings in (("all channels", world / "pings"), ("positions only", only)):
        run = tmp_path / f"run-{name.replace(' ', '-')}"
        run_pipeline(pings, world / "vehicles.parquet", run, config=PipelineConfig(rules=NOISY_ROAD_RULES))
        national, within, cells = errors(world, run)
        assert cells >= 80, name  # enough city-months for the share to mean something
        assert national < 0.01, (name, national)
        assert within >= 0.97, (name, within, cells)
