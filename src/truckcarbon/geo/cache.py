"""The locator index on disk: one folder of ``.npy`` arrays and a ``meta.json`` per index, built on first use.

An index is built once per (boundary data version, CRS, scope, format) and
cached in :func:`truckcarbon.core.settings.cache_dir` (:func:`index_cache_path`)
as plain ``.npy`` arrays that are memory-mapped on load, so processes on one
machine share one copy. :func:`get_index` loads it, building and saving it
first when it is missing; saving is atomic, so concurrent first uses are safe.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Final

import numpy as np

from truckcarbon.core.errors import IndexBuildError
from truckcarbon.core.settings import cache_dir
from truckcarbon.geo.boundaries import boundary_data_version
from truckcarbon.geo.build import build_index
from truckcarbon.geo.index import ARRAYS, CRS, L1_PER_DEGREE, SUB, LocatorIndex, parse_crs

INDEX_FORMAT: Final = 2


def index_cache_path(crs: CRS, mainland_only: bool, root: Path) -> Path:
    """Folder of the cached index for these settings and the installed boundary data."""
    scope = "mainland" if mainland_only else "all"
    return root / f"locator-{boundary_data_version()}-{crs.value}-{scope}-f{INDEX_FORMAT}-{L1_PER_DEGREE}x{SUB}"


def save_index(index: LocatorIndex, path: Path) -> None:
    """Write the index as a folder of ``.npy`` files; atomic (temporary folder, then rename)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        for name, arr in index.arrays.items():
            np.save(tmp / f"{name}.npy", arr)
        meta = {
            "crs": index.crs.value,
            "mainland_only": index.mainland_only,
            "data_version": index.data_version,
            "x0": index.x0,
            "y0": index.y0,
            "nx1": index.nx1,
            "ny1": index.ny1,
            "format": INDEX_FORMAT,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "meta.json").exists():  # another process won the race otherwise
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_index(path: Path) -> LocatorIndex:
    """Memory-map an index saved by :func:`save_index`."""
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        arrays = {name: np.asarray(np.load(path / f"{name}.npy", mmap_mode="r")) for name in ARRAYS}
    except (OSError, ValueError, KeyError) as exc:
        raise IndexBuildError(
            f"locator index cache {path} is unreadable ({exc}); delete the folder to rebuild"
        ) from exc
    if meta.get("format") != INDEX_FORMAT:
        raise IndexBuildError(f"locator index cache {path} has format {meta.get('format')}, expected {INDEX_FORMAT}")
    return LocatorIndex(
        crs=CRS(meta["crs"]),
        mainland_only=bool(meta["mainland_only"]),
        data_version=str(meta["data_version"]),
        x0=float(meta["x0"]),
        y0=float(meta["y0"]),
        nx1=int(meta["nx1"]),
        ny1=int(meta["ny1"]),
        arrays=arrays,
    )


def get_index(
    crs: CRS | str = CRS.WGS84, *, mainland_only: bool = True, cache: bool = True, progress: bool = False
) -> LocatorIndex:
    """The index for ``crs``, loaded from the cache or built (and cached) on first use."""
    crs = parse_crs(crs)
    if not cache:
        return build_index(crs, mainland_only=mainland_only, progress=progress)
    path = index_cache_path(crs, mainland_only, cache_dir())
    if not (path / "meta.json").exists():
        if progress:
            print(f"building the city locator index ({crs.value}) into {path}", flush=True)
        save_index(build_index(crs, mainland_only=mainland_only, progress=progress), path)
    return load_index(path)
