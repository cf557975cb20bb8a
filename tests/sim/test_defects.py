"""Defects of telematics fixes: applied at the rates set, counted, each event independent; the normal draws."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.sim.defects import DefectRates, apply_defects, events, standard_normal
from truckcarbon.sim.run import simulate

from .worlds import CLEAN, SMALL, haversine, pings


def test_defects_are_applied_at_the_rates_set(tmp_path, clean_run):
    rates = replace(CLEAN, jump_rate=0.01, duplicate_rate=0.02, zero_rate=0.005)
    out = tmp_path / "dirty"
    simulate(out, replace(SMALL, defects=rates))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    d = manifest["defects"]
    clean = pings(clean_run)
    dirty = pings(out)
    n = clean.num_rows
    assert dirty.num_rows == n + d["duplicates"]
    assert d["duplicates"] / n == pytest.approx(0.02, rel=0.1)
    assert d["jumps"] / n == pytest.approx(0.01, rel=0.15)
    assert d["zero_fixes"] / n == pytest.approx(0.005, rel=0.2)
    # Exact duplicates in the file equal the count in the manifest.
    keys = np.column_stack([dirty["vehicle_id"].to_numpy(), dirty["ts"].cast("int64").to_numpy()])
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    assert int((counts - 1).sum()) == d["duplicates"]
    lon, lat = dirty["lon"].to_numpy()[first], dirty["lat"].to_numpy()[first]
    assert int(((lon == 0) & (lat == 0)).sum()) == d["zero_fixes"]
    # Jumped fixes are 2-50 km from where the clean run put them; no other fix moved.
    moved = haversine(lon, lat, clean["lon"].to_numpy(), clean["lat"].to_numpy())
    real = ~((lon == 0) & (lat == 0))
    assert int((moved[real] > 1.9).sum()) == d["jumps"]
    assert int(((moved[real] > 0) & (moved[real] < 1.9)).sum()) == 0


def test_defect_events_are_a_bernoulli_process():
    """Each position is hit independently with the rate: counts and positions, over many draws."""
    rng = np.random.default_rng(3)
    n, rate, runs = 5000, 0.004, 4000
    draws = [events(rng, n, rate) for _ in range(runs)]
    counts = np.array([d.size for d in draws])
    sd = np.sqrt(n * rate * (1 - rate) / runs)
    assert abs(counts.mean() - n * rate) < 4 * sd
    assert counts.var() == pytest.approx(n * rate * (1 - rate), rel=0.1)
    hits = np.bincount(np.concatenate(draws), minlength=n)
    assert hits.size == n  # nothing at or beyond n
    assert all(np.all(np.diff(d) > 0) for d in draws)  # sorted, no position twice
    quarter = hits.reshape(4, -1).sum(axis=1) / (runs * n / 4 * rate)  # uniform over the positions
    assert np.all(np.abs(quarter - 1) < 0.03)
    assert events(rng, 10, 0.0).size == 0 and events(rng, 0, 0.5).size == 0
    assert events(rng, 7, 1.0).tolist() == list(range(7))


def test_standard_normal_draws_are_normal():
    """The quantised inverse transform: mean 0, variance 1, Kolmogorov distance to N(0, 1) within
    sampling error, tails to 4.0, every value drawn; deterministic for a seed."""
    from scipy.special import ndtr

    z = standard_normal(np.random.default_rng(11), (2, 400_000))
    assert z.shape == (2, 400_000) and z.dtype == np.float32
    s = np.sort(z.astype(np.float64).ravel())
    n = s.size
    assert abs(s.mean()) < 5 / np.sqrt(n)
    assert s.var() == pytest.approx(1.0, abs=5 * np.sqrt(2 / n))
    cdf = ndtr(s)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.63 / np.sqrt(n)  # the 1% critical value of the Kolmogorov-Smirnov test
    assert 3.9 < -s[0] < 4.1 and 3.9 < s[-1] < 4.1
    assert np.unique(s).size > 0.99 * 65536
    a, b = (standard_normal(np.random.default_rng(5), 9) for _ in range(2))
    assert np.array_equal(a, b) and standard_normal(np.random.default_rng(5), 0).size == 0


def test_rates_outside_their_range_are_refused():
    DefectRates().validate()
    CLEAN.validate()
    with pytest.raises(InputError, match=r"gap_rate=0\.3 must be between 0 and 0\.2"):
        DefectRates(gap_rate=0.3).validate()
    with pytest.raises(InputError, match="gps_noise_m=1001"):
        DefectRates(gps_noise_m=1001).validate()


def _fixes(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = 1_650_000_000 + 30 * np.arange(n, dtype=np.int64)
    return t, np.linspace(116.0, 117.0, n), np.linspace(39.0, 39.5, n)


def test_clean_rates_emit_every_fix_once_unchanged():
    t, lon, lat = _fixes(500)
    emitted, out_lon, out_lat, counts = apply_defects(t, lon, lat, CLEAN, np.random.default_rng(1))
    assert emitted.tolist() == list(range(500))
    assert np.array_equal(out_lon, lon) and np.array_equal(out_lat, lat) and out_lon is not lon
    assert set(counts.values()) == {0}


def test_noise_has_the_standard_deviation_set():
    t, lon, lat = _fixes(40_000)
    _, out_lon, out_lat, _ = apply_defects(t, lon, lat, replace(CLEAN, gps_noise_m=10.0), np.random.default_rng(2))
    north_m = (out_lat - lat) * 110_574.0
    east_m = (out_lon - lon) * 111_320.0 * np.cos(np.radians(out_lat))
    assert north_m.std() == pytest.approx(10.0, rel=0.02) and east_m.std() == pytest.approx(10.0, rel=0.02)


def test_gaps_drop_two_to_thirty_minutes():
    t, lon, lat = _fixes(20_000)  # a fix every 30 s
    emitted, _, _, counts = apply_defects(t, lon, lat, replace(CLEAN, gap_rate=0.001), np.random.default_rng(4))
    assert counts["gap_fixes"] == 20_000 - emitted.size > 0
    jumps = np.diff(t[emitted])
    jumps = jumps[jumps > 30]
    assert 0 < jumps.size <= counts["gaps"]
    assert jumps.min() >= 30 + 120  # the interval before the gap and at least 2 minutes dropped
    assert np.sum(jumps > 30 + 1800 + 30) <= 1  # at most 30 minutes (unless two gaps overlap)


def test_stuck_runs_repeat_one_position():
    t, lon, lat = _fixes(20_000)
    emitted, out_lon, out_lat, counts = apply_defects(
        t, lon, lat, replace(CLEAN, stuck_rate=0.001), np.random.default_rng(5)
    )
    repeated = (np.diff(out_lon) == 0) & (np.diff(out_lat) == 0)
    assert counts["stuck_runs"] <= int(repeated.sum()) <= counts["stuck_fixes"]
    assert int(repeated.sum()) <= 20 * counts["stuck_runs"]  # 1 to 10 minutes of 30 s fixes
    assert counts["stuck_runs"] > 5 and emitted.size == 20_000
