"""The calibration checks: each compares the world's weighted truth with a published figure within its
tolerance, passes where the world matches, fails where it does not; the default world passes them all."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.sim.calibration import default_world, run_checks
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.run import simulate

NATIONAL_2019_T = 1.64e8  # published_national_annual.csv
CHINA_V_JUNE_2019 = 0.59  # published_china_v_june.csv


def _hand_world(path, total_t: float, china_v_share: float, lowest: str = "2019-02"):
    """A world of two trucks in Beijing through 2019 whose weighted CO2 is ``total_t`` tonnes, the lowest
    month ``lowest`` (0.6 of the others), China V's share of every month ``china_v_share``."""
    path.mkdir()
    months = [f"2019-{m:02d}" for m in range(1, 13)]
    shape = np.array([0.6 if m == lowest else 1.0 for m in months])
    monthly_t = total_t * shape / shape.sum()
    weight = 1e6  # each truck stands for a million: co2_t = co2_kg * weight / 1000 = co2_kg * 1000
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([1, 2], pa.int64()),
                "registration_city_adcode": pa.array([110100, 110100], pa.int32()),
                "emission_standard": ["China V", "China VI"],
                "weight": [weight, weight],
            }
        ),
        path / "vehicles.parquet",
    )
    co2_kg = np.concatenate([monthly_t * china_v_share, monthly_t * (1 - china_v_share)]) / (weight / 1000)
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([1] * 12 + [2] * 12, pa.int64()),
                "month": months * 2,
                "city_adcode": pa.array([110100] * 24, pa.int32()),
                "co2_kg": co2_kg,
            }
        ),
        path / "truth.parquet",
    )
    return {c.name: c for c in run_checks(path)}


def test_a_world_matching_the_published_figures_passes(tmp_path):
    checks = _hand_world(tmp_path / "w", NATIONAL_2019_T * 1.04, CHINA_V_JUNE_2019 + 0.04)
    # Only what a full year 2019 allows is checked: no other year, no 2020 or 2022 fact, no province table.
    assert sorted(checks) == [
        "China V share of 2019-06 CO2",
        "national CO2 2019 (亿吨)",
        "yearly minimum: New Year month (2020: Feb)",
    ]
    assert all(c.ok for c in checks.values())
    assert (checks["national CO2 2019 (亿吨)"].published, checks["national CO2 2019 (亿吨)"].simulated) == (
        "1.64",
        "1.71",
    )
    assert checks["China V share of 2019-06 CO2"].simulated == "63%"
    below = _hand_world(tmp_path / "below", NATIONAL_2019_T * 0.96, CHINA_V_JUNE_2019 - 0.04)
    assert all(c.ok for c in below.values())


@pytest.mark.parametrize(
    ("total", "share", "lowest", "failing"),
    [
        (NATIONAL_2019_T * 1.06, CHINA_V_JUNE_2019, "2019-02", "national CO2 2019 (亿吨)"),
        (NATIONAL_2019_T * 0.94, CHINA_V_JUNE_2019, "2019-02", "national CO2 2019 (亿吨)"),
        (NATIONAL_2019_T, CHINA_V_JUNE_2019 + 0.06, "2019-02", "China V share of 2019-06 CO2"),
        (NATIONAL_2019_T, CHINA_V_JUNE_2019 - 0.06, "2019-02", "China V share of 2019-06 CO2"),
        (NATIONAL_2019_T, CHINA_V_JUNE_2019, "2019-03", "yearly minimum: New Year month (2020: Feb)"),
    ],
)
def test_a_world_off_a_published_figure_fails_that_check_only(tmp_path, total, share, lowest, failing):
    checks = _hand_world(tmp_path / "w", total, share, lowest)
    assert [name for name, c in checks.items() if not c.ok] == [failing]


def test_checks_on_a_small_world(tmp_path):
    out = tmp_path / "w"
    config = SimConfig(trucks=40, start_month="2022-01", end_month="2022-12", interval_s=600, parked_interval_s=3600)
    simulate(out, replace(config, defects=DefectRates(0, 0, 0, 0, 0, 0, 0)))
    checks = {c.name: c for c in run_checks(out)}
    assert "national CO2 2022 (亿吨)" in checks
    assert "China V share of 2022-06 CO2" in checks
    assert "2022 peak month" in checks
    assert any(name.startswith("provinces with the published sign") for name in checks)
    assert "national CO2 2018 (亿吨)" not in checks  # not simulated: not checked
    assert float(checks["national CO2 2022 (亿吨)"].simulated) > 0
    # The check reads the world's weighted truth, recomputed here, against the published 2.15 (亿吨) +/-5%.
    (weighted_t,) = duckdb.execute(
        f"SELECT sum(t.co2_kg * v.weight) / 1000 FROM read_parquet('{out}/truth.parquet') t "
        f"JOIN read_parquet('{out}/vehicles.parquet') v USING (vehicle_id)"
    ).fetchone()
    national = checks["national CO2 2022 (亿吨)"]
    assert float(national.simulated) == pytest.approx(weighted_t / 1e8, abs=0.005) and national.published == "2.15"
    assert national.ok == (abs(weighted_t / 2.15e8 - 1) <= 0.05)


def test_missing_world_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="truckcarbon simulate"):
        run_checks(tmp_path)


@pytest.fixture(scope="module")
def demo_world():
    # The demo world, simulated once into the cache folder (about 30 s on two cores).
    return default_world(workers=os.cpu_count() or 1)


@pytest.mark.slow
def test_default_world_passes_every_published_check(demo_world):
    checks = run_checks(demo_world)
    assert len(checks) == 18
    assert [(c.name, c.published, c.simulated) for c in checks if not c.ok] == []
    national = [c for c in checks if c.name.startswith("national CO2")]
    assert len(national) == 6
    provinces = next(c for c in checks if c.name.startswith("provinces with the published sign"))
    assert int(provinces.simulated.split()[0]) >= 20


def test_a_miscalibrated_default_world_fails_the_national_checks(tmp_path, demo_world):
    """Weights a quarter too high (an expansion error) put every year outside its 5%; shares stay right."""
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(demo_world / "truth.parquet", wrong / "truth.parquet")
    vehicles = pq.read_table(demo_world / "vehicles.parquet")
    i = vehicles.schema.get_field_index("weight")
    pq.write_table(vehicles.set_column(i, "weight", pc.multiply(vehicles["weight"], 1.25)), wrong / "vehicles.parquet")
    checks = run_checks(wrong)
    failed = sorted(c.name for c in checks if not c.ok)
    assert failed == sorted(c.name for c in checks if c.name.startswith("national CO2")) and len(failed) == 6
    for c in checks:
        if c.name.startswith("national CO2"):
            assert float(c.simulated) / float(c.published) > 1.05
