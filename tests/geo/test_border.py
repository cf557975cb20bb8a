"""The border walk: crossings and pieces on a hand-built index, its short cuts and sort on the shipped one."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.geo._border import (
    _edgeless_box,
    _leaf_at,
    _same_borderless_cell,
    _sort_prefix,
    _walk_crossings,
    no_border_between,
    walk_pieces_into,
)

from .geokit import assert_agrees, near_borders


def scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full(n, -7.0), np.full(n, -7, np.int32), np.full(n, -7.0)


def test_leaf_at_finds_border_leaves_only(toy):
    """Global leaf (i2, j2): border leaves 0 and 1 are the eastern leaves of level-1 cell 1; all else has no edges."""
    assert _leaf_at(3, 0, toy.nx1, toy.ny1, toy.sub, toy.l1, toy.l2) == 0
    assert _leaf_at(3, 1, toy.nx1, toy.ny1, toy.sub, toy.l1, toy.l2) == 1
    for i2, j2 in [(0, 0), (1, 1), (2, 0), (2, 1), (4, 0), (-1, 0), (3, 2), (3, -1)]:
        assert _leaf_at(i2, j2, toy.nx1, toy.ny1, toy.sub, toy.l1, toy.l2) == -1, (i2, j2)


def test_walk_finds_the_border_crossings_at_their_parameter(toy):
    """A segment crossing x = 101.75 crosses both copies of the border edge (one per unit) at the same t."""
    buf = np.zeros(8)
    ax, ay, bx, by = 101.6, 30.25, 101.9, 30.25  # the border halfway
    assert _walk_crossings(ax, ay, bx, by, *toy.grid, toy.hdr, toy.grp, toy.edges, buf) == 2
    assert buf[:2] == pytest.approx([0.5, 0.5], rel=1e-12)
    ax, ay, bx, by = 101.55, 30.2, 101.85, 30.8  # into leaf 1 first: the border at t = 2/3, y = 30.6
    assert _walk_crossings(ax, ay, bx, by, *toy.grid, toy.hdr, toy.grp, toy.edges, buf) == 2
    assert buf[:2] == pytest.approx([2 / 3, 2 / 3], rel=1e-12)
    assert _walk_crossings(101.6, 30.25, 101.7, 30.75, *toy.grid, toy.hdr, toy.grp, toy.edges, buf) == 0
    # More crossings than buf holds: counted all the same, only the first stored.
    one = np.full(1, -1.0)
    assert _walk_crossings(101.6, 30.25, 101.9, 30.25, *toy.grid, toy.hdr, toy.grp, toy.edges, one) == 2
    assert one[0] == pytest.approx(0.5)


def test_walk_pieces_split_at_the_border(toy):
    """Pieces in travel order, with the shares of the parameter length on each side of the border."""
    buf, units, fracs = scratch(8)
    n = walk_pieces_into(101.55, 30.2, 101.85, 30.8, 0, 1, *toy.args, buf, units, fracs)
    assert n == 2 and units[:2].tolist() == [0, 1]
    assert fracs[:2] == pytest.approx([2 / 3, 1 / 3], rel=1e-12)
    n = walk_pieces_into(101.85, 30.8, 101.55, 30.2, 1, 0, *toy.args, buf, units, fracs)  # backwards
    assert n == 2 and units[:2].tolist() == [1, 0] and fracs[:2] == pytest.approx([1 / 3, 2 / 3], rel=1e-12)
    # No crossing: one piece, whole.
    n = walk_pieces_into(101.6, 30.25, 101.7, 30.75, 0, 0, *toy.args, buf, units, fracs)
    assert (n, units[0], fracs[0]) == (1, 0, 1.0)
    # Too little room for 2 crossings (they need 2 places in buf, 4 in units and fracs): -1 - 2.
    assert walk_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, *toy.args, *scratch(3)) == -3
    assert walk_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, *toy.args, *scratch(4)) == 2


def test_no_border_between_short_cuts(toy):
    """True only where no border can separate the ends: one borderless cell, or no edge in the leaf box."""
    grid = toy.grid
    assert no_border_between(100.1, 30.1, 100.9, 30.9, 0, 0, *grid)  # one level-1 cell without borders
    assert _same_borderless_cell(101.1, 30.1, 101.4, 30.4, *grid)  # one borderless leaf of a border cell
    assert not _same_borderless_cell(101.1, 30.1, 101.4, 30.6, *grid)  # two leaves
    assert not _same_borderless_cell(101.6, 30.1, 101.7, 30.2, *grid)  # one border leaf
    # Across cells, but the leaf box (x 100-101.5) holds no edge.
    assert _edgeless_box(100.5, 30.5, 101.25, 30.25, *grid)
    assert no_border_between(100.5, 30.5, 101.25, 30.25, 0, 0, *grid)
    # The box reaches the border leaves: the walk decides, even with both ends in unit 0.
    assert not _edgeless_box(101.25, 30.25, 101.6, 30.25, *grid)
    assert not no_border_between(101.25, 30.25, 101.6, 30.25, 0, 0, *grid)
    assert not no_border_between(101.6, 30.25, 101.9, 30.25, 0, 1, *grid)


def test_short_steps_near_borders_agree_with_shapely(gcj_locator, reference):
    """Fix-interval steps (0.1-3 km) near borders: the edgeless-box short cut and the walk both agree with Shapely.

    ``_edgeless_box`` lets a step whose leaf box holds no unit edge skip the walk;
    whenever it says so, the walk itself finds no crossing.
    """
    start, end = near_borders(reference, 23, 3000, 0.02, (0.001, 0.03))
    n = len(start)
    args = gcj_locator.kernel_args
    grid = (*args[:8],)  # x0, y0, inv1, nx1, ny1, sub, l1, l2
    hdr, grp, edges = args[9], args[10], args[11]
    boxed = np.array([_edgeless_box(*start[s], *end[s], *grid) for s in range(n)])
    for s in np.flatnonzero(boxed):
        crossings = _walk_crossings(*start[s], *end[s], *grid, hdr, grp, edges, np.empty(64))
        assert crossings == 0, s
    split = gcj_locator.split_segments(start[:, 0], start[:, 1], end[:, 0], end[:, 1])
    multi = sum(len(assert_agrees(split, reference, start, end, s)) > 1 for s in range(0, n, 3))
    assert boxed.sum() > 500 and (~boxed).sum() > 500 and multi > 50  # both paths and real crossings occur


def test_sort_prefix_sorts_in_place():
    """The walk's in-place sort of crossing parameters (insertion sort up to 16, heapsort above) against numpy."""
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 15, 16, 17, 40, 257):
        a = np.concatenate([rng.uniform(0, 1, n), rng.choice([0.25, 0.5], 5), np.full(4, 7.0)])
        head = a[: n + 5].copy()
        _sort_prefix(a, n + 5)
        assert np.array_equal(a[: n + 5], np.sort(head)), n
        assert (a[n + 5 :] == 7.0).all()  # beyond the prefix: untouched
