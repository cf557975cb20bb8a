"""One task of a run: a group of trucks through one month, truck after truck.

For each truck in service and reporting (:func:`~truckcarbon.sim.fleet.active`),
from its own random stream ``(seed, vehicle_id, month)`` and in this order: its
month's distance (:func:`~truckcarbon.sim.activity.monthly_km`), its drive
(:mod:`truckcarbon.sim.drive` or, in the road world, :mod:`truckcarbon.sim.road`)
and the truth rows of its path (:mod:`truckcarbon.sim.truth`), its terminal's
channels (:mod:`truckcarbon.sim.channels`), the positions its receiver reports
(road noise, then :func:`~truckcarbon.sim.defects.apply_defects`), and its emitted
pings, appended to the group's part files (:class:`~truckcarbon.sim.pingfile.PartWriter`).
A :class:`TruckGroup` carries its trucks' state from month to month.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from truckcarbon.core.months import month_bounds_utc
from truckcarbon.emissions.fuels import FUELS, fuels
from truckcarbon.sim.activity import monthly_km
from truckcarbon.sim.channels import START_TANK_L, terminal_channels
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.context import SimContext, context
from truckcarbon.sim.defects import DEFECT_NAMES, apply_defects
from truckcarbon.sim.drive import Track, TruckState, drive_month
from truckcarbon.sim.fleet import Role, active
from truckcarbon.sim.physics import DIESEL_KG_PER_L, path_fuel_g, truck_physics
from truckcarbon.sim.pingfile import PartWriter
from truckcarbon.sim.road import drive_month_road, receiver_quality, road_noise
from truckcarbon.sim.truth import TruthRows, UnitKm, path_truth, track_truth

ROLES = list(Role)  # a truck's role code indexes this


@dataclass
class TruckGroup:
    """The trucks one task simulates, with their state between months."""

    index: int
    trucks: npt.NDArray[np.int64]  # positions in the fleet
    states: list[TruckState]
    last_fix: list[tuple[float, float] | None]  # each truck's last true fix so far
    odometer: npt.NDArray[np.float64]  # each truck's odometer at the start of the next month
    tank_l: npt.NDArray[np.float64]  # and the fuel in its tank

    @classmethod
    def start(cls, index: int, trucks: npt.NDArray[np.int64], ctx: SimContext) -> TruckGroup:
        """Group ``index`` of the fleet's ``trucks`` before their first month: parked at home."""
        world = ctx.world
        states = [
            TruckState(home=int(c), lon=float(world.lon[c]), lat=float(world.lat[c])) for c in ctx.fleet.city[trucks]
        ]
        tanks = np.full(trucks.size, START_TANK_L)
        return cls(index, trucks, states, [None] * trucks.size, np.zeros(trucks.size), tanks)


@dataclass
class MonthResult:
    """What a task did: the group's state after the month, pings written, defects and truth rows."""

    group: TruckGroup
    pings: int
    defects: dict[str, int]
    truth: dict[str, npt.NDArray[np.generic]]  # TruthRows.columns


@dataclass(frozen=True)
class _Driven:
    """A truck-month driven: its true fixes, its truth rows, (road world) the setting of each fix and the
    true fuel burnt up to each fix (L)."""

    track: Track
    truth: UnitKm | None
    setting: npt.NDArray[np.int8] | None
    fuel_at_fix_l: npt.NDArray[np.float64] | None = None


def simulate_group_month(config: SimConfig, group: TruckGroup, m: int, part_dir: Path) -> MonthResult:
    """Simulate month ``m`` of ``group`` (module docstring); write its pings as part files in ``part_dir``."""
    return _GroupMonth(config, group, m, part_dir).run()


class _GroupMonth:
    """A group's month in progress: the counts, truth rows and part files gathered so far."""

    def __init__(self, config: SimConfig, group: TruckGroup, m: int, part_dir: Path) -> None:
        self.config = config
        self.ctx = context(config)
        self.group = group
        self.m = m
        self.bounds = month_bounds_utc(m)
        self.defects = dict.fromkeys(DEFECT_NAMES, 0)
        self.truth = TruthRows()
        self.writer = PartWriter(
            part_dir, group.index, config.rows_per_file, config.left_out_channels(), config.id_format
        )
        self.pings = 0

    def run(self) -> MonthResult:
        """Every truck of the group in service this month, in group order."""
        in_service = active(self.ctx.fleet, self.m)
        for pos, k in enumerate(self.group.trucks.tolist()):
            if in_service[k]:
                self._truck(pos, k)
        self.writer.flush()
        return MonthResult(self.group, self.pings, self.defects, self.truth.columns())

    def _truck(self, pos: int, k: int) -> None:
        """Truck ``k`` of the fleet, ``pos`` of the group: drive, truth, channels, reported fixes, pings."""
        fleet, group = self.ctx.fleet, self.group
        vid = int(fleet.vehicle_id[k])
        rng = np.random.default_rng([self.config.seed, vid, self.m])
        driven = self._drive(pos, k, rng)
        tr = driven.track
        if driven.truth is not None:
            self.truth.add(vid, driven.truth)
        if tr.t_s.size:
            group.last_fix[pos] = (float(tr.lon[-1]), float(tr.lat[-1]))
        rates = self.ctx.rates[int(fleet.standard[k])]
        ch = terminal_channels(
            tr, rates, float(group.odometer[pos]), float(group.tank_l[pos]), rng, fuel_l=driven.fuel_at_fix_l
        )
        if fleet.fuel[k] != 0:  # a diesel tank's gauge: other fuels report none
            ch = replace(ch, fuel_level_l=np.full(ch.fuel_level_l.size, np.nan, np.float32))
        group.odometer[pos], group.tank_l[pos] = ch.odometer_end_km, ch.tank_end_l
        emitted, lon, lat = self._reported_fixes(vid, tr, driven.setting, rng)
        acc = tr.acc_on if tr.acc_on is not None else np.ones(tr.t_s.size, np.bool_)
        fixes = (tr.t_s, lon, lat, ch.speed_kmh, tr.load, ch.odometer_km, ch.fuel_level_l, acc)
        self.writer.add(vid, emitted, fixes)
        self.pings += emitted.size

    def _drive(self, pos: int, k: int, rng: np.random.Generator) -> _Driven:
        """The month's drive of truck ``k`` (``pos`` in the group) and the truth rows of its path."""
        ctx, config = self.ctx, self.config
        fleet, world = ctx.fleet, ctx.world
        role = ROLES[int(fleet.role[k])]
        y, mo = divmod(self.m, 12)
        age = (self.m - int(fleet.registered_month[k])) / 12.0
        km = monthly_km(role, float(ctx.utilisation[k]), age, y, mo + 1, int(world.province[fleet.city[k]]))
        state = self.group.states[pos]
        m_start, m_end = self.bounds
        args = (world, state, role, ctx.destinations, m_start, m_end, km, config.interval_s, config.parked_interval_s)
        if config.geometry == "road":
            start = (state.lon, state.lat, int(state.route_load[0]) if state.route_load.size else 0)
            tr, path, setting = drive_month_road(*args, rng)
            physics = truck_physics(config.seed, int(fleet.vehicle_id[k]), role)
            if not fuels()[FUELS[int(fleet.fuel[k])]].idles:  # an electric drive draws nothing standing
                physics = replace(physics, idle_l_per_h=0.0)
            fuel = path_fuel_g(path.speed_kmh, path.load, path.offset, physics)
            assert tr.path_index is not None
            burnt = np.concatenate([[0.0], np.cumsum(fuel)]) / (1000.0 * DIESEL_KG_PER_L)  # L up to each second
            return _Driven(tr, path_truth(ctx.locator, *start, path, fuel), setting, burnt[tr.path_index + 1])
        tr = drive_month(*args, rng)
        return _Driven(tr, track_truth(ctx.locator, self.group.last_fix[pos], tr), None)

    def _reported_fixes(
        self, vid: int, tr: Track, setting: npt.NDArray[np.int8] | None, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The emitted rows and reported positions of the fixes ``tr`` (road world: receiver noise by the
        ``setting`` of each fix, then the other defects); counts the defects."""
        rates = self.config.defects
        lon, lat, multipath = tr.lon, tr.lat, 0
        if setting is not None:
            sigma = rates.gps_noise_m * receiver_quality(self.config.seed, vid)
            lon, lat, multipath = road_noise(tr.t_s, tr.lon, tr.lat, setting, sigma, rng)
            rates = replace(rates, gps_noise_m=0.0)
        emitted, lon, lat, counts = apply_defects(tr.t_s, lon, lat, rates, rng)
        counts["multipath"] = multipath
        for name, c in counts.items():
            self.defects[name] += int(c)
        return emitted, lon, lat
