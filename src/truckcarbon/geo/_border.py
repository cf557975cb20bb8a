"""The border walk (Numba): the crossings of a straight segment with unit edges, and the pieces between them.

:func:`walk_pieces_into` walks the leaf grid cells a segment passes through
(Amanatides-Woo), intersects the segment with the unit edges stored in each
border leaf, sorts the crossings and locates each stretch between them: the
units the segment passes, in travel order, and the share of its length in
each. :func:`no_border_between` is the cheap test that makes the walk
unnecessary (both ends in one borderless cell, or no edge in the segment's
leaf box). :mod:`truckcarbon.geo.segments` decides between the two for every
caller; the index layout is described in :mod:`truckcarbon.geo.index`.
"""

from __future__ import annotations

import math

from truckcarbon.geo.locate import OUTSIDE_IDX, array_helper, crosses, locate_one


@array_helper
def _leaf_at(i2, j2, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """Boundary leaf index of global leaf cell (i2, j2), or -1 when it has no edges."""
    i = i2 // sub
    j = j2 // sub
    if i < 0 or j < 0 or i >= nx1 or j >= ny1:
        return -1
    v = l1[j * nx1 + i]
    if v >= OUTSIDE_IDX:
        return -1
    b = -2 - v
    w = l2[b * sub * sub + (j2 - j * sub) * sub + (i2 - i * sub)]
    if w >= OUTSIDE_IDX:
        return -1
    return -2 - w


@array_helper
def _walk_crossings(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, hdr, grp, edges, buf):  # type: ignore[no-untyped-def]
    """The number of crossings of segment a-b with unit edges; the first ``len(buf)`` of their parameters
    t in (0, 1) go into ``buf``.

    Walks the leaf grid cells the segment passes through (Amanatides-Woo) and
    intersects the segment with the edges stored in each boundary leaf.
    """
    inv2 = inv1 * sub
    u0 = (ax - x0) * inv2
    v0 = (ay - y0) * inv2
    u1 = (bx - x0) * inv2
    v1 = (by - y0) * inv2
    i2 = int(math.floor(u0))
    j2 = int(math.floor(v0))
    i_end = int(math.floor(u1))
    j_end = int(math.floor(v1))
    du = u1 - u0
    dv = v1 - v0
    step_i = 1 if du > 0 else -1
    step_j = 1 if dv > 0 else -1
    big = 1e300
    t_dx = abs(1.0 / du) if du != 0.0 else big
    t_dy = abs(1.0 / dv) if dv != 0.0 else big
    if du > 0:
        t_mx = (math.floor(u0) + 1.0 - u0) * t_dx
    elif du < 0:
        t_mx = (u0 - math.floor(u0)) * t_dx
    else:
        t_mx = big
    if dv > 0:
        t_my = (math.floor(v0) + 1.0 - v0) * t_dy
    elif dv < 0:
        t_my = (v0 - math.floor(v0)) * t_dy
    else:
        t_my = big
    count = 0
    n_steps = abs(i_end - i2) + abs(j_end - j2)
    for _ in range(n_steps + 1):
        k = _leaf_at(i2, j2, nx1, ny1, sub, l1, l2)
        if k >= 0:
            for e in range(grp[hdr[k, 0], 2], grp[hdr[k + 1, 0], 2]):
                ex0 = edges[e, 0]
                ey0 = edges[e, 1]
                ex1 = edges[e, 2]
                ey1 = edges[e, 3]
                if crosses(ax, ay, bx, by, ex0, ey0, ex1, ey1):
                    ta = (ex1 - ex0) * (ay - ey0) - (ey1 - ey0) * (ax - ex0)
                    tb = (ex1 - ex0) * (by - ey0) - (ey1 - ey0) * (bx - ex0)
                    if count < buf.shape[0]:
                        buf[count] = ta / (ta - tb)
                    count += 1
        if i2 == i_end and j2 == j_end:
            break
        if t_mx < t_my:
            t_mx += t_dx
            i2 += step_i
        else:
            t_my += t_dy
            j2 += step_j
    return count


@array_helper
def _same_borderless_cell(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when both ends lie in one grid cell (level 1 or leaf) that no border touches."""
    i = int(math.floor((ax - x0) * inv1))
    j = int(math.floor((ay - y0) * inv1))
    if i != int(math.floor((bx - x0) * inv1)) or j != int(math.floor((by - y0) * inv1)):
        return False
    if i < 0 or j < 0 or i >= nx1 or j >= ny1:
        return False
    if l1[j * nx1 + i] >= OUTSIDE_IDX:
        return True
    inv2 = inv1 * sub
    i2 = int(math.floor((ax - x0) * inv2))
    j2 = int(math.floor((ay - y0) * inv2))
    if i2 != int(math.floor((bx - x0) * inv2)) or j2 != int(math.floor((by - y0) * inv2)):
        return False
    return _leaf_at(i2, j2, nx1, ny1, sub, l1, l2) < 0


EDGELESS_BOX_LEAVES = 16  # segments whose leaf box is larger are walked


@array_helper
def _edgeless_box(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when no leaf of the segment's bounding box in the leaf grid holds a unit edge.

    The leaves :func:`_walk_crossings` walks lie in that box (same leaf
    coordinates), so the walk would find no crossing: a short step among
    borderless leaves of a border cell skips it with the same result. Boxes of
    more than ``EDGELESS_BOX_LEAVES`` leaves answer False (the walk decides).
    """
    inv2 = inv1 * sub
    ia = int(math.floor((ax - x0) * inv2))
    ib = int(math.floor((bx - x0) * inv2))
    ja = int(math.floor((ay - y0) * inv2))
    jb = int(math.floor((by - y0) * inv2))
    i_lo = min(ia, ib)
    i_hi = max(ia, ib)
    j_lo = min(ja, jb)
    j_hi = max(ja, jb)
    if (i_hi - i_lo + 1) * (j_hi - j_lo + 1) > EDGELESS_BOX_LEAVES:
        return False
    for j2 in range(j_lo, j_hi + 1):
        for i2 in range(i_lo, i_hi + 1):
            if _leaf_at(i2, j2, nx1, ny1, sub, l1, l2) >= 0:
                return False
    return True


@array_helper
def no_border_between(ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2):  # type: ignore[no-untyped-def]
    """True when no border can separate the ends of segment a-b (units ``ua``, ``ub``): both in one
    borderless cell, or no unit edge in its leaf box. The segment is then one piece in ``ua``: what
    :func:`walk_pieces_into` would find, without the walk (the usual case)."""
    return (ua == ub and _same_borderless_cell(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2)) or _edgeless_box(
        ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2
    )


@array_helper
def _sort_prefix(a, n):  # type: ignore[no-untyped-def]
    """Sort ``a[:n]`` in place: insertion sort for the few crossings of a step, heapsort for many."""
    if n <= 16:
        for i in range(1, n):
            v = a[i]
            k = i - 1
            while k >= 0 and a[k] > v:
                a[k + 1] = a[k]
                k -= 1
            a[k + 1] = v
        return
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(a, start, n)
    for end in range(n - 1, 0, -1):
        v = a[0]
        a[0] = a[end]
        a[end] = v
        _sift_down(a, 0, end)


@array_helper
def _sift_down(a, root, end):  # type: ignore[no-untyped-def]
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and a[child + 1] > a[child]:
            child += 1
        if a[root] >= a[child]:
            return
        v = a[root]
        a[root] = a[child]
        a[child] = v
        root = child


@array_helper
def walk_pieces_into(  # type: ignore[no-untyped-def]
    ax, ay, bx, by, ua, ub, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges, buf, units, fracs
):
    """Units that segment a-b passes, in travel order, and the share of its parameter length in each, by
    walking the leaves it crosses, into the given buffers (``ua``/``ub``: the units of the ends).

    Between consecutive crossings (sorted), the unit is that of the stretch's
    midpoint; consecutive stretches in one unit make one piece.

    Returns the number of pieces in ``units`` and ``fracs``, or ``-1 - c`` when
    the segment's ``c`` crossings do not fit: ``buf`` needs ``c`` places and
    ``units`` and ``fracs`` ``c + 2`` (allocates nothing, so a caller's loop
    counts no references).
    """
    cnt = _walk_crossings(ax, ay, bx, by, x0, y0, inv1, nx1, ny1, sub, l1, l2, hdr, grp, edges, buf)
    if cnt > buf.shape[0] or cnt + 2 > units.shape[0] or cnt + 2 > fracs.shape[0]:
        return -1 - cnt
    if cnt == 0:
        units[0] = ua
        fracs[0] = 1.0
        return 1
    _sort_prefix(buf, cnt)
    n = 0
    prev_t = 0.0
    cur_u = ua
    cur_frac = 0.0
    for q in range(cnt + 1):
        t = buf[q] if q < cnt else 1.0
        t = min(max(t, 0.0), 1.0)
        if t <= prev_t:
            continue
        if q == 0:
            u = ua
        elif q == cnt:
            u = ub
        else:
            tm = 0.5 * (prev_t + t)
            u = locate_one(
                ax + (bx - ax) * tm, ay + (by - ay) * tm, x0, y0, inv1, nx1, ny1, sub, l1, l2, ref, hdr, grp, edges
            )
        if u != cur_u:
            if cur_frac > 0.0:
                units[n] = cur_u
                fracs[n] = cur_frac
                n += 1
            cur_u = u
            cur_frac = 0.0
        cur_frac += t - prev_t
        prev_t = t
    units[n] = cur_u
    fracs[n] = cur_frac
    return n + 1
