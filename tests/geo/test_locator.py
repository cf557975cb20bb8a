"""CityLocator against an independent Shapely reference on the full-resolution polygons."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest
import shapely

from truckcarbon.core.errors import InputError
from truckcarbon.geo.crs import gcj02_to_wgs84, wgs84_to_gcj02
from truckcarbon.geo.locator import INVALID, OUTSIDE, CityLocator, build_index, load_index, save_index
from truckcarbon.geo.reference import cities

BAND_M = 1.0


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


def test_named_places():
    loc = CityLocator("wgs84")
    places = {
        (116.3975, 39.9087): 110100,  # Tiananmen, Beijing
        (121.4998, 31.2397): 310100,  # the Bund, Shanghai
        (113.2644, 23.1291): 440100,  # Guangzhou
        (104.0657, 30.6595): 510100,  # Chengdu
        (114.3055, 30.5928): 420100,  # Wuhan
        (106.5516, 29.5630): 500000,  # Chongqing
        (112.6020, 35.0670): 419001,  # Jiyuan (province-administered)
        (113.4540, 30.3640): 429004,  # Xiantao
        (110.6750, 31.7450): 429021,  # Shennongjia
        (86.0800, 44.3050): 659001,  # Shihezi (an enclave of Xinjiang's Corps)
        (110.3312, 20.0319): 460100,  # Haikou
    }
    lon = np.array([p[0] for p in places])
    lat = np.array([p[1] for p in places])
    assert loc.locate(lon, lat).tolist() == list(places.values())


def test_sea_and_neighbouring_countries_are_outside(wgs_locator):
    lon = np.array([123.0, 125.0, 126.978, 105.854, 106.917, 77.209, 139.69, 114.17, 113.54, 121.565])
    lat = np.array([37.0, 30.0, 37.566, 21.028, 47.918, 28.614, 35.69, 22.32, 22.19, 25.033])
    # Yellow Sea, East China Sea, Seoul, Hanoi, Ulaanbaatar, New Delhi, Tokyo, Hong Kong, Macau, Taipei
    assert (wgs_locator.locate(lon, lat) == OUTSIDE).all()


def test_hong_kong_macau_taiwan_are_units_when_asked():
    loc = CityLocator("wgs84", mainland_only=False)
    got = loc.locate([114.17, 113.54, 121.565, 116.3975], [22.32, 22.19, 25.033, 39.9087])
    assert got.tolist() == [810000, 820000, 710000, 110100]


def test_bad_coordinates_are_classified_not_raised(wgs_locator):
    lon = np.array([np.nan, 116.4, np.inf, -np.inf, 200.0, 116.4, 0.0, 39.9, -181.0, 116.4])
    lat = np.array([39.9, np.nan, 39.9, 39.9, 39.9, 95.0, 0.0, 116.4, 0.0, -91.0])
    got = wgs_locator.locate(lon, lat)
    assert got.tolist() == [INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID, INVALID]
    # Swapped but in range (lat=73..90 is the Arctic): outside, never a unit.
    assert wgs_locator.locate([39.9, 35.0], [80.0, 75.0]).tolist() == [OUTSIDE, OUTSIDE]
    assert wgs_locator.locate([], []).size == 0
    # Integer and list input work; text does not.
    assert wgs_locator.locate([116], [40]).tolist() == [110100]
    with pytest.raises(InputError, match="numeric"):
        wgs_locator.locate(["east"], [40])
    with pytest.raises(InputError, match="differ in length"):
        wgs_locator.locate([116.4, 116.5], [39.9])


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


def test_cache_round_trip(tmp_path, gcj_locator):
    idx = build_index("gcj02")
    save_index(idx, tmp_path / "idx")
    back = load_index(tmp_path / "idx")
    assert back.crs == idx.crs and back.data_version == idx.data_version
    for name, arr in idx.arrays.items():
        assert np.array_equal(back.arrays[name], arr), name
        assert np.array_equal(gcj_locator.index.arrays[name], arr), name
    assert not list(tmp_path.glob(".*tmp"))
    assert idx.nbytes < 500 * 2**20


def test_unknown_crs_is_an_input_error():
    with pytest.raises(InputError, match="wgs84"):
        CityLocator("osgb36")


def test_table_and_index_cover_the_same_mainland_units(wgs_locator):
    codes = cities()["city_adcode"].to_numpy()
    assert np.array_equal(np.sort(wgs_locator.adcodes), np.sort(codes))
    assert pc.all(cities()["is_mainland"]).as_py()


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


def test_bd09_input_is_located_as_its_gcj02_point(gcj_locator, reference):
    """A BD-09 (Baidu) locator gives each point the unit of the same place in GCJ-02, borders included."""
    from truckcarbon.geo.crs import gcj02_to_bd09

    rng = np.random.default_rng(11)
    gx, gy = rng.uniform(100, 125, 20000), rng.uniform(22, 45, 20000)
    bx, by = gcj02_to_bd09(gx, gy)
    bd = CityLocator("bd09")
    assert bd.index is not None and bd.index.crs.value == "gcj02"
    assert np.array_equal(bd.locate(bx, by), gcj_locator.locate(gx, gy))
    split = bd.split_segments(bx[:100], by[:100], bx[100:200], by[100:200])
    want = gcj_locator.split_segments(gx[:100], gy[:100], gx[100:200], gy[100:200])
    assert np.allclose(
        np.bincount(split.segment, split.distance_km), np.bincount(want.segment, want.distance_km), rtol=1e-6
    )
