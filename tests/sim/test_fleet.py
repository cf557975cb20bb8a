"""The sampled fleet: balanced sample, quasi-random attributes, roles, weights."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_number
from truckcarbon.sim.fleet import (
    KEY_REGION_PROVINCES,
    active,
    long_haul_share,
    make_fleet,
    province_fleet_2022,
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


def test_systematic_draws_keep_every_run_to_its_expected_count():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 0.8, 500)
    draws = systematic(p, np.random.default_rng(4))
    assert draws.dtype == np.bool_ and draws.size == p.size
    for a, b in rng.integers(0, 500, (200, 2)):
        lo, hi = sorted((int(a), int(b)))
        assert abs(draws[lo:hi].sum() - p[lo:hi].sum()) < 1.0 + 1e-9
    assert not systematic(np.zeros(10), rng).any() and systematic(np.ones(10), rng).all()


def test_quasi_random_has_ten_tabulated_dimensions():
    assert quasi_random(4, 10, np.random.default_rng(1)).shape == (4, 10)
    with pytest.raises(InputError, match="at most 10 Sobol' dimensions"):
        quasi_random(4, 11, np.random.default_rng(1))


def test_the_vehicles_table_has_one_row_per_truck_with_unique_plates(fleets):
    _, samples = fleets
    fleet = samples[0]
    table = fleet.table()
    assert table["vehicle_id"].to_pylist() == list(range(1, 1001))
    assert len(set(table["plate"].to_pylist())) == 1000
    assert set(table["emission_standard"].to_pylist()) <= {"China III", "China IV", "China V", "China VI"}
    assert set(table["role"].to_pylist()) == {"regional", "long_haul"}
    assert all(
        r < t
        for r, t in zip(table["registration_month"].to_pylist(), table["retirement_month"].to_pylist(), strict=True)
    )


def test_fuels_follow_the_registration_years_shares(fleets):
    from truckcarbon.emissions.fuels import FUELS, FuelType
    from truckcarbon.sim.fuels import NEW_FUEL_SHARE

    _, made = fleets
    year = np.concatenate([f.registered_month // 12 for f in made])
    fuel = np.concatenate([f.fuel for f in made])
    for y in (2018, 2022, 2023):
        rows = year == y
        for f in (FuelType.LNG, FuelType.ELECTRIC):
            share = float(np.mean(fuel[rows] == FUELS.index(f)))
            want = NEW_FUEL_SHARE[y].get(f, 0.0)
            assert abs(share - want) < 3 * np.sqrt(want * (1 - want) / rows.sum()) + 1e-9, (y, f, share)
    assert np.mean(fuel == 0) > 0.85  # diesel stays the fleet's fuel
    assert set(made[0].table()["fuel_type"].to_pylist()) <= {f.value for f in FUELS}
