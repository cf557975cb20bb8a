"""Shared fixtures: one locator index cache per checkout, the boundary polygons, a Shapely reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import shapely

# Keep the index cache inside the checkout (fresh in CI, reused locally), unless set.
os.environ.setdefault("TRUCKCARBON_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "index"))

from truckcarbon.geo.boundaries import load_unit_geometries
from truckcarbon.geo.locator import CityLocator


@pytest.fixture(scope="session")
def wgs_locator() -> CityLocator:
    return CityLocator("wgs84")


@pytest.fixture(scope="session")
def gcj_locator() -> CityLocator:
    return CityLocator("gcj02")


class ShapelyReference:
    """Independent answer: Shapely point-in-polygon on the full-resolution GCJ-02 polygons."""

    def __init__(self, adcodes: np.ndarray) -> None:
        by_code = load_unit_geometries([int(c) for c in adcodes])
        self.adcodes = np.asarray(adcodes)
        self.geoms = [by_code[int(c)] for c in adcodes]
        for g in self.geoms:
            shapely.prepare(g)
        self.bounds = shapely.bounds(np.asarray(self.geoms, dtype=object))
        self._borders: shapely.Geometry | None = None

    def locate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Adcode of the lowest-adcode unit containing each GCJ-02 point, 0 if none."""
        out = np.zeros(x.size, np.int32)
        for code, g, (x0, y0, x1, y1) in zip(self.adcodes, self.geoms, self.bounds, strict=True):
            m = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (out == 0))
            out[m[shapely.contains_xy(g, x[m], y[m])]] = code
        return out

    def border_distance_m(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance in metres (local equirectangular) from each point to the nearest unit border."""
        if self._borders is None:
            self._borders = shapely.union_all([shapely.boundary(g) for g in self.geoms])
            shapely.prepare(self._borders)
        pts = shapely.points(x, y)
        near = shapely.get_coordinates(shapely.shortest_line(self._borders, pts)).reshape(-1, 2, 2)[:, 0, :]
        dx = (near[:, 0] - x) * np.cos(np.radians(y)) * 111_320.0
        dy = (near[:, 1] - y) * 110_574.0
        return np.hypot(dx, dy)


@pytest.fixture(scope="session")
def reference(wgs_locator: CityLocator) -> ShapelyReference:
    return ShapelyReference(wgs_locator.adcodes)
