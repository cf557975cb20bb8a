"""The pipeline's shared fixtures: a simulated world with exact truth, and the engines that run it.

``engine`` is parametrised over every engine (:class:`EngineName`): a test that takes it runs once on
the embedded engine and once on Spark (in local mode, one session for the whole test run). Spark needs
PySpark (the extra ``spark``, installed by ``make test``) and Java 17; without them its cases are
skipped with that reason. ``full_run`` is the world run on the test's engine (once per engine), and
``world_run(engine)`` the same for a test of one engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from truckcarbon.pipeline import EngineName, run_pipeline
from truckcarbon.sim.run import simulate

from .pipekit import WORLD, needs_spark

ENGINES = [EngineName.EMBEDDED, pytest.param(EngineName.SPARK, marks=[needs_spark, pytest.mark.slow])]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (``local[2]``) for every Spark run of the test run."""
    from truckcarbon.pipeline.engines.spark import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session", params=ENGINES, ids=str)
def engine(request: pytest.FixtureRequest) -> EngineName:
    """Each engine in turn (its runs use the active Spark session)."""
    name: EngineName = request.param
    if name is EngineName.SPARK:
        request.getfixturevalue("spark")
    return name


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated world: pings (``month=YYYY-MM`` Parquet files), vehicles and exact truth."""
    out = tmp_path_factory.mktemp("world") / "w"
    simulate(out, WORLD)
    return out


@pytest.fixture(scope="session")
def world_run(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[EngineName], Path]:
    """The run folder of every month of the world on an engine (run once per engine, when first asked for)."""
    done: dict[EngineName, Path] = {}

    def run(engine: EngineName) -> Path:
        if engine not in done:
            out = tmp_path_factory.mktemp(f"run-{engine}") / "run"
            run_pipeline(world / "pings", world / "vehicles.parquet", out, engine=engine)
            done[engine] = out
        return done[engine]

    return run


@pytest.fixture(scope="session")
def full_run(world_run: Callable[[EngineName], Path], engine: EngineName) -> Path:
    """Every month of the world, run on the test's ``engine``."""
    return world_run(engine)
