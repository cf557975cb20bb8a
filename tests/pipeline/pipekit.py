"""Helpers of the pipeline's tests: the simulated world's settings, a run's inventory, tables compared."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.sim.config import SimConfig

# Default defect rates, 30 s fixes, parked every 30 min: what the accuracy targets are stated for.
WORLD = SimConfig(trucks=80, start_month="2022-01", end_month="2022-03", interval_s=30, parked_interval_s=1800, seed=6)
INVENTORY_KEYS = ["month", "view", "city_adcode", "emission_standard", "method"]


def _no_spark() -> str | None:
    """Why the Spark engine cannot run here (None: it can)."""
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed (pip install 'truckcarbon[spark]'; make test installs it)"
    if shutil.which("java") is None:
        return "the Spark engine needs Java 17"
    return None


NO_SPARK = _no_spark()
needs_spark = pytest.mark.skipif(NO_SPARK is not None, reason=NO_SPARK or "")


def inventory(run: Path) -> pa.Table:
    """A run's inventory, sorted by its keys."""
    return pq.read_table(run / "inventory").sort_by([(k, "ascending") for k in INVENTORY_KEYS])


def assert_same(a: pa.Table, b: pa.Table) -> None:
    """The same columns and rows: keys and counts exactly, floats to 1e-9 (relative: sums in another order)."""
    assert a.column_names == b.column_names and a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a[name].to_pylist(), b[name].to_pylist()
        if x and isinstance(x[0], float):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=0)
        else:
            assert x == y, name


def shuffled_copy(world: Path, folder: Path, parts: int = 7) -> Path:
    """The world's pings in random row order, split into ``parts`` files under ``folder``."""
    table = pa.concat_tables(pq.read_table(f) for f in sorted((world / "pings").rglob("*.parquet")))
    shuffled = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    folder.mkdir()
    for k, idx in enumerate(np.array_split(np.arange(shuffled.num_rows), parts)):
        pq.write_table(shuffled.take(pa.array(idx)), folder / f"part-{k}.parquet")
    return folder
