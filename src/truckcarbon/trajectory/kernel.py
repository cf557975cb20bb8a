"""Clean a batch of fixes and attribute the kilometres driven to (vehicle, month, city).

Rules, in order, each configurable in :class:`CleaningRules` and counted:

1. **Order**: fixes are sorted by (vehicle, time); rows that arrived out of order
   are counted (``out_of_order``), not dropped.
2. **Duplicates**: repeated (vehicle, time) rows keep the first (``duplicate``).
3. **Invalid**: NaN/infinite/out-of-range coordinates and (0, 0) fixes (``invalid``).
4. **Stuck receiver**: a fix repeating the previous position exactly while the
   reported speed is above zero (``stuck``).
5. **Jumps**: a fix more than 1.5 km from both its neighbours while they are close
   to each other (an out-and-back spike, whatever the interval), or whose implied
   speed from the last kept fix exceeds ``max_speed_kmh``, is set aside (``jump``);
   when ``reanchor_after`` consecutive set-aside fixes agree with each other, the
   track re-anchors on them (the old anchor was the outlier), so runs of bad fixes
   cannot swallow a trip. Set-aside fixes agree when each is within
   ``max_speed_kmh`` of the one before (a receiver stuck on a wrong place), or
   when each step keeps the velocity of the step before it to within
   ``FAST_CHAIN_TOLERANCE`` of its length (a smooth track faster than
   ``max_speed_kmh``: a train or a plane, which rule 6 then excludes; scattered
   outliers do not line up so).
6. **Implausible motion**: a stretch of at least ``MIN_FAST_SEGMENTS`` consecutive
   kept segments, each faster than ``max_vehicle_kmh``, lasting at least
   ``sustained_s`` from its first fix to its last, is motion a heavy truck cannot
   make (a phone on a train or a plane: mixed-mode data). Its segments accrue no
   distance; they are counted (``implausible_speed_segments``, and
   ``implausible_speed_km``, the sum of their straight lines), not reported as
   unobserved. The default 130 km/h is 30% above the 100 km/h that China's
   expressways allow trucks (Road Traffic Safety Law Implementation Regulations,
   art. 78), a margin for position noise and a truck driving above the limit; a
   single spike stays a jump (rule 5) and a single fast segment a hole (rule 8).
   GPS noise on a truck at 80-100 km/h cannot keep every segment of a minute
   above 130 km/h: at 1 s fixes it swings single segments, whose neighbours
   then fall below.
7. **Drift**: a segment shorter than ``drift_m`` at an implied speed below
   ``drift_kmh`` accrues no distance (a parked truck's GPS noise). With
   ``noise_rules`` (:data:`NOISY_ROAD_RULES`), rule 7 is instead the robust
   distance of :mod:`truckcarbon.trajectory._robust`: per vehicle-month, the
   receiver's noise level and fix interval are estimated and multipath spikes
   below 400 m are set aside (``jump``); a fix within the noise's dead band
   (``band_floor_m``, ``band_sigmas`` times the noise's pair scale) of the last
   fix that left it accrues nothing (a standing truck), the one that leaves it
   accrues the straight line from there; a segment with the truck moving by the
   speed channel at both ends (at or above ``stop_kmh``; the channel used when
   consistent with the positions, ``use_speed``) accrues the speed integrated
   over its time; otherwise its straight line, with ``turn_correction`` less the
   noise's expected excess and times the arcs and bends its turning shows.
8. **Gaps**: a segment longer than ``max_bridge_s`` (a few hours: what a truck can
   plausibly drive through a hole in the signal) is never bridged, whatever its
   speed: it is **unobserved**, its straight line reported, never attributed as
   driven km along the chord through the cities between. Nor does the odometer
   bridge it: the odometer's km over such a gap are real driving, but their route
   is unknown (a 300 km round trip from the depot shows a chord of 0 km), so they
   go to the unobserved table (``odometer_km``), not to the cities on the chord.
   A segment longer than ``gap_s`` (and at most ``max_bridge_s``) is bridged by
   its straight line times ``gap_circuity`` when its implied speed is plausible
   (``max_bridge_kmh``), else it is unobserved too, as is any kept segment faster
   than ``max_speed_kmh`` over more than 1 km (the chord to a re-anchored track).
   Any segment longer than ``odometer_after_s`` (and at most ``max_bridge_s``: a
   hole in the trace, a gap or shorter) whose ends carry an odometer reading
   (JT/T 808 item 0x01) that is plausible (at least ``0.95`` of the straight
   line, at most ``max_bridge_kmh`` over the segment) takes the odometer's
   distance instead, shared out along the straight line: a truck that lost its
   signal for ten minutes on a winding road drove the odometer's kilometres, not
   the chord's. Every unobserved segment is in :attr:`KernelResult.gaps` by
   vehicle, month of its first fix and the cities of its two fixes; every
   segment is counted by duration in :attr:`KernelResult.gap_bins`.

Attribution: each kept segment is split at local (Asia/Shanghai) month
boundaries by time and at city borders exactly (:meth:`CityLocator.split_segments`).

Channels: a segment's load state is the one reported at its end fix (the state
during the interval that fix closes; JT/T 808 status bits 8-9), unknown when not
reported. A segment's measured fuel is the fall of the fuel-level gauge over it;
a rise of more than ``refuel_l`` (a refuel) or a fall above
``max_fuel_l_per_km`` per km plus ``refuel_l`` (a glitch) makes it unknown.
The level telescopes, so rounding of the gauge cancels over a trip. Both are
shared out to cities and months in proportion to distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.months import local_month, month_labels, month_start_utc_s
from truckcarbon.geo.distance import cosines, step_km, step_km_cos
from truckcarbon.geo.locator import CityLocator
from truckcarbon.trajectory._attribute import GAP_BIN_LABELS, N_VALUES, attribute_kernel
from truckcarbon.trajectory._robust import robust_kernel

ACTIVITY_COLUMNS = (
    "vehicle_id",
    "month",
    "city_adcode",
    "distance_km",
    "distance_km_empty",
    "distance_km_half",
    "distance_km_full",
    "distance_km_unknown_load",
    "fuel_measured_l",
    "distance_km_fuel_measured",
    "gps_noise_m",
    "fix_interval_s",
)
GAP_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),
        ("month", pa.string()),
        ("from_city_adcode", pa.int32()),
        ("to_city_adcode", pa.int32()),
        ("gaps", pa.int64()),
        ("unobserved_km", pa.float64()),
        ("gap_hours", pa.float64()),
        ("odometer_gaps", pa.int64()),
        ("odometer_km", pa.float64()),
    ]
)
GAP_BIN_SCHEMA = pa.schema(
    [("month", pa.string()), ("gap_bin", pa.string())]
    + [(f"{kind}_{what}", t) for kind in ("attributed", "unobserved", "implausible")
       for what, t in (("segments", pa.int64()), ("km", pa.float64()))]
)  # fmt: skip
GAP_COLUMNS = tuple(GAP_SCHEMA.names)  # KernelResult.gaps
GAP_BIN_COLUMNS = tuple(GAP_BIN_SCHEMA.names)  # KernelResult.gap_bins
KEPT, DUPLICATE, INVALID, STUCK, JUMP = 0, 1, 2, 3, 4
REASONS = ("kept", "duplicate", "invalid", "stuck", "jump", "quarantined")
QUARANTINED = 5  # rows the caller set aside before the kernel (``skip``): not fixes of the track
SPIKE_KM = 1.5
FAST_CHAIN_TOLERANCE = 0.5  # rule 5: a step's velocity within half the length of the step before's (curves, speed)
MIN_FAST_SEGMENTS = 2  # rule 6: segments of a fast stretch (three fixes: motion observed, not one hole or jump)
MAX_VEHICLE_KMH = 130.0
SUSTAINED_S = 60.0
WALK_SCRATCH = 256  # first size of the border walk's scratch (grown when a segment crosses more edges)


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of the cleaning rules (module docstring); defaults suit 10-120 s fixes.

    ``max_bridge_s`` (default 4 hours) bounds in time the segments bridged along
    their straight line (by circuity or by the odometer); ``max_vehicle_kmh``
    (default 130 km/h) and ``sustained_s`` (default 60 s) define motion a heavy
    truck cannot make (rule 6).
    """

    max_speed_kmh: float = 150.0
    reanchor_after: int = 3
    drift_m: float = 30.0
    drift_kmh: float = 5.0
    # Rule 7 (off by default: the calibrated straight world's truth is the chord between its fixes, and the
    # rule costs a pass over the rows); NOISY_ROAD_RULES turns it on for real receivers and roads.
    noise_rules: bool = False
    band_floor_m: float = 30.0
    band_sigmas: float = 4.5
    stop_kmh: float = 2.0
    default_noise_m: float = 10.0
    use_speed: bool = True
    turn_correction: bool = True
    gap_s: float = 1200.0
    max_bridge_kmh: float = 120.0
    gap_circuity: float = 1.05
    refuel_l: float = 5.0
    max_fuel_l_per_km: float = 1.5
    odometer_after_s: float = 150.0
    max_bridge_s: float = 14400.0
    max_vehicle_kmh: float = MAX_VEHICLE_KMH
    sustained_s: float = SUSTAINED_S


NOISY_ROAD_RULES = CleaningRules(noise_rules=True)


def robust_params(rules: CleaningRules) -> npt.NDArray[np.float64]:
    """Rule 7's thresholds in the order :func:`robust_kernel` takes them (``params``)."""
    return np.array(
        [
            rules.band_floor_m,
            rules.band_sigmas,
            rules.stop_kmh,
            rules.default_noise_m,
            float(rules.use_speed),
            float(rules.turn_correction),
        ]
    )


def attribute_params(rules: CleaningRules) -> npt.NDArray[np.float64]:
    """The segment rules' thresholds in the order :func:`attribute_kernel` takes them (``params``)."""
    return np.array(
        [
            rules.drift_m if not rules.noise_rules else -1.0,  # rule 7 replaces the drift rule
            rules.drift_kmh,
            rules.gap_s,
            rules.max_speed_kmh,
            rules.max_bridge_kmh,
            rules.gap_circuity,
            rules.refuel_l,
            rules.max_fuel_l_per_km,
            rules.odometer_after_s,
            rules.max_bridge_s,
        ]
    )


@nb.njit(cache=True, inline="always")
def _same_velocity(lon, lat, cos, t, a, b, c):  # type: ignore[no-untyped-def]
    """Whether the step b -> c keeps the velocity of the step a -> b (rule 5's fast chain).

    Velocities in degrees per second on the plane tangent at ``b`` (east scaled
    by the cosine of its latitude); they agree when they differ by at most
    ``FAST_CHAIN_TOLERANCE`` of the first one's length.
    """
    dt1 = float(t[b] - t[a])
    dt2 = float(t[c] - t[b])
    if dt1 <= 0.0 or dt2 <= 0.0:
        return False
    c_b = cos[b]
    v1x = (lon[b] - lon[a]) * c_b / dt1
    v1y = (lat[b] - lat[a]) / dt1
    ex = (lon[c] - lon[b]) * c_b / dt2 - v1x
    ey = (lat[c] - lat[b]) / dt2 - v1y
    return ex * ex + ey * ey <= FAST_CHAIN_TOLERANCE * FAST_CHAIN_TOLERANCE * (v1x * v1x + v1y * v1y)


@nb.njit(cache=True)
def _close_fast_run(t, reason, dseg, n_seg, first, end, t0, sustained_s):  # type: ignore[no-untyped-def]
    """Rule 6: the run of ``n_seg`` fast kept segments from the fix at time ``t0`` to fix ``end`` (``first``:
    the kept fix closing its first segment) is implausible motion when long enough; then the distances in
    ``dseg`` of the kept fixes closing its segments turn negative (the attribution's mark)."""
    if n_seg < MIN_FAST_SEGMENTS or t[end] - t0 < sustained_s:
        return
    for k in range(first, end + 1):
        if reason[k] == 0:
            dseg[k] = -dseg[k]


@nb.njit(cache=True, nogil=True)
def _flag(  # type: ignore[no-untyped-def]
    vid, t, lon, lat, speed, reason, dseg, cos, max_kmh, reanchor_after,
    max_vehicle_kmh=MAX_VEHICLE_KMH, sustained_s=SUSTAINED_S,
):  # fmt: skip
    """Sequential rules 2-6 on fixes sorted by (vehicle, time); writes ``reason`` in place.

    Rows already marked QUARANTINED are not fixes and are passed over. For a
    kept fix whose distance from the kept fix before it was computed here,
    ``dseg`` (NaN-filled by the caller) receives it (given for every kept fix
    but a vehicle's first), so the attribution need not compute it again; the
    distance is negated for a segment of implausible motion (rule 6). ``cos``
    (scratch of n places) receives the cosine of every fix's latitude first
    (:func:`step_km_cos`). Returns the first and last time of the kept fixes
    (0, -1 when none is kept).
    """
    n = vid.shape[0]
    if cos.shape[0] < n:
        raise ValueError("_flag: the cos scratch has fewer places than rows")
    cosines(lat, cos)
    last = -1  # last kept fix of the current vehicle
    run_start = -1  # first set-aside fix of the current run of jumps
    prev_jump = -1  # last set-aside fix
    from_fix = -1  # the fix the step to prev_jump was taken from (the anchor or the run's fix before it)
    run_len = 0
    prev = -1  # previous row that is a fix (for duplicates)
    fast_n = 0  # kept segments of the current run of fast segments (rule 6)
    fast_first = -1  # the kept fix closing its first segment
    fast_t0 = 0  # the time of the kept fix it starts from
    for i in range(n):
        if reason[i] == 5:
            continue
        if prev >= 0 and vid[prev] == vid[i] and t[prev] == t[i]:
            reason[i] = 1
            continue
        prev = i
        x = lon[i]
        y = lat[i]
        if not (x >= -180.0 and x <= 180.0 and y >= -90.0 and y <= 90.0) or (x == 0.0 and y == 0.0):
            reason[i] = 2
            continue
        if last >= 0 and vid[last] != vid[i]:
            if fast_n > 0:
                _close_fast_run(t, reason, dseg, fast_n, fast_first, last, fast_t0, sustained_s)
                fast_n = 0
            last = -1
            run_len = 0
        if last < 0:
            last = i
            continue
        if x == lon[last] and y == lat[last] and speed[i] > 0.0:
            reason[i] = 3
            continue
        dt_h = (t[i] - t[last]) / 3600.0
        d = step_km_cos(lon[last], lat[last], x, y, cos[last], cos[i])
        dseg[i] = d
        if run_len == 0 and d > SPIKE_KM:
            # An out-and-back spike: far from both neighbours, which are close to each other.
            j = i + 1
            while (
                j < n
                and (reason[j] == 5 or vid[j] == vid[i])
                and (reason[j] != 0 or (lon[j] == 0.0 and lat[j] == 0.0) or t[j] == t[j - 1])
            ):  # the next fix of the vehicle: rows set aside are not fixes, duplicates and (0, 0) are not kept
                j += 1
            if j < n and vid[j] == vid[i]:
                d_ij = step_km(x, y, lon[j], lat[j])
                d_lj = step_km(lon[last], lat[last], lon[j], lat[j])
                if d_ij > SPIKE_KM and d_lj < 0.25 * min(d, d_ij):
                    reason[i] = 4
                    continue
        if d > 1.0 and (dt_h <= 0.0 or d / dt_h > max_kmh):
            consistent = False
            if run_len > 0:
                dtp = (t[i] - t[prev_jump]) / 3600.0
                dp = step_km(lon[prev_jump], lat[prev_jump], x, y)
                consistent = dp <= 1.0 or (dtp > 0.0 and dp / dtp <= max_kmh)
                if not consistent:  # a smooth track too fast for a truck (rule 5's fast chain)
                    consistent = _same_velocity(lon, lat, cos, t, from_fix, prev_jump, i)
            reason[i] = 4
            if consistent:
                run_len += 1
                from_fix = prev_jump
            else:
                run_start = i
                run_len = 1
                from_fix = last
            prev_jump = i
            if run_len >= reanchor_after:
                p = last
                for k in range(run_start, i + 1):
                    if reason[k] == 4:
                        reason[k] = 0
                        dk = dseg[k]  # the run's first fix: measured from the old anchor, its segment
                        if k > run_start:
                            dk = step_km_cos(lon[p], lat[p], lon[k], lat[k], cos[p], cos[k])
                            dseg[k] = dk
                        if dk * 3600.0 > max_vehicle_kmh * (t[k] - t[p]):
                            if fast_n == 0:
                                fast_first = k
                                fast_t0 = t[p]
                            fast_n += 1
                        elif fast_n > 0:
                            _close_fast_run(t, reason, dseg, fast_n, fast_first, p, fast_t0, sustained_s)
                            fast_n = 0
                        p = k
                last = i
                run_len = 0
            continue
        if d > max_vehicle_kmh * dt_h:
            if fast_n == 0:
                fast_first = i
                fast_t0 = t[last]
            fast_n += 1
        elif fast_n > 0:
            _close_fast_run(t, reason, dseg, fast_n, fast_first, last, fast_t0, sustained_s)
            fast_n = 0
        last = i
        run_len = 0
    if fast_n > 0:
        _close_fast_run(t, reason, dseg, fast_n, fast_first, last, fast_t0, sustained_s)
    t_lo = 0
    t_hi = -1
    for i in range(n):
        if reason[i] == 0:
            if t_hi < t_lo:
                t_lo = t[i]
                t_hi = t[i]
            else:
                t_lo = min(t_lo, t[i])
                t_hi = max(t_hi, t[i])
    return t_lo, t_hi


@nb.njit(cache=True, nogil=True)
def _order_check(vid, t, aside):  # type: ignore[no-untyped-def]
    """(fixes sorted by (vehicle, time)?, fixes of a vehicle earlier than the fix before them).

    Rows set aside (``aside``) are not fixes: their place, vehicle and time do not count.
    """
    ordered = True
    late = 0
    p = -1
    for i in range(vid.shape[0]):
        if aside[i]:
            continue
        if p >= 0:
            if vid[i] == vid[p]:
                if t[i] < t[p]:
                    late += 1
                    ordered = False
            elif vid[i] < vid[p]:
                ordered = False
        p = i
    return ordered, late


@dataclass(frozen=True)
class KernelResult:
    """Per-row reasons, counts and the kilometres per (vehicle, month, city)."""

    reason: npt.NDArray[np.int8]  # in the input's row order
    counts: dict[str, int]
    activity: pa.Table  # vehicle_id, month, city_adcode, distance_km (ACTIVITY_COLUMNS)
    unobserved_km: float  # straight lines of the unobserved segments (counts["unobserved_segments"])
    bridged_km: float  # distance added over straight lines by gap bridging (odometer or circuity)
    by_month: dict[int, npt.NDArray[np.int64]]  # local month number -> rows per reason code (REASONS)
    # Unobserved segments (GAP_COLUMNS) by vehicle, local month of their first fix and the cities of their
    # fixes: gaps (count), unobserved_km (straight line; sums to unobserved_km), gap_hours, and for those
    # with a plausible odometer reading their count and its km (driven, route unknown: not attributed).
    gaps: pa.Table
    # Every kept segment (GAP_BIN_COLUMNS) by local month of its first fix and duration bin (GAP_BIN_LABELS):
    # segments and km attributed (for bins above 20 min: bridged gaps), unobserved, implausible motion.
    gap_bins: pa.Table
    implausible_speed_km: float  # straight lines of the segments of implausible motion (rule 6), not attributed
    # Per vehicle-month (rule 7's estimates): key, month, gps_noise_m (per axis), fix_interval_s (median while
    # moving; null when it never moved), speed_channel_used (the speed channel consistent with the positions).
    vehicles: pa.Table


def _sort_order(vid: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """The stable permutation to (vehicle, time) order.

    One 64-bit key (vehicle offset above, time offset below) sorted by a
    stable sort that finds runs already in order (input arriving file by file
    is mostly such runs); ``lexsort`` when the ranges do not fit in the key.
    """
    v_lo, v_hi, t_lo, t_hi = int(vid.min()), int(vid.max()), int(t.min()), int(t.max())
    if v_hi - v_lo < 2**31 and t_hi - t_lo < 2**32:
        key = ((vid - v_lo) << 32) | (t - t_lo)
        return np.argsort(key, kind="stable")
    return np.lexsort((t, vid))


class Scratch:
    """Buffers :func:`run_kernel` reuses from call to call (the sorted copies of unsorted input, the
    distances of the cleaning pass).

    Fresh memory for every call costs page faults and zeroing; a caller that runs
    the kernel chunk after chunk on one thread passes one ``Scratch`` (it holds
    the largest chunk's columns until it is dropped).
    """

    def __init__(self) -> None:
        self.buffers: dict[int, npt.NDArray[Any]] = {}

    def buffer(self, k: int, n: int, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """``n`` elements of buffer ``k`` (grown when smaller; contents undefined)."""
        buf = self.buffers.get(k)
        if buf is None or buf.size < n or buf.dtype != np.dtype(dtype):
            buf = self.buffers[k] = np.empty(max(n, int(1.25 * buf.size) if buf is not None else n), dtype)
        return buf[:n]

    def take(self, k: int, values: npt.NDArray[Any], order: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """``values[order]`` in buffer ``k``."""
        return np.take(values, order, out=self.buffer(k, order.size, values.dtype))

    def filled(self, k: int, n: int, value: float) -> npt.NDArray[np.float64]:
        """``n`` float64 ``value``s in buffer ``k``."""
        out = self.buffer(k, n, np.float64)
        out.fill(value)
        return out


def _pick(
    values: npt.NDArray[Any], order: npt.NDArray[np.intp] | None, scratch: Scratch | None, k: int
) -> npt.NDArray[Any]:
    if order is None:
        return values
    return values[order] if scratch is None else scratch.take(k, values, order)


def run_kernel(
    vehicle_id: npt.ArrayLike,
    t_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    locator: CityLocator,
    speed_kmh: npt.ArrayLike | None = None,
    rules: CleaningRules = CleaningRules(),
    *,
    load: npt.ArrayLike | None = None,
    fuel_level_l: npt.ArrayLike | None = None,
    odometer_km: npt.ArrayLike | None = None,
    skip: npt.ArrayLike | None = None,
    scratch: Scratch | None = None,
) -> KernelResult:
    """Clean fixes of any number of vehicles (any order) and attribute their kilometres.

    Parameters
    ----------
    vehicle_id, t_s, lon, lat
        One entry per fix; ``t_s`` in UTC epoch seconds; coordinates in the
        locator's coordinate system.
    locator
        The city locator (its CRS must match the coordinates).
    speed_kmh
        Reported speed (the stuck-receiver rule uses it); missing means 0.
    rules
        Cleaning thresholds.
    load
        Load-state codes per fix (0 empty, 1 half, 2 full, -1 unknown), optional.
    fuel_level_l
        Fuel-level gauge per fix in litres (NaN when not reported), optional.
    odometer_km
        Odometer per fix in km (NaN when not reported), optional; used across gaps.
    skip
        True for rows that are not fixes (set aside before the kernel); they get
        reason ``quarantined`` and take no part in any rule.
    scratch
        Buffers to reuse for the sorted copies of unsorted input (see :class:`Scratch`).

    Returns
    -------
    KernelResult
        Per-row reasons in input order, counts, and the activity table with
        :data:`ACTIVITY_COLUMNS`, one row per (vehicle, month, city); the
        unobserved gaps (:data:`GAP_COLUMNS`) and the segments by duration bin
        (:data:`GAP_BIN_COLUMNS`), both with the month of a segment's first fix
        (filter them by month as the activity).
    """
    vid = np.asarray(vehicle_id, dtype=np.int64)
    t = np.asarray(t_s, dtype=np.int64)
    n = vid.size
    x_in = np.asarray(lon, dtype=np.float64)
    y_in = np.asarray(lat, dtype=np.float64)
    v_in = _speeds(speed_kmh, n)
    ld_in = np.full(n, -1, np.int8) if load is None else np.asarray(load, dtype=np.int8)
    fu_in = np.full(n, np.nan) if fuel_level_l is None else np.asarray(fuel_level_l, dtype=np.float64)
    od_in = np.full(n, np.nan) if odometer_km is None else np.asarray(odometer_km, dtype=np.float64)
    aside = np.zeros(n, np.bool_) if skip is None else np.asarray(skip, dtype=np.bool_)
    ordered, out_of_order = _order_check(vid, t, aside) if n else (True, 0)
    order = None if ordered else _sort_order(vid, t)
    columns = (vid, t, x_in, y_in, v_in, ld_in, fu_in, od_in)
    sv, st, sx, sy, sp, sl, sf, so = (_pick(a, order, scratch, k) for k, a in enumerate(columns))
    reason = _pick(aside, order, None, 0).view(np.int8) * np.int8(QUARANTINED)
    dseg = np.full(n, np.nan) if scratch is None else scratch.filled(len(columns), n, np.nan)
    cos = np.empty(n) if scratch is None else scratch.buffer(len(columns) + 1, n, np.float64)
    t_lo, t_hi = _flag(
        sv, st, sx, sy, sp, reason, dseg, cos, rules.max_speed_kmh, rules.reanchor_after,
        rules.max_vehicle_kmh, rules.sustained_s,
    )  # fmt: skip
    if t_hi >= t_lo:
        month0, last = (int(m) for m in local_month(np.array([t_lo, t_hi])))
        starts = month_start_utc_s(np.arange(month0, last + 2))
    else:
        month0, starts = 0, np.zeros(0, np.int64)
    k0 = len(columns) + 2
    if rules.noise_rules:
        code = np.zeros(n, np.int8) if scratch is None else scratch.buffer(k0 + 1, n, np.int8)
        dist = np.empty(n) if scratch is None else scratch.buffer(k0, n, np.float64)
        kept = np.empty(n, np.int64) if scratch is None else scratch.buffer(k0 + 2, n, np.int64)
        g_vid, g_mon, g_noise, g_interval, g_speed = robust_kernel(
            sv, st, sx, sy, sp, speed_kmh is not None, reason, dseg, cos, starts, robust_params(rules), dist, code,
            kept,
        )  # fmt: skip
        g_mon = g_mon + month0
    else:  # rule 7 off: the attribution reads neither
        dist, code = np.empty(0), np.empty(0, np.int8)
        g_vid = g_mon = np.zeros(0, np.int64)
        g_noise = g_interval = np.zeros(0)
        g_speed = np.zeros(0, np.bool_)
    params = attribute_params(rules)
    cap, walk, gap_cap = max(64, n // 50), WALK_SCRATCH, 0
    while True:  # the kernel grows no array: it says when its outputs or the walk's scratch are too small
        o_vid, o_mon = np.empty(cap, np.int64), np.empty(cap, np.int64)
        o_unit, o_val = np.empty(cap, np.int32), np.empty((cap, N_VALUES), np.float64)
        out = attribute_kernel(  # type: ignore[call-arg]
            sv, st, sx, sy, reason, dseg, dist, code, sl, sf, so, starts, month0, params, len(REASONS),
            o_vid, o_mon, o_unit, o_val, np.empty(walk), np.empty(walk, np.int32), np.empty(walk),
            *locator.kernel_args, gap_cap,
        )  # fmt: skip
        rows, stats, month_reasons, tallies, n_gaps, *gap_arrays, bin_n, bin_km = out
        if rows == -1:
            cap *= 4
        elif rows < -1:  # -2 - the crossings of a segment
            walk = max(2 * walk, -rows)
        elif n_gaps > gap_arrays[0].shape[0]:
            gap_cap = int(n_gaps)
        else:
            break
    o_vid, o_mon, o_unit, o_val = o_vid[:rows], o_mon[:rows], o_unit[:rows], o_val[:rows]
    by_month = {month0 + m: month_reasons[m] for m in np.flatnonzero(month_reasons.any(axis=1)).tolist()}
    if tallies[1]:  # rows (never kept fixes) outside the kept fixes' months
        outside = np.flatnonzero((st < starts[0]) | (st >= starts[-1])) if starts.size else np.arange(n)
        pairs, count = np.unique(local_month(st[outside]) * len(REASONS) + reason[outside], return_counts=True)
        for pair, c in zip(pairs.tolist(), count.tolist(), strict=True):
            m, r = divmod(pair, len(REASONS))
            by_month.setdefault(m, np.zeros(len(REASONS), np.int64))[r] += c
    ok = o_val[:, 0] > 0
    o_vid, o_mon, o_unit, o_val = o_vid[ok], o_mon[ok], o_unit[ok], o_val[ok]
    if g_vid.size:
        at = _estimate_rows(g_vid, g_mon, o_vid, o_mon)
        noise_col, interval_col = g_noise[at], g_interval[at]
    else:  # rule 7 off: not estimated
        noise_col = interval_col = np.full(o_vid.size, np.nan)
    uniq_months, month_idx = np.unique(o_mon, return_inverse=True)
    month_text = pa.DictionaryArray.from_arrays(
        pa.array(month_idx.astype(np.int32)), pa.array(month_labels(uniq_months), pa.string())
    ).cast(pa.string())
    activity = pa.table(
        {
            "vehicle_id": pa.array(o_vid),
            "month": month_text,
            "city_adcode": pa.array(locator.adcodes_of_units(o_unit)),
            **{name: pa.array(o_val[:, c]) for c, name in enumerate(ACTIVITY_COLUMNS[3:-2])},
            "gps_noise_m": pa.array(noise_col, from_pandas=True),  # null: not estimated (rule 7 off)
            "fix_interval_s": pa.array(interval_col, from_pandas=True),  # null: never moving, or not estimated
        }
    ).sort_by([("vehicle_id", "ascending"), ("month", "ascending"), ("city_adcode", "ascending")])
    unobserved_km, bridged_km, unobserved_segments = float(stats[0]), float(stats[1]), int(stats[2])
    gaps = _gap_table(locator, int(n_gaps), *gap_arrays)
    gap_bins = _gap_bin_table(month0, bin_n, bin_km)
    reason_in_input_order = reason if order is None else np.empty(n, np.int8)
    if order is not None:
        reason_in_input_order[order] = reason
    totals = np.sum(list(by_month.values()), axis=0) if by_month else np.zeros(len(REASONS), np.int64)
    counts = {name: int(totals[code]) for code, name in enumerate(REASONS)}
    counts["out_of_order"] = int(out_of_order)
    counts["unobserved_segments"] = unobserved_segments
    counts["outside_mainland"] = int(tallies[0])  # kept fixes in no mainland unit
    counts["implausible_speed_segments"] = int(stats[4])
    estimates = pa.table(
        {
            "vehicle_id": pa.array(g_vid),
            "month": _month_text(g_mon) if g_mon.size else pa.array([], pa.string()),
            "gps_noise_m": pa.array(g_noise),
            "fix_interval_s": pa.array(g_interval, from_pandas=True),
            "speed_channel_used": pa.array(g_speed),
        }
    )
    return KernelResult(
        reason_in_input_order, counts, activity, unobserved_km, bridged_km, by_month, gaps, gap_bins, float(stats[3]),
        estimates,
    )  # fmt: skip


def _estimate_rows(
    g_vid: npt.NDArray[np.int64], g_mon: npt.NDArray[np.int64], vid: npt.NDArray[np.int64], mon: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """For each (vehicle, month) of ``vid``, ``mon``, its row in the vehicle-month estimates (sorted by
    vehicle, then month; every activity row's vehicle-month has a kept fix, hence a row)."""
    at = np.searchsorted(g_vid, vid)
    if g_vid.size == 0:
        return at
    while True:  # a vehicle has few months: step to the month
        ahead = (at + 1 < g_vid.size) & (g_mon[at] < mon)
        ahead[ahead] &= g_vid[at[ahead] + 1] == vid[ahead]
        if not ahead.any():
            return at
        at[ahead] += 1


_NO_GAPS, _NO_GAP_BINS = GAP_SCHEMA.empty_table(), GAP_BIN_SCHEMA.empty_table()


def _month_text(months: npt.NDArray[np.int64]) -> pa.Array:
    """Month numbers as 'YYYY-MM' strings (one label per distinct month)."""
    lo, hi = int(months.min()), int(months.max())  # the months of one run of the kernel: a short range
    return pa.array(np.array(month_labels(np.arange(lo, hi + 1)), dtype=object)[months - lo], pa.string())


def _gap_table(
    locator: CityLocator,
    n_gaps: int,
    g_vid: npt.NDArray[np.int64],
    g_mon: npt.NDArray[np.int64],
    g_from: npt.NDArray[np.int32],
    g_to: npt.NDArray[np.int32],
    g_val: npt.NDArray[np.float64],
) -> pa.Table:
    """The unobserved segments listed by the attribution, summed by (vehicle, month, from city, to city)
    (:data:`GAP_SCHEMA`, in that order)."""
    if n_gaps == 0:
        return _NO_GAPS
    vid, mon = g_vid[:n_gaps], g_mon[:n_gaps]
    frm, to = locator.adcodes_of_units(g_from[:n_gaps]), locator.adcodes_of_units(g_to[:n_gaps])
    order = np.lexsort((to, frm, mon, vid))
    vid, mon, frm, to, val = vid[order], mon[order], frm[order], to[order], g_val[:n_gaps][order]
    new = np.ones(n_gaps, np.bool_)
    new[1:] = (vid[1:] != vid[:-1]) | (mon[1:] != mon[:-1]) | (frm[1:] != frm[:-1]) | (to[1:] != to[:-1])
    first = np.flatnonzero(new)
    odometer = val[:, 2]
    has_odometer = ~np.isnan(odometer)
    columns = [
        pa.array(vid[first]),
        _month_text(mon[first]),
        pa.array(frm[first]),
        pa.array(to[first]),
        pa.array(np.diff(np.append(first, n_gaps))),
        pa.array(np.add.reduceat(val[:, 0], first)),
        pa.array(np.add.reduceat(val[:, 1], first) / 3600.0),
        pa.array(np.add.reduceat(has_odometer.astype(np.int64), first)),
        pa.array(np.add.reduceat(np.where(has_odometer, odometer, 0.0), first)),
    ]
    return pa.Table.from_arrays(columns, schema=GAP_SCHEMA)


def _gap_bin_table(month0: int, bin_n: npt.NDArray[np.int64], bin_km: npt.NDArray[np.float64]) -> pa.Table:
    """Segments by month of their first fix and duration bin: one row per (month, bin) with any segment
    (:data:`GAP_BIN_SCHEMA`)."""
    m, k = np.nonzero(bin_n.sum(axis=2))
    if m.size == 0:
        return _NO_GAP_BINS
    columns = [_month_text(month0 + m), pa.array(np.array(GAP_BIN_LABELS, dtype=object)[k], pa.string())]
    for c in range(3):
        columns += [pa.array(bin_n[m, k, c]), pa.array(bin_km[m, k, c])]
    return pa.Table.from_arrays(columns, schema=GAP_BIN_SCHEMA)


def _speeds(speed_kmh: npt.ArrayLike | None, n: int) -> npt.NDArray[np.floating[Any]]:
    """Reported speeds as float32 or float64 (NaN stays NaN: the rules only ask whether a speed is above 0)."""
    if speed_kmh is None:
        return np.zeros(n, np.float32)
    v = np.asarray(speed_kmh)
    return v if v.dtype in (np.float32, np.float64) else v.astype(np.float64)


__all__ = [
    "ACTIVITY_COLUMNS",
    "GAP_BIN_COLUMNS",
    "GAP_BIN_LABELS",
    "GAP_BIN_SCHEMA",
    "GAP_COLUMNS",
    "GAP_SCHEMA",
    "NOISY_ROAD_RULES",
    "CleaningRules",
    "KernelResult",
    "Scratch",
    "run_kernel",
]
