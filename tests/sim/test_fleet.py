"""The sampled fleet and the long-haul destinations: balanced sample, weights, transit-aware attraction."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.core.months import month_number
from truckcarbon.sim.activity import ndtri, province_activity, utilisation
from truckcarbon.sim.drive import (
    _path_km_by_province,
    _regional_km_by_province,
    fit_long_haul,
    gravity_attraction,
    long_haul_km_by_province,
)
from truckcarbon.sim.fleet import (
    KEY_REGION_PROVINCES,
    active,
    city_fleet_2022,
    long_haul_share,
    make_fleet,
    province_fleet_2022,
    published_province_table,
    quasi_random,
    systematic,
)
from truckcarbon.sim.world import load_world

SEEDS = (20240601, 7, 11)


@pytest.fixture(scope="module")
def fleets():
    world = load_world()
    return world, [make_fleet(world, 1000, np.random.default_rng([seed, 0])) for seed in SEEDS]


def test_quasi_random_is_scipys_scrambled_sobol():
    """The same points as SciPy's engine, to the bit, and the same use of the caller's generator."""
    qmc = pytest.importorskip("scipy.stats").qmc
    for seed in (1, [20240601, 0], [7, 0]):
        for n in (1, 2, 3, 1000, 2048, 5000):
            for dims in (1, 4, 10):
                ours, theirs = np.random.default_rng(seed), np.random.default_rng(seed)
                m = max(int(np.ceil(np.log2(n))), 0)
                expected = qmc.Sobol(dims, scramble=True, seed=theirs).random_base2(m)[:n]
                assert np.array_equal(quasi_random(n, dims, ours), expected)
                assert np.array_equal(ours.random(3), theirs.random(3))
                assert (
                    ours.bit_generator.seed_seq.n_children_spawned == theirs.bit_generator.seed_seq.n_children_spawned
                )


def test_ndtri_is_scipys_to_the_bit():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(3)
    p = np.concatenate(
        [
            rng.random(20_000),
            10.0 ** -rng.uniform(0, 300, 5_000),  # both tails, beyond exp(-32)
            1.0 - 10.0 ** -rng.uniform(0, 16, 5_000),
            [0.0, 1.0, 0.5, 1e-9, 1 - 1e-9, 0.13533528323661269189, 1 - 0.13533528323661269189, -0.1, 1.1],
        ]
    )
    ours, theirs = ndtri(p), special.ndtri(p)
    assert np.array_equal(ours, theirs, equal_nan=True)


def test_quasi_random_points_are_even_and_seeded():
    a = quasi_random(1000, 6, np.random.default_rng(1))
    assert a.shape == (1000, 6) and ((a >= 0) & (a < 1)).all()
    assert np.array_equal(a, quasi_random(1000, 6, np.random.default_rng(1)))
    assert not np.array_equal(a, quasi_random(1000, 6, np.random.default_rng(2)))
    # Any run of consecutive points fills each tenth of every column nearly evenly
    # (independent draws: about +/-10 of 100, often more).
    for block in (a, a[137:437]):
        counts = np.stack([np.bincount((block[:, j] * 10).astype(int), minlength=10) for j in range(6)])
        assert np.abs(counts - block.shape[0] / 10).max() <= 3


def test_roles_follow_the_province_long_haul_share(fleets):
    world, samples = fleets
    for fleet in samples:
        province = world.province[fleet.city]
        for p in np.unique(province):
            members = province == p
            expected = long_haul_share(int(p)) * members.sum()
            assert abs(fleet.role[members].sum() - expected) <= 3  # independent draws: often 6 or more


def test_weights_expand_each_province_to_its_published_fleet(fleets):
    world, samples = fleets
    fleet_2022 = province_fleet_2022()
    for fleet in samples:
        province = world.province[fleet.city]
        reporting = active(fleet, month_number(2022, 6))
        for p in np.unique(province[reporting]):
            weighted = fleet.weight[reporting & (province == p)].sum()
            assert weighted == pytest.approx(fleet_2022[int(p)], rel=1e-9)
        # Key-region provinces report less (China VI), so their trucks weigh more.
        key = np.isin(province, list(KEY_REGION_PROVINCES))
        assert reporting[key].mean() < reporting[~key].mean()
        assert np.median(fleet.weight[key]) > np.median(fleet.weight[~key])


def test_reporting_trucks_vary_little_with_the_seed(fleets):
    _, samples = fleets
    for month in (month_number(2018, 6), month_number(2020, 6), month_number(2022, 6)):
        counts = np.array([active(fleet, month).sum() for fleet in samples])
        assert counts.max() - counts.min() <= 0.07 * counts.mean()  # independent draws: often 0.15
    long_haul = np.array([fleet.role[active(fleet, month_number(2022, 6))].mean() for fleet in samples])
    assert long_haul.max() - long_haul.min() < 0.03


def test_province_activity_follows_the_published_registration_co2_per_truck():
    factors = province_activity()
    table = published_province_table()
    per_truck = {
        int(p): co2 / n
        for p, co2, n in zip(
            table["province_adcode"].to_pylist(),
            table["registration_co2_1e4_t"].to_pylist(),
            table["registered_1e4"].to_pylist(),
            strict=True,
        )
    }
    assert set(factors) == set(per_truck)
    # Hebei's trucks drive more than Yunnan's and Xinjiang's, in the published proportion once the roles are counted.
    assert factors[130000] > 1.2 and factors[530000] < 0.6 and factors[650000] < 0.6
    draw = np.full(2, 0.5)
    km = utilisation(draw, np.array([130000, 530000], np.int32))
    assert km[0] / km[1] == pytest.approx(factors[130000] / factors[530000])
    assert utilisation(draw, np.array([460000], np.int32))[0] == pytest.approx(km[0] / factors[130000])


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


def test_systematic_draws_keep_every_run_to_its_expected_count():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 0.8, 500)
    draws = systematic(p, np.random.default_rng(4))
    assert draws.dtype == np.bool_ and draws.size == p.size
    for a, b in rng.integers(0, 500, (200, 2)):
        lo, hi = sorted((int(a), int(b)))
        assert abs(draws[lo:hi].sum() - p[lo:hi].sum()) < 1.0 + 1e-9
    assert not systematic(np.zeros(10), rng).any() and systematic(np.ones(10), rng).all()
