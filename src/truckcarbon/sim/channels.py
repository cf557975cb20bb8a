"""What a truck's terminal reports besides its position: speed, odometer and fuel gauge of each fix.

- Speed (km/h, float32): the true speed times 1 + 3% Gaussian noise.
- Odometer (JT/T 808 item 0x01, 0.1 km): the truck's true distance so far,
  continued from month to month.
- Fuel level (item 0x02, 0.1 L): a :data:`TANK_L` tank that drains by the true
  fuel burnt between fixes (road world: :mod:`truckcarbon.sim.physics`; straight
  world: the distance times the fuel rate of the truck's standard and load);
  below :data:`REFUEL_BELOW` of the tank the truck refuels to 90-100% at that fix
  (the level jumps up). A truck starts its first month with :data:`START_TANK_L`.

The load channel is the true load of the trip under way (:class:`~truckcarbon.sim.drive.Track`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from truckcarbon.sim.defects import standard_normal
from truckcarbon.sim.drive import Track

TANK_L = 600.0  # a common tank size of Chinese tractor units (two 300 L tanks)
REFUEL_BELOW = 0.15
START_TANK_L = TANK_L * 0.8


@dataclass(frozen=True)
class Channels:
    """The channels of a truck-month's fixes, and the odometer and tank after its last fix."""

    speed_kmh: npt.NDArray[np.float32]
    odometer_km: npt.NDArray[np.float64]
    fuel_level_l: npt.NDArray[np.float32]
    odometer_end_km: float
    tank_end_l: float


def terminal_channels(
    tr: Track,
    rates: npt.NDArray[np.float64],
    odometer_km: float,
    tank_l: float,
    rng: np.random.Generator,
    fuel_l: npt.NDArray[np.float64] | None = None,
) -> Channels:
    """The channels (module docstring) of the fixes ``tr`` of a truck whose odometer reads ``odometer_km``
    and whose tank holds ``tank_l`` at the month's start; ``fuel_l``: the true fuel burnt up to each fix (L),
    else the distance times ``rates`` (L/100 km by load)."""
    n = tr.t_s.size
    z = standard_normal(rng, n)
    refill = rng.uniform(0.9, 1.0, 64) * TANK_L
    if fuel_l is None:
        l_per_km = np.asarray(rates, dtype=np.float64)[tr.load] / 100.0
        drain = np.diff(tr.odometer_km, prepend=tr.odometer_km[:1]) * l_per_km if n else np.zeros(0)
    else:
        drain = np.diff(fuel_l, prepend=fuel_l[:1]) if n else np.zeros(0)
    odo0, tank0 = float(odometer_km), float(tank_l)
    out = _channels_kernel(tr.speed_kmh, z, tr.odometer_km, odo0, drain, tank0, refill)
    while out[4] > refill.size:  # more refuels than draws: draw more and redo (a very long month)
        refill = np.concatenate([refill, rng.uniform(0.9, 1.0, refill.size) * TANK_L])
        out = _channels_kernel(tr.speed_kmh, z, tr.odometer_km, odo0, drain, tank0, refill)
    speed, odo, level, tank_end, _ = out
    odometer_end = odo0 + float(tr.odometer_km[-1]) if n else odo0
    return Channels(speed, odo, level, odometer_end, float(tank_end))


@nb.njit(cache=True)
def _channels_kernel(speed_kmh, z, odometer_km, odo0, drain_l, start_l, refill):  # type: ignore[no-untyped-def]
    """Speed, odometer and fuel-level channels (see :func:`terminal_channels`) in one pass.

    Returns them with the tank level after the last fix and the refuels used
    (``refill.size + 1`` when the refuel levels ran out).
    """
    n = odometer_km.shape[0]
    speed = np.empty(n, np.float32)
    odo = np.empty(n)
    level = np.empty(n, np.float32)
    current = start_l
    used = 0
    for i in range(n):
        speed[i] = speed_kmh[i] * (1.0 + 0.03 * z[i])
        odo[i] = np.round((odo0 + odometer_km[i]) * 10.0) / 10.0
        if i > 0:
            current -= drain_l[i]
        if current < REFUEL_BELOW * TANK_L:
            if used == refill.shape[0]:
                return speed, odo, level, start_l, used + 1
            current = refill[used]
            used += 1
        level[i] = np.round(current * 10.0) / 10.0
    return speed, odo, level, current, used
