"""Segment splitting at unit borders: against Shapely intersection lengths, and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.geo.locator import INVALID, OUTSIDE


def haversine_km(x0, y0, x1, y1):
    """Independent haversine (mean Earth radius 6371.0088 km)."""
    p0, p1 = math.radians(y0), math.radians(y1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(x1 - x0) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _shapely_split(reference, x0, y0, x1, y1) -> dict[int, float]:
    line = shapely.LineString([(x0, y0), (x1, y1)])
    total = haversine_km(x0, y0, x1, y1)
    out = {}
    for code, g, (bx0, by0, bx1, by1) in zip(reference.adcodes, reference.geoms, reference.bounds, strict=True):
        if max(x0, x1) < bx0 or min(x0, x1) > bx1 or max(y0, y1) < by0 or min(y0, y1) > by1:
            continue
        inside = shapely.intersection(line, g).length
        if inside > 0:
            out[int(code)] = inside / line.length * total
    return out


def _as_dict(split, s: int) -> dict[int, float]:
    m = split.segment == s
    out: dict[int, float] = {}
    for code, km in zip(split.city_adcode[m].tolist(), split.distance_km[m].tolist(), strict=True):
        out[code] = out.get(code, 0.0) + km
    return out


def _near_borders(reference, seed: int, n: int, spread: float, length_deg: tuple[float, float]):
    """``n`` segments starting about ``spread`` degrees from border vertices, in random directions."""
    rng = np.random.default_rng(seed)
    coords = shapely.get_coordinates(np.asarray(reference.geoms, dtype=object))
    start = coords[rng.integers(0, len(coords), n)] + rng.normal(0, spread, (n, 2))
    length = rng.uniform(*length_deg, n)
    theta = rng.uniform(0, 2 * np.pi, n)
    return start, start + np.column_stack([length * np.cos(theta), length * np.sin(theta)])


def _assert_agrees(split, reference, start, end, s: int) -> dict[int, float]:
    """Segment ``s`` of ``split`` against Shapely's intersection lengths; returns Shapely's."""
    want = _shapely_split(reference, *start[s], *end[s])
    got = {k: v for k, v in _as_dict(split, s).items() if k != OUTSIDE}
    for code in set(want) | set(got):
        assert got.get(code, 0.0) == pytest.approx(want.get(code, 0.0), rel=1e-3, abs=1e-6), (s, code)
    return want


def test_splits_agree_with_shapely_intersections(gcj_locator, reference):
    """Random segments of 1-80 km starting near borders, in the polygons' own CRS."""
    start, end = _near_borders(reference, 11, 400, 0.01, (0.01, 0.7))
    split = gcj_locator.split_segments(start[:, 0], start[:, 1], end[:, 0], end[:, 1])
    multi = sum(len(_assert_agrees(split, reference, start, end, s)) > 1 for s in range(len(start)))
    assert multi > 100  # most segments cross at least one border


def test_short_steps_near_borders_agree_with_shapely(gcj_locator, reference):
    """Fix-interval steps (0.1-3 km) near borders: the edgeless-box short cut and the walk both agree with Shapely.

    ``_edgeless_box`` lets a step whose leaf box holds no unit edge skip the walk;
    whenever it says so, the walk itself finds no crossing.
    """
    from truckcarbon.geo._kernels import _edgeless_box, _walk_crossings

    start, end = _near_borders(reference, 23, 3000, 0.02, (0.001, 0.03))
    n = len(start)
    args = gcj_locator.kernel_args
    grid = (*args[:8],)  # x0, y0, inv1, nx1, ny1, sub, l1, l2
    hdr, grp, edges = args[9], args[10], args[11]
    boxed = np.array([_edgeless_box(*start[s], *end[s], *grid) for s in range(n)])
    for s in np.flatnonzero(boxed):
        crossings = _walk_crossings(*start[s], *end[s], *grid, hdr, grp, edges, np.empty(64))
        assert crossings == 0, s
    split = gcj_locator.split_segments(start[:, 0], start[:, 1], end[:, 0], end[:, 1])
    multi = sum(len(_assert_agrees(split, reference, start, end, s)) > 1 for s in range(0, n, 3))
    assert boxed.sum() > 500 and (~boxed).sum() > 500 and multi > 50  # both paths and real crossings occur


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
    a, b = _as_dict(fwd, 0), _as_dict(back, 0)
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
        pieces = _shapely_split(reference, lon[s], lat[s], lon[s + 1], lat[s + 1])
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


def test_step_distance_is_the_haversine_within_its_bound():
    """step_km: within 1e-7 of the haversine for steps up to STEP_EXACT_KM, exactly it beyond (China's latitudes);
    step_km_cos (the latitudes' cosines given) within 2e-15 of step_km."""
    from truckcarbon.geo._kernels import STEP_EXACT_KM, step_km, step_km_cos

    rng = np.random.default_rng(11)
    worst = 0.0
    exact_beyond = 0
    for _ in range(20000):
        lon0, lat0 = rng.uniform(73, 136), rng.uniform(15, 54)
        km, bearing = rng.uniform(0, 2 * STEP_EXACT_KM), rng.uniform(0, 2 * math.pi)
        lat1 = lat0 + math.degrees(km / 6371.0088 * math.cos(bearing))
        lon1 = lon0 + math.degrees(km / 6371.0088 * math.sin(bearing) / math.cos(math.radians(lat0)))
        want, got = haversine_km(lon0, lat0, lon1, lat1), step_km(lon0, lat0, lon1, lat1)
        c0, c1 = math.cos(math.radians(lat0)), math.cos(math.radians(lat1))
        assert step_km_cos(lon0, lat0, lon1, lat1, c0, c1) == pytest.approx(got, rel=2e-15)
        if want > STEP_EXACT_KM * 1.001:
            assert got == pytest.approx(want, rel=1e-13)
            exact_beyond += 1
        elif want > 0:
            worst = max(worst, abs(got - want) / want)
    assert worst < 1e-7 and exact_beyond > 5000
    assert step_km(116.0, 40.0, 116.0, 40.0) == 0.0
    assert step_km(179.9, 10.0, -179.9, 10.0) == pytest.approx(haversine_km(179.9, 10.0, -179.9, 10.0), rel=1e-12)


def test_cos_lat_is_the_cosine_over_every_latitude() -> None:
    """cos_lat (the Taylor series that step_km and the simulator use) against the library cosine."""
    from truckcarbon.geo._kernels import cos_lat

    x = np.concatenate([np.linspace(-math.pi / 2, math.pi / 2, 20001), [0.0, math.pi / 2, -math.pi / 2]])
    err = np.array([cos_lat(v) - math.cos(v) for v in x])
    assert np.max(np.abs(err)) <= 3e-16


def test_sort_prefix_sorts_in_place():
    """The walk's in-place sort of crossing parameters (insertion sort up to 16, heapsort above) against numpy."""
    from truckcarbon.geo._kernels import _sort_prefix

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 15, 16, 17, 40, 257):
        a = np.concatenate([rng.uniform(0, 1, n), rng.choice([0.25, 0.5], 5), np.full(4, 7.0)])
        head = a[: n + 5].copy()
        _sort_prefix(a, n + 5)
        assert np.array_equal(a[: n + 5], np.sort(head)), n
        assert (a[n + 5 :] == 7.0).all()  # beyond the prefix: untouched


def test_walk_grows_scratch_that_is_too_small(wgs_locator):
    """A long segment's many crossings through one-place scratch arrays: grown, same pieces as with room."""
    from truckcarbon.geo._kernels import walk_pieces, walk_pieces_into

    args = wgs_locator.kernel_args
    ua, ub = (int(u) for u in wgs_locator.locate_units([116.40, 121.47], [39.90, 31.23]))
    seg = (116.40, 39.90, 121.47, 31.23, ua, ub, *args)
    room = (np.empty(4096), np.empty(4096, np.int32), np.empty(4096))
    n = walk_pieces_into(*seg, *room)
    assert n > 10
    assert walk_pieces_into(*seg, np.empty(1), np.empty(1, np.int32), np.empty(1)) < -16  # -1 - crossings
    buf, units, fracs, m = walk_pieces(*seg, np.empty(1), np.empty(1, np.int32), np.empty(1))
    assert m == n and buf.size > 16
    assert np.array_equal(units[:m], room[1][:n]) and np.array_equal(fracs[:m], room[2][:n])
    assert fracs[:m].sum() == pytest.approx(1.0, abs=1e-12)
