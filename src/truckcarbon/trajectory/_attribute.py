"""Compiled segment rules and attribution: one pass over vehicle-sorted rows with their cleaning reasons.

Every row is counted by month and cleaning reason; for each pair of
consecutive kept fixes of a vehicle (a segment) the kernel
applies the implausible-motion mark of the cleaning pass and the gap, odometer,
drift and plausibility rules, lists the unobserved segments, counts every
segment by duration (``GAP_BIN_EDGES_S``) and outcome, splits the segment by
time at local month starts and exactly at unit borders (the locator's grid walk),
and sums kilometres by load state and measured fuel into one row per
(vehicle, month, unit). Rows of a vehicle-month are produced together because
the fixes arrive in (vehicle, time) order. Releases the GIL, so partitions can
run on several threads.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from truckcarbon.geo.distance import step_km
from truckcarbon.geo.locate import INVALID_IDX, OUTSIDE_IDX, array_helper, cell_unit, locate_one
from truckcarbon.geo.segments import segment_pieces_into
from truckcarbon.trajectory._robust import ACC_MOVED_KM  # an ignition-off segment longer than this moved

# Average-speed bins of moving segments (km/h, lower bounds; the last is open): the emission methods' speed
# curves apply to each bin's km at the bin's own average speed (its km over its hours).
SPEED_BIN_EDGES_KMH = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])
N_SPEED_BINS = 10
N_LOADS = 4  # empty, half, full, unknown
# Values per (vehicle, month, unit): km, km empty, km half, km full, km unknown load, measured fuel, km with
# measured fuel (the first 7, ACTIVITY_COLUMNS' order); idle seconds by the ignition bit and by the stop-length
# rule; segments with the ignition off at both ends, with it on at either, and the km of the first that moved;
# then moving seconds by speed bin (V_SECS + bin) and km by load and speed bin (V_SPEED_KM + load * bins + bin).
V_IDLE_ACC, V_IDLE_STOP, V_ACC_OFF, V_ACC_ON, V_ACC_OFF_KM = 7, 8, 9, 10, 11
V_SECS = 12
V_SPEED_KM = V_SECS + N_SPEED_BINS
N_VALUES = V_SPEED_KM + N_LOADS * N_SPEED_BINS
# params: drift_m (negative: rule 7's dead band instead), drift_kmh, gap_s, max_speed_kmh, max_bridge_kmh,
# gap_circuity, refuel_l, max_fuel_l_per_km, odometer_after_s, max_bridge_s, idle_stop_s
N_PARAMS = 11
# Segment durations counted (upper bounds inclusive, as the gap rules' "longer than"): up to 20 min (not gaps),
# 20 min-1 h, 1-4 h, 4-24 h, 1-7 days, longer.
GAP_BIN_EDGES_S = np.array([0.0, 1200.0, 3600.0, 14400.0, 86400.0, 604800.0])
GAP_BIN_LABELS = ("<=20min", "20min-1h", "1h-4h", "4h-24h", "1d-7d", ">7d")
N_BINS = 6
N_GAP_VALUES = 3  # a listed unobserved segment: straight-line km, seconds, plausible odometer km (NaN: none)
N_STATS = 5  # unobserved km, bridged extra km, unobserved segments, implausible km, implausible segments


@array_helper  # no reference counting per piece
def _row(tab_unit, tab_val, tab_n, hint, unit):  # type: ignore[no-untyped-def]
    """The row of ``unit`` in the current vehicle-month's table of units (added when new); returns (row count,
    row). Tries ``hint`` (the row of the previous piece: a truck is usually still in the city of its previous
    segment) first, then searches from the most recently added unit backwards."""
    if hint < tab_n and tab_unit[hint] == unit:
        k = hint
    else:
        k = tab_n - 1
        while k >= 0 and tab_unit[k] != unit:
            k -= 1
    if k < 0:
        k = tab_n
    if k == tab_n:
        tab_unit[k] = unit
        for c in range(N_VALUES):
            tab_val[k, c] = 0.0
        tab_n += 1
    return tab_n, k


@array_helper
def _add(tab_unit, tab_val, tab_n, hint, unit, km, load_col, fuel_l, fuel_ok, secs, sbin, share, off, on):  # type: ignore[no-untyped-def]
    """Add a piece of a moving segment (``share`` of it: ``km``, ``fuel_l``, ``secs``) to the current
    vehicle-month's table of units; returns (row count, row of the unit)."""
    tab_n, k = _row(tab_unit, tab_val, tab_n, hint, unit)
    tab_val[k, 0] += km
    tab_val[k, 1 + load_col] += km
    if fuel_ok:
        tab_val[k, 5] += fuel_l
        tab_val[k, 6] += km
    tab_val[k, V_SECS + sbin] += secs
    tab_val[k, V_SPEED_KM + load_col * N_SPEED_BINS + sbin] += km
    if off:
        tab_val[k, V_ACC_OFF] += share
        if km > ACC_MOVED_KM * share:
            tab_val[k, V_ACC_OFF_KM] += km
    elif on:
        tab_val[k, V_ACC_ON] += share
    return tab_n, k


@nb.njit(cache=True, inline="always")
def _speed_bin(kmh):  # type: ignore[no-untyped-def]
    k = N_SPEED_BINS - 1
    while k > 0 and kmh < SPEED_BIN_EDGES_KMH[k]:
        k -= 1
    return k


@array_helper
def _flush(o_vid, o_mon, o_unit, o_val, rows, tab_unit, tab_val, tab_n, vid, mon):  # type: ignore[no-untyped-def]
    """Write the current vehicle-month's table of units as rows from ``rows``; -1 when ``o_*`` are too small."""
    if rows + tab_n > o_vid.shape[0]:
        return -1
    for k in range(tab_n):
        o_vid[rows] = vid
        o_mon[rows] = mon
        o_unit[rows] = tab_unit[k]
        for c in range(N_VALUES):  # element by element: a row view would count references
            o_val[rows, c] = tab_val[k, c]
        rows += 1
    return rows


@nb.njit(cache=True, nogil=True)
def attribute_kernel(  # type: ignore[no-untyped-def]
    vid, t, x, y, reason, dseg, dist, code, load, fuel, odo, acc, starts, month0, params, n_reasons,
    o_vid, o_mon, o_unit, o_val, buf, units, fracs,
    x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges,
    gap_cap=0,
):  # fmt: skip
    """Rows (vehicle, month number, unit index, values[N_VALUES]) into ``o_*``, counts and stats of cleaned fixes.

    One pass over rows sorted by (vehicle, time) whose cleaning ``reason`` is
    set (0: a kept fix). Each row is counted by (month index, reason) into
    ``by_month`` (``starts``: the UTC start seconds of months ``month0``,
    ``month0 + 1``, ..., spanning every kept fix; rows outside them, never
    kept fixes, are only counted in ``tallies[1]``). Each kept fix is located
    once, with the borderless grid cell it lies in (:func:`truckcarbon.geo.locate.cell_and_unit`;
    ``tallies[0]`` counts kept fixes outside every unit), and closes the segment
    from the kept fix before it of the same vehicle. ``dseg`` is a row's
    distance from the kept fix before it when already known (NaN: compute it),
    negative for a segment of implausible motion (the cleaning pass's mark: no
    distance accrues, it is counted apart). Stats (``N_STATS``): unobserved km,
    bridged extra km, unobserved segments, implausible km, implausible segments.

    Each unobserved segment is listed in the gap arrays (``gap_cap`` places; 0:
    ``n // 64 + 256``): vehicle, month number and unit index of its first fix,
    unit index of its last, values[N_GAP_VALUES]. Every segment is counted by
    month index of its first fix, duration bin (``GAP_BIN_EDGES_S``) and outcome
    (0 attributed, 1 unobserved, 2 implausible) in ``bin_n`` and, by its km
    (attributed: the km attributed; else the straight line), ``bin_km``.

    Returns (rows, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to,
    g_val, bin_n, bin_km). ``rows`` is the number of rows written to ``o_vid``,
    ``o_mon``, ``o_unit`` and ``o_val``; -1 when they have too few rows; ``-2 - c``
    when the scratch arrays of the border walk (``buf``, ``units``, ``fracs``) are
    too small for a segment with ``c`` crossings (they need ``c + 2`` places).
    Call again with larger ones; likewise with ``gap_cap = n_gaps`` when
    ``n_gaps`` (all unobserved segments, counted on) exceeds the gap arrays'
    places. Nothing is grown here: arrays reassigned inside the loop would cost
    reference counting on every segment.
    """
    drift_m = params[0]
    drift_kmh = params[1]
    gap_s = params[2]
    max_kmh = params[3]
    max_bridge = params[4]
    circuity = params[5]
    refuel_l = params[6]
    max_fuel_km = params[7]
    odo_after = params[8]
    max_bridge_s = params[9]
    idle_stop_s = params[10]
    robust = drift_m < 0.0  # rule 7 on: ``dist`` and ``code`` hold its distances (else they may be empty)
    n = vid.shape[0]
    n_months = starts.shape[0] - 1
    by_month = np.zeros((max(n_months, 0), n_reasons), np.int64)
    tallies = np.zeros(2, np.int64)
    rows = 0
    stats = np.zeros(N_STATS, np.float64)
    g_cap = gap_cap if gap_cap > 0 else n // 64 + 256
    g_vid = np.empty(g_cap, np.int64)
    g_mon = np.empty(g_cap, np.int64)
    g_from = np.empty(g_cap, np.int32)
    g_to = np.empty(g_cap, np.int32)
    g_val = np.empty((g_cap, N_GAP_VALUES), np.float64)
    n_gaps = 0
    bin_n = np.zeros((max(n_months, 0), N_BINS, 3), np.int64)
    bin_km = np.zeros((max(n_months, 0), N_BINS, 3), np.float64)
    edge1 = GAP_BIN_EDGES_S[1]
    acc_m = 0  # attributed segments up to 20 min of month index acc_m not yet in bin_n, bin_km
    acc_n = 0
    acc_km = 0.0
    tab_unit = np.empty(4096, np.int32)
    tab_val = np.empty((4096, N_VALUES), np.float64)
    tab_n = 0
    hint = 0
    cur_v = 0
    cur_m = -1
    inv2 = inv1 * sub
    nsub2 = sub * sub
    n_l1 = nx1 * ny1
    mc = 0  # month cursor
    prev = -1  # the last kept fix, its unit, cell and month index
    p_unit = 0
    p_cell = -1
    p_mon = 0
    anc_x = 0.0  # the anchor of the segment at hand
    anc_y = 0.0
    anc_unit = 0
    anc_cell = -1
    q_x = 0.0  # the anchor (the last kept fix not inside a dead band: rule 7), its unit and cell
    q_y = 0.0
    q_unit = 0
    q_cell = -1
    stop_t0 = -1.0  # when the standing run at hand began (-1: moving)
    for b in range(n):
        tb = t[b]
        if n_months <= 0 or tb < starts[0] or tb >= starts[n_months]:
            tallies[1] += 1
            continue
        if tb < starts[mc]:
            mc = np.searchsorted(starts, tb, side="right") - 1
        while starts[mc + 1] <= tb:
            mc += 1
        r = reason[b]
        by_month[mc, r] += 1
        if r != 0:
            continue
        # The fix's unit and borderless cell: cell_and_unit written out with its constants hoisted (called,
        # even inlined, it cost this loop four times as much). Kept fixes have valid coordinates.
        xb = x[b]
        yb = y[b]
        fx = (xb - x0) * inv1
        fy = (yb - y0) * inv1
        if fx < 0.0 or fy < 0.0 or fx >= nx1 or fy >= ny1:
            cell_b = -1
            unit_b = OUTSIDE_IDX
        else:
            gi = int(fx)
            gj = int(fy)
            cell_b = gj * nx1 + gi
            unit_b = l1[cell_b]
            if unit_b < OUTSIDE_IDX:
                ii = min(max(int((xb - x0) * inv2) - gi * sub, 0), sub - 1)
                jj = min(max(int((yb - y0) * inv2) - gj * sub, 0), sub - 1)
                unit_b = l2[(-2 - unit_b) * nsub2 + jj * sub + ii]
                if unit_b >= OUTSIDE_IDX:
                    cell_b = n_l1 + (gj * sub + jj) * (nx1 * sub) + gi * sub + ii
                else:
                    cell_b = -1
                    unit_b = cell_unit(-2 - unit_b, xb, yb, ref, hdr, grp, edges)
        if unit_b < 0:
            tallies[0] += 1
        a = prev
        unit_a = p_unit
        cell_a = p_cell
        m0 = p_mon
        m1 = mc
        prev = b
        p_unit = unit_b
        p_cell = cell_b
        p_mon = mc
        new_vehicle = a < 0 or vid[a] != vid[b]
        from_anchor = False
        c_b = 0
        if robust:  # rule 7's codes: the anchor a segment runs from (the cleaning pass's straight lines if off)
            c_b = code[b]
            if not new_vehicle and m0 != m1:  # the dead band restarts with the month: from fix a
                q_x = x[a]
                q_y = y[a]
                q_unit = unit_a
                q_cell = cell_a
            from_anchor = c_b == 2 and not new_vehicle
            if from_anchor:
                anc_x = q_x
                anc_y = q_y
                anc_unit = q_unit
                anc_cell = q_cell
            if c_b != 1 or new_vehicle:
                q_x = x[b]
                q_y = y[b]
                q_unit = unit_b
                q_cell = cell_b
        if new_vehicle:
            stop_t0 = -1.0
            continue
        ax = x[a]
        ay = y[a]
        bx = x[b]
        by = y[b]
        d = dseg[b]
        dt = float(t[b] - t[a])
        kb = 0  # the duration bin
        if dt > edge1:
            kb = 1
            while kb < N_BINS - 1 and dt > GAP_BIN_EDGES_S[kb + 1]:
                kb += 1
        if d < 0.0:  # implausible motion (the cleaning pass's mark)
            stats[3] -= d
            stats[4] += 1.0
            bin_n[m0, kb, 2] += 1
            bin_km[m0, kb, 2] -= d
            continue
        if np.isnan(d):  # not known from the cleaning pass
            d = step_km(ax, ay, bx, by)
        speed = d / dt * 3600.0 if dt > 0 else np.inf
        gap = dt > gap_s
        too_long = dt > max_bridge_s
        unobserved = too_long or (gap and speed > max_bridge) or (speed > max_kmh and d > 1.0)
        dodo = odo[b] - odo[a]  # NaN when either reading is missing: no comparison holds
        by_odo = dt > odo_after and not too_long and dodo >= 0.95 * d and dodo <= max_bridge * dt / 3600.0 and d > 0.05
        if by_odo:
            unobserved = False
        if unobserved:
            stats[0] += d
            stats[2] += 1.0
            bin_n[m0, kb, 1] += 1
            bin_km[m0, kb, 1] += d
            if n_gaps < g_cap:
                g_vid[n_gaps] = vid[a]
                g_mon[n_gaps] = month0 + m0
                g_from[n_gaps] = unit_a
                g_to[n_gaps] = unit_b
                g_val[n_gaps, 0] = d
                g_val[n_gaps, 1] = dt
                # The odometer's km when plausible (route unknown: reported, not attributed), else NaN.
                odo_ok = dodo >= 0.95 * d and dodo <= max_bridge * dt / 3600.0
                g_val[n_gaps, 2] = dodo if odo_ok else np.nan
            n_gaps += 1
            continue
        factor = 1.0
        if gap:
            factor = circuity
        if by_odo:
            factor = dodo / max(d, 1e-9)
        bridged = gap or by_odo
        total = d * factor
        # Standing: inside rule 7's dead band, or (rule 7 off) the drift rule.
        standing = c_b == 1 if robust else d * 1000.0 < drift_m and speed < drift_kmh
        if standing:
            total = 0.0
        elif robust and not bridged and not np.isnan(dist[b]):
            total = dist[b]
        if kb == 0 and m0 == acc_m:  # the usual segment: summed in registers, added to bin_n/bin_km later
            acc_n += 1
            acc_km += total
        else:
            bin_n[m0, kb, 0] += 1
            bin_km[m0, kb, 0] += total
            if kb == 0:
                bin_n[acc_m, 0, 0] += acc_n
                bin_km[acc_m, 0, 0] += acc_km
                acc_m = m0
                acc_n = 0
                acc_km = 0.0
        off = acc[a] == 0 and acc[b] == 0  # the ignition bit's evidence (its use is decided per vehicle-month)
        on = not off and (acc[a] == 1 or acc[b] == 1)
        if standing:  # idle time: by the ignition bit, and by the stop-length rule (the first idle_stop_s)
            ta = float(t[a])
            if stop_t0 < 0.0:
                stop_t0 = ta
            if vid[a] != cur_v or m0 != cur_m or cur_m < 0:  # the rows of the vehicle-month before, written
                rows = _flush(o_vid, o_mon, o_unit, o_val, rows, tab_unit, tab_val, tab_n, cur_v, month0 + cur_m)
                if rows < 0:
                    return -1, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to, g_val, bin_n, bin_km
                tab_n, cur_v, cur_m = 0, vid[a], m0
            tab_n, hint = _row(tab_unit, tab_val, tab_n, hint, unit_a)
            span_i = min(dt, gap_s)
            if acc[a] == 1 and acc[b] == 1:
                tab_val[hint, V_IDLE_ACC] += span_i
            elif on:
                tab_val[hint, V_IDLE_ACC] += 0.5 * span_i
            tab_val[hint, V_IDLE_STOP] += max(min(ta + dt, stop_t0 + idle_stop_s) - max(ta, stop_t0), 0.0)
            if off:
                tab_val[hint, V_ACC_OFF] += 1.0
            elif on:
                tab_val[hint, V_ACC_ON] += 1.0
            drop = fuel[a] - fuel[b]  # an idling truck's gauge falls too (NaN: not reported)
            if drop >= -refuel_l and drop <= refuel_l:
                tab_val[hint, 5] += drop
            continue
        stop_t0 = -1.0
        sbin = _speed_bin(total / dt * 3600.0 if dt > 0 else 0.0)
        if bridged:
            stats[1] += d * (factor - 1.0)
        elif from_anchor:  # the segment runs from the anchor (rule 7): its geometry too
            ax = anc_x
            ay = anc_y
            unit_a = anc_unit
            cell_a = anc_cell
        ld = load[b]
        load_col = ld if ld >= 0 and ld <= 2 else 3
        drop = fuel[a] - fuel[b]
        fuel_ok = drop >= -refuel_l and drop <= max_fuel_km * total + refuel_l
        if m0 == m1 and m0 == cur_m and vid[a] == cur_v and cell_a >= 0 and cell_a == cell_b:
            # The usual segment: within the vehicle-month being summed and one borderless cell (what the
            # general path below gives for it: one whole piece in unit_a).
            tab_n, hint = _add(
                tab_unit, tab_val, tab_n, hint, unit_a, total, load_col, drop, fuel_ok, dt, sbin, 1.0, off, on
            )
            continue
        t0 = float(t[a])
        span = dt
        for m in range(m0, m1 + 1):
            p_lo = 0.0 if m == m0 else (starts[m] - t0) / span
            p_hi = 1.0 if m == m1 else (starts[m + 1] - t0) / span
            if p_hi <= p_lo:
                continue
            if vid[a] != cur_v or m != cur_m or cur_m < 0:  # the rows of the vehicle-month before, written
                rows = _flush(o_vid, o_mon, o_unit, o_val, rows, tab_unit, tab_val, tab_n, cur_v, month0 + cur_m)
                if rows < 0:
                    return -1, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to, g_val, bin_n, bin_km
                tab_n, cur_v, cur_m = 0, vid[a], m
            sx0 = ax + (bx - ax) * p_lo
            sy0 = ay + (by - ay) * p_lo
            sx1 = ax + (bx - ax) * p_hi
            sy1 = ay + (by - ay) * p_hi
            ua = (
                unit_a
                if p_lo == 0.0
                else locate_one(sx0, sy0, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
            )
            ub = (
                unit_b
                if p_hi == 1.0
                else locate_one(sx1, sy1, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
            )
            if ua == INVALID_IDX or ub == INVALID_IDX:
                continue
            width = p_hi - p_lo
            same_cell = p_lo == 0.0 and p_hi == 1.0 and cell_a >= 0 and cell_a == cell_b
            npieces, u, f = segment_pieces_into(
                sx0, sy0, sx1, sy1, ua, ub, same_cell, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges,
                buf, units, fracs,
            )  # fmt: skip
            if npieces == 1:  # one piece (usually without a walk): it comes back in u, f
                f *= width
                if f > 0.0:
                    tab_n, hint = _add(
                        tab_unit, tab_val, tab_n, hint, u, total * f, load_col, drop * f, fuel_ok, dt * f, sbin, f,
                        off, on,
                    )  # fmt: skip
                continue
            if npieces < 0:  # -1 - the segment's crossings
                return -1 + npieces, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to, g_val, bin_n, bin_km
            for q in range(npieces):
                f = fracs[q] * width
                if f > 0.0:
                    tab_n, hint = _add(
                        tab_unit, tab_val, tab_n, hint, units[q], total * f, load_col, drop * f, fuel_ok, dt * f,
                        sbin, f, off, on,
                    )  # fmt: skip
    rows = _flush(o_vid, o_mon, o_unit, o_val, rows, tab_unit, tab_val, tab_n, cur_v, month0 + cur_m)
    if rows < 0:
        return -1, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to, g_val, bin_n, bin_km
    if acc_n > 0:
        bin_n[acc_m, 0, 0] += acc_n
        bin_km[acc_m, 0, 0] += acc_km
    return rows, stats, by_month, tallies, n_gaps, g_vid, g_mon, g_from, g_to, g_val, bin_n, bin_km
