"""Realistic defects of telematics fixes, applied to a truck-month of true fixes.

Each defect has a rate in :class:`DefectRates` and is counted, so tests and the
manifest can check that the data carry the defects asked for:

* ``gps_noise_m``: Gaussian position noise (standard deviation, metres; draws of
  :func:`standard_normal`) on every fix, including parked ones (stationary drift);
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

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError
from truckcarbon.sim.activity import ndtri

GAP_MIN_S, GAP_MAX_S = 120.0, 1800.0  # tunnels and dead zones: 2 to 30 minutes
STUCK_MIN_S, STUCK_MAX_S = 60.0, 600.0  # a stuck receiver repeats one position for 1 to 10 minutes
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
DEFECT_NAMES = (
    "gaps", "gap_fixes", "jumps", "stuck_runs", "stuck_fixes", "zero_fixes", "duplicates", "out_of_order",
    "multipath",  # the road world's multipath outliers (truckcarbon.sim.road), 0 in the straight world
)  # fmt: skip
NORMAL_KNOTS = 12  # :func:`standard_normal`: 2**12 equal-probability bins of N(0, 1) ...
NORMAL_STEPS = 4  # ... each drawn at 2**4 evenly spaced points


def _normal_knots() -> npt.NDArray[np.float32]:
    """Bounds of the 2**NORMAL_KNOTS equal-probability bins of N(0, 1), scaled so that the draws of
    :func:`standard_normal` have unit variance.

    The outer bins end where a uniform density over the bin has the normal tail's mean:
    ``2 E[Z | Z > a] - a`` for the last inner bound ``a``.
    """
    bins = 1 << NORMAL_KNOTS
    inner = ndtri(np.arange(1, bins // 2) / bins)  # negative; the upper half mirrors it
    a = -float(inner[0])
    tail_mean = bins * math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)  # E[Z | Z > a] = phi(a) / (1 / bins)
    knots = np.concatenate([[-(2.0 * tail_mean - a)], inner, [0.0], -inner[::-1], [2.0 * tail_mean - a]])
    steps = 1 << NORMAL_STEPS
    at = (np.arange(steps) + 0.5) / steps
    values = knots[:-1, None] + np.diff(knots)[:, None] * at[None, :]
    return (knots / math.sqrt(float(np.mean(values**2)))).astype(np.float32)


_NORMAL_KNOTS = _normal_knots()


@nb.njit(cache=True)
def _normals_kernel(u, knots, out):  # type: ignore[no-untyped-def]
    """The draws of :func:`standard_normal` from 16-bit uniforms ``u``: bin ``u >> 4``, point ``u & 15``."""
    for i in range(out.shape[0]):
        v = u[i]
        k = v >> 4
        f = np.float32(((v & 15) + 0.5) * (1.0 / 16.0))
        out[i] = knots[k] + (knots[k + 1] - knots[k]) * f


def standard_normal(rng: np.random.Generator, shape: int | tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Standard normal draws (float32) by inverse transform of 16-bit uniforms, four per 64-bit output of
    ``rng``'s bit generator.

    A uniform picks one of 4,096 equal-probability bins of N(0, 1) (its high 12
    bits) and one of 16 evenly spaced points in the bin (its low 4 bits): the
    distribution's quantiles are the normal's at every 1/4096, its tails end at
    4.0 standard deviations (:func:`_normal_knots`), and its variance is 1. For GPS and speed
    noise that is the normal itself (large errors are the jump defects). It costs
    a fifth of ``Generator.standard_normal`` (three draws per fix, the largest
    draw of the simulator); the 16 KB table stays in the processor's first-level cache.
    """
    n = math.prod(shape) if isinstance(shape, tuple) else shape
    raw = rng.bit_generator.random_raw(-(-n // 4))
    out = np.empty(n, np.float32)
    _normals_kernel(raw.view(np.uint16), _NORMAL_KNOTS, out)
    return out.reshape(shape)


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
        """Raise :class:`~truckcarbon.core.errors.InputError` for a rate outside its range."""
        for name, value in self.__dict__.items():
            limit = 1000.0 if name == "gps_noise_m" else 0.2
            if not 0.0 <= value <= limit:
                raise InputError(f"defect rate {name}={value} must be between 0 and {limit}")


def events(rng: np.random.Generator, n: int, rate: float) -> npt.NDArray[np.int64]:
    """Sorted positions in ``0..n-1`` where an event with probability ``rate`` happens, each independently.

    Drawn as the geometric waiting times of that Bernoulli process, so a rare
    defect costs draws in proportion to its events, not to ``n``.
    """
    if n <= 0 or rate <= 0.0:
        return np.empty(0, np.int64)
    if rate >= 1.0:
        return np.arange(n, dtype=np.int64)
    chunks = []
    pos = -1
    while True:
        gaps = rng.geometric(rate, max(16, int(n * rate * 1.2) + 8))
        at = np.cumsum(gaps, dtype=np.int64)
        at += pos
        chunks.append(at[: np.searchsorted(at, n)])  # increasing: the positions below n
        if at[-1] >= n:
            break
        pos = int(at[-1])
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


@nb.njit(cache=True)
def _add_noise(lon, lat, z, sigma_m):  # type: ignore[no-untyped-def]
    """Gaussian position noise of ``sigma_m`` metres from standard normal draws ``z`` (2, n), in place.

    Degrees of longitude per metre take the cosine of a latitude within 0.01 degrees of the fix's
    (recomputed when the truck has moved further north or south): the east-west standard deviation
    is ``sigma_m`` to within 0.03%.
    """
    lat_step = sigma_m / M_PER_DEG_LAT
    lat_c = 1000.0  # the latitude of lon_step (none yet)
    lon_step = 0.0
    for i in range(lon.shape[0]):
        y = lat[i] + z[0, i] * lat_step
        lat[i] = y
        if abs(y - lat_c) > 0.01:
            lat_c = y
            lon_step = sigma_m / (M_PER_DEG_LON_EQ * math.cos(math.radians(y)))
        lon[i] += z[1, i] * lon_step


@nb.njit(cache=True)
def _hold(lon, lat, start, end):  # type: ignore[no-untyped-def]
    """Stuck runs: fixes ``start[k] + 1`` to ``end[k] - 1`` repeat fix ``start[k]``, in order; returns their count."""
    held = 0
    for k in range(start.shape[0]):
        for i in range(start[k] + 1, end[k]):
            lon[i] = lon[start[k]]
            lat[i] = lat[start[k]]
        held += max(end[k] - start[k] - 1, 0)
    return held


@nb.njit(cache=True)
def _kept(n, start, end):  # type: ignore[no-untyped-def]
    """The fixes outside the gaps (fix ``start[k]`` up to, not including, ``end[k]``; at least the first)."""
    keep = np.ones(n, np.bool_)
    for k in range(start.shape[0]):
        keep[start[k] : max(end[k], start[k] + 1)] = False
    return np.flatnonzero(keep)


@nb.njit(cache=True)
def _emitted(kept, dup, swap):  # type: ignore[no-untyped-def]
    """Emitted rows: ``kept`` with row ``kept[d]`` twice for each ``d`` of ``dup`` (sorted), then the pairs
    of positions ``s, s + 1`` for each ``s`` of ``swap`` (not overlapping) swapped."""
    rows = np.empty(kept.shape[0] + dup.shape[0], np.int64)
    j = 0
    d = 0
    for i in range(kept.shape[0]):
        rows[j] = kept[i]
        j += 1
        if d < dup.shape[0] and dup[d] == i:
            rows[j] = kept[i]
            j += 1
            d += 1
    for s in swap:
        rows[s], rows[s + 1] = rows[s + 1], rows[s]
    return rows


def apply_defects(
    t: npt.NDArray[np.int64],
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    rates: DefectRates,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, int]]:
    """Defects of a truck-month of true fixes (times ``t``, positions ``lon``, ``lat``).

    Returns the emitted rows (the true fix each row repeats, in file order), the
    positions of the true fixes as the terminal reports them (noise, stuck runs,
    jumps and zero fixes applied; new arrays), and the count of each defect. The
    emitted columns are the true fixes' columns taken at the rows, positions taken
    from the reported ones.
    """
    lon = np.asarray(lon, dtype=np.float64).copy()
    lat = np.asarray(lat, dtype=np.float64).copy()
    n = lon.size
    counts = dict.fromkeys(DEFECT_NAMES, 0)
    if n == 0:
        return np.empty(0, np.int64), lon, lat, counts
    if rates.gps_noise_m > 0:
        _add_noise(lon, lat, standard_normal(rng, (2, n)), rates.gps_noise_m)
    stuck = events(rng, n, rates.stuck_rate)
    until = np.searchsorted(t, t[stuck] + rng.uniform(STUCK_MIN_S, STUCK_MAX_S, stuck.size))
    counts["stuck_runs"] = int(stuck.size)
    counts["stuck_fixes"] = int(_hold(lon, lat, stuck, np.minimum(np.maximum(until, stuck + 2), n)))
    jumps = events(rng, n, rates.jump_rate)
    if jumps.size:
        r_km = rng.uniform(2.0, 50.0, jumps.size)
        theta = rng.uniform(0, 2 * np.pi, jumps.size)
        lat[jumps] += r_km * 1000 * np.sin(theta) / M_PER_DEG_LAT
        lon[jumps] += r_km * 1000 * np.cos(theta) / (M_PER_DEG_LON_EQ * np.cos(np.radians(lat[jumps])))
        counts["jumps"] = int(jumps.size)
    zeros = events(rng, n, rates.zero_rate)
    zeros = zeros[~np.isin(zeros, jumps, kind="sort")]  # one defect per fix
    lon[zeros] = 0.0
    lat[zeros] = 0.0
    counts["zero_fixes"] = int(zeros.size)

    gaps = events(rng, n, rates.gap_rate)
    until = np.searchsorted(t, t[gaps] + rng.uniform(GAP_MIN_S, GAP_MAX_S, gaps.size), side="left")
    kept = _kept(n, gaps, until)
    counts["gaps"] = int(gaps.size)
    counts["gap_fixes"] = int(n - kept.size)
    dup = events(rng, kept.size, rates.duplicate_rate)  # a duplicate follows its original
    counts["duplicates"] = int(dup.size)
    swap = events(rng, kept.size + dup.size - 1, rates.out_of_order_rate)
    if swap.size:
        swap = swap[np.concatenate([[True], np.diff(swap) > 1])]  # non-overlapping pairs
    counts["out_of_order"] = int(swap.size)
    return _emitted(kept, dup, swap), lon, lat, counts
