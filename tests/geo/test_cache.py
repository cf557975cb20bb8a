"""The index cache: folders of arrays and meta.json, atomic saves, refused stale or damaged folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from truckcarbon.core.errors import IndexBuildError
from truckcarbon.geo.boundaries import boundary_data_version
from truckcarbon.geo.build import build_index
from truckcarbon.geo.cache import INDEX_FORMAT, get_index, index_cache_path, load_index, save_index
from truckcarbon.geo.index import ARRAYS, CRS, LocatorIndex

from .geokit import toy_index


def toy_locator_index() -> LocatorIndex:
    t = toy_index()
    arrays = {"adcodes": np.array([110100, 120100], np.int32), "l1": t.l1, "l2": t.l2, "ref": t.ref}
    arrays |= {"hdr": t.hdr, "grp": t.grp, "edges": t.edges}
    return LocatorIndex(CRS.GCJ02, True, "toy-1", t.x0, t.y0, t.nx1, t.ny1, arrays)


def test_cache_round_trip(tmp_path, gcj_locator):
    idx = build_index("gcj02")
    save_index(idx, tmp_path / "idx")
    back = load_index(tmp_path / "idx")
    assert back.crs == idx.crs and back.data_version == idx.data_version
    for name, arr in idx.arrays.items():
        assert np.array_equal(back.arrays[name], arr), name
        assert np.array_equal(gcj_locator.index.arrays[name], arr), name
    assert not list(tmp_path.glob(".*tmp"))
    assert idx.nbytes < 500 * 2**20


def test_small_index_round_trip_memory_maps_every_array(tmp_path):
    idx = toy_locator_index()
    save_index(idx, tmp_path / "toy")
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == sorted([f"{a}.npy" for a in ARRAYS] + ["meta.json"])
    back = load_index(tmp_path / "toy")
    assert (back.crs, back.mainland_only, back.data_version) == (CRS.GCJ02, True, "toy-1")
    assert (back.x0, back.y0, back.nx1, back.ny1) == (100.0, 30.0, 2, 1)
    for name in ARRAYS:
        assert back.arrays[name].dtype == idx.arrays[name].dtype and np.array_equal(back.arrays[name], idx.arrays[name])
        assert not back.arrays[name].flags.writeable  # memory-mapped read-only
    # A second save onto an existing index (another process won the race) leaves it as it is.
    save_index(idx, tmp_path / "toy")
    assert not list(tmp_path.glob(".*tmp"))


def test_stale_or_damaged_caches_are_refused(tmp_path):
    save_index(toy_locator_index(), tmp_path / "toy")
    meta_path = tmp_path / "toy" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == INDEX_FORMAT
    meta_path.write_text(json.dumps(meta | {"format": INDEX_FORMAT - 1}))
    with pytest.raises(IndexBuildError, match="has format"):
        load_index(tmp_path / "toy")
    meta_path.write_text(json.dumps(meta))
    (tmp_path / "toy" / "grp.npy").unlink()
    with pytest.raises(IndexBuildError, match="unreadable"):
        load_index(tmp_path / "toy")
    with pytest.raises(IndexBuildError, match="unreadable"):
        load_index(tmp_path / "missing")


def test_cache_path_names_what_the_index_depends_on(tmp_path):
    """One folder per boundary data version, CRS, scope and format: a change of any builds a new index."""
    paths = {index_cache_path(c, m, tmp_path) for c in (CRS.WGS84, CRS.GCJ02) for m in (True, False)}
    assert len(paths) == 4 and all(p.parent == tmp_path for p in paths)
    name = index_cache_path(CRS.WGS84, True, tmp_path).name
    assert boundary_data_version() in name and "wgs84" in name and "mainland" in name and f"f{INDEX_FORMAT}" in name
    assert "-all-" in index_cache_path(CRS.GCJ02, False, tmp_path).name


def test_get_index_loads_the_cached_folder(monkeypatch, tmp_path):
    """With a folder in the cache, get_index memory-maps it (no build); without the cache it builds in memory."""
    monkeypatch.setenv("TRUCKCARBON_CACHE_DIR", str(tmp_path))
    save_index(toy_locator_index(), index_cache_path(CRS.GCJ02, True, tmp_path))
    got = get_index("gcj02")
    assert got.data_version == "toy-1" and np.array_equal(got.arrays["l2"], toy_index().l2)
    monkeypatch.setattr("truckcarbon.geo.cache.build_index", lambda crs, **kw: ("built", crs, kw["mainland_only"]))
    assert get_index("wgs84", mainland_only=False, cache=False) == ("built", CRS.WGS84, False)
