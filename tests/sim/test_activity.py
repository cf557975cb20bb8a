"""Monthly driving distance: base mileage by role, age, season, shocks and province activity."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.calendar import chinese_new_year
from truckcarbon.sim.activity import age_factor, monthly_km, ndtri, province_activity, season, shock, utilisation
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.fleet import Role, published_province_table
from truckcarbon.sim.run import simulate

from .worlds import CLEAN


def test_age_factor_falls_from_new_to_a_floor():
    assert age_factor(0.0) == pytest.approx(1.35)
    assert age_factor(5.0) == pytest.approx(1.35 - 0.45)
    assert age_factor(10.0) == pytest.approx(0.45) and age_factor(20.0) == pytest.approx(0.45)


def test_season_and_shocks():
    # 2019: the festival on 5 February; February is the New Year month, March an ordinary one.
    assert season(2019, 2) == pytest.approx(0.98 * 0.70) and season(2019, 3) == pytest.approx(1.0)
    # 2020: 25 January, late in its month, so February keeps part of the holiday.
    assert season(2020, 1) == pytest.approx(0.98 * 0.70) and season(2020, 2) == pytest.approx(0.98 * 0.92)
    assert season(2019, 11) == max(season(2019, m) for m in range(1, 13))
    assert shock(2020, 2, 420000) == pytest.approx(0.12) and shock(2020, 2, 110000) == pytest.approx(0.5)
    assert shock(2022, 4, 310000) == pytest.approx(0.25) and shock(2019, 6, 310000) == 1.0


def test_monthly_km_is_the_product_of_its_factors():
    # A new long-haul truck of average utilisation in an ordinary June.
    assert monthly_km(Role.LONG_HAUL, 1.0, 0.0, 2019, 6, 110000) == pytest.approx(55_300 / 12 * 1.35 * 0.99)
    # A ten-year-old regional truck, 20% above average, in Hubei in February 2020.
    km = monthly_km(Role.REGIONAL, 1.2, 10.0, 2020, 2, 420000)
    assert km == pytest.approx(25_200 / 12 * 1.2 * 0.45 * 0.98 * 0.92 * 0.12)


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


def test_new_year_month_is_the_yearly_minimum(tmp_path):
    out = tmp_path / "year"
    simulate(
        out,
        SimConfig(
            trucks=60,
            start_month="2019-01",
            end_month="2019-12",
            interval_s=300,
            parked_interval_s=1800,
            seed=3,
            defects=CLEAN,
        ),
    )
    t = pq.read_table(out / "truth.parquet").group_by("month").aggregate([("distance_km", "sum")]).sort_by("month")
    v = pq.read_table(out / "vehicles.parquet")
    reg, ret = (
        v["registration_month"].to_numpy(zero_copy_only=False),
        v["retirement_month"].to_numpy(zero_copy_only=False),
    )
    in_service = np.array([((reg <= m) & (ret > m)).sum() for m in t["month"].to_pylist()])
    km = t["distance_km_sum"].to_numpy() / in_service  # per truck in service
    cny = chinese_new_year(2019)
    assert (cny.year, cny.month) == (2019, 2)
    assert int(np.argmin(km)) == 1
    assert int(np.argmax(km)) >= 8  # the peak is in the second half
