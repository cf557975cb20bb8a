"""The Spark engine on a real cluster: a standalone master and two workers on this machine.

``scripts/spark-standalone.sh`` starts them from the PySpark distribution's own launcher; ``truckcarbon run
--engine spark --spark-master spark://127.0.0.1:PORT`` runs the test world on them in its own process (its
own driver JVM: the test run's local session cannot change master), and the inventory, activity and
unobserved gaps must be the embedded engine's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from truckcarbon.pipeline import EngineName

from ..pipekit import INVENTORY_KEYS, assert_same, needs_spark

pytestmark = [pytest.mark.slow, needs_spark]

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "spark-standalone.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The master URL of a running standalone cluster (two workers of one core and 2 GB each)."""
    folder = tmp_path_factory.mktemp("cluster")
    env = dict(os.environ, PYTHON=sys.executable, SPARK_MASTER_PORT=str(_free_port()),
               SPARK_MASTER_WEBUI_PORT=str(_free_port()))  # fmt: skip
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder), "2", "1", "2g"], env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        yield started.stdout.strip(), env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], env=env, timeout=60, check=False)


def test_a_run_on_a_standalone_cluster_is_the_embedded_engines(
    cluster: tuple[str, dict[str, str]], world: Path, world_run: Callable[[EngineName], Path], tmp_path: Path
) -> None:
    master, env = cluster
    assert master.startswith("spark://127.0.0.1:")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "truckcarbon", "run", "--engine", "spark", "--spark-master", master,
         "--pings", str(world / "pings"), "--vehicles", str(world / "vehicles.parquet"), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    embedded = world_run(EngineName.EMBEDDED)
    for name, keys in (
        ("inventory", INVENTORY_KEYS),
        ("activity", ["vehicle_id", "month", "city_adcode"]),
        ("unobserved", ["vehicle_id", "month", "from_city_adcode", "to_city_adcode"]),
    ):
        a, b = (pq.read_table(r / name).sort_by([(k, "ascending") for k in keys]) for r in (embedded, out))
        assert_same(a, b)
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    assert '"spark' in manifest and master in manifest  # the engine and its master are recorded
