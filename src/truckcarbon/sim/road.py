"""The road world: trucks drive curved roads second by second, and cheap receivers report them.

The straight world (:func:`truckcarbon.sim.drive.drive_month`) moves a truck in
straight lines between its true fixes, so the chord of its samples *is* the
truth and no test can see what sampling loses. Here the truck drives a path at
1 s resolution and the platform samples it:

**Settings.** Every second of driving is in one setting, by the distance to the
nearest waypoint of the route (the routes run through the units' inner points,
which are their cities): urban within :data:`URBAN_KM`, arterial within
:data:`ARTERIAL_KM`, expressway beyond.

**Geometry.** The heading is the bearing to the next waypoint plus a deviation
that is the sum of two Ornstein-Uhlenbeck processes in distance driven (standard
deviation and correlation length per setting, :data:`HEADING`): short bends and
junction turns, and longer curves. Steering towards the waypoint keeps the path
on its route. The urban parameters are fitted to the chord loss measured on
dense urban truck traces subsampled at 30, 60 and 120 s (3%, 5% and 7% of the
path's length, at urban driving speeds of about 20 km/h: spans of 170, 330 and
670 m; fit in ``docs/accuracy.md``); arterial and expressway curves are gentler
(expressway curve radii of at least 650-1,000 m at 100-120 km/h design speed,
JTG B01-2014 table 7.3.2: a deviation of 0.15 rad over 2.5 km).

**Speed.** A target speed per setting (:data:`BASE_KMH`) times the role's factor
and congestion by local hour (:func:`_congestion`), with a slow speed
fluctuation; accelerations of at most 0.5 m/s^2, braking at 1.0 m/s^2 (a loaded
heavy truck). Urban and arterial roads have traffic lights spaced exponentially
(mean 500 m and 1,200 m), red with probability 0.5 for 15-75 s: the truck brakes
to a stop and waits, ignition on. In the peak hours (07-09, 17-19) urban and
arterial traffic is jammed: stop-and-go queues stop the truck every 150 m and
400 m on average for 5-25 s (:data:`QUEUE_SPACING_M`), the transient driving that
makes congested kilometres costly. Each shift starts with 3-12 min and ends with
1-5 min of idling, ignition on (JT/T 808 status bit 0, ACC); between shifts the
truck is parked, ignition off.

**Receivers** (:func:`road_noise`). Position noise per axis is the world's
``gps_noise_m`` (a median receiver on an arterial road) times the truck's
receiver quality (log-normal, sd 0.35 of the log, within 0.5-2.5) times the
setting's factor (:data:`NOISE_FACTOR`: urban canyons and viaducts worse, open
expressway better, parked beside buildings worse); it is correlated in time
(first-order autoregressive: 20 s while moving, 15 min while parked: the slow
wander of a parked receiver), heavy-tailed (one draw in ten has 2.5 times the
spread, the mixture scaled to the stated sd), and a fix is a multipath outlier
30-300 m off (log-uniform) with a probability per setting
(:data:`MULTIPATH_P`).

The truth is the 1 s path's kilometres, split exactly at borders
(:func:`truckcarbon.sim.truth.path_truth`); the speed channel reports the 1 s
path's speed, the odometer its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from truckcarbon.geo.distance import haversine_km
from truckcarbon.sim.defects import M_PER_DEG_LAT, M_PER_DEG_LON_EQ, standard_normal
from truckcarbon.sim.destinations import Destinations
from truckcarbon.sim.drive import Track, TruckState, fix_times, route_ahead, schedule
from truckcarbon.sim.fleet import Role
from truckcarbon.sim.world import World

URBAN, ARTERIAL, EXPRESSWAY, STANDING = 0, 1, 2, 3  # settings of a second; STANDING: idling or parked
SETTING_NAMES = ("urban", "arterial", "expressway", "standing")
URBAN_KM = 4.0
ARTERIAL_KM = 12.0
BASE_KMH = np.array([32.0, 55.0, 85.0])  # free-flow target speed per setting
ROLE_SPEED = {Role.REGIONAL: 0.9, Role.LONG_HAUL: 1.0}
# Heading deviation per setting: (sd rad, correlation length m) of the short and the long process.
HEADING = np.array(
    [
        [[0.25, 60.0], [0.40, 500.0]],  # urban: fitted to 3/5/7% chord loss at 30/60/120 s
        [[0.15, 100.0], [0.25, 1500.0]],  # arterial
        [[0.03, 200.0], [0.15, 2500.0]],  # expressway (JTG B01-2014 radii)
    ]
)
LIGHT_SPACING_M = np.array([500.0, 1200.0, np.inf])
RED_P = 0.5
NO_LIGHT = -1e9  # the distance to the next light when none is drawn yet (a red one overshot is negative)
RED_S = (15.0, 75.0)
# Congested peak traffic on urban and arterial roads moves in stop-and-go waves (queues spilling back through
# signals, two or three stops per junction): a queue stop every QUEUE_SPACING_M on average, each held QUEUE_S.
# Stop-and-go waves in congested traffic hold vehicles for seconds to tens of seconds at periods of minutes
# (Schonhof and Helbing, 2007, Transportation Science 41(2), empirical features of congested traffic states).
QUEUE_SPACING_M = np.array([150.0, 400.0, np.inf])
QUEUE_S = (5.0, 25.0)
JAM_BELOW = 0.7  # a congestion factor below this is a jam (the peak hours on urban and arterial roads)
ACCEL = 0.5  # m/s^2
BRAKE = 1.0  # m/s^2
IDLE_START_S = (180.0, 720.0)
IDLE_END_S = (60.0, 300.0)
NOISE_FACTOR = np.array([1.5, 1.0, 0.6, 1.2])  # urban, arterial, expressway, standing
MULTIPATH_P = np.array([0.01, 0.004, 0.001, 0.004])
MULTIPATH_M = (30.0, 300.0)
NOISE_TAU_S = (20.0, 900.0)  # moving, standing
QUALITY_SD = 0.35
QUALITY_RANGE = (0.5, 2.5)
HEAVY_SHARE, HEAVY_SCALE = 0.1, 2.5
HEAVY_NORM = math.sqrt(1.0 - HEAVY_SHARE + HEAVY_SHARE * HEAVY_SCALE**2)  # the mixture's sd, scaled to 1


@dataclass(frozen=True)
class Path1s:
    """A truck-month's path at 1 s resolution while its ignition is on (the shifts)."""

    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    setting: npt.NDArray[np.int8]
    load: npt.NDArray[np.int8]
    odometer_km: npt.NDArray[np.float64]  # path length from the month's start
    first_s: npt.NDArray[np.int64]  # each shift's first second (UTC epoch)
    offset: npt.NDArray[np.int64]  # each shift's first index in the arrays


@nb.njit(cache=True, inline="always")
def _congestion(hour: float, setting: int) -> float:
    """Speed factor by local hour: peaks at 07-09 and 17-19, daytime 10-16, free flow at night."""
    peak = (7.0 <= hour < 9.0) or (17.0 <= hour < 19.0)
    day = 9.0 <= hour < 17.0
    if setting == 2:
        return 0.85 if peak else 1.0
    if peak:
        return 0.6
    return 0.85 if day else 1.0


@nb.njit(cache=True)
def _drive_kernel(  # type: ignore[no-untyped-def]
    s0, s1, idle0, idle1, lon0, lat0, wlon, wlat, wload, role_speed, base, heading, spacing, z, u
):
    """The 1 s path of the shifts ``[s0[k], s1[k])`` (whole UTC seconds), from (lon0, lat0) along waypoints.

    ``z``: standard normal draws, 3 per second; ``u``: uniform draws, 3 per second. Returns the
    arrays of :class:`Path1s` (without first_s and offset) and the index of the next waypoint.
    """
    total = 0
    for k in range(s0.shape[0]):
        total += max(s1[k] - s0[k], 0)
    lon = np.empty(total)
    lat = np.empty(total)
    spd = np.zeros(total)
    sett = np.empty(total, np.int8)
    load = np.empty(total, np.int8)
    odo = np.empty(total)
    x = lon0
    y = lat0
    w = 0  # next waypoint
    nw = wlon.shape[0]
    since_wp = 1e9  # km driven since the last waypoint
    p1 = 0.0  # heading deviations (short, long)
    p2 = 0.0
    vs = 0.0  # speed fluctuation (AR(1), 30 s)
    v = 0.0  # m/s
    light = 0.0  # m to the next light
    light_set = -1  # the setting it was drawn for
    red = False
    queue = False  # the stop ahead is a queue's (held QUEUE_S), not a signal's (RED_S)
    wait = 0.0
    odo_km = 0.0
    iz = 0
    iu = 0
    i = 0
    cur_set = 0
    for k in range(s0.shape[0]):
        n_k = s1[k] - s0[k]
        v = 0.0
        light = NO_LIGHT  # draw one
        wait = 0.0
        for j in range(n_k):
            sec = s0[k] + j
            hour = ((sec + 8 * 3600) % 86400) / 3600.0
            standing = j < idle0[k] or j >= n_k - idle1[k] or w >= nw
            if standing:
                v = 0.0
                lon[i] = x
                lat[i] = y
                spd[i] = 0.0
                sett[i] = 3
                load[i] = wload[min(w, nw - 1)]
                odo[i] = odo_km
                i += 1
                continue
            d_next = haversine_km(x, y, wlon[w], wlat[w])
            near = min(d_next, since_wp)
            cur_set = URBAN if near < URBAN_KM else (ARTERIAL if near < ARTERIAL_KM else EXPRESSWAY)
            congestion = _congestion(hour, cur_set)
            jam = congestion < JAM_BELOW and cur_set != EXPRESSWAY
            if (light == NO_LIGHT or cur_set != light_set) and wait <= 0.0:  # none ahead, or a new road
                light_set = cur_set
                mean = QUEUE_SPACING_M[cur_set] if jam else spacing[cur_set]
                light = -mean * math.log(1.0 - u[iu % u.shape[0]]) if np.isfinite(mean) else np.inf
                red = jam or u[(iu + 1) % u.shape[0]] < RED_P
                queue = jam
                iu += 2
            vs = vs * 0.967 + 0.256 * z[iz % z.shape[0]]  # AR(1) of sd 1, 30 s
            iz += 1
            target = base[cur_set] * role_speed * congestion * (1.0 + 0.08 * vs) / 3.6
            if j + v / BRAKE + 1.0 >= n_k - idle1[k]:  # brake to a stop before the shift's closing idle
                target = 0.0
            v_old = v
            if wait > 0.0:
                wait -= 1.0
                v = 0.0
                if wait <= 0.0:
                    light = NO_LIGHT
            elif red and light <= v * v / (2.0 * BRAKE) + v:
                v = max(v - BRAKE, 0.0)
                if v <= 0.0 or light <= 0.0:
                    v = 0.0
                    held = QUEUE_S if queue else RED_S
                    wait = held[0] + (held[1] - held[0]) * u[iu % u.shape[0]]
                    iu += 1
                    red = False
            elif v < target:
                v = min(target, v + ACCEL)
            else:
                v = max(target, v - BRAKE)
            ds = 0.5 * (v_old + v)
            if np.isfinite(light) and wait <= 0.0:
                light -= ds
                if light <= 0.0 and not red:
                    light = NO_LIGHT
            if ds > 0.0:
                a1 = math.exp(-ds / heading[cur_set, 0, 1])
                a2 = math.exp(-ds / heading[cur_set, 1, 1])
                p1 = p1 * a1 + heading[cur_set, 0, 0] * math.sqrt(1.0 - a1 * a1) * z[(iz) % z.shape[0]]
                p2 = p2 * a2 + heading[cur_set, 1, 0] * math.sqrt(1.0 - a2 * a2) * z[(iz + 1) % z.shape[0]]
                iz += 2
                c = math.cos(math.radians(y))
                dx = (wlon[w] - x) * c * M_PER_DEG_LON_EQ
                dy = (wlat[w] - y) * M_PER_DEG_LAT
                toward = min(1.0, d_next / 0.2)  # the deviation fades within 200 m of the waypoint
                theta = math.atan2(dy, dx) + (p1 + p2) * toward
                if d_next * 1000.0 <= ds:
                    x1 = wlon[w]
                    y1 = wlat[w]
                    w += 1
                    since_wp = 0.0
                else:
                    x1 = x + ds * math.cos(theta) / (M_PER_DEG_LON_EQ * c)
                    y1 = y + ds * math.sin(theta) / M_PER_DEG_LAT
                step = haversine_km(x, y, x1, y1)
                odo_km += step
                since_wp += step
                x = x1
                y = y1
            lon[i] = x
            lat[i] = y
            spd[i] = v * 3.6
            sett[i] = cur_set if v > 0.0 else 3
            load[i] = wload[min(w, nw - 1)]
            odo[i] = odo_km
            i += 1
    return lon, lat, spd, sett, load, odo, w


def drive_path(
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    lon0: float,
    lat0: float,
    waypoints: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int8]],
    role: Role,
    rng: np.random.Generator,
) -> tuple[Path1s, int]:
    """The 1 s path of the month's shifts (``starts``, ``ends``: UTC seconds) from (lon0, lat0) along
    ``waypoints`` (lon, lat, load of the trip each belongs to); also the index of the next waypoint."""
    s0 = np.ceil(starts).astype(np.int64)
    s1 = np.maximum(np.floor(ends).astype(np.int64), s0)
    n = s1 - s0
    idle0 = np.minimum(rng.uniform(*IDLE_START_S, n.size).astype(np.int64), n // 4)
    idle1 = np.minimum(rng.uniform(*IDLE_END_S, n.size).astype(np.int64), n // 8)
    seconds = int(n.sum())
    z = standard_normal(rng, 3 * seconds + 16).astype(np.float64)
    u = rng.random(max(seconds // 4, 64))
    wlon, wlat, wload = waypoints
    lon, lat, spd, sett, load, odo, nxt = _drive_kernel(
        s0, s1, idle0, idle1, lon0, lat0, wlon, wlat, wload, ROLE_SPEED[role], BASE_KMH, HEADING, LIGHT_SPACING_M, z, u
    )
    offset = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if n.size else np.zeros(0, np.int64)
    return Path1s(lon, lat, spd, sett, load, odo, s0, offset), int(nxt)


@nb.njit(cache=True)
def sample_index(t, first_s, offset, n_path):  # type: ignore[no-untyped-def]
    """For each fix time (increasing), the index in the 1 s path: the second itself within a shift, the
    last second of the shift before while parked (-1 before the first shift); and whether it is within a
    shift (ignition on)."""
    out = np.empty(t.shape[0], np.int64)
    on = np.zeros(t.shape[0], np.bool_)
    k = 0
    n_sh = first_s.shape[0]
    for i in range(t.shape[0]):
        while k < n_sh and t[i] >= first_s[k]:
            k += 1
        # shift k - 1 started at or before t[i]
        if k == 0:
            out[i] = -1
            continue
        end = offset[k] if k < n_sh else n_path
        j = offset[k - 1] + (t[i] - first_s[k - 1])
        on[i] = j < end
        out[i] = min(j, end - 1)
    return out, on


# Mean speed over a shift's time, idling and lights included, by role (measured on one truck-month of each
# role of the road world: 55.7 and 57.8 km/h); the schedule's hours are the month's kilometres over it.
SHIFT_KMH = {Role.REGIONAL: 55.7, Role.LONG_HAUL: 57.8}


def drive_month_road(
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
) -> tuple[Track, Path1s, npt.NDArray[np.int8]]:
    """One month of the road world; updates ``state``. Returns the sampled fixes, the 1 s path and the
    setting of each fix (:data:`SETTING_NAMES`, ``STANDING`` while idling or parked)."""
    n_days = (month_end_s - month_start_s) // 86400
    starts, ends, _ = schedule(month_start_s, n_days, km_target / SHIFT_KMH[role], role, rng)
    reach_km = float((ends - starts).sum()) / 3600.0 * float(BASE_KMH.max()) * 1.2
    poly_lon, poly_lat, _, poly_load = route_ahead(world, state, role, destinations, reach_km, rng)
    lon0, lat0 = state.lon, state.lat
    path, nxt = drive_path(starts, ends, lon0, lat0, (poly_lon[1:], poly_lat[1:], poly_load[1:]), role, rng)
    t = fix_times(month_start_s, month_end_s, starts, ends, interval_s, parked_interval_s)
    idx, on = sample_index(t, path.first_s, path.offset, path.lon.size)
    before = idx < 0
    j = np.maximum(idx, 0)
    if path.lon.size:
        lon = np.where(before, lon0, path.lon[j])
        lat = np.where(before, lat0, path.lat[j])
        speed = np.where(on, path.speed_kmh[j], 0.0)
        load = np.where(before, poly_load[0], path.load[j]).astype(np.int8)
        odo = np.where(before, 0.0, path.odometer_km[j])
        setting = np.where(on, path.setting[j], STANDING).astype(np.int8)
        state.lon, state.lat = float(path.lon[-1]), float(path.lat[-1])
    else:
        lon, lat = np.full(t.size, lon0), np.full(t.size, lat0)
        speed, odo = np.zeros(t.size), np.zeros(t.size)
        load, setting = np.full(t.size, poly_load[0], np.int8), np.full(t.size, STANDING, np.int8)
    step = np.diff(odo, prepend=odo[:1]) if odo.size else odo
    state.route_lon = poly_lon[1 + nxt :]
    state.route_lat = poly_lat[1 + nxt :]
    state.route_load = poly_load[1 + nxt :]
    track = Track(
        t_s=t, lon=lon, lat=lat, speed_kmh=speed, load=load, odometer_km=odo, step_km=step, acc_on=on,
        path_index=np.where(before, -1, idx).astype(np.int64) if path.lon.size else np.full(t.size, -1, np.int64),
    )  # fmt: skip
    return track, path, setting


def receiver_quality(seed: int, vehicle_id: int) -> float:
    """A truck's receiver quality: its noise multiplier (log-normal, :data:`QUALITY_SD`, clipped)."""
    q = math.exp(QUALITY_SD * float(np.random.default_rng([seed, vehicle_id, 808]).standard_normal()))
    return min(max(q, QUALITY_RANGE[0]), QUALITY_RANGE[1])


@nb.njit(cache=True)
def _noise_kernel(t, lon, lat, setting, sigma, factor, mp_p, z, u):  # type: ignore[no-untyped-def]
    ex = 0.0
    ey = 0.0
    prev_sd = 0.0
    for i in range(t.shape[0]):
        s = setting[i]
        sd = sigma * factor[s]
        tau = NOISE_TAU_S[1] if s == 3 else NOISE_TAU_S[0]
        dt = float(t[i] - t[i - 1]) if i > 0 else 1e9
        rho = math.exp(-dt / tau)
        scale = 1.0 if prev_sd <= 0.0 else sd / prev_sd
        heavy = HEAVY_SCALE if u[i, 0] < HEAVY_SHARE else 1.0
        inno = sd * math.sqrt(1.0 - rho * rho) * heavy / HEAVY_NORM
        ex = ex * rho * scale + inno * z[0, i]
        ey = ey * rho * scale + inno * z[1, i]
        prev_sd = sd
        ox = ex
        oy = ey
        if u[i, 1] < mp_p[s]:  # a multipath outlier: this fix only
            r = MULTIPATH_M[0] * math.exp(math.log(MULTIPATH_M[1] / MULTIPATH_M[0]) * u[i, 2])
            a = 2.0 * math.pi * u[i, 3]
            ox += r * math.cos(a)
            oy += r * math.sin(a)
        lat[i] += oy / M_PER_DEG_LAT
        lon[i] += ox / (M_PER_DEG_LON_EQ * math.cos(math.radians(lat[i])))


def road_noise(
    t: npt.NDArray[np.int64],
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    setting: npt.NDArray[np.int8],
    sigma_m: float,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """Receiver noise of the module docstring on fixes (times ``t``, settings), ``sigma_m`` already
    multiplied by the truck's quality; new arrays, and the count of multipath outliers."""
    lon = np.array(lon, dtype=np.float64)
    lat = np.array(lat, dtype=np.float64)
    n = lon.size
    if n == 0 or sigma_m <= 0:
        return lon, lat, 0
    z = standard_normal(rng, (2, n)).astype(np.float64)
    u = rng.random((n, 4))
    _noise_kernel(t, lon, lat, setting, float(sigma_m), NOISE_FACTOR, MULTIPATH_P, z, u)
    return lon, lat, int(np.count_nonzero(u[:, 1] < MULTIPATH_P[setting]))


__all__ = [
    "SETTING_NAMES",
    "Path1s",
    "drive_month_road",
    "drive_path",
    "receiver_quality",
    "road_noise",
    "sample_index",
]
