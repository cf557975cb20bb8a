"""The Monte Carlo's building blocks, by hand: group sums, the bootstrap within strata, the factor draws."""

from __future__ import annotations

import numpy as np
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.montecarlo import (
    MIN_GAUGE_TRUCKS,
    N_BANDS,
    UncertaintySettings,
    bootstrap_counts,
    factor_draws,
    factor_errors,
    group_sums,
    quantiles,
    speed_band,
)


def test_group_sums_add_the_rows_of_each_group_and_leave_empty_groups_zero() -> None:
    values = np.array([[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]])
    out = group_sums(values, np.array([2, 0, 2]), 4)
    assert out.tolist() == [[10.0, 20.0], [0.0, 0.0], [101.0, 202.0], [0.0, 0.0]]
    assert group_sums(np.zeros((0, 3)), np.zeros(0, np.int64), 2).tolist() == [[0.0] * 3] * 2


def test_the_bootstrap_draws_each_stratum_its_own_size_and_is_seeded() -> None:
    stratum = np.array([0, 1, 0, 0, 2, 1], np.int64)
    counts = bootstrap_counts(stratum, 500, np.random.default_rng(7))
    assert counts.shape == (6, 500)
    for s, size in ((0, 3), (1, 2), (2, 1)):
        assert (counts[stratum == s].sum(axis=0) == size).all()  # every draw: as many vehicles as the stratum
    assert (counts[4] == 1).all()  # alone in its stratum: always drawn once
    assert counts[0].mean() == pytest.approx(1.0, abs=0.15)  # each member once on average
    assert (counts[0] != counts[2]).any()  # members drawn independently
    again = bootstrap_counts(stratum, 500, np.random.default_rng(7))
    assert (again == counts).all()


def test_speed_bands_split_at_their_edges() -> None:
    km = np.array([29.0, 30.0, 45.0, 75.0, 10.0])
    hours = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    assert speed_band(km, hours).tolist() == [0, 1, 2, 5, 3]  # no hours: the middle band (50 km/h)


def test_without_enough_gauges_the_factor_is_log_normal_with_mean_one() -> None:
    errors = factor_errors(*(np.zeros(0),) * 3, *(np.zeros(0, np.int64),) * 3)
    assert not errors.measured
    draws = factor_draws(errors, np.zeros(200, np.int64), np.zeros(200, np.int64), 1000, 0.15, np.random.default_rng(1))
    assert draws.mean() == pytest.approx(1.0, abs=0.005)
    assert np.log(draws).std() == pytest.approx(0.15, rel=0.02)


def test_gauges_lend_their_ratios_by_class_and_speed_band() -> None:
    """Trucks of class 0 whose gauges read 1.2 times the method at low speed and 0.9 at high speed: rows of each
    band draw their band's ratio, exactly (every truck agrees, so the calibration's bootstrap is 1)."""
    n = 2 * MIN_GAUGE_TRUCKS
    band = np.r_[np.zeros(n // 2, np.int64), np.full(n // 2, N_BANDS - 1)]
    method = np.full(n, 100.0)
    gauge = np.where(band == 0, 120.0, 90.0)
    truck = np.r_[np.arange(n // 2), np.arange(n // 2)]  # each truck a row in each band
    errors = factor_errors(gauge, method, np.full(n, 500.0), band, np.zeros(n, np.int64), truck)
    assert errors.measured
    rows = np.array([0, N_BANDS - 1], np.int64)
    draws = factor_draws(errors, rows, np.zeros(2, np.int64), 100, 0.15, np.random.default_rng(2))
    # The calibration: bootstraps of trucks whose litres sum to 210/200 each: no spread.
    assert draws[0] == pytest.approx(np.full(100, 1.2))
    assert draws[1] == pytest.approx(np.full(100, 0.9))


def test_short_gauge_rows_lend_no_ratio() -> None:
    errors = factor_errors(
        np.array([1.0, 30.0]), np.array([2.0, 30.0]), np.array([5.0, 100.0]), np.zeros(2, np.int64),
        np.zeros(2, np.int64), np.array([0, 1]),
    )  # fmt: skip
    assert errors.ratios.tolist() == [1.0]  # the 5 km row's gauge reads too few litres to say anything


def test_quantiles_are_the_p05_p50_p95_over_the_draws() -> None:
    sums = np.arange(101, dtype=np.float64)[None, :] * np.array([[1.0], [2.0]])
    assert quantiles(sums).tolist() == [[5.0, 50.0, 95.0], [10.0, 100.0, 190.0]]


@pytest.mark.parametrize(
    "settings", [UncertaintySettings(draws=5), UncertaintySettings(unknown_full_share=(0.8, 0.4)),
                 UncertaintySettings(fallback_sigma=-0.1)],
)  # fmt: skip
def test_bad_settings_are_refused(settings: UncertaintySettings) -> None:
    with pytest.raises(InputError, match=r"\[uncertainty\]"):
        settings.validate()


def test_gauge_rows_are_drawn_by_their_litres() -> None:
    """Half the gauge trucks read twice the method on 10 L rows, half exactly it on 90 L rows: the fleet's
    gauges burn 110 L for the method's 100, and so does the mean draw (drawn evenly it would be 1.5)."""
    n = MIN_GAUGE_TRUCKS
    method = np.where(np.arange(n) % 2 == 0, 10.0, 90.0)
    gauge = np.where(np.arange(n) % 2 == 0, 20.0, 90.0)
    zeros = np.zeros(n, np.int64)
    errors = factor_errors(gauge, method, np.full(n, 100.0), zeros, zeros, np.arange(n))
    draws = factor_draws(errors, np.zeros(50, np.int64), np.zeros(50, np.int64), 2000, 0.15, np.random.default_rng(3))
    assert draws.mean() == pytest.approx(1.1, abs=0.02)


def test_the_alias_table_draws_each_index_with_its_odds() -> None:
    from truckcarbon.emissions.montecarlo import alias_draw, alias_table

    weights = np.array([1.0, 0.0, 3.0, 6.0])
    picks = alias_draw(*alias_table(weights), (400_000,), np.random.default_rng(9))
    shares = np.bincount(picks, minlength=4) / picks.size
    assert shares == pytest.approx(weights / weights.sum(), abs=0.003)
    assert shares[1] == 0.0  # no odds, never drawn
    one = alias_draw(*alias_table(np.array([2.5])), (10,), np.random.default_rng(1))
    assert one.tolist() == [0] * 10
