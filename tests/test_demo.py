"""The demo's corridor truck: fixes along straight legs between the capitals, one per 30 s at 80 km/h."""

from __future__ import annotations

import itertools

import numpy as np

from truckcarbon.demo import CORRIDOR, corridor_pings


def _km(lon0: np.ndarray, lat0: np.ndarray, lon1: np.ndarray, lat1: np.ndarray) -> np.ndarray:
    """Great-circle distance on a 6371 km sphere."""
    p0, p1, dl = np.radians(lat0), np.radians(lat1), np.radians(lon1 - lon0)
    h = np.sin((p1 - p0) / 2) ** 2 + np.cos(p0) * np.cos(p1) * np.sin(dl / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


def test_corridor_fixes_run_from_beijing_to_guangzhou_at_the_demo_speed() -> None:
    lon, lat = corridor_pings()
    assert (lon[0], lat[0]) == CORRIDOR[0] and (lon[-1], lat[-1]) == CORRIDOR[-1]
    for x, y in CORRIDOR:  # every waypoint is a fix
        assert np.min(np.hypot(lon - x, lat - y)) < 1e-9
    step = _km(lon[:-1], lat[:-1], lon[1:], lat[1:])
    # Never much farther than 30 s at 80 km/h (the legs are straight in degrees, not great circles: within 1%).
    assert step.max() <= 80.0 * 30 / 3600 * 1.01
    legs = sum(float(_km(*map(np.array, (*a, *b)))) for a, b in itertools.pairwise(CORRIDOR))
    assert legs - 1e-6 <= step.sum() <= legs * 1.01  # the fixes follow the legs, no detour
    assert 1900 < legs < 2000  # Beijing -> Guangzhou through the four capitals: about 1,970 km
