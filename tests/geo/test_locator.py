"""CityLocator: its coordinate systems, markers and input checks, on named places and the shipped index."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.geo.locator import INVALID, OUTSIDE, CityLocator


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


@pytest.mark.slow
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


def test_unknown_crs_is_an_input_error():
    with pytest.raises(InputError, match="wgs84"):
        CityLocator("osgb36")


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


def test_unit_indices_map_to_adcodes_and_markers(wgs_locator):
    """Unit index k is adcodes[k]; the kernels' markers -1 (outside) and -2 (invalid) become OUTSIDE and INVALID."""
    codes = wgs_locator.adcodes
    units = np.array([0, len(codes) - 1, -1, -2], np.int32)
    assert wgs_locator.adcodes_of_units(units).tolist() == [codes[0], codes[-1], OUTSIDE, INVALID]
    assert np.array_equal(wgs_locator.locate([116.3975], [39.9087]), [110100])
    assert codes[wgs_locator.locate_units([116.3975], [39.9087])[0]] == 110100
    assert wgs_locator.kernel_args == wgs_locator.index.kernel_args()
    assert wgs_locator.nbytes == wgs_locator.index.nbytes > 0


def test_segment_and_path_inputs_are_checked(wgs_locator):
    with pytest.raises(InputError, match="segment starts and ends"):
        wgs_locator.split_segments([116.4, 116.5], [39.9, 39.9], [116.5], [39.9])
    lon, lat = np.array([116.4, 116.5, 116.6]), np.array([39.9, 39.9, 39.9])
    with pytest.raises(InputError, match="classes must lie"):
        wgs_locator.path_km(lon, lat, [0, 2], 2)
    with pytest.raises(InputError, match="segment lengths"):
        wgs_locator.path_km(lon, lat, [0, 1], 2, segment_km=[1.0])
    codes, km = wgs_locator.path_km([], [], [], 1)
    assert codes.size == 0 and km.shape == (0, 1)
