"""Realistic defects of telematics fixes, applied to a truck-month of true fixes.

Each defect has a rate in :class:`DefectRates` and is counted, so tests and the
manifest can check that the data carry the defects asked for:

* ``gps_noise_m``: Gaussian position noise (standard deviation, metres) on every
  fix, including parked ones (stationary drift);
* ``gap_rate``: per fix, the probability that a signal gap starts there; a gap
  drops the fixes of the next 2 to 30 minutes (tunnels, dead zones), whatever the
  reporting interval;
* ``jump_rate``: per fix, a fix displaced 2-50 km in a random direction;
* ``stuck_rate``: per fix, a stuck receiver repeating that fix's position for the
  next 1 to 10 minutes (at least one fix);
* ``zero_rate``: per fix, a (0, 0) fix;
* ``duplicate_rate``: per fix, an exact duplicate row;
* ``out_of_order_rate``: per fix, swapped with its successor in file order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

GAP_MIN_S, GAP_MAX_S = 120.0, 1800.0  # tunnels and dead zones: 2 to 30 minutes
STUCK_MIN_S, STUCK_MAX_S = 60.0, 600.0  # a stuck receiver repeats one position for 1 to 10 minutes
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
DEFECT_NAMES = ("gaps", "gap_fixes", "jumps", "stuck_runs", "stuck_fixes", "zero_fixes", "duplicates", "out_of_order")


@dataclass(frozen=True)
class DefectRates:
    """Defect rates (see the module docstring); all zero gives clean data."""

    gps_noise_m: float = 5.0
    gap_rate: float = 0.0005
    jump_rate: float = 0.0003
    stuck_rate: float = 0.0002
    zero_rate: float = 0.0002
    duplicate_rate: float = 0.002
    out_of_order_rate: float = 0.001

    def validate(self) -> None:
        for name, value in self.__dict__.items():
            limit = 1000.0 if name == "gps_noise_m" else 0.2
            if not 0.0 <= value <= limit:
                raise ValueError(f"defect rate {name}={value} must be between 0 and {limit}")


def apply_defects(
    columns: dict[str, npt.NDArray[np.generic]], rates: DefectRates, rng: np.random.Generator
) -> tuple[dict[str, npt.NDArray[np.generic]], dict[str, int]]:
    """Return the emitted columns (same keys) and the count of each defect."""
    lon = np.asarray(columns["lon"], dtype=np.float64).copy()
    lat = np.asarray(columns["lat"], dtype=np.float64).copy()
    n = lon.size
    counts = dict.fromkeys(DEFECT_NAMES, 0)
    if n == 0:
        return columns, counts
    if rates.gps_noise_m > 0:
        lat += rng.normal(0.0, rates.gps_noise_m / M_PER_DEG_LAT, n)
        lon += rng.normal(0.0, rates.gps_noise_m, n) / (M_PER_DEG_LON_EQ * np.cos(np.radians(lat)))
    t = np.asarray(columns["t"])
    for start in np.flatnonzero(rng.random(n) < rates.stuck_rate).tolist():
        end = max(int(np.searchsorted(t, t[start] + rng.uniform(STUCK_MIN_S, STUCK_MAX_S))), start + 2)
        end = min(n, end)
        lon[start + 1 : end] = lon[start]
        lat[start + 1 : end] = lat[start]
        counts["stuck_runs"] += 1
        counts["stuck_fixes"] += end - start - 1
    jumps = np.flatnonzero(rng.random(n) < rates.jump_rate)
    if jumps.size:
        r_km = rng.uniform(2.0, 50.0, jumps.size)
        theta = rng.uniform(0, 2 * np.pi, jumps.size)
        lat[jumps] += r_km * 1000 * np.sin(theta) / M_PER_DEG_LAT
        lon[jumps] += r_km * 1000 * np.cos(theta) / (M_PER_DEG_LON_EQ * np.cos(np.radians(lat[jumps])))
        counts["jumps"] = int(jumps.size)
    zeros = np.setdiff1d(np.flatnonzero(rng.random(n) < rates.zero_rate), jumps)  # one defect per fix
    lon[zeros] = 0.0
    lat[zeros] = 0.0
    counts["zero_fixes"] = int(zeros.size)

    keep = np.ones(n, bool)
    for start in np.flatnonzero(rng.random(n) < rates.gap_rate).tolist():
        end = int(np.searchsorted(t, t[start] + rng.uniform(GAP_MIN_S, GAP_MAX_S), side="left"))
        keep[start : max(end, start + 1)] = False
        counts["gaps"] += 1
    counts["gap_fixes"] = int(n - keep.sum())
    out = {k: np.asarray(v)[keep] for k, v in columns.items()}
    out["lon"] = lon[keep]
    out["lat"] = lat[keep]
    m = int(keep.sum())

    dup = rng.random(m) < rates.duplicate_rate
    if dup.any():
        order = np.sort(np.concatenate([np.arange(m), np.flatnonzero(dup)]), kind="stable")
        out = {k: v[order] for k, v in out.items()}
        counts["duplicates"] = int(dup.sum())
    m = out["lon"].size
    swap = np.flatnonzero(rng.random(m - 1) < rates.out_of_order_rate) if m > 1 else np.empty(0, np.int64)
    if swap.size:
        swap = swap[np.concatenate([[True], np.diff(swap) > 1])]  # non-overlapping pairs
        order = np.arange(m)
        order[swap], order[swap + 1] = swap + 1, swap
        out = {k: v[order] for k, v in out.items()}
        counts["out_of_order"] = int(swap.size)
    return out, counts
