"""Building the index: edge extraction, densifying, bucketing and grouping by hand; the shipped index's units."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import shapely

from truckcarbon.geo.build import (
    DENSIFY_DEG,
    _bucket,
    _canonical,
    _cells,
    _containing_pairs,
    _densify,
    _lowest_unit,
    _resolve_references,
    _unit_edges,
)
from truckcarbon.geo.index import L1_PER_DEGREE, SUB
from truckcarbon.geo.locate import OUTSIDE_IDX
from truckcarbon.geo.reference import cities


def test_unit_edges_are_the_ring_edges_of_every_polygon():
    """A square and a square with a hole: 4 and 4 + 4 edges, each with its unit, rings never joined."""
    square = shapely.box(0, 0, 1, 1)
    holed = shapely.Polygon([(2, 0), (5, 0), (5, 3), (2, 3)], [[(3, 1), (4, 1), (4, 2), (3, 2)]])
    ax, ay, bx, by, unit = _unit_edges([square, holed])
    assert unit.tolist() == [0] * 4 + [1] * 8
    length = np.hypot(bx - ax, by - ay)
    assert length.tolist() == [1.0] * 4 + [3.0] * 4 + [1.0] * 4
    assert not ((ax == 1) & (bx == 2)).any()  # no edge from the square to the next polygon


def test_canonical_orientation_puts_the_smaller_end_first():
    ax, ay, bx, by = (np.array(v, float) for v in ([1, 0, 2, 3], [0, 5, 1, 3], [0, 1, 2, 3], [9, 0, 0, 4]))
    cx, cy, dx, dy = _canonical(ax, ay, bx, by)
    assert list(zip(cx, cy, dx, dy, strict=True)) == [(0, 9, 1, 0), (0, 5, 1, 0), (2, 0, 2, 1), (3, 3, 3, 4)]


def test_densify_cuts_edges_into_equal_pieces_ending_exactly():
    """An edge 1 degree long at step 0.25 makes 4 pieces; both copies of a shared edge give the same pieces."""
    ax, ay, bx, by = np.array([0.0, 1.0]), np.array([0.0, 0.5]), np.array([1.0, 0.0]), np.array([0.5, 0.0])
    sx, sy, ex, ey, unit = _densify(ax, ay, bx, by, np.array([0, 1], np.int32), 0.25)
    assert unit.tolist() == [0] * 4 + [1] * 4
    assert np.array_equal(sx[:4], sx[4:]) and np.array_equal(ey[:4], ey[4:])  # the reversed copy: identical
    assert sx[:4].tolist() == [0.0, 0.25, 0.5, 0.75] and ex[:4].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert sy[:4].tolist() == [0.0, 0.125, 0.25, 0.375] and ey[3] == 0.5
    # A zero-length edge is dropped; one shorter than the step stays whole.
    two = np.array([2.0, 2.0])
    sx, sy, ex, ey, unit = _densify(two, two, np.array([2.0, 2.1]), two, np.array([5, 6], np.int32), 0.25)
    assert unit.tolist() == [6] and (sx[0], sy[0], ex[0], ey[0]) == (2.0, 2.0, 2.1, 2.0)
    assert DENSIFY_DEG == 1 / (2 * L1_PER_DEGREE * SUB)


def test_bucket_lists_every_cell_an_edge_box_touches():
    """Cells of 1 degree from (0, 0): an edge inside one cell, one across four, one along a cell line (margin)."""
    ax, ay, bx, by = (np.array(v, float) for v in ([0.2, 0.5, 2.0], [0.2, 0.5, 0.3], [0.8, 1.5, 2.0], [0.9, 1.5, 0.6]))
    edge, i, j = _bucket(ax, ay, bx, by, 0.0, 0.0, 1.0, 4, 4)
    got = sorted(zip(edge.tolist(), i.tolist(), j.tolist(), strict=True))
    assert got == [(0, 0, 0), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (2, 1, 0), (2, 2, 0)]


def test_cells_group_edges_by_cell_then_unit():
    cell = np.array([7, 3, 7, 7, 3], np.int64)
    unit = np.array([1, 0, 0, 1, 0], np.int32)
    edge = np.arange(5, dtype=np.int64)
    coords = [np.arange(5.0) + k for k in range(4)]
    c = _cells(cell, unit, edge, *coords)
    assert c.cell_id.tolist() == [3, 7] and c.n == 2
    assert c.hdr[:, 0].tolist() == [0, 1, 3]  # cell 3: one group; cell 7: two
    assert c.grp[:, 0].tolist() == [0, 0, 1, -1] and c.grp[:, 2].tolist() == [0, 2, 3, 5]
    assert c.edges[:, 0].tolist() == [1.0, 4.0, 2.0, 0.0, 3.0]  # edges of (3, 0), (7, 0), (7, 1)
    assert c.group_cell.tolist() == [0, 1, 1]


def test_reference_states_come_from_an_exact_test():
    """Two overlapping squares: their containing pairs, the lowest unit, and a cell's flags and base unit."""
    geoms = [shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)]
    for g in geoms:
        shapely.prepare(g)
    pts, units = _containing_pairs(np.array([0.5, 1.5, 2.5, 5.0]), np.array([1.0, 1.0, 1.0, 1.0]), geoms)
    assert sorted(zip(pts.tolist(), units.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1), (2, 1)]
    assert _lowest_unit(4, pts, units).tolist() == [0, 0, 1, OUTSIDE_IDX]
    # A cell whose reference (1.5, 1) lies in both; only unit 1 has edges in it: unit 1 flagged, unit 0 the base.
    c = _cells(np.array([0]), np.array([1], np.int32), np.array([0]), *(np.zeros(1) for _ in range(4)))
    c.ref[0] = (1.5, 1.0)
    _resolve_references(c, geoms)
    assert c.grp[0, :2].tolist() == [1, 1] and c.hdr[0, 1] == 0


def test_table_and_index_cover_the_same_mainland_units(wgs_locator):
    codes = cities()["city_adcode"].to_numpy()
    assert np.array_equal(np.sort(wgs_locator.adcodes), np.sort(codes))
    assert pc.all(cities()["is_mainland"]).as_py()
