"""The embedded engine: routing unsorted fixes to partitions by vehicle, streaming sorted input, exact sums."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.pipeline import EngineName, PipelineConfig, run_pipeline
from truckcarbon.pipeline.engines import embedded
from truckcarbon.pipeline.engines.embedded import EmbeddedEngine, _NotSortedError, _route, _route_order, _Stream
from truckcarbon.pipeline.reading import KERNEL_SCHEMA, vehicle_sorted_hint

from ..pipekit import assert_same, inventory, shuffled_copy

WorldRun = Callable[[EngineName], Path]


def _reference(vid: np.ndarray, n: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    """splitmix64's finaliser in numpy, a stable argsort and searchsorted: the order and bounds expected."""
    h = vid.astype(np.uint64)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    h >>= np.uint64(20 * level)
    part = ((h & np.uint64(0xFFFFF)) % np.uint64(n)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    return order, np.searchsorted(part[order], np.arange(n + 1))


@pytest.mark.parametrize(("n", "level"), [(1, 0), (2, 0), (26, 0), (26, 1), (511, 0), (3, 2)])
def test_route_order_is_a_stable_sort_by_the_vehicle_hash(n: int, level: int) -> None:
    rng = np.random.default_rng(n * 10 + level)
    vid = rng.integers(-(2**62), 2**62, 50_000)
    vid[::3] = vid[0]  # one vehicle with many rows
    order, bounds = _route_order(vid, n, level)
    want_order, want_bounds = _reference(vid, n, level)
    np.testing.assert_array_equal(order, want_order)
    np.testing.assert_array_equal(bounds, want_bounds)


def test_route_keeps_every_row_once_and_a_vehicle_in_one_partition() -> None:
    rng = np.random.default_rng(3)
    vid = rng.integers(0, 400, 20_000)
    t = np.arange(vid.size)
    batch = pa.RecordBatch.from_arrays([pa.array(vid), pa.array(t)], names=["vehicle_id", "t"])
    home: dict[int, int] = {}
    seen = []
    for p, part in _route(batch, 7, 0):
        rows = part.column(1).to_numpy()
        assert np.all(np.diff(rows) > 0)  # the input's order within a partition
        for v in np.unique(part.column(0).to_numpy()).tolist():
            assert home.setdefault(v, p) == p
        seen.append(rows)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), t)


def test_stream_chunks_never_split_a_vehicle() -> None:
    def batch(ids: list[int]) -> pa.RecordBatch:
        n = len(ids)
        cols = [pa.array(ids, pa.int64()), pa.array(np.arange(n), pa.int64())]
        cols += [pa.array(np.zeros(n)), pa.array(np.zeros(n)), pa.array(np.zeros(n, np.float32))]
        cols += [pa.array(np.zeros(n, np.int8)), pa.array(np.zeros(n)), pa.array(np.zeros(n))]
        cols += [pa.array(np.full(n, -1, np.int8))]  # ignition not reported
        # Vehicle 0 here: a row set aside by the ingest (a missing id), which takes no part in the order.
        cols += [pa.array(np.where(np.array(ids) == 0, 0, -1).astype(np.int8))]
        return pa.RecordBatch.from_arrays(cols, schema=KERNEL_SCHEMA)

    stream = _Stream(chunk_rows=2)
    chunks = []
    for ids in ([1, 1, 2], [2, 0, 2, 2], [2, 2], [2, 3, 3, 0], [0, 4], [4, 5], [5, 6, 7, 7, 8], [8, 9]):
        for chunk in stream.add(batch(ids)):
            chunks.append(chunk["vehicle_id"].to_pylist())
    rest = stream.rest()
    assert rest is not None
    chunks.append(rest["vehicle_id"].to_pylist())
    expected = [1, 1, 2, 2, 0, 2, 2, 2, 2, 2, 3, 3, 0, 0, 4, 4, 5, 5, 6, 7, 7, 8, 8, 9]
    assert [v for chunk in chunks for v in chunk] == expected
    # The batch [5, 6, 7, 7, 8] gives two chunks: the held rows with its 5 (copied), and its 6, 7, 7 (a view).
    assert [5, 5] in chunks and [6, 7, 7] in chunks
    seen: set[int] = set()
    for chunk in chunks:
        ids = set(chunk) - {0}
        assert not (ids & seen), chunks  # a vehicle lies in one chunk only
        seen |= ids
    with pytest.raises(_NotSortedError):
        stream.add(batch([1]))


def test_the_engine_names_duckdb_for_the_manifest_and_leaves_the_inventories_to_it(tmp_path: Path) -> None:
    engine = EmbeddedEngine()
    assert engine.name is EngineName.EMBEDDED and not engine.reads_uris
    assert engine.description() == f"embedded (DuckDB {duckdb.__version__})"
    assert engine.inventories(tmp_path, ["2022-01"]) is None


def test_partitions_and_reruns_give_inventories_identical_to_the_last_bit(
    world: Path, world_run: WorldRun, tmp_path: Path
) -> None:
    """Sums run in a fixed order whatever the partitions and threads: exactly the same numbers."""
    folder = shuffled_copy(world, tmp_path / "shuffled")
    config = PipelineConfig(rows_per_partition=200_000)
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=config)
    first = inventory(tmp_path / "run")
    assert first.to_pydict() == inventory(world_run(EngineName.EMBEDDED)).to_pydict()
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=config)
    assert inventory(tmp_path / "run").to_pydict() == first.to_pydict()
    for codec in ("lz4", "zstd"):  # compressed spill files: the same numbers
        compressed = PipelineConfig(rows_per_partition=200_000, spill_compression=codec)
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / f"run-{codec}", config=compressed)
        assert inventory(tmp_path / f"run-{codec}").to_pydict() == first.to_pydict(), codec


def test_partitions_larger_than_planned_are_split_again(
    world: Path, world_run: WorldRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More input than MAX_PARTITIONS partitions of rows_per_partition hold: each is split again, same numbers."""
    full_run = world_run(EngineName.EMBEDDED)
    loaded: list[int] = []
    read_arrow = embedded._read_arrow

    def recording(path: Path) -> pa.Table:
        table = read_arrow(path)
        loaded.append(table.num_rows)
        return table

    monkeypatch.setattr(embedded, "MAX_PARTITIONS", 2)
    monkeypatch.setattr(embedded, "_read_arrow", recording)
    rows = sum(pq.read_metadata(f).num_rows for f in (world / "pings").rglob("*.parquet"))
    limit = rows // 12
    run_pipeline(
        world / "pings", world / "vehicles.parquet", tmp_path / "run", config=PipelineConfig(rows_per_partition=limit)
    )
    assert inventory(tmp_path / "run").to_pydict() == inventory(full_run).to_pydict()
    # The two planned partitions would hold about 6 x limit each; split again, each piece holds whole vehicles
    # near the limit (a vehicle's 3 months are a good part of the limit in this small world).
    assert sum(loaded) == rows and len(loaded) > 4
    assert max(loaded) < 3 * limit < rows // 2, (limit, loaded)
    # Input estimated to fit in memory (a compressed CSV is larger than its size suggests) is spilled after all.
    loaded.clear()
    monkeypatch.setattr(embedded, "estimated_rows", lambda f: 1)
    run_pipeline(
        world / "pings", world / "vehicles.parquet", tmp_path / "run2", config=PipelineConfig(rows_per_partition=limit)
    )
    assert inventory(tmp_path / "run2").to_pydict() == inventory(full_run).to_pydict()
    assert sum(loaded) == rows and max(loaded) < 3 * limit, (limit, loaded)


def test_vehicle_sorted_input_streams_with_the_same_results(
    world: Path, world_run: WorldRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from truckcarbon.pipeline import reading

    full_run = world_run(EngineName.EMBEDDED)
    table = pa.concat_tables(pq.read_table(f) for f in sorted((world / "pings").rglob("*.parquet")))
    table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    folder = tmp_path / "sorted"
    folder.mkdir()
    cut = np.linspace(0, table.num_rows, 4).astype(int)
    for k in range(3):
        pq.write_table(table.slice(cut[k], cut[k + 1] - cut[k]), folder / f"part-{k}.parquet", row_group_size=50_000)
    files = sorted(folder.glob("*.parquet"))
    assert vehicle_sorted_hint(files)
    # Small chunks so that many vehicles span a chunk boundary.
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=PipelineConfig(rows_per_partition=30_000))
    assert_same(inventory(tmp_path / "run"), inventory(full_run))
    # Row groups larger than the reader takes whole are read in batches, with the same results.
    with monkeypatch.context() as m:
        m.setattr(reading, "UNIT_ROWS", 20_000)
        m.setattr(reading, "BATCH_ROWS", 7_000)
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run-batches")
    assert_same(inventory(tmp_path / "run-batches"), inventory(full_run))
    # Statistics that say "sorted" while the rows of a row group are not: the run starts again with partitions.
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(table.num_rows)))
    one = tmp_path / "one"
    one.mkdir()
    pq.write_table(shuffled, one / "all.parquet", row_group_size=table.num_rows)
    assert vehicle_sorted_hint([one / "all.parquet"])
    run_pipeline(one, world / "vehicles.parquet", tmp_path / "run2")
    assert_same(inventory(tmp_path / "run2"), inventory(full_run))
