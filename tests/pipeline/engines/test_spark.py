"""The Spark engine: the embedded engine's results on the same input, its declared gaps, PySpark as an extra.

Spark runs in local mode (``local[2]``, one session: ``conftest.py``); PySpark and Java 17 come with
``make test``. The invariance and accuracy tests of ``test_run.py`` run on Spark too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError, TruckcarbonError
from truckcarbon.pipeline import EngineName, run_pipeline
from truckcarbon.pipeline.engines.spark import SparkEngine, SparkGapError

from ..pipekit import assert_same, needs_spark

WorldRun = Callable[[EngineName], Path]

pytestmark = pytest.mark.slow  # the Spark engine


def _sorted(run: Path, name: str, keys: list[str]) -> Any:
    return pq.read_table(run / name).sort_by([(k, "ascending") for k in keys])


@needs_spark
def test_the_engines_give_identical_results(world_run: WorldRun, spark: Any) -> None:
    runs = [world_run(EngineName.EMBEDDED), world_run(EngineName.SPARK)]
    keys = ["month", "view", "city_adcode", "emission_standard", "method"]
    assert_same(*(_sorted(r, "inventory", keys) for r in runs))
    assert_same(*(_sorted(r, "activity", ["vehicle_id", "month", "city_adcode"]) for r in runs))
    assert_same(
        *(_sorted(r, "unobserved", ["vehicle_id", "month", "from_city_adcode", "to_city_adcode"]) for r in runs)
    )
    manifests = [json.loads((r / "manifest.json").read_text()) for r in runs]
    assert manifests[0]["months"].keys() == manifests[1]["months"].keys()
    for m in manifests[0]["months"]:
        assert manifests[0]["months"][m]["fixes"] == manifests[1]["months"][m]["fixes"]
    q = [m["runs"][-1]["quality"] for m in manifests]
    assert q[0]["pings"] == q[1]["pings"] and q[0]["vehicles"] == q[1]["vehicles"]
    assert [m["engine"].split(" ")[0] for m in manifests] == ["embedded", "spark"]
    # Quarantine: the same rows (Spark cannot give a file's row number: a declared gap).
    quarantined = [pq.read_table(r / "quarantine" / "pings") for r in runs]
    rows = [sorted((r["vehicle_id"], r["ts"][:19], r["reason"]) for r in t.to_pylist()) for t in quarantined]
    assert rows[0] == rows[1] and len(rows[0]) > 0  # the same rows (times as text up to the seconds)
    assert quarantined[1]["source_row"].null_count == quarantined[1].num_rows


@needs_spark
def test_spark_gap_csv_input_is_declared(world: Path, tmp_path: Path, spark: Any) -> None:
    (tmp_path / "p.csv").write_text("vehicle_id,ts,lon,lat\n1,2022-01-03 08:00:00,116.3,39.9\n", encoding="utf-8")
    with pytest.raises(SparkGapError, match="Parquet only"):
        run_pipeline(tmp_path / "p.csv", world / "vehicles.parquet", tmp_path / "run", engine=EngineName.SPARK)
    assert not (tmp_path / "run").exists()


def test_without_pyspark_the_spark_engine_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PySpark is an extra: a run on Spark without it is refused before anything is read or written."""
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text("vehicle_id,plate,emission_standard\n1,京A11111,China V\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        run_pipeline(tmp_path / "pings", vehicles, tmp_path / "run", engine="spark")
    assert isinstance(err.value, TruckcarbonError)
    assert str(err.value) == (
        "the Spark engine needs PySpark, which is not installed: pip install 'truckcarbon[spark]'"
    )
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match=r"pip install 'truckcarbon\[spark\]'"):
        SparkEngine()


@needs_spark
def test_the_engine_reads_uris_and_names_pyspark_for_the_manifest() -> None:
    import pyspark

    engine = SparkEngine("local[2]")
    assert engine.name is EngineName.SPARK and engine.reads_uris
    assert engine.description() == f"spark (PySpark {pyspark.__version__}, master local[2])"  # where it ran
    assert SparkEngine().description() == f"spark (PySpark {pyspark.__version__})"  # the active session's


@needs_spark
def test_quarantined_rows_keep_their_file_and_load_state_text(world: Path, tmp_path: Path, spark: Any) -> None:
    """Files travel through Spark as hashes of their names and load states as codes: the quarantine still
    names each row's file as its path (a space and Chinese in it) and shows its load state as written, and
    the rows kept give the embedded engine's numbers."""
    import numpy as np
    import pyarrow as pa

    folder = tmp_path / "导出 数据"
    folder.mkdir()
    for k, f in enumerate(sorted((world / "pings").rglob("*.parquet"))[:2]):
        table = pq.read_table(f)
        states = table["load_state"].cast(pa.string()).to_pylist()
        states[:4] = ["FULL", "bogus", None, "half"]  # a capital case, a word the contract does not know
        lon = table["lon"].to_numpy().copy()
        lon[10] = 500.0  # outside any coordinate
        table = table.set_column(table.schema.get_field_index("load_state"), "load_state", pa.array(states))
        table = table.set_column(table.schema.get_field_index("lon"), "lon", pa.array(lon))
        pq.write_table(table, folder / f"第{k} part.parquet")
    runs = {}
    for engine in (EngineName.EMBEDDED, EngineName.SPARK):
        runs[engine] = tmp_path / f"run-{engine}"
        run_pipeline(folder, world / "vehicles.parquet", runs[engine], engine=engine)
    q = {e: pq.read_table(r / "quarantine" / "pings").to_pylist() for e, r in runs.items()}
    seen = {e: sorted((Path(r["source_file"]).name, r["load_state"] or "", r["reason"]) for r in q[e]) for e in q}
    assert seen[EngineName.SPARK] == seen[EngineName.EMBEDDED]
    assert ("第0 part.parquet", "bogus", "bad_optional_value") in seen[EngineName.SPARK]  # "FULL" is full
    assert {Path(r["source_file"]).parent for r in q[EngineName.SPARK]} == {folder}
    assert np.isclose(
        pq.read_table(runs[EngineName.SPARK] / "inventory")["co2_t"].to_numpy().sum(),
        pq.read_table(runs[EngineName.EMBEDDED] / "inventory")["co2_t"].to_numpy().sum(),
        rtol=1e-9,
    )
