"""Compiled steps of the locator index build (Numba): reference points, leaf states and level-2 grids.

:func:`truckcarbon.geo.build.build_index` groups the unit edges into border
cells with NumPy and Shapely; these kernels then fill in what the point
location of :mod:`truckcarbon.geo.locate` reads: a reference point per cell
away from every edge (:func:`choose_refs`), the inside-flags and base unit of
each leaf derived from its parent cell (:func:`leaf_states`), and the unit (or
border leaf) of every sub-cell of the level-2 grids (:func:`fill_subgrids`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from truckcarbon.geo.locate import cell_unit, group_inside


@nb.njit(cache=True)
def _seg_point_dist2(px, py, ax, ay, bx, by):  # type: ignore[no-untyped-def]
    """Squared distance from point p to segment a-b (in the plane of the coordinates)."""
    dx = bx - ax
    dy = by - ay
    ll = dx * dx + dy * dy
    t = 0.0
    if ll > 0.0:
        t = ((px - ax) * dx + (py - ay) * dy) / ll
        t = min(max(t, 0.0), 1.0)
    qx = ax + t * dx - px
    qy = ay + t * dy - py
    return qx * qx + qy * qy


@nb.njit(cache=True)
def choose_refs(cx0, cy0, size, hdr, grp, edges, min_dist, ref):  # type: ignore[no-untyped-def]
    """Pick, per cell, a reference point inside the cell away from every edge (into ``ref``).

    Candidates form a 7x7 pattern over the cell interior, tried from the centre
    outwards; the first at least ``min_dist`` from all the cell's edges wins,
    else the candidate farthest from them.
    """
    order = np.array([3, 2, 4, 1, 5, 0, 6])
    md2 = min_dist * min_dist
    for k in range(cx0.shape[0]):
        best_d = -1.0
        done = False
        e0 = grp[hdr[k, 0], 2]
        e1 = grp[hdr[k + 1, 0], 2]
        for a in range(7):
            if done:
                break
            for b in range(7):
                qx = cx0[k] + size * (order[a] + 0.5) / 7.0
                qy = cy0[k] + size * (order[b] + 0.5) / 7.0
                d = 1e300
                for e in range(e0, e1):
                    d = min(d, _seg_point_dist2(qx, qy, edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]))
                if d > best_d:
                    best_d = d
                    ref[k, 0] = qx
                    ref[k, 1] = qy
                if d >= md2:
                    done = True
                    break


@nb.njit(cache=True)
def fill_subgrids(l1_cells, x0, y0, size1, sub, leaf_of, ref, hdr, grp, edges):  # type: ignore[no-untyped-def]
    """Second-level grids of the border cells of level 1.

    ``leaf_of[b, jj, ii]`` is the border-leaf index of each sub-cell or -1;
    sub-cells without edges take the unit of their centre, resolved exactly
    with the level-1 cell's own geometry.
    """
    nb1 = l1_cells.shape[0]
    out = np.empty(nb1 * sub * sub, np.int32)
    size2 = size1 / sub
    for b in range(nb1):
        cx = x0 + l1_cells[b, 0] * size1
        cy = y0 + l1_cells[b, 1] * size1
        for jj in range(sub):
            for ii in range(sub):
                lf = leaf_of[b, jj, ii]
                if lf >= 0:
                    out[b * sub * sub + jj * sub + ii] = -2 - lf
                else:
                    px = cx + (ii + 0.5) * size2
                    py = cy + (jj + 0.5) * size2
                    out[b * sub * sub + jj * sub + ii] = cell_unit(b, px, py, ref, hdr, grp, edges)
    return out


@nb.njit(cache=True)
def leaf_states(leaf_parent, leaf_ref, leaf_hdr, leaf_grp, ref, hdr, grp, edges, n_units):  # type: ignore[no-untyped-def]
    """Fill the inside-flags of each leaf group and each leaf's base unit, from its parent cell.

    For the leaf reference point ``q`` in parent cell ``b``: unit ``u`` contains
    ``q`` iff ``flag_u(r_b)`` XOR parity of crossings of ``q-r_b`` with ``u``'s
    edges in ``b`` (the parent's base unit contains ``q`` too).
    """
    inside_at = np.zeros(n_units, np.uint8)
    for k in range(leaf_parent.shape[0]):
        b = leaf_parent[k]
        qx = leaf_ref[k, 0]
        qy = leaf_ref[k, 1]
        rx = ref[b, 0]
        ry = ref[b, 1]
        touched = np.empty(hdr[b + 1, 0] - hdr[b, 0] + 1, np.int64)
        nt = 0
        if hdr[b, 1] >= 0:
            inside_at[hdr[b, 1]] = 1
            touched[nt] = hdr[b, 1]
            nt += 1
        for g in range(hdr[b, 0], hdr[b + 1, 0]):
            if group_inside(g, qx, qy, rx, ry, grp, edges):
                inside_at[grp[g, 0]] = 1
                touched[nt] = grp[g, 0]
                nt += 1
        for g in range(leaf_hdr[k, 0], leaf_hdr[k + 1, 0]):
            c = leaf_grp[g, 0]
            leaf_grp[g, 1] = inside_at[c] == 1
            inside_at[c] = 2  # has edges in the leaf: not a base candidate
        best = -1
        for t in range(nt):
            c = touched[t]
            if inside_at[c] == 1 and (best < 0 or c < best):
                best = c
        leaf_hdr[k, 1] = best
        for t in range(nt):
            inside_at[touched[t]] = 0
        for g in range(leaf_hdr[k, 0], leaf_hdr[k + 1, 0]):
            inside_at[leaf_grp[g, 0]] = 0
