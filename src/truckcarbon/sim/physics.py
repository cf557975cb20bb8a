"""The road world's true fuel: a tractive-power model of each truck on its 1 s drive cycle.

Every second with the ignition on, the engine delivers what the wheels need through
the driveline, and burns fuel along a Willans line: the fuel at zero output (engine
friction and accessories: the idle rate) plus a marginal brake-specific consumption
per unit of power, so that part load is less efficient than full load (Guzzella and
Sciarretta, *Vehicle Propulsion Systems*, 3rd ed., 2013, ch. 3)::

    P_wheel = m_eff a v + m g C_rr v + 1/2 rho C_d A v^3            (flat road; W)
    fuel    = idle + BSFC_marginal max(P_wheel, 0) / eta             (g/s)

with ``m`` the truck's mass at its load state (empty, half, full: kerb mass plus that
share of its payload), ``m_eff = 1.05 m`` (wheels and driveline turning), ``a`` and
``v`` the 1 s path's acceleration and speed (averaged over ``SMOOTH_S``). Braking
and coasting burn idle fuel; a
truck parked with its ignition off burns none. This model is independent of every
estimation method of :mod:`truckcarbon.emissions` (the report's rates, COPERT's speed
curves): comparing a method with it is an honest test. The published-figure
calibration of the straight world keeps the report's method (that is how the
published figures were made).

Parameters per truck are drawn uniformly from the ranges below (seeded by the world's
seed and the vehicle id), each range with its source:

- drag coefficient ``C_d`` 0.55-0.77: conventional tractor-trailers from the EPA GHG
  rule's SmartWay to its average high-roof truck (National Research Council, 2010,
  *Technologies and Approaches to Reducing the Fuel Consumption of Medium- and
  Heavy-Duty Vehicles*, Table G-1); China's cab-over tractors without fairings sit at
  its upper end;
- frontal area ``A`` 9.0-10.2 m^2: within China's 2.55 m width and 4.0 m height limits
  (GB 1589-2016), the frontal outline filling 88-100 % of them;
- rolling resistance ``C_rr`` 0.0063-0.0078: the same table's weighted tractor-trailer
  tyres (SmartWay 0.0063 to EPA average 0.0077-0.0078);
- driveline efficiency ``eta`` 0.85-0.92: the NRC (2010) report's range for heavy
  trucks (chapter 5, transmission and driveline);
- marginal ``BSFC`` 190-205 g/kWh: with the idle intercept, 205-225 g/kWh at a
  loaded truck's expressway power (brake thermal efficiency 37-41 % at 42.7 MJ/kg,
  China V-VI heavy diesels in service; above 42 % is the DOE SuperTruck baseline's
  peak) and 250-300 g/kWh at urban part load;
- idle 2.2-3.4 L/h: heavy trucks idle at about 0.8 US gallon (3.0 L) per hour, 0.6-0.9
  gal/h by engine speed and accessory load (Argonne National Laboratory, idling fuel
  consumption fact sheets; US DOE Vehicle Technologies Office, Fact #861, 2015);
- kerb mass and payload: long-haul 6x4 tractor with a 3-axle semi-trailer, kerb
  14-17 t, loaded to the 49 t combination limit (GB 1589-2016); regional 4-axle rigid
  truck, kerb 11-13 t, loaded to the 31 t limit. A half load is half the payload.

Diesel density 0.835 kg/L (the EMEP/EEA Guidebook's, as in
:data:`truckcarbon.emissions.copert.DIESEL_DENSITY_KG_PER_L`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from truckcarbon.emissions.copert import DIESEL_DENSITY_KG_PER_L as DIESEL_KG_PER_L
from truckcarbon.sim.fleet import Role

G = 9.80665  # m/s^2
RHO_AIR = 1.2  # kg/m^3, sea level at 20 C
ROTATING_MASS = 1.05  # effective mass over mass: wheels and driveline
CD = (0.55, 0.77)
AREA_M2 = (9.0, 10.2)
CRR = (0.0063, 0.0078)
ETA = (0.85, 0.92)
BSFC_G_PER_KWH = (190.0, 205.0)  # marginal (Willans line)
IDLE_L_PER_H = (2.2, 3.4)
KERB_T = {Role.LONG_HAUL: (14.0, 17.0), Role.REGIONAL: (11.0, 13.0)}
GROSS_T = {Role.LONG_HAUL: 49.0, Role.REGIONAL: 31.0}
# The 1 s path's speed carries the second-to-second jitter of its random process (a mean |a| of 0.3 m/s^2
# at expressway speed, where a loaded truck changes speed by a few hundredths): the model takes its speed
# and acceleration averaged over this many seconds (distance is kept: a centred average).
SMOOTH_S = 15
LOAD_SHARE = (0.0, 0.5, 1.0)  # of the payload, for load codes 0 empty, 1 half, 2 full


@dataclass(frozen=True)
class TruckPhysics:
    """One truck's parameters of the tractive-power model (module docstring)."""

    cd: float
    area_m2: float
    crr: float
    eta: float
    bsfc_g_per_kwh: float
    idle_l_per_h: float
    kerb_kg: float
    payload_kg: float

    def masses_kg(self) -> npt.NDArray[np.float64]:
        """Mass by load code (empty, half, full)."""
        return self.kerb_kg + self.payload_kg * np.array(LOAD_SHARE)

    def array(self) -> npt.NDArray[np.float64]:
        """The parameters in the order :func:`fuel_g_per_s` takes them."""
        return np.array([self.cd * self.area_m2, self.crr, self.eta, self.bsfc_g_per_kwh, self.idle_l_per_h])


def truck_physics(seed: int, vehicle_id: int, role: Role) -> TruckPhysics:
    """The parameters of truck ``vehicle_id`` (uniform in the module's ranges, from its own random stream)."""
    u = np.random.default_rng([seed, vehicle_id, 2024]).random(8)

    def pick(r: tuple[float, float], x: float) -> float:
        return r[0] + (r[1] - r[0]) * float(x)

    kerb = pick(KERB_T[role], u[7]) * 1000.0
    return TruckPhysics(
        cd=pick(CD, u[0]),
        area_m2=pick(AREA_M2, u[1]),
        crr=pick(CRR, u[2]),
        eta=pick(ETA, u[3]),
        bsfc_g_per_kwh=pick(BSFC_G_PER_KWH, u[5]),
        idle_l_per_h=pick(IDLE_L_PER_H, u[6]),
        kerb_kg=kerb,
        payload_kg=GROSS_T[role] * 1000.0 - kerb,
    )


@nb.njit(cache=True)
def fuel_g_per_s(speed_kmh, load, first, masses, params):  # type: ignore[no-untyped-def]
    """Fuel (g) of each second of a 1 s path: speeds (km/h), load codes (-1 unknown: half), ``first`` True
    at each shift's first second (no acceleration from the second before), ``masses`` by load code and
    ``params`` (:meth:`TruckPhysics.array`)."""
    cda, crr, eta, bsfc, idle_l_h = params[0], params[1], params[2], params[3], params[4]
    idle = idle_l_h * DIESEL_KG_PER_L * 1000.0 / 3600.0
    n = speed_kmh.shape[0]
    out = np.empty(n, np.float64)
    for i in range(n):
        v = speed_kmh[i] / 3.6
        a = 0.0 if first[i] or i == 0 else v - speed_kmh[i - 1] / 3.6
        k = load[i] if load[i] >= 0 else 1
        m = masses[k]
        p_wheel = ROTATING_MASS * m * a * v + m * G * crr * v + 0.5 * RHO_AIR * cda * v * v * v
        out[i] = idle + bsfc * max(p_wheel, 0.0) / eta / 3.6e6  # g/kWh * W -> g/s
    return out


def path_fuel_g(
    speed_kmh: npt.NDArray[np.float64],
    load: npt.NDArray[np.int8],
    offset: npt.NDArray[np.int64],
    physics: TruckPhysics,
) -> npt.NDArray[np.float64]:
    """Fuel (g) of each second of a truck-month's 1 s path (shifts starting at ``offset``)."""
    first = np.zeros(speed_kmh.size, np.bool_)
    first[offset[offset < speed_kmh.size]] = True
    smooth = _smoothed(speed_kmh, first, SMOOTH_S)
    return np.asarray(fuel_g_per_s(smooth, load, first, physics.masses_kg(), physics.array()))


@nb.njit(cache=True)
def _smoothed(speed_kmh, first, width):  # type: ignore[no-untyped-def]
    """Centred moving average of ``width`` seconds within each shift (``first`` marks their starts)."""
    n = speed_kmh.shape[0]
    out = np.empty(n, np.float64)
    lo = 0
    while lo < n:
        hi = lo + 1
        while hi < n and not first[hi]:
            hi += 1
        csum = np.zeros(hi - lo + 1)
        for i in range(lo, hi):
            csum[i - lo + 1] = csum[i - lo] + speed_kmh[i]
        half = width // 2
        for i in range(lo, hi):
            a = max(lo, i - half)
            b = min(hi, i + half + 1)
            out[i] = (csum[b - lo] - csum[a - lo]) / (b - a)
        lo = hi
    return out


__all__ = ["DIESEL_KG_PER_L", "TruckPhysics", "fuel_g_per_s", "path_fuel_g", "truck_physics"]
