"""Derived world arrays: built once, read back identical, built again when the stored file is damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from truckcarbon.geo.distance import haversine_many
from truckcarbon.sim.world import ROAD_CIRCUITY, derived_arrays, load_world


def test_derived_arrays_are_built_once_and_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCKCARBON_CACHE_DIR", str(tmp_path))
    calls: list[int] = []

    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return {"x": np.arange(5.0), "n": np.array([7, 8], np.int64)}

    inputs = (np.array([1.0, 2.0]),)
    first = derived_arrays("probe", inputs, build)
    again = derived_arrays("probe", inputs, build)
    assert len(calls) == 1
    assert all(np.array_equal(first[k], again[k]) and first[k].dtype == again[k].dtype for k in first)
    derived_arrays("probe", (np.array([1.0, 3.0]),), build)  # other inputs: another entry
    assert len(calls) == 2
    stored = sorted((tmp_path / "sim").glob("probe-*.npz"))
    assert len(stored) == 2
    for f in stored:
        f.write_bytes(b"not an npz")  # damaged (say, copied in part): built again, not trusted
    assert np.array_equal(derived_arrays("probe", inputs, build)["x"], np.arange(5.0))
    assert len(calls) == 3
    assert not list((tmp_path / "sim").glob("*.tmp"))


def test_stored_roads_equal_a_fresh_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The world read from the cache has the road km and next hops of a fresh shortest-path build."""
    monkeypatch.setenv("TRUCKCARBON_CACHE_DIR", str(tmp_path))
    load_world.cache_clear()
    try:
        built = load_world()
        load_world.cache_clear()
        stored = load_world()
    finally:
        load_world.cache_clear()
    assert len(list((tmp_path / "sim").glob("roads-*.npz"))) == 1
    assert np.array_equal(built.road_km, stored.road_km) and np.array_equal(built.next_hop, stored.next_hop)
    # Next hops and distances agree: a path's edges (straight line x circuity) add up to its road km.
    rng = np.random.default_rng(3)
    for i, j in rng.integers(0, stored.n, (20, 2)):
        if not np.isfinite(stored.road_km[i, j]):
            continue
        path = np.array(stored.path(int(i), int(j)))
        edges = haversine_many(stored.lon[path[:-1]], stored.lat[path[:-1]], stored.lon[path[1:]], stored.lat[path[1:]])
        assert edges.sum() * ROAD_CIRCUITY == pytest.approx(stored.road_km[i, j], rel=1e-9, abs=1e-9)
