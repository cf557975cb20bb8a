"""The calibration check reads a world and compares it with the published figures; the default world passes."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.sim.calibration import default_world, run_checks
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.run import SimConfig, simulate


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


def test_missing_world_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="truckcarbon simulate"):
        run_checks(tmp_path)


def test_default_world_passes_every_published_check():
    # The demo world, simulated once into the cache folder (about 30 s on two cores).
    checks = run_checks(default_world(workers=os.cpu_count() or 1))
    assert len(checks) == 18
    assert [(c.name, c.published, c.simulated) for c in checks if not c.ok] == []
    national = [c for c in checks if c.name.startswith("national CO2")]
    assert len(national) == 6
    provinces = next(c for c in checks if c.name.startswith("provinces with the published sign"))
    assert int(provinces.simulated.split()[0]) >= 20
