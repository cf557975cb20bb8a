"""The clean small world, simulated once for the simulator's tests that read it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from truckcarbon.sim.run import simulate

from .worlds import CLEAN, SMALL


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "clean"
    simulate(out, replace(SMALL, defects=CLEAN))
    return out
