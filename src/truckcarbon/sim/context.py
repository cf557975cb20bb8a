"""What every process of a run derives before it simulates: the world, destinations, locator, fuel rates
and the sampled fleet.

All of it is deterministic, so each process builds its own (:func:`context`, kept
per configuration). The reference-data part (:func:`static_context`) is the
same for every configuration. The fleet (:func:`sampled_fleet`) is sampled once
by the main process, which hands it to its helper processes
(:func:`adopt_fleet`, :mod:`truckcarbon.sim.workers`) so they need not import
what sampling needs while they load the world and the compiled kernels
(:func:`warm_up`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from truckcarbon.emissions.factors import fuel_rates
from truckcarbon.geo.locator import CityLocator
from truckcarbon.sim.activity import utilisation
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.destinations import Destinations, gravity_attraction
from truckcarbon.sim.fleet import Fleet, city_fleet_2022, make_fleet
from truckcarbon.sim.world import World, load_world


@dataclass
class SimContext:
    """What a process derives from the configuration to simulate its trucks."""

    world: World
    fleet: Fleet
    destinations: Destinations
    utilisation: npt.NDArray[np.float64]  # of each truck (sim.activity.utilisation)
    locator: CityLocator
    rates: npt.NDArray[np.float64]  # L/100 km [standard, load]


# The sampled fleet and its utilisations by configuration. The main process samples them and hands
# them to its helpers (:func:`adopt_fleet`), which load the world and the compiled kernels meanwhile.
_FLEETS: dict[SimConfig, tuple[Fleet, npt.NDArray[np.float64]]] = {}


def sampled_fleet(config: SimConfig) -> tuple[Fleet, npt.NDArray[np.float64]]:
    """The fleet of ``config`` and each truck's utilisation (sim.activity.utilisation)."""
    if config not in _FLEETS:
        world = load_world()
        fleet = make_fleet(world, config.trucks, np.random.default_rng([config.seed, 0]))
        _FLEETS[config] = fleet, utilisation(fleet.utilisation_draw, world.province[fleet.city])
    return _FLEETS[config]


def adopt_fleet(config: SimConfig, sampled: tuple[Fleet, npt.NDArray[np.float64]]) -> None:
    """Take ``sampled`` (:func:`sampled_fleet` of another process) as this process's fleet of ``config``."""
    _FLEETS[config] = sampled


@cache
def static_context() -> tuple[World, Destinations, CityLocator, npt.NDArray[np.float64]]:
    """What every process derives from the reference data alone: the world, the destinations, the
    locator and the fuel rates (L/100 km by standard and load)."""
    world = load_world()
    fleet_by_unit = city_fleet_2022(world)
    destinations = Destinations.build(world, gravity_attraction(world, fleet_by_unit), fleet_by_unit)
    return world, destinations, CityLocator("wgs84"), fuel_rates().matrix()


@cache
def context(config: SimConfig) -> SimContext:
    """The context of ``config`` in this process (built once)."""
    world, destinations, locator, rates = static_context()
    fleet, use = sampled_fleet(config)
    return SimContext(world, fleet, destinations, use, locator, rates)


def warm_up() -> None:
    """Build this process's static context and load the compiled kernels before the first month arrives."""
    locator = static_context()[2]
    locator.path_km(np.array([116.4, 116.5]), np.array([39.9, 39.9]), np.zeros(1, np.int64), 1)
