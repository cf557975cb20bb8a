"""Where trucks go: regional trips near home and back, long-haul gravity trips, the transit-aware fit."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.sim.context import static_context
from truckcarbon.sim.destinations import (
    _path_km_by_province,
    _regional_km_by_province,
    fit_long_haul,
    gravity_attraction,
    long_haul_km_by_province,
    weighted_draw,
)
from truckcarbon.sim.fleet import Role, city_fleet_2022
from truckcarbon.sim.world import HUBS, load_world


def test_weighted_draws_follow_the_weights():
    rng = np.random.default_rng(1)
    cum = np.cumsum([1.0, 0.0, 3.0, 6.0])
    counts = np.bincount([weighted_draw(cum, rng) for _ in range(20_000)], minlength=4)
    assert counts[1] == 0
    assert counts / counts.sum() == pytest.approx([0.1, 0.0, 0.3, 0.6], abs=0.015)


def test_regional_trucks_stay_within_two_hops_and_return_home():
    world, destinations, _, _ = static_context()
    rng = np.random.default_rng(2)
    home = int(world.index_of([130100])[0])  # Shijiazhuang
    away = set(world.two_hops[home].tolist())
    for _ in range(200):
        there = destinations.pick(home, home, 0, Role.REGIONAL, rng)
        assert there in away
        assert destinations.pick(there, home, 1, Role.REGIONAL, rng) == home  # every other trip: back home
        assert destinations.pick(there, home, 2, Role.REGIONAL, rng) in set(world.two_hops[there].tolist())


def test_long_haul_trips_go_beyond_150_km_by_road():
    world, destinations, _, _ = static_context()
    rng = np.random.default_rng(3)
    for here in rng.integers(0, world.n, 30).tolist():
        if not np.isfinite(world.road_km[here]).sum() > 1:
            continue
        there = destinations.pick(here, here, 0, Role.LONG_HAUL, rng)
        assert world.road_km[here, there] > 150.0


def test_gravity_attraction_follows_the_operating_co2_with_hubs_weighted_up():
    world = load_world()
    attraction = gravity_attraction(world, city_fleet_2022(world))
    assert attraction.shape == (world.n,) and (attraction > 0).all()
    tianjin, shanghai = (int(i) for i in world.index_of([120100, 310100]))
    assert HUBS[120100] == 3.0 and HUBS[310100] == 3.0
    # Shandong's operating CO2 (2218 x 10^4 t) is about 2.9 times Yunnan's (not in the province hubs).
    by_province = {int(p): attraction[world.province == p].sum() for p in (370000, 530000)}
    assert by_province[370000] > 2 * by_province[530000]
    assert attraction[tianjin] > np.median(attraction) and attraction[shanghai] > np.median(attraction)


def test_fitted_long_haul_attraction_puts_the_operating_km_where_published():
    world = load_world()
    fleet_by_unit = city_fleet_2022(world)
    attraction = gravity_attraction(world, fleet_by_unit)
    km_by_province, prov = _path_km_by_province(world)
    regional, long_haul = _regional_km_by_province(world, attraction, fleet_by_unit, km_by_province, prov)
    operating = np.bincount(prov, weights=attraction)
    wanted = operating / operating.sum() * (regional.sum() + long_haul)

    def driven(lh_attraction: np.ndarray) -> dict[int, float]:
        km = regional + long_haul * long_haul_km_by_province(world, lh_attraction, km_by_province)
        return dict(zip(np.unique(world.province).tolist(), (km / wanted).tolist(), strict=True))

    before = driven(attraction)
    after = driven(fit_long_haul(world, attraction, fleet_by_unit))
    # Transit: central provinces get far more than their share, the coast and the west less.
    assert before[340000] > 1.5 and before[410000] > 1.3 and before[440000] < 0.7 and before[530000] < 0.8
    for province in (340000, 410000, 440000, 530000, 500000):
        assert after[province] == pytest.approx(1.0, abs=0.06)
    assert np.median(np.abs(np.array(list(after.values())) - 1)) < 0.02
