"""The simulated fleets the jt808 tests replay (read only: one per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight trucks in March 2022, a ping every 5 minutes."""
    out = tmp_path_factory.mktemp("gw") / "world"
    simulate(out, SimConfig(trucks=8, start_month="2022-03", end_month="2022-03", interval_s=300, seed=4))
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same eight trucks with a ping every 15 minutes (30 when parked): fewer reports to replay."""
    out = tmp_path_factory.mktemp("ops") / "world"
    simulate(out, SimConfig(trucks=8, start_month="2022-03", end_month="2022-03", interval_s=900,
                            parked_interval_s=1800, seed=4))  # fmt: skip
    return out
