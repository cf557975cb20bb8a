"""The cleaning pass: rules 2-6 of :mod:`truckcarbon.trajectory.rules`, compiled, on vehicle-sorted rows.

:func:`flag_kernel` walks the fixes in (vehicle, time) order once and writes each row's reason code
(:mod:`truckcarbon.trajectory.schema`): duplicates, invalid positions, a stuck receiver, jumps (with
re-anchoring on runs of set-aside fixes that agree with each other) and the mark of implausible motion;
it keeps the step distances it measured for the passes after it. :func:`order_check` tells the driver
whether the input needs sorting first; :func:`vehicle_positions` and :func:`scatter` sort input whose
vehicles are interleaved but each in time order (a platform's time-ordered dump) in linear time.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from truckcarbon.core.errors import InputError
from truckcarbon.geo.distance import cosines, step_km, step_km_cos
from truckcarbon.trajectory.rules import MAX_VEHICLE_KMH, SUSTAINED_S

SPIKE_KM = 1.5
FAST_CHAIN_TOLERANCE = 0.5  # rule 5: a step's velocity within half the length of the step before's (curves, speed)
MIN_FAST_SEGMENTS = 2  # rule 6: segments of a fast stretch (three fixes: motion observed, not one hole or jump)


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
def flag_kernel(  # type: ignore[no-untyped-def]
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
        raise InputError("flag_kernel: the cos scratch has fewer places than rows")
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
    same = -1  # first kept fix of the run of kept fixes at exactly the position of ``last`` (rule 4, frozen)
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
            same = i
            continue
        if x == lon[last] and y == lat[last] and speed[i] > 0.0:
            reason[i] = 3
            continue
        dt_h = (t[i] - t[last]) / 3600.0
        d = step_km_cos(lon[last], lat[last], x, y, cos[last], cos[i])
        if run_len == 0 and same != last and d > 1.0 and (dt_h <= 0.0 or d / dt_h > max_kmh):
            # A frozen receiver: kept fixes repeating one position exactly, then a jump no truck could make
            # from the last of them but a plausible drive from the first (the speed channel, when read,
            # marks such fixes stuck as they come). The repeats carry no position: they are stuck.
            dt_f = (t[i] - t[same]) / 3600.0
            if dt_f > 0.0 and d / dt_f <= max_kmh:
                for k in range(same + 1, last + 1):
                    if reason[k] == 0:
                        reason[k] = 3
                        dseg[k] = np.nan
                last = same
                dt_h = dt_f
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
                same = i
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
        if not (x == lon[last] and y == lat[last]):
            same = i
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
def order_check(vid, t, aside):  # type: ignore[no-untyped-def]
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


@nb.njit(cache=True, nogil=True)
def vehicle_positions(vid, t, lo, span, pos):  # type: ignore[no-untyped-def]
    """Each row's place in (vehicle, time) order, into ``pos``, when every vehicle's rows come in time order.

    A stable counting sort by vehicle (``vid - lo`` in ``0..span-1``): then the
    places are those of the stable sort by (vehicle, time). False, ``pos``
    unfinished, as soon as a vehicle's row is earlier than the one before it.
    """
    n = vid.shape[0]
    start = np.zeros(span + 1, np.int64)
    last = np.empty(span, np.int64)
    seen = np.zeros(span, np.bool_)
    for i in range(n):
        v = vid[i] - lo
        if seen[v] and t[i] < last[v]:
            return False
        seen[v] = True
        last[v] = t[i]
        start[v + 1] += 1
    for v in range(span):
        start[v + 1] += start[v]
    for i in range(n):
        v = vid[i] - lo
        pos[i] = start[v]
        start[v] += 1
    return True


@nb.njit(cache=True, nogil=True)
def scatter(values, pos, out):  # type: ignore[no-untyped-def]
    """``out[pos] = values``: reads in input order, writes each vehicle's run front to back (cache-friendly)."""
    for i in range(values.shape[0]):
        out[pos[i]] = values[i]
    return out


__all__ = [
    "FAST_CHAIN_TOLERANCE",
    "MIN_FAST_SEGMENTS",
    "SPIKE_KM",
    "flag_kernel",
    "order_check",
    "scatter",
    "vehicle_positions",
]
