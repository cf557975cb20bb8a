"""Distances on the Earth's surface (Numba): the haversine and its fast forms for fix-to-fix steps.

Every distance of truckcarbon is a great-circle distance on the mean-radius
sphere (:data:`EARTH_RADIUS_KM`): :func:`haversine_km` for two points,
:func:`haversine_many` for arrays of them, :func:`haversine_cos` when the
latitudes' cosines are known. Steps between consecutive fixes take
:func:`step_km` (or :func:`step_km_cos` given the cosines, computed once per
fix by :func:`cosines`), the local flat-earth form up to ``STEP_EXACT_KM`` and
the haversine beyond, to within 1e-7 of it. All are compiled functions that
other compiled kernels call directly.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

EARTH_RADIUS_KM = 6371.0088  # IUGG mean Earth radius R1

SMALL_RAD = 1e-3  # half-angles below this (steps up to about 12 km) take the series of haversine_cos
STEP_EXACT_KM = 5.0  # step_km computes steps longer than this with the haversine


@nb.njit(inline="always", cache=True)
def haversine_cos(dp, dl, c0, c1):  # type: ignore[no-untyped-def]
    """The haversine distance (km) of a step of ``dp`` radians of latitude and ``dl`` of longitude
    between latitudes with cosines ``c0`` and ``c1``.

    For half-angles below SMALL_RAD, sin and asin are their Taylor series, cut where the next term is
    below 1e-18 of the value (sin: y^7/5040 against y; asin: 5x^7/112 against x): the haversine to
    the last bit or two, at a fraction of the cost of three library calls.
    """
    a = 0.5 * dp
    b = 0.5 * dl
    if abs(a) < SMALL_RAD and abs(b) < SMALL_RAD:
        a2 = a * a
        b2 = b * b
        sa = a * (1.0 - a2 * (1.0 / 6.0 - a2 * (1.0 / 120.0)))
        sb = b * (1.0 - b2 * (1.0 / 6.0 - b2 * (1.0 / 120.0)))
        x = math.sqrt(sa * sa + c0 * c1 * sb * sb)
        x2 = x * x
        return 2.0 * EARTH_RADIUS_KM * x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0)))
    h = math.sin(a) ** 2 + c0 * c1 * math.sin(b) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@nb.njit(cache=True)
def haversine_km(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Great-circle distance in km on the mean-radius sphere."""
    p0 = math.radians(lat0)
    p1 = math.radians(lat1)
    return haversine_cos(p1 - p0, math.radians(lon1 - lon0), math.cos(p0), math.cos(p1))


@nb.njit(inline="always", cache=True)
def cos_lat(x):  # type: ignore[no-untyped-def]
    """cos(x) for a latitude ``x`` in radians (|x| <= pi/2): the Taylor series to x^20, evaluated by
    Horner's rule; the first omitted term is below 2e-17, so the result is within 3e-16 of the library
    cosine (tested) at a third of its cost (no range reduction)."""
    z = x * x
    p = 1.0 / 2432902008176640000.0
    p = p * z - 1.0 / 6402373705728000.0
    p = p * z + 1.0 / 20922789888000.0
    p = p * z - 1.0 / 87178291200.0
    p = p * z + 1.0 / 479001600.0
    p = p * z - 1.0 / 3628800.0
    p = p * z + 1.0 / 40320.0
    p = p * z - 1.0 / 720.0
    p = p * z + 1.0 / 24.0
    p = p * z - 0.5
    return p * z + 1.0


@nb.njit(cache=True, forceinline=True)
def _flat_step(lon0, lat0, lon1, lat1, dx, dy):  # type: ignore[no-untyped-def]
    """The step from its east and north offsets ``dx``, ``dy`` in radians of arc (flat earth) up to
    ``STEP_EXACT_KM``; longer, the haversine of its ends."""
    d = EARTH_RADIUS_KM * math.sqrt(dx * dx + dy * dy)
    if d <= STEP_EXACT_KM:
        return d
    return haversine_km(lon0, lat0, lon1, lat1)


@nb.njit(cache=True, forceinline=True)
def step_km(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Distance in km between two fixes: :func:`haversine_km` at a third of its cost for short steps.

    Steps up to ``STEP_EXACT_KM`` (a fix interval's drive) use the local flat-earth
    (equirectangular, mid-latitude) form, within 1e-7 of the haversine there
    (0.3 mm at 5 km; ``tests/geo/test_distance.py`` checks the bound); longer
    steps (gaps, jumps) take the haversine itself.
    """
    dy = math.radians(lat1 - lat0)
    return _flat_step(
        lon0, lat0, lon1, lat1, math.radians(lon1 - lon0) * cos_lat(math.radians(0.5 * (lat0 + lat1))), dy
    )


@nb.njit(cache=True, forceinline=True)
def step_km_cos(lon0, lat0, lon1, lat1, c0, c1):  # type: ignore[no-untyped-def]
    """:func:`step_km` given the cosines ``c0``, ``c1`` of both latitudes (computed once per fix, in a
    vectorised pass, by :func:`cos_lat`), within 1e-15 of it.

    The mid-latitude's cosine is (c0 + c1) / 2 / cos(dlat / 2), and 1 / cos(dlat / 2) is
    1 + dlat^2 / 8 to within 5 dlat^4 / 384 (below 1e-14 for steps up to ``STEP_EXACT_KM``): no
    cosine per step, whose chain of dependent multiplications held up a sequential loop.
    """
    dy = math.radians(lat1 - lat0)
    return _flat_step(
        lon0, lat0, lon1, lat1, math.radians(lon1 - lon0) * (0.5 * (c0 + c1)) * (1.0 + 0.125 * dy * dy), dy
    )


@nb.njit(cache=True, nogil=True)
def cosines(lat, out):  # type: ignore[no-untyped-def]
    """``out[i]`` = cos of latitude ``lat[i]`` (degrees, within [-90, 90]) by :func:`cos_lat`."""
    for i in range(lat.shape[0]):
        out[i] = cos_lat(math.radians(lat[i]))


@nb.njit(cache=True)
def haversine_many(lon0, lat0, lon1, lat1):  # type: ignore[no-untyped-def]
    """Element-wise :func:`haversine_km` of four equal-length arrays."""
    out = np.empty(lon0.shape[0], np.float64)
    for k in range(lon0.shape[0]):
        out[k] = haversine_km(lon0[k], lat0[k], lon1[k], lat1[k])
    return out
