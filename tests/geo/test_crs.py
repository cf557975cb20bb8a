"""WGS-84 <-> GCJ-02 conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from truckcarbon.geo.crs import gcj02_to_wgs84, in_gcj02_zone, wgs84_to_gcj02

# Published test vectors of the eviltransform project (googollee/eviltransform,
# python/test.py, BSD-2-Clause): (wgs lat, wgs lon, gcj lat, gcj lon).
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM)
def test_forward_matches_published_vectors(wlat, wlon, glat, glon):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-12)
    assert lat == pytest.approx(glat, abs=1e-12)


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM)
def test_inverse_recovers_published_vectors(wlat, wlon, glat, glon):
    lon, lat = gcj02_to_wgs84(glon, glat)
    assert lon == pytest.approx(wlon, abs=1e-10)
    assert lat == pytest.approx(wlat, abs=1e-10)


@given(
    lon=st.floats(min_value=73.0, max_value=135.0, allow_nan=False),
    lat=st.floats(min_value=3.0, max_value=54.0, allow_nan=False),
)
def test_round_trip_within_a_micrometre(lon, lat):
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert abs(wlon - lon) < 1e-10 and abs(wlat - lat) < 1e-10
    # The offset is a few hundred metres at most (up to about 720 m, 0.0105 degrees, near 54 N).
    east_km = (glon - lon) * 111.32 * np.cos(np.radians(lat))
    assert 0 < np.hypot(east_km, (glat - lat) * 110.57) < 0.75


def test_identity_outside_china_and_nan_propagates():
    lon, lat = wgs84_to_gcj02([2.35, 139.69, np.nan], [48.85, 56.0, 30.0])
    assert lon[:2].tolist() == [2.35, 139.69] and lat[:2].tolist() == [48.85, 56.0]
    assert np.isnan(lon[2])
    assert in_gcj02_zone([116.0, 2.35], [40.0, 48.85]).tolist() == [True, False]
    back = gcj02_to_wgs84(np.array([np.nan, 116.0]), np.array([30.0, 40.0]))
    assert np.isnan(back[0][0]) and np.isfinite(back[0][1])


def test_bd09_round_trip_and_the_published_approximation() -> None:
    from truckcarbon.geo.crs import bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, wgs84_to_bd09

    # The closed-form inverse in common use (e.g. the coordtransform library) gives
    # bd09 (116.404, 39.915) -> gcj02 (116.39762729119315, 39.90865673957631); it is approximate to
    # about 1e-6 degree, the iteration here exact.
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert abs(lon - 116.39762729119315) < 2e-6 and abs(lat - 39.90865673957631) < 2e-6
    b_lon, b_lat = gcj02_to_bd09(lon, lat)
    assert abs(b_lon - 116.404) < 1e-10 and abs(b_lat - 39.915) < 1e-10
    rng = np.random.default_rng(5)
    w_lon, w_lat = rng.uniform(74, 134, 1000), rng.uniform(18, 53, 1000)
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(w_lon, w_lat))
    assert np.max(np.abs(back_lon - w_lon)) < 1e-9 and np.max(np.abs(back_lat - w_lat)) < 1e-9
    # BD-09 is about 0.0065/0.006 degree (several hundred metres) from GCJ-02 in China
    d_lon, _ = wgs84_to_bd09(w_lon, w_lat)
    assert np.all(np.abs(d_lon - w_lon) > 0.003)
