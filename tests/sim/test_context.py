"""What each process derives: the fleet sampled once and handed over, the context built once per configuration."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np

from truckcarbon.sim.context import adopt_fleet, context, sampled_fleet, static_context
from truckcarbon.sim.fleet import make_fleet
from truckcarbon.sim.world import load_world

from .worlds import SMALL

SAMPLER = """
import sys
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.context import sampled_fleet
sampled_fleet(SimConfig(trucks=50, start_month="2022-01", end_month="2022-01"))
print(",".join(m for m in sys.modules if m.startswith(("scipy.stats", "scipy.special"))))
"""


def test_sampling_the_fleet_imports_neither_scipy_stats_nor_special():
    """Their import cost the main process about 1.5 s before the first month could start."""
    load_world()  # the derived road arrays cached first (a new code version builds them once, with scipy)
    result = subprocess.run([sys.executable, "-c", SAMPLER], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_fleet_is_sampled_once_from_the_seed():
    fleet, use = sampled_fleet(SMALL)
    again, _ = sampled_fleet(SMALL)
    assert again is fleet and use.shape == (12,) and (use > 0).all()
    fresh = make_fleet(load_world(), 12, np.random.default_rng([SMALL.seed, 0]))
    assert np.array_equal(fresh.city, fleet.city) and fresh.plate == fleet.plate
    other, _ = sampled_fleet(replace(SMALL, seed=SMALL.seed + 1))
    assert not np.array_equal(other.city, fleet.city)


def test_a_helper_adopts_the_fleet_it_is_handed():
    config = replace(SMALL, trucks=3, seed=99)
    handed = sampled_fleet(replace(SMALL, trucks=3))
    adopt_fleet(config, handed)
    ctx = context(config)
    assert ctx.fleet is handed[0] and ctx.utilisation is handed[1]
    assert context(config) is ctx  # built once
    world, destinations, locator, rates = static_context()
    assert ctx.world is world and ctx.destinations is destinations and ctx.locator is locator
    assert rates.shape == (4, 3) and (rates[:, 2] > rates[:, 0]).all()  # full trucks burn more than empty ones
