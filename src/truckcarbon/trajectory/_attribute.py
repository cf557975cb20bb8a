"""Compiled segment rules and attribution: one pass over a vehicle-sorted run of kept fixes.

For each pair of consecutive kept fixes of a vehicle (a segment) the kernel
applies the gap, odometer, drift and plausibility rules, splits the segment by
time at local month starts and exactly at unit borders (the locator's grid walk),
and sums kilometres by load state and measured fuel into one row per
(vehicle, month, unit). Rows of a vehicle-month are produced together because
the fixes arrive in (vehicle, time) order. Releases the GIL, so partitions can
run on several threads.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from truckcarbon.geo._kernels import (
    INVALID_IDX,
    _cell_and_unit,
    _same_borderless_cell,
    haversine_km,
    locate_one,
    segment_pieces,
)

N_VALUES = 7  # km, km empty, km half, km full, km unknown load, measured fuel, km with measured fuel
# params: drift_m, drift_kmh, gap_s, max_speed_kmh, max_bridge_kmh, gap_circuity, refuel_l, max_fuel_l_per_km,
# odometer_after_s
N_PARAMS = 9


@nb.njit(cache=True)
def _grow(o_vid, o_mon, o_unit, o_val, need):  # type: ignore[no-untyped-def]
    if need <= o_vid.shape[0]:
        return o_vid, o_mon, o_unit, o_val
    cap = max(need, o_vid.shape[0] * 2)
    v = np.empty(cap, np.int64)
    m = np.empty(cap, np.int64)
    u = np.empty(cap, np.int32)
    x = np.empty((cap, N_VALUES), np.float64)
    r = o_vid.shape[0]
    v[:r] = o_vid
    m[:r] = o_mon
    u[:r] = o_unit
    x[:r] = o_val
    return v, m, u, x


@nb.njit(cache=True)
def _add(tab_unit, tab_val, tab_n, unit, km, load_col, fuel_l, fuel_ok):  # type: ignore[no-untyped-def]
    """Add a piece to the current vehicle-month's table of units; returns the new row count.

    Searches from the most recently added unit backwards: a truck is usually
    still in the city of its previous segment.
    """
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
    tab_val[k, 0] += km
    tab_val[k, 1 + load_col] += km
    if fuel_ok:
        tab_val[k, 5] += fuel_l
        tab_val[k, 6] += km
    return tab_n


@nb.njit(cache=True, nogil=True)
def gather_kept(  # type: ignore[no-untyped-def]
    vid, t, x, y, reason, starts, n_reasons,
    x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges,
):  # fmt: skip
    """The kept fixes (``reason`` 0) of rows sorted by (vehicle, time), ready for :func:`attribute_kernel`.

    One pass: notes each kept fix's row number (its columns are not copied),
    locates it once with the borderless grid cell it lies in (:func:`_cell_and_unit`), finds its month
    index into ``starts`` (the UTC start seconds of consecutive months, spanning
    every kept fix) following the time forward, and counts every row by
    (month index, reason). Rows outside ``starts`` (never kept fixes) are only
    counted, in ``tallies[1]``; ``tallies[0]`` counts kept fixes outside every unit.
    """
    n = vid.shape[0]
    kept = 0
    for j in range(n):
        if reason[j] == 0:
            kept += 1
    ix = np.empty(kept, np.int64)
    ku = np.empty(kept, np.int32)
    kcell = np.empty(kept, np.int64)
    kmon = np.empty(kept, np.int64)
    n_months = starts.shape[0] - 1
    by_month = np.zeros((max(n_months, 0), n_reasons), np.int64)
    tallies = np.zeros(2, np.int64)
    k = 0  # month cursor
    q = 0
    for j in range(n):
        tj = t[j]
        if n_months <= 0 or tj < starts[0] or tj >= starts[n_months]:
            tallies[1] += 1
            continue
        if tj < starts[k]:
            k = np.searchsorted(starts, tj, side="right") - 1
        while starts[k + 1] <= tj:
            k += 1
        r = reason[j]
        by_month[k, r] += 1
        if r != 0:
            continue
        c, u = _cell_and_unit(x[j], y[j], x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        if u < 0:
            tallies[0] += 1
        ix[q] = j
        ku[q] = u
        kcell[q] = c
        kmon[q] = k
        q += 1
    return ix, ku, kcell, kmon, by_month, tallies


@nb.njit(cache=True, nogil=True)
def attribute_kernel(  # type: ignore[no-untyped-def]
    vid, t, x, y, dseg, load, fuel, odo, ix, ku, kcell, kmon, starts, month0, params,
    x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges,
):  # fmt: skip
    """Rows (vehicle, month number, unit index, values[N_VALUES]) and stats of the kept fixes.

    The rows are sorted by (vehicle, time); ``ix`` holds the kept fixes' row
    numbers, and ``ku``, ``kcell``, ``kmon`` their unit index, borderless grid
    cell and month index into ``starts`` (the UTC start seconds of months
    ``month0``, ``month0 + 1``, ...), all from :func:`gather_kept`. ``dseg`` is
    a row's distance from the kept fix before it when already known (NaN:
    compute it). Stats: unobserved km, bridged extra km, unobserved segments.
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
    n = ix.shape[0]
    cap = max(64, n // 50)
    o_vid = np.empty(cap, np.int64)
    o_mon = np.empty(cap, np.int64)
    o_unit = np.empty(cap, np.int32)
    o_val = np.empty((cap, N_VALUES), np.float64)
    rows = 0
    stats = np.zeros(3, np.float64)
    tab_unit = np.empty(4096, np.int32)
    tab_val = np.empty((4096, N_VALUES), np.float64)
    tab_n = 0
    cur_v = 0
    cur_m = -1
    buf = np.empty(64, np.float64)
    units = np.empty(16, np.int32)
    fracs = np.empty(16, np.float64)
    for i in range(n - 1):
        a = ix[i]
        b = ix[i + 1]
        if vid[a] != vid[b]:
            continue
        ax = x[a]
        ay = y[a]
        bx = x[b]
        by = y[b]
        d = dseg[b]
        if np.isnan(d):  # not known from the cleaning pass
            d = haversine_km(ax, ay, bx, by)
        dt = float(t[b] - t[a])
        speed = d / dt * 3600.0 if dt > 0 else np.inf
        gap = dt > gap_s
        unobserved = (gap and speed > max_bridge) or (speed > max_kmh and d > 1.0)
        dodo = odo[b] - odo[a]
        by_odo = dt > odo_after and dodo >= 0.95 * d and dodo <= max_bridge * dt / 3600.0 and d > 0.05
        if by_odo:
            unobserved = False
        factor = 1.0
        if gap and not unobserved:
            factor = circuity
        if by_odo:
            factor = dodo / max(d, 1e-9)
        if d * 1000.0 < drift_m and speed < drift_kmh:
            factor = 0.0
        if unobserved:
            factor = 0.0
            stats[0] += d
            stats[2] += 1.0
        if factor <= 0.0:
            continue
        if gap or by_odo:
            stats[1] += d * (factor - 1.0)
        total = d * factor
        ld = load[b]
        load_col = ld if ld >= 0 and ld <= 2 else 3
        drop = fuel[a] - fuel[b]
        fuel_ok = drop >= -refuel_l and drop <= max_fuel_km * total + refuel_l
        m0 = kmon[i]
        m1 = kmon[i + 1]
        t0 = float(t[a])
        span = dt
        for m in range(m0, m1 + 1):
            p_lo = 0.0 if m == m0 else (starts[m] - t0) / span
            p_hi = 1.0 if m == m1 else (starts[m + 1] - t0) / span
            if p_hi <= p_lo:
                continue
            if vid[a] != cur_v or m != cur_m or cur_m < 0:
                o_vid, o_mon, o_unit, o_val = _grow(o_vid, o_mon, o_unit, o_val, rows + tab_n)
                for k in range(tab_n):
                    o_vid[rows] = cur_v
                    o_mon[rows] = month0 + cur_m
                    o_unit[rows] = tab_unit[k]
                    o_val[rows] = tab_val[k]
                    rows += 1
                tab_n = 0
                cur_v = vid[a]
                cur_m = m
            sx0 = ax + (bx - ax) * p_lo
            sy0 = ay + (by - ay) * p_lo
            sx1 = ax + (bx - ax) * p_hi
            sy1 = ay + (by - ay) * p_hi
            ua = (
                ku[i]
                if p_lo == 0.0
                else locate_one(sx0, sy0, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
            )
            ub = (
                ku[i + 1]
                if p_hi == 1.0
                else locate_one(sx1, sy1, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
            )
            if ua == INVALID_IDX or ub == INVALID_IDX:
                continue
            width = p_hi - p_lo
            whole = p_lo == 0.0 and p_hi == 1.0
            if (whole and kcell[i] >= 0 and kcell[i] == kcell[i + 1]) or (
                not whole
                and ua == ub
                and _same_borderless_cell(sx0, sy0, sx1, sy1, x0, y0, inv1, nx1, ny1, sub, l1, l2)
            ):
                # No border can separate the ends (the usual case): one piece, no walk.
                tab_n = _add(tab_unit, tab_val, tab_n, ua, total * width, load_col, drop * width, fuel_ok)
                continue
            buf, units, fracs, npieces = segment_pieces(
                sx0, sy0, sx1, sy1, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
            )
            for q in range(npieces):
                f = fracs[q] * width
                if f > 0.0:
                    tab_n = _add(tab_unit, tab_val, tab_n, units[q], total * f, load_col, drop * f, fuel_ok)
    o_vid, o_mon, o_unit, o_val = _grow(o_vid, o_mon, o_unit, o_val, rows + tab_n)
    for k in range(tab_n):
        o_vid[rows] = cur_v
        o_mon[rows] = month0 + cur_m
        o_unit[rows] = tab_unit[k]
        o_val[rows] = tab_val[k]
        rows += 1
    return o_vid[:rows], o_mon[:rows], o_unit[:rows], o_val[:rows], stats
