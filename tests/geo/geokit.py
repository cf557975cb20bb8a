"""Helpers of the geo tests: a hand-built two-unit index, and independent Shapely answers for segments.

The toy index starts at (100, 30) with level-1 cells of 1 degree (two cells,
one row) and 2 x 2 leaves per border cell. Unit 0 lies west of the meridian
x = 101.75 and unit 1 east of it, both between y = 30 and y = 31; beyond the
grid is outside. Cell 0 (x 100-101) is all unit 0. Cell 1 (x 101-102) is a
border cell: its western leaves (x 101-101.5) are all unit 0, its eastern
leaves (x 101.5-102) are border leaves 0 (y 30-30.5) and 1 (y 30.5-31), each
holding the border edge touching it twice (once per unit) and a reference
point at x = 101.6, inside unit 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import shapely

from truckcarbon.geo.locator import OUTSIDE

BORDER_X = 101.75


@dataclass(frozen=True)
class ToyIndex:
    """The kernel arguments of the toy index, in the order of ``LocatorIndex.kernel_args``."""

    x0: float
    y0: float
    inv1: float
    nx1: int
    ny1: int
    sub: int
    l1: np.ndarray
    l2: np.ndarray
    ref: np.ndarray
    hdr: np.ndarray
    grp: np.ndarray
    edges: np.ndarray

    @property
    def args(self) -> tuple[object, ...]:
        return (
            self.x0, self.y0, self.inv1, self.nx1, self.ny1, self.sub,
            self.l1, self.l2, self.ref, self.hdr, self.grp, self.edges,
        )  # fmt: skip

    @property
    def grid(self) -> tuple[object, ...]:
        """x0, y0, inv1, nx1, ny1, sub, l1, l2: the arguments of the walk's grid helpers."""
        return self.args[:8]


def toy_index() -> ToyIndex:
    lower = (BORDER_X, 30.0, BORDER_X, 30.5)
    upper = (BORDER_X, 30.5, BORDER_X, 31.0)
    return ToyIndex(
        x0=100.0,
        y0=30.0,
        inv1=1.0,
        nx1=2,
        ny1=1,
        sub=2,
        l1=np.array([0, -2], np.int32),  # cell 0: unit 0; cell 1: border cell 0
        # Border cell 0's leaves by (jj, ii): west ones unit 0, east ones border leaves 0 and 1.
        l2=np.array([0, -2, 0, -3], np.int32),
        ref=np.array([[101.6, 30.25], [101.6, 30.75]]),
        hdr=np.array([[0, -1], [2, -1], [4, -1]], np.int64),  # first group, base unit; sentinel
        # unit, "the reference is inside", first edge; sentinel
        grp=np.array([[0, 1, 0], [1, 0, 1], [0, 1, 2], [1, 0, 3], [-1, 0, 4]], np.int64),
        edges=np.array([lower, lower, upper, upper]),
    )


def haversine_km(x0, y0, x1, y1):
    """Independent haversine (mean Earth radius 6371.0088 km)."""
    p0, p1 = math.radians(y0), math.radians(y1)
    h = math.sin((p1 - p0) / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(math.radians(x1 - x0) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def shapely_split(reference, x0, y0, x1, y1) -> dict[int, float]:
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


def as_dict(split, s: int) -> dict[int, float]:
    m = split.segment == s
    out: dict[int, float] = {}
    for code, km in zip(split.city_adcode[m].tolist(), split.distance_km[m].tolist(), strict=True):
        out[code] = out.get(code, 0.0) + km
    return out


def near_borders(reference, seed: int, n: int, spread: float, length_deg: tuple[float, float]):
    """``n`` segments starting about ``spread`` degrees from border vertices, in random directions."""
    rng = np.random.default_rng(seed)
    coords = shapely.get_coordinates(np.asarray(reference.geoms, dtype=object))
    start = coords[rng.integers(0, len(coords), n)] + rng.normal(0, spread, (n, 2))
    length = rng.uniform(*length_deg, n)
    theta = rng.uniform(0, 2 * np.pi, n)
    return start, start + np.column_stack([length * np.cos(theta), length * np.sin(theta)])


def assert_agrees(split, reference, start, end, s: int) -> dict[int, float]:
    """Segment ``s`` of ``split`` against Shapely's intersection lengths; returns Shapely's."""
    want = shapely_split(reference, *start[s], *end[s])
    got = {k: v for k, v in as_dict(split, s).items() if k != OUTSIDE}
    for code in set(want) | set(got):
        assert got.get(code, 0.0) == pytest.approx(want.get(code, 0.0), rel=1e-3, abs=1e-6), (s, code)
    return want
