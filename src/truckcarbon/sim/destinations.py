"""Where trucks go: the destinations of their trips, by role, and the long-haul gravity model's fit.

Regional trucks go to units within two hops of their home on the unit graph
(:mod:`truckcarbon.sim.world`), returning home every other trip; long-haul trucks
chain trips to destinations picked by a gravity model (attraction / road
distance^1.5, freight hubs weighted up, :func:`gravity_attraction`), whose
attraction per province is fitted so that all kilometres, long-haul transit and
regional trips across borders included, fall in each province in proportion to
its published operating CO2 (:func:`fit_long_haul`). :class:`Destinations`
holds both choices as cumulative weights, built once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from truckcarbon.sim.activity import ANNUAL_KM, province_activity
from truckcarbon.sim.fleet import Role, long_haul_share, province_fleet_2022, published_province_table
from truckcarbon.sim.world import HUBS, World, derived_arrays

if TYPE_CHECKING:  # scipy.sparse is imported where the fit needs it: the fit result is usually cached
    from scipy.sparse import csr_matrix


def gravity_attraction(world: World, fleet_by_unit: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Freight attraction of each unit for long-haul destinations.

    A province attracts in proportion to the CO2 driven inside it (the published
    operating emissions of 2022; provinces outside the table: their fleet times
    the table's operating/registered ratio), shared among its units by their
    registered fleet, with freight hubs weighted up (:data:`HUBS`).
    """
    pub = published_province_table()
    op = dict(zip(pub["province_adcode"].to_pylist(), pub["operating_co2_1e4_t"].to_pylist(), strict=True))
    reg = dict(zip(pub["province_adcode"].to_pylist(), pub["registered_1e4"].to_pylist(), strict=True))
    per_truck = sum(op.values()) / sum(reg.values())
    prov_fleet = province_fleet_2022()
    out = np.zeros(world.n)
    for p in np.unique(world.province):
        members = world.province == p
        share = fleet_by_unit[members] / max(fleet_by_unit[members].sum(), 1e-9)
        operating = op.get(int(p), prov_fleet.get(int(p), 0.0) / 1e4 * per_truck)
        out[members] = operating * share
    hub = np.array([HUBS.get(int(c), 1.0) for c in world.adcode])
    return np.asarray((out + out.mean() * 0.05) * hub, dtype=np.float64)


def weighted_draw(cum: npt.NDArray[np.float64], rng: np.random.Generator) -> int:
    """An index drawn with probability proportional to the weights whose cumulative sums are ``cum``."""
    return min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cum.size - 1)


@dataclass(frozen=True)
class Destinations:
    """Where trucks go next (module docstring), as cumulative weights per current unit.

    ``long_haul[i]``: attraction / road distance^1.5 over units more than 150 km
    by road from unit ``i``; ``regional[i]``: the units within two hops of ``i``
    and their cumulative attraction.
    """

    long_haul: npt.NDArray[np.float64]  # (units, units), cumulative along each row
    regional: tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]], ...]

    @classmethod
    def build(
        cls, world: World, attraction: npt.NDArray[np.float64], fleet_by_unit: npt.NDArray[np.float64]
    ) -> Destinations:
        """Regional choices by ``attraction``; long-haul ones by it as fitted (:func:`fit_long_haul`)."""
        regional = tuple((cand, np.cumsum(attraction[cand])) for cand in world.two_hops)
        fitted = derived_arrays(
            "long_haul", (attraction, fleet_by_unit), lambda: {"a": fit_long_haul(world, attraction, fleet_by_unit)}
        )["a"]
        long_haul = _long_haul_weights(world, np.asarray(fitted, np.float64))
        return cls(np.cumsum(long_haul, axis=1), regional)

    def pick(self, here: int, home: int, trips: int, role: Role, rng: np.random.Generator) -> int:
        """The next destination of a truck at unit ``here``, based at ``home``, after ``trips`` trips."""
        if role is Role.REGIONAL:
            if trips % 2 == 1 and here != home:
                return home
            cand, cum = self.regional[here]
            return int(cand[weighted_draw(cum, rng)])
        return weighted_draw(self.long_haul[here], rng)


def _long_haul_weights(
    world: World, attraction: npt.NDArray[np.float64], distance_term: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64]:
    """Long-haul trip weights from each unit (rows) to each unit: attraction / road km^1.5 beyond 150 km.

    ``distance_term``: :func:`_long_haul_distance_term`, when the caller has it.
    """
    term = _long_haul_distance_term(world) if distance_term is None else distance_term
    return np.asarray(attraction[None, :] / term, np.float64)


def _long_haul_distance_term(world: World) -> npt.NDArray[np.float64]:
    """Road km^1.5 between units, infinite within 150 km and between unreachable units."""
    d = world.road_km
    return np.asarray(np.where(np.isfinite(d) & (d > 150.0), np.maximum(d, 1.0) ** 1.5, np.inf), np.float64)


def _path_km_by_province(world: World) -> tuple[csr_matrix, npt.NDArray[np.int64]]:
    """Road km of the path between every pair of units, by province: a (units^2, provinces) sparse matrix.

    Each edge of a path counts half for the province of either end. Also returns
    the province index of each unit (the matrix's columns).
    """
    from scipy.sparse import csr_matrix

    codes, prov = np.unique(world.province, return_inverse=True)
    n = world.n
    src = np.repeat(np.arange(n), n)
    dst = np.tile(np.arange(n), n)
    ok = np.isfinite(world.road_km[src, dst]) & (src != dst)
    pair = np.flatnonzero(ok)
    here, there = src[ok], dst[ok]
    rows, cols, km = [], [], []
    while pair.size:
        step = world.next_hop[here, there]
        edge = world.road_km[here, step] / 2.0
        rows += [pair, pair]
        cols += [prov[here], prov[step]]
        km += [edge, edge]
        moving = step != there
        pair, here, there = pair[moving], step[moving], there[moving]
    m = csr_matrix((np.concatenate(km), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, codes.size))
    return m, np.asarray(prov, dtype=np.int64)


FIT_ROUNDS = 30
FIT_SCALE_LIMIT = 4.0  # a province's long-haul attraction is kept within 1/4 and 4 times its own


def long_haul_km_by_province(
    world: World,
    attraction: npt.NDArray[np.float64],
    km_by_province: csr_matrix,
    distance_term: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """Share of the long-haul kilometres driven in each province, in the long run of the trip chain.

    Long-haul trucks chain gravity trips (:meth:`Destinations.pick`), so in the long
    run they start their trips where the chain's stationary distribution puts them;
    a trip drives the kilometres of its shortest path in each province it crosses
    (``km_by_province``, from :func:`_path_km_by_province`). ``distance_term``:
    :func:`_long_haul_distance_term`, when the caller has it.
    """
    w = _long_haul_weights(world, attraction, distance_term)
    trips = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    where = np.full(world.n, 1.0 / world.n)
    for _ in range(100):  # stationary distribution (power iteration)
        where = where @ trips
    driven = np.asarray(km_by_province.T @ (where[:, None] * trips).ravel(), dtype=np.float64)
    return np.asarray(driven / driven.sum(), dtype=np.float64)


def _regional_km_by_province(
    world: World,
    attraction: npt.NDArray[np.float64],
    fleet_by_unit: npt.NDArray[np.float64],
    km_by_province: csr_matrix,
    prov: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], float]:
    """Expected yearly kilometres of regional trucks per province, and the long-haul total.

    A unit's trucks drive, per truck, :data:`~truckcarbon.sim.activity.ANNUAL_KM`
    of their role times their province's activity factor; the long-haul share is
    the province's (:func:`~truckcarbon.sim.fleet.long_haul_share`). A regional
    truck alternates trips to a unit within two hops (by ``attraction``) and back
    home; its kilometres fall in the provinces those trips cross.
    """
    from scipy.sparse import csr_matrix

    codes = np.unique(world.province)
    share = np.array([long_haul_share(int(c)) for c in codes])[prov]
    factors = province_activity()
    per_truck = fleet_by_unit * np.array([factors.get(int(c), 1.0) for c in codes])[prov]
    regional_km = per_truck * (1.0 - share) * ANNUAL_KM[Role.REGIONAL]
    # pick[home, there]: the chance a regional trip from home goes there (units within two hops).
    n = world.n
    home = np.concatenate([np.full(c.size, h) for h, c in enumerate(world.two_hops)]).astype(np.int64)
    there = np.concatenate(world.two_hops).astype(np.int64)
    pick = attraction[there] / np.bincount(home, weights=attraction[there], minlength=n)[home]
    # Kilometres per province of the trips out and back, averaged over the destinations of each home.
    trips = km_by_province[home * n + there] + km_by_province[there * n + home]
    km = np.asarray(csr_matrix((pick, (home, np.arange(home.size))), shape=(n, home.size)) @ trips.toarray())
    per_km = km / np.maximum(km.sum(axis=1, keepdims=True), 1e-300)
    regional = regional_km @ per_km
    return regional, float(np.sum(per_truck * share * ANNUAL_KM[Role.LONG_HAUL]))


def fit_long_haul(
    world: World, attraction: npt.NDArray[np.float64], fleet_by_unit: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Long-haul attraction fitted so that all trips drive in each province its share of ``attraction``.

    ``attraction``'s province totals follow the published operating CO2. Regional
    trucks drive near home (and across the borders of small provinces: two hops
    from Chongqing are all outside it), and long-haul trips drive through the
    provinces between origin and destination: with the attraction itself, central
    provinces (Anhui, Henan, Jiangxi, Hubei, Hunan) collect 1.5-2 times their share
    of the long-haul kilometres in transit, the coast and the west too little. So
    the kilometres long-haul trips must drive in a province are its share of all
    kilometres minus the regional ones (:func:`_regional_km_by_province`), and each
    province's attraction is scaled (its units keep their proportions; damped
    multiplicative fitting, :data:`FIT_ROUNDS` rounds, the scale bounded by
    :data:`FIT_SCALE_LIMIT`) until the long-haul kilometres per province
    (:func:`long_haul_km_by_province`, transit included) are near those. Where
    transit alone exceeds them or the bound stops the fit, it stays partial.
    """
    km_by_province, prov = _path_km_by_province(world)
    operating = np.bincount(prov, weights=attraction)
    regional, long_haul = _regional_km_by_province(world, attraction, fleet_by_unit, km_by_province, prov)
    wanted = operating / operating.sum() * (regional.sum() + long_haul) - regional
    target = np.maximum(wanted, 0.1 * operating / operating.sum() * long_haul)
    target /= target.sum()
    scale = np.ones(target.size)
    distance_term = _long_haul_distance_term(world)
    for _ in range(FIT_ROUNDS):
        driven = long_haul_km_by_province(world, attraction * scale[prov], km_by_province, distance_term)
        step = np.sqrt(np.where(driven > 0, target / np.maximum(driven, 1e-300), 1.0))
        scale = np.clip(scale * step, 1.0 / FIT_SCALE_LIMIT, FIT_SCALE_LIMIT)
    return np.asarray(attraction * scale[prov], dtype=np.float64)
