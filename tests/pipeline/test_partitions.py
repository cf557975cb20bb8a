"""Routing of unsorted fixes to partitions by vehicle (the embedded engine's pass 1)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.pipeline.engines.embedded import _route, _route_order


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
def test_route_order_is_a_stable_sort_by_the_vehicle_hash(n, level):
    rng = np.random.default_rng(n * 10 + level)
    vid = rng.integers(-(2**62), 2**62, 50_000)
    vid[::3] = vid[0]  # one vehicle with many rows
    order, bounds = _route_order(vid, n, level)
    want_order, want_bounds = _reference(vid, n, level)
    np.testing.assert_array_equal(order, want_order)
    np.testing.assert_array_equal(bounds, want_bounds)


def test_route_keeps_every_row_once_and_a_vehicle_in_one_partition():
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
