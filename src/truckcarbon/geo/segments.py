"""Compiled splitting of straight segments at unit borders (Numba): one piece, or a walk of the border.

:func:`segment_pieces_into` is the one place that decides how a segment is
split: when both ends lie in one borderless grid cell, or no border can
separate them, the segment is one piece in the unit of its start (the usual
case); otherwise the border is walked (:mod:`truckcarbon.geo._border`). It is
called, per segment, by :func:`split_kernel` (rows per segment and unit),
:func:`path_kernel` (kilometres of a polyline per unit and class) and the
attribution kernel of :mod:`truckcarbon.trajectory`, which add up its pieces
each in their own way. The index arrays come in the order of
:meth:`truckcarbon.geo.index.LocatorIndex.kernel_args`.

The callers' loops neither allocate nor reassign the walk's scratch arrays per
segment, and the one-piece case writes nothing to them: its piece comes back
as a return value, which the callers add up apart from a walk's pieces.
Without these, the attribution measured 10% and :func:`path_kernel` 30% slower
(reference counting, and stores the compiler cannot tell apart from the
callers' own arrays).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from truckcarbon.geo._border import no_border_between, walk_pieces_into
from truckcarbon.geo.distance import haversine_km
from truckcarbon.geo.locate import INVALID_IDX, array_helper, cell_and_unit, locate_one


@array_helper
def segment_pieces_into(  # type: ignore[no-untyped-def]
    ax, ay, bx, by, ua, ub, same_cell, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """Units that segment a-b passes, in travel order, and the share of its parameter length in each.

    ``ua``/``ub`` are the units of the ends; ``same_cell`` is True when the
    caller knows both ends to lie in one borderless grid cell (equal cells
    ``>= 0`` of :func:`truckcarbon.geo.locate.cell_and_unit`). Then, or when no
    border can separate the ends (:func:`truckcarbon.geo._border.no_border_between`),
    the segment is one piece in ``ua``, share 1.0, without a walk; otherwise
    the leaves it crosses are walked (:func:`truckcarbon.geo._border.walk_pieces_into`).

    Returns ``(n, u, f)``: ``n`` pieces, the first of them in unit ``u`` with
    share ``f``; pieces ``1 .. n - 1`` are in ``units`` and ``fracs`` (a walk
    writes all ``n`` there; one piece writes nothing). ``n`` is ``-1 - c`` when
    the scratch arrays are too small for the segment's ``c`` crossings:
    ``buf`` needs ``c`` places and ``units`` and ``fracs`` ``c + 2``
    (:func:`walk_scratch`). Allocates nothing.
    """
    if same_cell or no_border_between(ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2):
        return 1, ua, 1.0
    n = walk_pieces_into(
        ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
    )
    if n < 0:
        return n, ua, 0.0
    return n, units[0], fracs[0]


@nb.njit(cache=True)
def walk_scratch(crossings):  # type: ignore[no-untyped-def]
    """Scratch arrays ``(buf, units, fracs)`` for :func:`segment_pieces_into`, with room for twice ``crossings``."""
    size = 2 * crossings + 2
    return np.empty(size, np.float64), np.empty(size, np.int32), np.empty(size, np.float64)


@nb.njit(cache=True)
def _reserve(seg, unit, dist, rows, extra):  # type: ignore[no-untyped-def]
    """Grow the three output columns (doubling) so that ``rows + extra`` fit."""
    if rows + extra <= seg.shape[0]:
        return seg, unit, dist
    cap = seg.shape[0] * 2 + extra
    seg2 = np.empty(cap, np.int64)
    unit2 = np.empty(cap, np.int32)
    dist2 = np.empty(cap, np.float64)
    seg2[:rows] = seg[:rows]
    unit2[:rows] = unit[:rows]
    dist2[:rows] = dist[:rows]
    return seg2, unit2, dist2


@nb.njit(cache=True)
def split_kernel(lon0, lat0, lon1, lat1, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Split segments at unit borders: returns (segment, unit index, distance_km) rows.

    The segment is the straight line between its ends in the index's
    longitude/latitude plane; its length is the haversine distance, shared
    among units in proportion to the parameter length inside each
    (:func:`segment_pieces_into`). Segments with an invalid end yield one row
    with unit INVALID_IDX and distance NaN.
    """
    n = lon0.shape[0]
    seg = np.empty(n + 16, np.int64)
    unit = np.empty(n + 16, np.int32)
    dist = np.empty(n + 16, np.float64)
    rows = 0
    buf, units, fracs = walk_scratch(31)
    for s in range(n):
        ax = lon0[s]
        ay = lat0[s]
        bx = lon1[s]
        by = lat1[s]
        ua = locate_one(ax, ay, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        ub = locate_one(bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        # Capacity invariant: room for rows + one row per remaining segment (cap starts at n + 16).
        if ua == INVALID_IDX or ub == INVALID_IDX:
            seg[rows] = s
            unit[rows] = INVALID_IDX
            dist[rows] = np.nan
            rows += 1
            continue
        total = haversine_km(ax, ay, bx, by)
        npieces, u, f = segment_pieces_into(
            ax, ay, bx, by, ua, ub, False, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
        if npieces < 0:  # more crossings than the scratch holds: larger scratch, walked again
            buf, units, fracs = walk_scratch(-1 - npieces)
            npieces, u, f = segment_pieces_into(
                ax, ay, bx, by, ua, ub, False, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units,
                fracs,
            )  # fmt: skip
        seg, unit, dist = _reserve(seg, unit, dist, rows + (n - s), npieces + 1)
        for q in range(npieces):
            seg[rows] = s
            unit[rows] = u if q == 0 else units[q]
            dist[rows] = total * (f if q == 0 else fracs[q])
            rows += 1
    return seg[:rows], unit[:rows], dist[:rows]


@nb.njit(cache=True)
def _path_into(  # type: ignore[no-untyped-def]
    acc, s0, lon, lat, cls, seg_km, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """Add the segments of :func:`path_kernel` from ``s0`` on into ``acc``; returns ``(s, c)``: ``(n - 1, 0)``
    when done, else the segment ``s`` whose ``c`` crossings the scratch arrays cannot hold (not added)."""
    n = lon.shape[0]
    known = seg_km.shape[0] > 0
    cb, ub = cell_and_unit(lon[s0], lat[s0], x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
    for s in range(s0, n - 1):
        ax = lon[s]
        ay = lat[s]
        bx = lon[s + 1]
        by = lat[s + 1]
        if bx == ax and by == ay:
            continue  # a parked fix: no distance, same unit
        ca = cb
        ua = ub
        cb, ub = cell_and_unit(bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges)
        if ua == INVALID_IDX or ub == INVALID_IDX:
            continue
        total = seg_km[s] if known else haversine_km(ax, ay, bx, by)
        c = cls[s]
        npieces, u, f = segment_pieces_into(
            ax, ay, bx, by, ua, ub, ca >= 0 and ca == cb, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges,
            buf, units, fracs,
        )  # fmt: skip
        if npieces == 1:  # one piece (usually without a walk)
            acc[u + 2, c] += total * f
            continue
        if npieces < 0:
            return s, -1 - npieces
        for q in range(npieces):
            acc[units[q] + 2, c] += total * fracs[q]
    return n - 1, 0


@nb.njit(cache=True)
def path_kernel(lon, lat, cls, seg_km, n_cls, n_units, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Kilometres of a polyline per (unit, class), split exactly at unit borders.

    Segment ``s`` runs from fix ``s`` to fix ``s + 1`` and belongs to class
    ``cls[s]`` (0 <= cls < n_cls) and is ``seg_km[s]`` long when ``seg_km`` is
    not empty, else its haversine length. Each fix is located once, with the
    borderless grid cell it lies in: consecutive fixes in one such cell need no
    walk. Returns an ``(n_units + 2, n_cls)`` array whose row ``u + 2`` holds
    unit index ``u`` (row 1: outside every unit, row 0: segments with an
    invalid end, which get no distance). The per-segment arithmetic is
    :func:`split_kernel`'s. A segment with more crossings than the walk's
    scratch holds resumes the pass, from that segment, with larger scratch.
    """
    acc = np.zeros((n_units + 2, n_cls), np.float64)
    s = 0
    crossings = 31
    while s < lon.shape[0] - 1:
        buf, units, fracs = walk_scratch(crossings)
        s, crossings = _path_into(
            acc, s, lon, lat, cls, seg_km, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
        )
    return acc
