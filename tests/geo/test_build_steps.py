"""The compiled steps of the index build, on hand-built cells: reference points, leaf states, level-2 grids."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.geo._build_steps import _seg_point_dist2, choose_refs, fill_subgrids, leaf_states

from .geokit import BORDER_X, toy_index

# Level-1 border cell 0 of the toy index (geokit), before its leaves exist: one cell (x 101-102, y 30-31)
# holding the whole border edge once per unit, with a reference point inside unit 0.
EDGE = (BORDER_X, 30.0, BORDER_X, 31.0)
PARENT_REF = np.array([[101.2, 30.5]])
PARENT_HDR = np.array([[0, -1], [2, -1]], np.int64)
PARENT_GRP = np.array([[0, 1, 0], [1, 0, 1], [-1, 0, 2]], np.int64)
PARENT_EDGES = np.array([EDGE, EDGE])


def test_point_to_segment_distance_by_hand():
    assert _seg_point_dist2(0.0, 1.0, -1.0, 0.0, 1.0, 0.0) == 1.0  # above the middle
    assert _seg_point_dist2(3.0, 4.0, -1.0, 0.0, 0.0, 0.0) == 25.0  # nearest the end (0, 0)
    assert _seg_point_dist2(2.0, 2.0, 1.0, 1.0, 1.0, 1.0) == 2.0  # a degenerate segment: its point


def test_reference_points_keep_away_from_the_edges():
    """Candidates on a 7 x 7 pattern from the centre out: the first far enough from every edge wins."""
    hdr = np.array([[0, -1], [1, -1]], np.int64)
    grp = np.array([[0, 0, 0], [-1, 0, 1]], np.int64)
    edges = np.array([[0.5, 0.0, 0.5, 1.0]])  # the cell's centre line
    ref = np.zeros((1, 2))
    choose_refs(np.array([0.0]), np.array([0.0]), 1.0, hdr, grp, edges, 0.1, ref)
    assert ref[0].tolist() == [2.5 / 7, 3.5 / 7]  # next column to the centre's, 0.14 away
    # Nothing is far enough: the farthest candidate, in an outer column.
    choose_refs(np.array([0.0]), np.array([0.0]), 1.0, hdr, grp, edges, 10.0, ref)
    assert ref[0, 0] in (pytest.approx(0.5 / 7), pytest.approx(6.5 / 7)) and ref[0, 1] == 3.5 / 7
    # A cell with no edges takes its centre.
    no_edges = np.array([[0, -1], [0, -1]], np.int64)
    choose_refs(np.array([3.0]), np.array([4.0]), 1.0, no_edges, grp, edges, 0.1, ref)
    assert ref[0].tolist() == [3.5, 4.5]


def test_leaf_states_follow_from_the_parent_cell():
    """Flags of a leaf's groups and its base unit, by the crossing parity from the parent's reference point."""
    toy = toy_index()
    leaf_ref = np.array([[101.9, 30.25], [101.3, 30.75]])
    # Leaf 0 holds edges of both units; leaf 1 only of unit 1 (unit 0, containing its reference, is its base).
    leaf_hdr = np.array([[0, 99], [2, 99], [3, 99]], np.int64)
    leaf_grp = np.array([[0, 9, 0], [1, 9, 1], [1, 9, 2], [-1, 0, 3]], np.int64)
    leaf_states(np.array([0, 0]), leaf_ref, leaf_hdr, leaf_grp, PARENT_REF, PARENT_HDR, PARENT_GRP, PARENT_EDGES, 2)
    assert leaf_grp[:3, 1].tolist() == [0, 1, 0]  # leaf 0's reference is east of the border: in unit 1 only
    assert leaf_hdr[:2, 1].tolist() == [-1, 0]
    # The toy index's leaves were built by hand with the same states (their reference points are west).
    hdr, grp = toy.hdr.copy(), toy.grp.copy()
    grp[:-1, 1] = 9
    leaf_states(np.array([0, 0]), toy.ref, hdr, grp, PARENT_REF, PARENT_HDR, PARENT_GRP, PARENT_EDGES, 2)
    assert np.array_equal(grp, toy.grp) and np.array_equal(hdr, toy.hdr)


def test_fill_subgrids_gives_leaves_or_the_unit_of_their_centre():
    """The toy index's level-2 grid: western sub-cells unit 0 (by the parent's geometry), eastern ones leaves."""
    toy = toy_index()
    leaf_of = np.array([[[-1, 0], [-1, 1]]], np.int64)  # (cell, jj, ii): border leaves 0 and 1 in column ii = 1
    parent = (PARENT_REF, PARENT_HDR, PARENT_GRP, PARENT_EDGES)
    l2 = fill_subgrids(np.array([[1, 0]]), 100.0, 30.0, 1.0, 2, leaf_of, *parent)
    assert l2.tolist() == toy.l2.tolist() == [0, -2, 0, -3]
    # With the border at x = 101.1, west of every sub-cell centre (and of no leaf), they are all unit 1.
    edges = PARENT_EDGES.copy()
    edges[:, [0, 2]] = 101.1
    parent = (np.array([[101.05, 30.5]]), PARENT_HDR, PARENT_GRP, edges)
    l2 = fill_subgrids(np.array([[1, 0]]), 100.0, 30.0, 1.0, 2, np.full_like(leaf_of, -1), *parent)
    assert l2.tolist() == [1, 1, 1, 1]
