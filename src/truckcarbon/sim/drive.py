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

Route: trips from the current position to a destination
(:mod:`truckcarbon.sim.destinations`), along the shortest path of the unit graph
(:mod:`truckcarbon.sim.world`) through the units' inner points jittered by a few
kilometres. Each trip has a load state: full 55%, half 10%, empty 35%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import numpy.typing as npt

from truckcarbon.geo.distance import cos_lat, haversine_cos, haversine_km, haversine_many
from truckcarbon.sim.destinations import Destinations, weighted_draw
from truckcarbon.sim.fleet import Role
from truckcarbon.sim.world import World

CRUISE_KMH = {Role.REGIONAL: 52.0, Role.LONG_HAUL: 70.0}
MAX_DRIVE_H = 14.0
WAYPOINT_JITTER_DEG = 0.03
LOAD_P = (0.35, 0.10, 0.55)  # in LoadState order: empty, half, full
LOAD_CUM = np.cumsum(LOAD_P)


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
    step_km: npt.NDArray[np.float64]  # true distance from the fix before (0 for the first)
    acc_on: npt.NDArray[np.bool_] | None = None  # ignition on at the fix (within a shift); None: always on
    path_index: npt.NDArray[np.int64] | None = None  # road world: the 1 s path's second each fix samples (-1: before)


def _next_trip(
    world: World, state: TruckState, role: Role, dest: Destinations, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], np.int8]:
    """The truck's next trip: its waypoints (the jittered inner points of the units on its path) and load."""
    here = state.dest if state.dest >= 0 else state.home
    nxt = dest.pick(here, state.home, state.trips, role, rng)
    path = world.path(here, nxt)[1:]
    load = np.int8(weighted_draw(LOAD_CUM, rng))
    jitter = rng.normal(0.0, WAYPOINT_JITTER_DEG, (len(path), 2))
    state.dest = nxt
    state.trips += 1
    return world.lon[path] + jitter[:, 0], world.lat[path] + jitter[:, 1], load


@nb.njit(cache=True)
def _leg_km(lon0, lat0, lon, lat):  # type: ignore[no-untyped-def]
    """haversine_km from (lon0, lat0) to the first point, then from each point to the next."""
    out = np.empty(lon.shape[0], np.float64)
    for k in range(lon.shape[0]):
        out[k] = haversine_km(lon0, lat0, lon[k], lat[k])
        lon0 = lon[k]
        lat0 = lat[k]
    return out


MAX_SHIFTS_PER_DAY = 6  # shifts of at least 2.5 h (but the last) within MAX_DRIVE_H = 14 h


@nb.njit(cache=True)
def _schedule_kernel(day_start_s, per_day, cruise, u_day, u_shift):  # type: ignore[no-untyped-def]
    """Shifts of the working days starting at ``day_start_s``; see :func:`schedule`.

    ``u_day[d]`` and ``u_shift[d, k]`` are uniform [0, 1) draws for day ``d``
    (hours factor, start time) and its ``k``-th shift (length, speed, break).
    """
    n = day_start_s.shape[0]
    starts = np.empty(n * MAX_SHIFTS_PER_DAY)
    ends = np.empty(n * MAX_SHIFTS_PER_DAY)
    speeds = np.empty(n * MAX_SHIFTS_PER_DAY)
    rows = 0
    for d in range(n):
        hours = min(max(per_day * (0.8 + 0.4 * u_day[d, 0]), 0.0), MAX_DRIVE_H)
        t = day_start_s[d] + (5.0 + 4.0 * u_day[d, 1]) * 3600.0
        latest = day_start_s[d] + 23.5 * 3600.0
        k = 0
        while hours > 1e-6 and t < latest and k < MAX_SHIFTS_PER_DAY:
            shift = min(hours, 2.5 + 1.5 * u_shift[d, k, 0], (latest - t) / 3600.0)
            starts[rows] = t
            ends[rows] = t + shift * 3600.0
            speeds[rows] = cruise * (0.85 + 0.3 * u_shift[d, k, 1])
            rows += 1
            hours -= shift
            t += shift * 3600.0 + (20.0 + 25.0 * u_shift[d, k, 2]) * 60.0
            k += 1
    return starts[:rows], ends[:rows], speeds[:rows]


def schedule(
    month_start_s: int, n_days: int, drive_h_total: float, role: Role, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Driving shifts of the month: (start, end, speed) arrays; the truck is parked in between.

    Each working day gets the month's driving hours / working days times
    U(0.8, 1.2) (at most 14 h), starts at U(05:00, 09:00) local time and is cut
    into shifts of U(2.5, 4) h at U(0.85, 1.15) x the cruise speed, with
    U(20, 45) min breaks, ending by 23:30.
    """
    working = np.ones(n_days, bool)
    if role is Role.REGIONAL:
        working[rng.integers(0, 7) :: 7] = False
    days = np.flatnonzero(working)
    per_day = drive_h_total / max(days.size, 1)
    u_day = rng.random((days.size, 2))
    u_shift = rng.random((days.size, MAX_SHIFTS_PER_DAY, 3))
    day_start = month_start_s + days.astype(np.float64) * 86400.0
    return _schedule_kernel(day_start, per_day, CRUISE_KMH[role], u_day, u_shift)  # type: ignore[no-any-return]


@nb.njit(inline="always", cache=True)
def _emit_times(out, n, last, a, b, step, month_end_s):  # type: ignore[no-untyped-def]
    """Append floor(a + i * step) for a + i * step < b to ``out[n:]``, increasing and before the month's end."""
    x = a
    while x < b:
        t = math.floor(x)
        if last < t < month_end_s:
            out[n] = t
            n += 1
            last = t
        x += step
    return n, last


@nb.njit(cache=True)
def fix_times(month_start_s, month_end_s, starts, ends, interval_s, parked_interval_s):  # type: ignore[no-untyped-def]
    """Whole-second fix times of the month: every parked interval while parked, every interval while driving.

    Parked spells run from the month's start to the first shift, between
    shifts, and from the last shift to the month's end. A time that rounds
    onto its predecessor is dropped.
    """
    cap = 16
    for k in range(starts.shape[0]):
        cap += int((ends[k] - starts[k]) / interval_s) + 2
    cap += int((month_end_s - month_start_s) / parked_interval_s) + starts.shape[0] + 2
    out = np.empty(cap, np.int64)
    n = 0
    last = month_start_s - 1
    for k in range(starts.shape[0] + 1):
        a = month_start_s if k == 0 else ends[k - 1]
        b = month_end_s if k == starts.shape[0] else starts[k]
        n, last = _emit_times(out, n, last, a, b, parked_interval_s, month_end_s)
        if k < starts.shape[0]:
            n, last = _emit_times(out, n, last, starts[k], ends[k], interval_s, month_end_s)
    return out[:n]


@nb.njit(cache=True)
def _track_kernel(t, bt, bs, starts, ends, speeds, poly_s, poly_lon, poly_lat, poly_load):  # type: ignore[no-untyped-def]
    """Position, speed, load and odometer of each fix time (increasing) in one pass.

    The distance along the route is piecewise linear in time through the
    breakpoints (bt, bs); the position is piecewise linear in that distance
    along the route polyline (poly_s, poly_lon, poly_lat), whose vertex ahead
    gives the load (``poly_load``). The odometer is the haversine length of the
    path through the fixes so far.
    """
    n = t.shape[0]
    lon = np.empty(n)
    lat = np.empty(n)
    speed = np.zeros(n)
    load = np.empty(n, np.int8)
    odo = np.empty(n)
    step = np.zeros(n)
    j = 0  # breakpoint interval: bt[j] <= t < bt[j + 1]
    v = 1  # route vertex ahead: poly_s[v - 1] <= s < poly_s[v]
    k = 0  # next shift that has not ended
    last_v = poly_s.shape[0] - 1
    p0 = 0.0
    c0 = 1.0
    for i in range(n):
        x = t[i]
        while j < bt.shape[0] - 2 and bt[j + 1] <= x:
            j += 1
        span = bt[j + 1] - bt[j]
        d = bs[j] if span <= 0.0 else bs[j] + (bs[j + 1] - bs[j]) * (x - bt[j]) / span
        while v < last_v and poly_s[v] <= d:
            v += 1
        seg = poly_s[v] - poly_s[v - 1]
        f = 0.0 if seg <= 0.0 else min(max((d - poly_s[v - 1]) / seg, 0.0), 1.0)
        lon[i] = poly_lon[v - 1] + (poly_lon[v] - poly_lon[v - 1]) * f
        lat[i] = poly_lat[v - 1] + (poly_lat[v] - poly_lat[v - 1]) * f
        load[i] = poly_load[v]
        while k < starts.shape[0] and ends[k] <= x:
            k += 1
        if k < starts.shape[0] and starts[k] <= x:
            speed[i] = speeds[k]
        if i > 0 and lon[i] == lon[i - 1] and lat[i] == lat[i - 1]:
            odo[i] = odo[i - 1]  # parked: no step (haversine_km of equal points is exactly 0)
            continue
        # haversine_km of the step, reusing cos(latitude) of the fix before
        p1 = math.radians(lat[i])
        c1 = cos_lat(p1)
        if i == 0:
            odo[i] = 0.0
        else:
            step[i] = haversine_cos(p1 - p0, math.radians(lon[i] - lon[i - 1]), c0, c1)
            odo[i] = odo[i - 1] + step[i]
        p0 = p1
        c0 = c1
    return lon, lat, speed, load, odo, step


def route_ahead(
    world: World, state: TruckState, role: Role, destinations: Destinations, need_km: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """The route polyline from the truck's position, at least ``need_km`` + 1 km long: vertices' lon, lat,
    distance along it (km) and the load of the trip each vertex belongs to (the start continues the first)."""
    poly_lon = np.concatenate([[state.lon], state.route_lon])
    poly_lat = np.concatenate([[state.lat], state.route_lat])
    seg = haversine_many(poly_lon[:-1], poly_lat[:-1], poly_lon[1:], poly_lat[1:])
    total = float(seg.sum())
    lons, lats, segs, loads = [poly_lon], [poly_lat], [seg], [state.route_load]
    end_lon, end_lat = poly_lon[-1], poly_lat[-1]
    while total < need_km + 1.0:
        lon, lat, load = _next_trip(world, state, role, destinations, rng)
        km = _leg_km(end_lon, end_lat, lon, lat)
        lons.append(lon)
        lats.append(lat)
        segs.append(km)
        loads.append(np.full(lon.size, load, np.int8))
        total += float(km.sum())
        if lon.size:
            end_lon, end_lat = lon[-1], lat[-1]
    if len(lons) > 1:  # the pieces joined once
        poly_lon, poly_lat, seg = np.concatenate(lons), np.concatenate(lats), np.concatenate(segs)
    route_load = np.concatenate(loads)
    poly_s = np.concatenate([[0.0], np.cumsum(seg)])
    return poly_lon, poly_lat, poly_s, np.concatenate([route_load[:1], route_load])


def drive_month(
    world: World,
    state: TruckState,
    role: Role,
    destinations: Destinations,
    month_start_s: int,
    month_end_s: int,
    km_target: float,
    interval_s: int,
    parked_interval_s: int,
    rng: np.random.Generator,
) -> Track:
    """Simulate one month; updates ``state`` to the truck's position at the month's end."""
    n_days = (month_end_s - month_start_s) // 86400
    starts, ends, speeds = schedule(month_start_s, n_days, km_target / CRUISE_KMH[role], role, rng)
    dist = (ends - starts) / 3600.0 * speeds
    need_km = float(dist.sum())
    poly_lon, poly_lat, poly_s, poly_load = route_ahead(world, state, role, destinations, need_km, rng)

    # Fix times, in time order: parked (every parked interval) and driving (every interval) alternate.
    t = fix_times(month_start_s, month_end_s, starts, ends, interval_s, parked_interval_s)

    # Distance along the route at each fix: piecewise linear in time.
    bt = np.concatenate([[month_start_s], np.column_stack([starts, ends]).ravel(), [month_end_s]])
    bs = np.concatenate([[0.0], np.column_stack([np.cumsum(dist) - dist, np.cumsum(dist)]).ravel(), [need_km]])
    lon, lat, speed, load, odometer, step = _track_kernel(
        t, bt, bs, starts, ends, speeds, poly_s, poly_lon, poly_lat, poly_load
    )

    # The truck's position at the month's end and the rest of its route.
    end_lon = float(np.interp(need_km, poly_s, poly_lon))
    end_lat = float(np.interp(need_km, poly_s, poly_lat))
    rest = poly_s > need_km
    state.lon, state.lat = end_lon, end_lat
    state.route_lon = poly_lon[rest]
    state.route_lat = poly_lat[rest]
    state.route_load = poly_load[rest]
    shift = np.searchsorted(starts, t, side="right") - 1  # the shift started last at each fix
    acc = (shift >= 0) & (t <= ends[np.maximum(shift, 0)]) if starts.size else np.zeros(t.size, np.bool_)
    return Track(t_s=t, lon=lon, lat=lat, speed_kmh=speed, load=load, odometer_km=odometer, step_km=step, acc_on=acc)
