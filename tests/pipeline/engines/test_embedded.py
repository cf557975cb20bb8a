"""The embedded engine: routing unsorted fixes to partitions by vehicle, streaming sorted input, exact sums."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from truckcarbon.pipeline import EngineName, PipelineConfig, run_pipeline
from truckcarbon.pipeline.engines import embedded, partitions
from truckcarbon.pipeline.engines.embedded import EmbeddedEngine, _NotSortedError, _Stream
from truckcarbon.pipeline.engines.partitions import _route, _route_order, _route_vehicle_order
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


@pytest.mark.parametrize(("n", "spread"), [(1, 500), (26, 500), (26, 2**40), (511, 20_000)])
def test_route_by_vehicle_groups_a_partitions_rows_by_vehicle_in_their_order(n: int, spread: int) -> None:
    """Partitions as the plain route's, each ordered by (vehicle, row): narrow key ranges (a table) and wide
    ones (a binary search) alike, with the -1 key of rows without a vehicle."""
    rng = np.random.default_rng(n + spread)
    vid = rng.integers(0, spread, 40_000)
    vid[::7] = -1
    order, bounds = _route_vehicle_order(vid, n)
    _, want_bounds = _reference(vid, n, 0)
    np.testing.assert_array_equal(bounds, want_bounds)
    for p in range(n):
        rows = order[bounds[p] : bounds[p + 1]]
        want = np.lexsort((rows, vid[rows]))  # by vehicle, then by row
        np.testing.assert_array_equal(rows, rows[want])
    np.testing.assert_array_equal(np.sort(order), np.arange(vid.size))


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
    for codec in ("none", "lz4", "zstd"):  # every partition spilled, files compressed or not: the same numbers
        compressed = PipelineConfig(rows_per_partition=200_000, spill_compression=codec, partition_memory_mb=0)
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / f"run-{codec}", config=compressed)
        assert inventory(tmp_path / f"run-{codec}").to_pydict() == first.to_pydict(), codec


def test_files_of_a_terminals_precision_and_of_full_precision_route_to_the_same_numbers(
    world: Path, tmp_path: Path
) -> None:
    """Files whose coordinates and channels a terminal's precision holds (narrow codecs) mixed with files of
    full precision: a partition spills to one file per set of codecs, and its rows come back complete. The
    inventory is the same bit for bit as the same rows streamed in vehicle order, held or spilled."""
    folder = shuffled_copy(world, tmp_path / "mixed")
    files = sorted(folder.glob("*.parquet"))
    for f in files[::2]:  # every other file as a JT/T 808 terminal reports: 6-decimal degrees, 1-decimal km/h
        table = pq.read_table(f)
        for name, scale in (("lon", 1e6), ("lat", 1e6), ("speed_kmh", 10.0)):
            column = table[name]
            rounded = pc.divide(pc.round(pc.multiply(column, scale)), scale).cast(column.type)
            table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), rounded)
        pq.write_table(table, f)
    rows = pa.concat_tables(pq.read_table(f) for f in files)
    ordered = tmp_path / "ordered"
    ordered.mkdir()
    pq.write_table(rows.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")]), ordered / "sorted.parquet")
    run_pipeline(ordered, world / "vehicles.parquet", tmp_path / "streamed")
    want = inventory(tmp_path / "streamed").to_pydict()
    spilled: list[int] = []
    close = partitions._Sink.close

    def recording(self: partitions._Sink) -> None:
        spilled.append(len(self.files))
        close(self)

    partitions._Sink.close = recording  # type: ignore[method-assign]
    try:
        for memory_mb in (0, 512):
            config = PipelineConfig(rows_per_partition=200_000, partition_memory_mb=memory_mb)
            run_pipeline(folder, world / "vehicles.parquet", tmp_path / f"run-{memory_mb}", config=config)
            assert inventory(tmp_path / f"run-{memory_mb}").to_pydict() == want, memory_mb
            # Spilled: a partition's parts of full precision then of a terminal's, in a second file; or all held.
            assert (max(spilled) == 2) if memory_mb == 0 else not spilled, spilled
            spilled.clear()
    finally:
        partitions._Sink.close = close  # type: ignore[method-assign]


@pytest.mark.parametrize("memory_mb", [0, 1536])
def test_partitions_larger_than_planned_are_split_again(
    world: Path, world_run: WorldRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_mb: int
) -> None:
    """More input than MAX_PARTITIONS partitions of rows_per_partition hold: each is split again, same numbers
    (partitions spilled, ``memory_mb`` 0, or held in memory)."""
    full_run = world_run(EngineName.EMBEDDED)
    loaded: list[int] = []

    def recording(load: Callable[[list[Any]], pa.Table]) -> Callable[[list[Any]], pa.Table]:
        def record(sources: list[Any]) -> pa.Table:
            table = load(sources)
            loaded.append(table.num_rows)
            return table

        return record

    monkeypatch.setattr(embedded, "MAX_PARTITIONS", 2)
    monkeypatch.setattr(partitions, "_read_spilled", recording(partitions._read_spilled))
    monkeypatch.setattr(partitions, "_decoded", recording(partitions._decoded))
    rows = sum(pq.read_metadata(f).num_rows for f in (world / "pings").rglob("*.parquet"))
    limit = rows // 12
    config = PipelineConfig(rows_per_partition=limit, partition_memory_mb=memory_mb)
    run_pipeline(world / "pings", world / "vehicles.parquet", tmp_path / "run", config=config)
    assert inventory(tmp_path / "run").to_pydict() == inventory(full_run).to_pydict()
    # The two planned partitions would hold about 6 x limit each; split again, each piece holds whole vehicles
    # near the limit (a vehicle's 3 months are a good part of the limit in this small world).
    assert sum(loaded) == rows and len(loaded) > 4
    assert max(loaded) < 3 * limit < rows // 2, (limit, loaded)
    # Input estimated to fit in memory (a compressed CSV is larger than its size suggests) is spilled after all.
    loaded.clear()
    monkeypatch.setattr(embedded, "estimated_rows", lambda f: 1)
    run_pipeline(world / "pings", world / "vehicles.parquet", tmp_path / "run2", config=config)
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
