"""A small simulated world and its run folder, made once for the command tests that need them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-month world of six trucks written by ``truckcarbon simulate``."""
    out = tmp_path_factory.mktemp("cli") / "world"
    args = ["simulate", "--out", str(out), "--trucks", "6", "--months", "2022-05:2022-06", "--interval-s", "300"]
    result = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def small_run(small_world: Path) -> Path:
    """The run folder of ``truckcarbon run`` on :func:`small_world`."""
    out = small_world.parent / "run"
    args = ["run", "--pings", str(small_world / "pings"), "--vehicles", str(small_world / "vehicles.parquet")]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out
