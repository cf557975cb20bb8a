"""The geography the simulated trucks drive in: units, their road graph and freight attraction.

Trips run over the graph of mainland units that share a border (plus two ferry
links), from the inner point of one unit to the next; edge lengths are great-circle
distances between inner points times a road circuity of 1.25. Freight attraction
("mass") of a unit for the gravity model of destinations is its registered fleet
plus a bonus for freight hubs (sea ports and coal bases, :data:`HUBS`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import pyarrow.csv as pacsv

from truckcarbon.core.settings import cache_dir
from truckcarbon.geo.distance import haversine_many
from truckcarbon.geo.reference import cities

ROAD_CIRCUITY = 1.25

# Freight hubs with a multiplier on their attraction. Ports: the largest container
# and bulk ports; coal: the Shanxi-Shaanxi-Inner Mongolia coal triangle.
HUBS: dict[int, float] = {
    120100: 3.0,
    310100: 3.0,
    330200: 3.0,
    370200: 2.5,
    440100: 2.5,
    440300: 2.5,
    130200: 2.5,
    210200: 2.0,
    371100: 2.0,
    320700: 1.5,
    210800: 1.5,  # ports
    150600: 3.0,
    610800: 3.0,
    140200: 2.0,
    140600: 2.0,
    141100: 2.0,
    140400: 1.5,
    140500: 1.5,
    150300: 1.5,
    150200: 1.5,  # coal
}


@dataclass(frozen=True)
class World:
    """Units (index = position), coordinates, road graph distances and next hops."""

    adcode: npt.NDArray[np.int32]
    province: npt.NDArray[np.int32]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    neighbours: tuple[npt.NDArray[np.int64], ...]
    road_km: npt.NDArray[np.float64]  # shortest road distance between units (inf: unreachable)
    next_hop: npt.NDArray[np.int64]  # next unit on the shortest path i -> j

    @property
    def n(self) -> int:
        return int(self.adcode.size)

    def index_of(self, adcodes: npt.ArrayLike) -> npt.NDArray[np.int64]:
        order = np.argsort(self.adcode)
        pos = np.searchsorted(self.adcode[order], adcodes)
        return np.asarray(order[pos], dtype=np.int64)

    @cached_property
    def two_hops(self) -> tuple[npt.NDArray[np.int64], ...]:
        """Per unit, the units within two hops on the graph (itself excluded), in increasing order."""
        out = []
        for here in range(self.n):
            near = set(self.neighbours[here].tolist())
            for k in list(near):
                near.update(self.neighbours[k].tolist())
            near.discard(here)
            out.append(np.array(sorted(near), dtype=np.int64))
        return tuple(out)

    def path(self, i: int, j: int) -> list[int]:
        """Units on the shortest road path from i to j (both included)."""
        out = [i]
        while out[-1] != j:
            out.append(int(self.next_hop[out[-1], j]))
        return out


@cache
def _derivation_key() -> str:
    """A digest of what derived world arrays depend on: the simulator's and geography's code, the package data."""
    h = hashlib.sha256(np.__version__.encode())
    for package in ("truckcarbon.sim", "truckcarbon.geo", "truckcarbon.data"):
        for entry in sorted(files(package).iterdir(), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith((".py", ".csv")):
                h.update(entry.name.encode())
                h.update(entry.read_bytes())
    return h.hexdigest()[:16]


def derived_arrays(
    name: str, inputs: tuple[npt.NDArray[np.float64], ...], build: Callable[[], dict[str, npt.NDArray[np.generic]]]
) -> dict[str, npt.NDArray[np.generic]]:
    """Arrays fully determined by ``inputs``, the package data and the code: built once, then read from the cache.

    Kept under the cache folder (:func:`~truckcarbon.core.settings.cache_dir`)
    by a digest of all of them, written under a temporary name and renamed; a
    file that cannot be read is built again.
    """
    h = hashlib.sha256(_derivation_key().encode())
    for a in inputs:
        h.update(np.ascontiguousarray(a).tobytes())
    path = cache_dir() / "sim" / f"{name}-{h.hexdigest()[:16]}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                return {k: stored[k] for k in stored.files}
        except (OSError, ValueError, EOFError):
            pass  # damaged: build again
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return arrays


@cache
def load_world() -> World:
    t = cities()
    adcode = t["city_adcode"].to_numpy().astype(np.int32)
    lon = t["inner_lon"].to_numpy()
    lat = t["inner_lat"].to_numpy()
    with files("truckcarbon.data").joinpath("city_adjacency.csv").open("rb") as f:
        adj = pacsv.read_csv(f)
    pos = {int(c): k for k, c in enumerate(adcode)}
    a = np.array([pos[c] for c in adj["city_a"].to_pylist()])
    b = np.array([pos[c] for c in adj["city_b"].to_pylist()])
    n = adcode.size
    routes = derived_arrays(
        "roads", (lon, lat, a.astype(np.float64), b.astype(np.float64)), lambda: _roads(lon, lat, a, b)
    )
    neighbours = tuple(np.sort(np.concatenate([b[a == i], a[b == i]])) for i in range(n))
    return World(
        adcode=adcode,
        province=t["province_adcode"].to_numpy().astype(np.int32),
        lon=lon,
        lat=lat,
        neighbours=neighbours,
        road_km=np.asarray(routes["road_km"], np.float64),
        next_hop=np.asarray(routes["next_hop"], np.int64),
    )


def _roads(
    lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64], a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
) -> dict[str, npt.NDArray[np.generic]]:
    """Shortest road km between units over the border graph (edges ``a``-``b``), and the next hop of each path."""
    from scipy.sparse import csr_matrix  # here: the result is usually cached (derived_arrays)
    from scipy.sparse.csgraph import shortest_path

    n = lon.size
    w = haversine_many(lon[a], lat[a], lon[b], lat[b]) * ROAD_CIRCUITY
    graph = csr_matrix((np.concatenate([w, w]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(n, n))
    dist, pred = shortest_path(graph, method="D", directed=False, return_predecessors=True)
    # next_hop[i, j]: the unit after i on the path i -> j, from the predecessor tree rooted at i.
    nxt = np.full((n, n), -1, dtype=np.int64)
    np.fill_diagonal(nxt, np.arange(n))
    for i in range(n):
        order = np.argsort(dist[i], kind="stable")  # a unit comes after its predecessor
        row = nxt[i]
        for j in order[1:].tolist():
            p = pred[i, j]
            if p < 0:
                break  # unreachable from here on (infinite distances sort last)
            row[j] = j if p == i else row[p]
    return {"road_km": dist, "next_hop": nxt}
