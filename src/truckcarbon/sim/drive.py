"""One truck's true movements in one month: schedule, route and fixes.

The simulated truck moves in a straight line at constant speed between
consecutive true fixes; that piecewise-linear path *is* the true path, so its
kilometres per unit (split exactly at borders) are the ground truth a pipeline
can recover from defect-free pings.

Schedule: on each working day the truck starts between 05:00 and 09:00 local
time and drives shifts of at most 4 h with 20-45 min breaks, for the hours its
monthly distance needs (at most 14 h; it is parked by 23:30). Regional trucks
take one day off in seven. While driving it reports every ``interval_s``; while
parked every ``parked_interval_s`` (terminals report less often with the
ignition off).

Route: trips from the current position to a destination, along the shortest
path of the unit graph (:mod:`truckcarbon.sim.world`) through the units' inner
points jittered by a few kilometres. Regional trucks go to units within two
hops of their home, returning home every other trip; long-haul trucks pick
destinations by a gravity model (attraction / road distance^1.5, freight hubs
weighted up). Each trip has a load state: full 55%, half 10%, empty 35%.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from truckcarbon.geo._kernels import haversine_many
from truckcarbon.sim.fleet import Role, province_fleet_2022, published_province_table
from truckcarbon.sim.world import HUBS, World

CRUISE_KMH = {Role.REGIONAL: 52.0, Role.LONG_HAUL: 70.0}
MAX_DRIVE_H = 14.0
WAYPOINT_JITTER_DEG = 0.03
LOAD_P = (0.35, 0.10, 0.55)  # in LoadState order: empty, half, full


@dataclass
class TruckState:
    """Where a truck is between months: position, the rest of its route, current trip's load."""

    home: int
    lon: float
    lat: float
    route_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    route_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    route_load: npt.NDArray[np.int8] = field(default_factory=lambda: np.empty(0, np.int8))
    dest: int = -1
    trips: int = 0


@dataclass(frozen=True)
class Track:
    """True fixes of one truck-month, in time order."""

    t_s: npt.NDArray[np.int64]  # UTC epoch seconds
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    load: npt.NDArray[np.int8]  # 0 empty, 1 half, 2 full (of the trip under way)
    odometer_km: npt.NDArray[np.float64]  # true distance since the start of the month


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


def _destination(
    world: World, state: TruckState, role: Role, attraction: npt.NDArray[np.float64], rng: np.random.Generator
) -> int:
    here = state.dest if state.dest >= 0 else state.home
    if role is Role.REGIONAL:
        if state.trips % 2 == 1 and here != state.home:
            return state.home
        near = set(world.neighbours[here].tolist())
        for k in list(near):
            near.update(world.neighbours[k].tolist())
        near.discard(here)
        cand = np.array(sorted(near))
        w = attraction[cand]
        return int(cand[rng.choice(cand.size, p=w / w.sum())])
    d = world.road_km[here]
    ok = np.isfinite(d) & (d > 150.0)
    w = np.where(ok, attraction / np.maximum(d, 1.0) ** 1.5, 0.0)
    return int(rng.choice(world.n, p=w / w.sum()))


def _extend_route(
    world: World, state: TruckState, role: Role, attraction: npt.NDArray[np.float64], rng: np.random.Generator
) -> None:
    here = state.dest if state.dest >= 0 else state.home
    dest = _destination(world, state, role, attraction, rng)
    path = world.path(here, dest)[1:]
    load = np.int8(rng.choice(3, p=LOAD_P))
    jitter = rng.normal(0.0, WAYPOINT_JITTER_DEG, (len(path), 2))
    state.route_lon = np.concatenate([state.route_lon, world.lon[path] + jitter[:, 0]])
    state.route_lat = np.concatenate([state.route_lat, world.lat[path] + jitter[:, 1]])
    state.route_load = np.concatenate([state.route_load, np.full(len(path), load, np.int8)])
    state.dest = dest
    state.trips += 1


def _schedule(month_start_s: int, n_days: int, drive_h_total: float, role: Role, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Breakpoints (t, speed) of the month: driving shifts and stops; speed 0 = parked."""
    working = np.ones(n_days, bool)
    if role is Role.REGIONAL:
        working[rng.integers(0, 7) :: 7] = False
    per_day = drive_h_total / max(working.sum(), 1)
    t_starts: list[float] = []
    t_ends: list[float] = []
    speeds: list[float] = []
    cruise = CRUISE_KMH[role]
    for day in np.flatnonzero(working):
        hours = float(np.clip(per_day * rng.uniform(0.8, 1.2), 0.0, MAX_DRIVE_H))
        t = month_start_s + day * 86400 + rng.uniform(5.0, 9.0) * 3600
        latest = month_start_s + day * 86400 + 23.5 * 3600
        while hours > 1e-6 and t < latest:
            shift = min(hours, rng.uniform(2.5, 4.0), (latest - t) / 3600)
            t_starts.append(t)
            t_ends.append(t + shift * 3600)
            speeds.append(cruise * rng.uniform(0.85, 1.15))
            hours -= shift
            t += shift * 3600 + rng.uniform(20, 45) * 60
    return np.array(t_starts), np.array(t_ends), np.array(speeds)


def drive_month(
    world: World,
    state: TruckState,
    role: Role,
    attraction: npt.NDArray[np.float64],
    month_start_s: int,
    month_end_s: int,
    km_target: float,
    interval_s: int,
    parked_interval_s: int,
    rng: np.random.Generator,
) -> Track:
    """Simulate one month; updates ``state`` to the truck's position at the month's end."""
    n_days = (month_end_s - month_start_s) // 86400
    starts, ends, speeds = _schedule(month_start_s, n_days, km_target / CRUISE_KMH[role], role, rng)
    dist = (ends - starts) / 3600.0 * speeds
    need_km = float(dist.sum())

    # Route polyline from the current position, long enough for the month.
    poly_lon = np.concatenate([[state.lon], state.route_lon])
    poly_lat = np.concatenate([[state.lat], state.route_lat])
    seg = haversine_many(poly_lon[:-1], poly_lat[:-1], poly_lon[1:], poly_lat[1:])
    total = float(seg.sum())
    while total < need_km + 1.0:
        n_before = state.route_lon.size
        _extend_route(world, state, role, attraction, rng)
        lon_new = np.concatenate([poly_lon[-1:], state.route_lon[n_before:]])
        lat_new = np.concatenate([poly_lat[-1:], state.route_lat[n_before:]])
        seg_new = haversine_many(lon_new[:-1], lat_new[:-1], lon_new[1:], lat_new[1:])
        poly_lon = np.concatenate([poly_lon, lon_new[1:]])
        poly_lat = np.concatenate([poly_lat, lat_new[1:]])
        seg = np.concatenate([seg, seg_new])
        total += float(seg_new.sum())
    poly_s = np.concatenate([[0.0], np.cumsum(seg)])
    # Load of the trip each route vertex belongs to; the start continues the first trip.
    poly_load = np.concatenate([state.route_load[:1], state.route_load])

    # Fix times, in time order: parked (every parked interval) and driving (every interval) alternate.
    park_from = np.concatenate([[month_start_s], ends])
    park_to = np.concatenate([starts, [month_end_s]])
    pieces = []
    for k in range(park_from.size):
        pieces.append(np.arange(park_from[k], park_to[k], parked_interval_s))
        if k < starts.size:
            pieces.append(np.arange(starts[k], ends[k], interval_s))
    t = np.floor(np.concatenate(pieces)).astype(np.int64)
    t = t[(t >= month_start_s) & (t < month_end_s)]
    t = t[np.concatenate([[True], np.diff(t) > 0])]  # whole seconds: drop a fix that rounds onto its predecessor

    # Distance along the route at each fix: piecewise linear in time.
    bt = np.concatenate([[month_start_s], np.column_stack([starts, ends]).ravel(), [month_end_s]])
    bs = np.concatenate([[0.0], np.column_stack([np.cumsum(dist) - dist, np.cumsum(dist)]).ravel(), [need_km]])
    s = np.interp(t, bt, bs)
    lon = np.interp(s, poly_s, poly_lon)
    lat = np.interp(s, poly_s, poly_lat)
    speed = np.zeros(t.size)
    if starts.size:
        k = np.searchsorted(starts, t, side="right") - 1
        moving = (k >= 0) & (t < ends[np.maximum(k, 0)])
        speed[moving] = speeds[k[moving]]
    vertex = np.clip(np.searchsorted(poly_s, s, side="right"), 1, poly_s.size - 1)
    load = poly_load[np.minimum(vertex, poly_load.size - 1)]
    odometer = np.concatenate([[0.0], np.cumsum(haversine_many(lon[:-1], lat[:-1], lon[1:], lat[1:]))])[: t.size]

    # The truck's position at the month's end and the rest of its route.
    end_lon = float(np.interp(need_km, poly_s, poly_lon))
    end_lat = float(np.interp(need_km, poly_s, poly_lat))
    rest = poly_s > need_km
    state.lon, state.lat = end_lon, end_lat
    state.route_lon = poly_lon[rest]
    state.route_lat = poly_lat[rest]
    state.route_load = poly_load[rest]
    return Track(t_s=t, lon=lon, lat=lat, speed_kmh=speed, load=load.astype(np.int8), odometer_km=odometer)
