"""Point location: the compiled kernels on a hand-built index, and the shipped index against Shapely."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from truckcarbon.geo.crs import gcj02_to_wgs84, wgs84_to_gcj02
from truckcarbon.geo.locate import (
    INVALID_IDX,
    OUTSIDE_IDX,
    cell_and_unit,
    cell_unit,
    cells_kernel,
    crosses,
    group_inside,
    locate_kernel,
    locate_one,
)
from truckcarbon.geo.locator import OUTSIDE
from truckcarbon.geo.reference import cities

from .geokit import BORDER_X

BAND_M = 1.0

# (point, unit, borderless cell) in the toy index (geokit): cell 0 is level-1 cell 0; cells 4 and 8 are the
# western leaves of border cell 1 (level-1 cells first, then leaves row by row: 2 + jj * 4 + 2 + ii).
TOY_POINTS = [
    ((100.5, 30.5), 0, 0),
    ((101.25, 30.25), 0, 4),
    ((101.25, 30.75), 0, 8),
    ((101.7, 30.25), 0, -1),  # border leaf, west of the border
    ((101.8, 30.25), 1, -1),  # border leaf, east of it
    ((101.8, 30.75), 1, -1),
    ((101.99, 30.99), 1, -1),
    ((102.5, 30.5), OUTSIDE_IDX, -1),  # beyond the grid
    ((99.9, 30.5), OUTSIDE_IDX, -1),
    ((101.5, 31.2), OUTSIDE_IDX, -1),
    ((math.nan, 30.5), INVALID_IDX, -1),
    ((101.2, math.inf), INVALID_IDX, -1),
    ((200.0, 30.5), INVALID_IDX, -1),
    ((101.2, -90.5), INVALID_IDX, -1),
    ((0.0, 0.0), INVALID_IDX, -1),  # the fix of faulty receivers
]


def test_crossing_rule_is_half_open():
    """Segment p-r against edge a-b: a proper crossing counts, a miss does not, touching counts on one side only."""
    edge = (1.0, 0.0, 1.0, 2.0)
    assert crosses(0.5, 1.0, 1.5, 1.0, *edge)
    assert crosses(1.5, 1.0, 0.5, 1.0, *edge)  # either direction
    assert not crosses(0.5, 1.0, 0.9, 1.0, *edge)  # stops short
    assert not crosses(0.5, 3.0, 1.5, 3.0, *edge)  # passes beyond the edge's end
    # An end exactly on the edge counts on the edge's non-negative side: p on it crosses from one side only.
    assert crosses(1.0, 1.0, 0.5, 1.0, *edge) != crosses(1.0, 1.0, 1.5, 1.0, *edge)
    # Through the vertex shared by two consecutive edges: counted once.
    upper = (1.0, 2.0, 1.0, 4.0)
    assert crosses(0.5, 2.0, 1.5, 2.0, *edge) + crosses(0.5, 2.0, 1.5, 2.0, *upper) == 1


def test_toy_points_by_hand(toy):
    """Every branch of the lookup: level-1 unit, borderless leaf, border leaf (both sides), outside, invalid."""
    for (x, y), unit, cell in TOY_POINTS:
        assert locate_one(x, y, *toy.args) == unit, (x, y)
        assert cell_and_unit(x, y, *toy.args) == (cell, unit), (x, y)
    lon = np.array([p[0][0] for p in TOY_POINTS])
    lat = np.array([p[0][1] for p in TOY_POINTS])
    out = np.full(lon.size, 99, np.int32)
    locate_kernel(lon, lat, out, *toy.args)
    assert out.tolist() == [p[1] for p in TOY_POINTS]
    units, cells = np.full(lon.size, 99, np.int32), np.full(lon.size, 99, np.int64)
    cells_kernel(lon, lat, units, cells, *toy.args)
    assert units.tolist() == [p[1] for p in TOY_POINTS] and cells.tolist() == [p[2] for p in TOY_POINTS]


def test_border_leaf_answers_by_crossing_parity(toy):
    """In a border leaf: inside a unit iff its flag at the reference XOR an odd number of its edges crossed."""
    rx, ry = toy.ref[0]
    for x in np.linspace(101.5, 102.0, 41)[:-1]:
        if x == BORDER_X:
            continue  # on the border: below
        for y in (30.01, 30.25, 30.49):
            west = x < BORDER_X
            assert group_inside(0, x, y, rx, ry, toy.grp, toy.edges) == west
            assert group_inside(1, x, y, rx, ry, toy.grp, toy.edges) == (not west)
            assert cell_unit(0, x, y, toy.ref, toy.hdr, toy.grp, toy.edges) == (0 if west else 1)
    # A point exactly on the border is inside exactly one of the two units.
    on = [group_inside(g, BORDER_X, 30.3, rx, ry, toy.grp, toy.edges) for g in (0, 1)]
    assert sum(on) == 1


def test_base_unit_and_lowest_unit_win(toy):
    """A leaf's base unit (containing the whole leaf) competes with the groups' units: the lowest index wins."""
    hdr, grp = toy.hdr.copy(), toy.grp.copy()
    hdr[0, 1] = 5  # unit 5 contains all of leaf 0 (an overlap): units 0 and 1 are lower and win
    assert cell_unit(0, 101.7, 30.25, toy.ref, hdr, grp, toy.edges) == 0
    assert cell_unit(0, 101.8, 30.25, toy.ref, hdr, grp, toy.edges) == 1
    grp[0, 1] = 0  # unit 0 no longer contains the reference: west of the border only unit 5 is left
    assert cell_unit(0, 101.7, 30.25, toy.ref, hdr, grp, toy.edges) == 5
    hdr[0, 1] = -1  # and with no base unit, nothing: outside
    assert cell_unit(0, 101.7, 30.25, toy.ref, hdr, grp, toy.edges) == OUTSIDE_IDX


def _assert_matches_reference(got, want, gx, gy, reference) -> None:
    """Every disagreement must lie within BAND_M of a border (measured on the GCJ-02 polygons)."""
    bad = np.flatnonzero(got != want)
    if bad.size:
        d = reference.border_distance_m(gx[bad], gy[bad])
        far = bad[d > BAND_M]
        assert far.size == 0, f"{far.size} mismatches farther than {BAND_M} m, e.g. {gx[far[:3]]}, {gy[far[:3]]}"


@pytest.mark.parametrize("crs", ["gcj02", "wgs84"])
def test_million_random_points_agree_with_shapely(crs, gcj_locator, wgs_locator, reference):
    locator = gcj_locator if crs == "gcj02" else wgs_locator
    rng = np.random.default_rng(20240601)
    n = 1_000_000
    x = rng.uniform(72.0, 136.0, n)
    y = rng.uniform(3.0, 54.0, n)
    got = locator.locate(x, y)
    gx, gy = (x, y) if crs == "gcj02" else wgs84_to_gcj02(x, y)
    want = reference.locate(gx, gy)
    assert (want > 0).sum() > 250_000  # the box is about 30% land of the units
    _assert_matches_reference(got, want, gx, gy, reference)


@pytest.mark.slow
@pytest.mark.parametrize("crs", ["gcj02", "wgs84"])
def test_points_close_to_borders_agree_with_shapely(crs, gcj_locator, wgs_locator, reference):
    """Points scattered 1 cm .. 2 km around border vertices: the hard cases."""
    locator = gcj_locator if crs == "gcj02" else wgs_locator
    coords = shapely.get_coordinates(np.asarray(reference.geoms, dtype=object))
    rng = np.random.default_rng(7)
    n = 300_000
    pick = coords[rng.integers(0, len(coords), n)]
    r = 10 ** rng.uniform(-2, 3.3, n) / 111_000.0
    theta = rng.uniform(0, 2 * np.pi, n)
    gx = pick[:, 0] + r * np.cos(theta)
    gy = pick[:, 1] + r * np.sin(theta)
    if crs == "gcj02":
        got = locator.locate(gx, gy)
    else:
        wx, wy = gcj02_to_wgs84(gx, gy)
        got = locator.locate(wx, wy)
        gx, gy = wgs84_to_gcj02(wx, wy)
    want = reference.locate(gx, gy)
    assert len(np.unique(want)) > 300
    _assert_matches_reference(got, want, gx, gy, reference)


def test_every_unit_contains_its_inner_point_and_centroid(wgs_locator, gcj_locator, reference):
    t = cities()
    codes = t["city_adcode"].to_numpy()
    inner = wgs_locator.locate(t["inner_lon"].to_numpy(), t["inner_lat"].to_numpy())
    assert np.array_equal(inner, codes)
    gx, gy = wgs84_to_gcj02(t["inner_lon"].to_numpy(), t["inner_lat"].to_numpy())
    assert np.array_equal(gcj_locator.locate(gx, gy), codes)
    # Centroids of convex-enough units lie inside them; for the others the inner point stands in.
    cx, cy = t["centroid_lon"].to_numpy(), t["centroid_lat"].to_numpy()
    gcx, gcy = wgs84_to_gcj02(cx, cy)
    inside = reference.locate(gcx, gcy) == codes
    assert inside.sum() > 300
    assert np.array_equal(wgs_locator.locate(cx[inside], cy[inside]), codes[inside])


def test_points_exactly_on_a_shared_border_go_to_one_neighbour(gcj_locator, reference):
    """Vertices and edge midpoints of a border between two units land in one of the two.

    Ends of border lines can be tri-points: they land in some unit that touches them.
    """
    by_code = dict(zip(reference.adcodes.tolist(), reference.geoms, strict=True))
    pairs = [(110100, 131000), (130100, 130500), (420100, 421100), (440100, 441900), (510100, 511400)]
    for a, b in pairs:
        shared = shapely.line_merge(shapely.intersection(shapely.boundary(by_code[a]), shapely.boundary(by_code[b])))
        lines = [g for g in shapely.get_parts(shared) if g.geom_type == "LineString"]
        assert lines, (a, b)
        inner, ends = [], []
        for line in lines:
            c = shapely.get_coordinates(line)
            inner += [c[1:-1], (c[:-1] + c[1:]) / 2]
            ends += [c[:1], c[-1:]]
        xy = np.vstack(inner)
        assert len(xy) > 20, (a, b)
        got = gcj_locator.locate(xy[:, 0], xy[:, 1])
        assert np.isin(got, [a, b]).all(), (a, b, np.unique(got))
        assert (got == a).any() and (got == b).any()
        end_xy = np.vstack(ends)
        for code, (x, y) in zip(gcj_locator.locate(end_xy[:, 0], end_xy[:, 1]), end_xy, strict=True):
            assert code != OUTSIDE
            assert shapely.intersects(by_code[int(code)], shapely.Point(x, y))


def test_points_just_either_side_of_a_border(gcj_locator, wgs_locator, reference):
    """Hand-picked borders: 5 m to each side of shared edges lands on that side, in both CRSs."""
    by_code = dict(zip(reference.adcodes.tolist(), reference.geoms, strict=True))
    pairs = [(110100, 120100), (310100, 320500), (440300, 441900), (500000, 511600), (410100, 410200)]
    for a, b in pairs:
        shared = shapely.intersection(shapely.boundary(by_code[a]), shapely.boundary(by_code[b]))
        segs = []
        for line in shapely.get_parts(shapely.line_merge(shared)):
            if line.geom_type == "LineString":
                c = shapely.get_coordinates(line)
                segs.append(np.hstack([c[:-1], c[1:]]))
        s = np.vstack(segs)
        s = s[np.hypot(s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]) > 1e-4][::7]  # edges longer than ~10 m
        assert len(s) > 5, (a, b)
        mid = (s[:, :2] + s[:, 2:]) / 2
        d = s[:, 2:] - s[:, :2]
        normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.hypot(d[:, 0], d[:, 1])[:, None]
        off = 5.0 / 111_000.0
        for sign in (1.0, -1.0):
            p = mid + sign * off * normal
            want = reference.locate(p[:, 0], p[:, 1])
            assert set(np.unique(want)) <= {a, b}
            assert np.array_equal(gcj_locator.locate(p[:, 0], p[:, 1]), want)
            wx, wy = gcj02_to_wgs84(p[:, 0], p[:, 1])
            assert np.array_equal(wgs_locator.locate(wx, wy), want)
        left = reference.locate(*(mid + off * normal).T)
        right = reference.locate(*(mid - off * normal).T)
        assert (left != right).all()  # each probe pair straddles the border


def test_points_in_one_borderless_cell_have_no_border_between_them(wgs_locator):
    """locate_cells: equal cells >= 0 mean one unit and a straight line that crosses no border."""
    rng = np.random.default_rng(5)
    lon = rng.uniform(100.0, 122.0, 40000)
    lat = rng.uniform(22.0, 42.0, 40000)
    units, cells = wgs_locator.locate_cells(lon, lat)
    assert np.array_equal(units, wgs_locator.locate_units(lon, lat))
    # Pair each point with a neighbour 0-3 km away; keep the pairs in one borderless cell.
    lon2 = lon + rng.uniform(-0.03, 0.03, lon.size)
    lat2 = lat + rng.uniform(-0.03, 0.03, lat.size)
    units2, cells2 = wgs_locator.locate_cells(lon2, lat2)
    same = (cells >= 0) & (cells == cells2)
    assert same.sum() > 1000 and (cells < 0).sum() > 100  # both kinds occur
    assert np.array_equal(units[same], units2[same])
    split = wgs_locator.split_segments(lon[same], lat[same], lon2[same], lat2[same])
    assert split.segment.size == int(same.sum())  # one piece per segment: no border crossed
