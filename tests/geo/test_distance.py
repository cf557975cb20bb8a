"""Distances: the haversine against hand-computed arcs, the fast step forms against the haversine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from truckcarbon.geo.distance import (
    EARTH_RADIUS_KM,
    SMALL_RAD,
    STEP_EXACT_KM,
    cos_lat,
    cosines,
    haversine_cos,
    haversine_km,
    haversine_many,
    step_km,
    step_km_cos,
)

R = 6371.0088  # the IUGG mean Earth radius, km


def independent_haversine_km(x0, y0, x1, y1):
    """The textbook haversine with library sin/cos/asin."""
    p0, p1 = math.radians(y0), math.radians(y1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(x1 - x0) / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def test_haversine_of_arcs_computed_by_hand():
    """Arcs along a meridian and the equator are R times their angle; along a parallel, the chord formula."""
    assert EARTH_RADIUS_KM == R
    assert haversine_km(116.0, 39.0, 116.0, 40.0) == pytest.approx(R * math.pi / 180, rel=1e-15)  # 111.195 km
    assert haversine_km(0.0, 0.0, 90.0, 0.0) == pytest.approx(R * math.pi / 2, rel=1e-15)
    assert haversine_km(10.0, 0.0, -170.0, 0.0) == pytest.approx(R * math.pi, rel=1e-15)  # antipodes
    assert haversine_km(0.0, -90.0, 0.0, 90.0) == pytest.approx(R * math.pi, rel=1e-15)
    # 1 degree of longitude at 60 degrees north: 2 R asin(cos 60 sin 0.5 deg), about 55.6 km.
    assert haversine_km(100.0, 60.0, 101.0, 60.0) == pytest.approx(2 * R * math.asin(0.5 * math.sin(math.pi / 360)))
    assert haversine_km(113.3, 23.1, 113.3, 23.1) == 0.0
    assert haversine_km(113.3, 23.1, 121.5, 31.2) == haversine_km(121.5, 31.2, 113.3, 23.1)


def test_haversine_series_branch_is_the_haversine_to_the_last_bits():
    """Steps with half-angles below SMALL_RAD take the Taylor series: within a few ulps of the library formula."""
    rng = np.random.default_rng(4)
    worst = 0.0
    for _ in range(20000):
        lon0, lat0 = rng.uniform(73, 136), rng.uniform(15, 54)
        lon1, lat1 = lon0 + rng.uniform(-0.1, 0.1), lat0 + rng.uniform(-0.1, 0.1)
        assert abs(math.radians(lat1 - lat0)) / 2 < SMALL_RAD
        want = independent_haversine_km(lon0, lat0, lon1, lat1)
        worst = max(worst, abs(haversine_km(lon0, lat0, lon1, lat1) - want) / want)
    assert worst < 1e-14
    # Both sides of the branch agree where it switches (half-angle SMALL_RAD: about 12.7 km north).
    dp = 2 * SMALL_RAD
    below, above = haversine_cos(dp * (1 - 1e-9), 0.0, 1.0, 1.0), haversine_cos(dp * (1 + 1e-9), 0.0, 1.0, 1.0)
    assert below == pytest.approx(R * dp, rel=1e-8) and above == pytest.approx(R * dp, rel=1e-8)


def test_haversine_many_is_haversine_km_per_element():
    rng = np.random.default_rng(9)
    lon0, lat0, lon1, lat1 = (rng.uniform(-90, 90, 500) for _ in range(4))
    got = haversine_many(lon0, lat0, lon1, lat1)
    want = [haversine_km(*v) for v in zip(lon0, lat0, lon1, lat1, strict=True)]
    assert np.array_equal(got, want)
    assert haversine_many(np.empty(0), np.empty(0), np.empty(0), np.empty(0)).size == 0


def test_step_distance_is_the_haversine_within_its_bound():
    """step_km: within 1e-7 of the haversine for steps up to STEP_EXACT_KM, exactly it beyond (China's latitudes);
    step_km_cos (the latitudes' cosines given) within 2e-15 of step_km."""
    rng = np.random.default_rng(11)
    worst = 0.0
    exact_beyond = 0
    for _ in range(20000):
        lon0, lat0 = rng.uniform(73, 136), rng.uniform(15, 54)
        km, bearing = rng.uniform(0, 2 * STEP_EXACT_KM), rng.uniform(0, 2 * math.pi)
        lat1 = lat0 + math.degrees(km / 6371.0088 * math.cos(bearing))
        lon1 = lon0 + math.degrees(km / 6371.0088 * math.sin(bearing) / math.cos(math.radians(lat0)))
        want, got = independent_haversine_km(lon0, lat0, lon1, lat1), step_km(lon0, lat0, lon1, lat1)
        c0, c1 = math.cos(math.radians(lat0)), math.cos(math.radians(lat1))
        assert step_km_cos(lon0, lat0, lon1, lat1, c0, c1) == pytest.approx(got, rel=2e-15)
        if want > STEP_EXACT_KM * 1.001:
            assert got == pytest.approx(want, rel=1e-13)
            exact_beyond += 1
        elif want > 0:
            worst = max(worst, abs(got - want) / want)
    assert worst < 1e-7 and exact_beyond > 5000
    assert step_km(116.0, 40.0, 116.0, 40.0) == 0.0
    assert step_km(179.9, 10.0, -179.9, 10.0) == pytest.approx(
        independent_haversine_km(179.9, 10.0, -179.9, 10.0), rel=1e-12
    )


def test_cos_lat_is_the_cosine_over_every_latitude() -> None:
    """cos_lat (the Taylor series that step_km and the simulator use) against the library cosine."""
    x = np.concatenate([np.linspace(-math.pi / 2, math.pi / 2, 20001), [0.0, math.pi / 2, -math.pi / 2]])
    err = np.array([cos_lat(v) - math.cos(v) for v in x])
    assert np.max(np.abs(err)) <= 3e-16


def test_cosines_fills_cos_lat_of_each_latitude_in_degrees():
    lat = np.array([0.0, 30.0, 45.0, 60.0, -90.0, 89.9])
    out = np.full(lat.size, np.nan)
    cosines(lat, out)
    assert out.tolist() == [cos_lat(math.radians(v)) for v in lat]
    assert out[:4] == pytest.approx([1.0, math.sqrt(3) / 2, math.sqrt(0.5), 0.5], abs=3e-16)
