"""Segments split at unit borders: the one-piece-or-walk decision by hand, the splits against Shapely, invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.geo.locator import INVALID, OUTSIDE
from truckcarbon.geo.segments import path_kernel, segment_pieces_into, split_kernel, walk_scratch

from .geokit import as_dict, assert_agrees, haversine_km, near_borders, shapely_split


def scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.full(n, -7.0), np.full(n, -7, np.int32), np.full(n, -7.0)


def test_a_segment_across_one_border_is_two_pieces(toy):
    """The border x = 101.75 two thirds of the way: pieces in units 0 then 1, shares 2/3 and 1/3, summing to 1."""
    buf, units, fracs = scratch(8)
    n, u, f = segment_pieces_into(101.55, 30.2, 101.85, 30.8, 0, 1, False, *toy.args, buf, units, fracs)
    assert (n, u) == (2, 0) and f == pytest.approx(2 / 3, rel=1e-12)
    assert units[:2].tolist() == [0, 1] and fracs[0] == f and fracs[1] == pytest.approx(1 / 3, rel=1e-12)
    # Their kilometres, as the callers take them: each side's share of the haversine length, summing to it.
    total = haversine_km(101.55, 30.2, 101.85, 30.8)
    km = split_kernel(*(np.array([v]) for v in (101.55, 30.2, 101.85, 30.8)), *toy.args)
    assert km[0].tolist() == [0, 0] and km[1].tolist() == [0, 1]
    assert km[2] == pytest.approx([total * 2 / 3, total / 3], rel=1e-9)
    assert km[2].sum() == pytest.approx(total, rel=1e-12)


def test_one_piece_needs_no_walk_and_writes_nothing(toy):
    """Both ends in one borderless cell (the caller says so), or no edge near: one whole piece, scratch untouched."""
    buf, units, fracs = scratch(8)
    assert segment_pieces_into(100.5, 30.5, 101.25, 30.25, 0, 0, False, *toy.args, buf, units, fracs) == (1, 0, 1.0)
    # The caller's "same borderless cell" is taken on trust: a segment that crosses the border stays whole.
    assert segment_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, True, *toy.args, buf, units, fracs) == (1, 0, 1.0)
    assert (buf == -7.0).all() and (units == -7).all() and (fracs == -7.0).all()
    # The same crossing segment walked: two pieces.
    assert segment_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, False, *toy.args, buf, units, fracs)[0] == 2


def test_too_small_scratch_is_reported_and_walk_scratch_fits(toy):
    """Two crossings need 2 places in buf and 4 in units and fracs: -1 - 2 with 3; walk_scratch(2) has room."""
    n, _, _ = segment_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, False, *toy.args, *scratch(3))
    assert n == -3
    buf, units, fracs = walk_scratch(-1 - n)
    assert buf.size >= 2 and units.size >= 4 and fracs.size >= 4
    assert segment_pieces_into(101.6, 30.25, 101.9, 30.25, 0, 1, False, *toy.args, buf, units, fracs)[0] == 2


def test_path_kernel_by_hand(toy):
    """A toy path: parked fixes, a border crossing, an invalid fix, per class; rows are unit + 2."""
    lon = np.array([100.5, 100.5, 101.6, 101.9, np.nan, 101.8])
    lat = np.array([30.5, 30.5, 30.25, 30.25, 30.0, 30.75])
    cls = np.array([0, 1, 1, 0, 0])
    acc = path_kernel(lon, lat, cls, np.empty(0), 2, 2, *toy.args)
    cross = haversine_km(101.6, 30.25, 101.9, 30.25)
    want = np.zeros((4, 2))
    want[2, 1] = haversine_km(100.5, 30.5, 101.6, 30.25)  # segment 1 (segment 0 is parked), all in unit 0
    want[2, 1] += cross * 0.5  # segment 2: half in unit 0, half in unit 1
    want[3, 1] = cross * 0.5
    assert acc == pytest.approx(want, rel=1e-9)  # segments 3 and 4 have an invalid end: nowhere
    known = path_kernel(lon, lat, cls, np.array([5.0, 1.0, 2.0, 3.0, 4.0]), 2, 2, *toy.args)
    as_given = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0 + 1.0], [0.0, 1.0]])  # the parked segment's 5 km unused
    assert known == pytest.approx(as_given, rel=1e-9)
    assert not path_kernel(lon[:1], lat[:1], cls[:0], np.empty(0), 2, 2, *toy.args).any()


def test_splits_agree_with_shapely_intersections(gcj_locator, reference):
    """Random segments of 1-80 km starting near borders, in the polygons' own CRS."""
    start, end = near_borders(reference, 11, 400, 0.01, (0.01, 0.7))
    split = gcj_locator.split_segments(start[:, 0], start[:, 1], end[:, 0], end[:, 1])
    multi = sum(len(assert_agrees(split, reference, start, end, s)) > 1 for s in range(len(start)))
    assert multi > 100  # most segments cross at least one border


def test_segment_inside_one_city_is_one_row(wgs_locator):
    split = wgs_locator.split_segments([116.39], [39.90], [116.41], [39.92])
    assert split.city_adcode.tolist() == [110100]
    assert split.distance_km[0] == pytest.approx(haversine_km(116.39, 39.90, 116.41, 39.92), rel=1e-12)


def test_long_bridged_gap_and_invalid_ends(wgs_locator):
    # Beijing -> Shanghai in one straight 1,000+ km segment, then one with a NaN end.
    split = wgs_locator.split_segments([116.40, np.nan], [39.90, 30.0], [121.47, 121.0], [31.23, 30.0])
    first = split.segment == 0
    codes = split.city_adcode[first]
    assert codes[0] == 110100 and codes[-1] == 310100 and len(codes) > 10
    assert split.distance_km[first].sum() == pytest.approx(haversine_km(116.40, 39.90, 121.47, 31.23), rel=1e-9)
    assert split.city_adcode[split.segment == 1].tolist() == [INVALID]
    assert np.isnan(split.distance_km[split.segment == 1]).all()


def test_segment_to_the_sea_keeps_the_outside_part(wgs_locator):
    # Qingdao coast out into the Yellow Sea.
    split = wgs_locator.split_segments([120.38], [36.07], [121.50], [36.07])
    assert split.city_adcode[0] == 370200
    assert OUTSIDE in split.city_adcode.tolist()
    assert split.distance_km.sum() == pytest.approx(haversine_km(120.38, 36.07, 121.50, 36.07), rel=1e-9)


china_lon = st.floats(min_value=98.0, max_value=122.0, allow_nan=False)
china_lat = st.floats(min_value=22.0, max_value=42.0, allow_nan=False)
step = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(x0=china_lon, y0=china_lat, dx=step, dy=step)
def test_split_invariants(wgs_locator, x0, y0, dx, dy):
    x1, y1 = x0 + dx, y0 + dy
    fwd = wgs_locator.split_segments([x0], [y0], [x1], [y1])
    total = haversine_km(x0, y0, x1, y1)
    assert (fwd.distance_km >= 0).all()
    assert fwd.distance_km.sum() == pytest.approx(total, rel=1e-4, abs=1e-9)
    # Ends are in the units the point locator gives them.
    assert fwd.city_adcode[0] == wgs_locator.locate([x0], [y0])[0]
    assert fwd.city_adcode[-1] == wgs_locator.locate([x1], [y1])[0]
    # Splitting is symmetric in direction.
    back = wgs_locator.split_segments([x1], [y1], [x0], [y0])
    a, b = as_dict(fwd, 0), as_dict(back, 0)
    assert set(a) == set(b)
    for code in a:
        assert a[code] == pytest.approx(b[code], rel=1e-4, abs=1e-9)


def test_path_km_agrees_with_shapely_per_class(gcj_locator, reference):
    """A random walk across borders, split by path_km into two classes, against Shapely per segment."""
    rng = np.random.default_rng(11)
    lon = 113.0 + np.cumsum(rng.normal(0.0, 0.08, 120))
    lat = 23.0 + np.cumsum(rng.normal(0.0, 0.08, 120))
    lon[40] = lon[39]  # a parked fix: no distance
    lat[40] = lat[39]
    cls = rng.integers(0, 2, lon.size - 1)
    codes, km = gcj_locator.path_km(lon, lat, cls, 2)
    expect: dict[tuple[int, int], float] = {}
    for s in range(lon.size - 1):
        if lon[s] == lon[s + 1] and lat[s] == lat[s + 1]:
            continue
        pieces = shapely_split(reference, lon[s], lat[s], lon[s + 1], lat[s + 1])
        outside = haversine_km(lon[s], lat[s], lon[s + 1], lat[s + 1]) - sum(pieces.values())
        if outside > 1e-6:
            pieces[OUTSIDE] = pieces.get(OUTSIDE, 0.0) + outside
        for code, v in pieces.items():
            expect[(code, int(cls[s]))] = expect.get((code, int(cls[s])), 0.0) + v
    got = {(int(c), k): float(km[i, k]) for i, c in enumerate(codes) for k in range(2) if km[i, k] > 0}
    assert len({c for c, _ in expect}) > 3  # the walk crosses borders
    for key in set(got) | set(expect):
        assert got.get(key, 0.0) == pytest.approx(expect.get(key, 0.0), rel=1e-3, abs=1e-4), key
    # Known segment lengths are used as given.
    seg_km = np.full(cls.size, 2.0)
    seg_km[39] = 0.0
    _, km2 = gcj_locator.path_km(lon, lat, cls, 2, segment_km=seg_km)
    assert km2.sum() == pytest.approx(2.0 * (cls.size - 1))
    with pytest.raises(Exception, match="segment"):
        gcj_locator.path_km(lon, lat, cls[:-1], 2)


def test_walk_grows_scratch_that_is_too_small(wgs_locator):
    """A long segment's many crossings through one-place scratch arrays: reported, then walked in walk_scratch,
    same pieces as with room; split_segments (which grows its scratch itself) gives them too."""
    args = wgs_locator.kernel_args
    ua, ub = (int(u) for u in wgs_locator.locate_units([116.40, 121.47], [39.90, 31.23]))
    seg = (116.40, 39.90, 121.47, 31.23, ua, ub, False, *args)
    room = (np.empty(4096), np.empty(4096, np.int32), np.empty(4096))
    n, _, _ = segment_pieces_into(*seg, *room)
    assert n > 10
    short, _, _ = segment_pieces_into(*seg, np.empty(1), np.empty(1, np.int32), np.empty(1))
    assert short < -16  # -1 - crossings
    buf, units, fracs = walk_scratch(-1 - short)
    m, _, _ = segment_pieces_into(*seg, buf, units, fracs)
    assert m == n and buf.size > 16
    assert np.array_equal(units[:m], room[1][:n]) and np.array_equal(fracs[:m], room[2][:n])
    assert fracs[:m].sum() == pytest.approx(1.0, abs=1e-12)
    split = wgs_locator.split_segments([116.40], [39.90], [121.47], [31.23])
    assert np.array_equal(split.city_adcode, wgs_locator.adcodes_of_units(units[:m]))


def test_path_with_long_jumps_equals_its_segments_split_one_by_one(wgs_locator):
    """Jumps across China (over a hundred crossings each: more than the path kernel's first scratch holds, so
    the pass resumes with larger scratch) among short steps: path_km's sums are split_segments' sums."""
    ua, ub = (int(u) for u in wgs_locator.locate_units([116.4, 113.26], [39.9, 23.13]))
    crossings = (
        -1 - segment_pieces_into(116.4, 39.9, 113.26, 23.13, ua, ub, False, *wgs_locator.kernel_args, *scratch(1))[0]
    )
    assert crossings > 64
    rng = np.random.default_rng(2)
    lon = np.concatenate([[116.4, 113.26, 87.6, 126.6], 113.0 + np.cumsum(rng.normal(0, 0.01, 300)), [91.1, 116.4]])
    lat = np.concatenate([[39.9, 23.13, 43.8, 45.75], 30.0 + np.cumsum(rng.normal(0, 0.01, 300)), [29.65, 39.9]])
    codes, km = wgs_locator.path_km(lon, lat, np.zeros(lon.size - 1, np.int64))
    split = wgs_locator.split_segments(lon[:-1], lat[:-1], lon[1:], lat[1:])
    want: dict[int, float] = {}
    for code, d in zip(split.city_adcode.tolist(), split.distance_km.tolist(), strict=True):
        want[code] = want.get(code, 0.0) + d
    assert len(want) > 50
    assert dict(zip(codes.tolist(), km[:, 0].tolist(), strict=True)) == pytest.approx(want, rel=1e-12)
