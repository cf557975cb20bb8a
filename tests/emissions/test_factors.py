"""Factor tables and the report's method."""

from __future__ import annotations

import csv
from importlib.resources import files

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.factors import EmissionStandard, LoadState, ef_kg_per_l, emission_factors, fuel_rates


def test_every_rate_has_a_source_and_a_plausible_value():
    with files("truckcarbon.data").joinpath("factors", "fuel_rates.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * 3 * 2
    for row in rows:
        assert row["source"].strip()
        assert 15.0 < float(row["fuel_rate_l_per_100km"]) < 50.0
    for row in emission_factors().to_pylist():
        assert row["source"].strip()


def test_published_copert_values():
    """Published COPERT values, articulated 40-50 t (EMEP-EEA Guidebook summaries).

    60 km/h: Euro V-SCR 22.7 / 33.0 / 42.9, Euro III 24.5 / 34.6 / 43.8; 80 km/h: Euro V 21.1 / 28.8 / 36.1.
    """
    r = fuel_rates()
    assert [r.rate("China V", ld) for ld in LoadState] == pytest.approx([22.7, 33.0, 42.9], abs=0.06)
    assert [r.rate(EmissionStandard.CHINA_III, ld) for ld in LoadState] == pytest.approx([24.5, 34.6, 43.8], abs=0.06)
    assert [fuel_rates(80).rate("China V", ld) for ld in LoadState] == pytest.approx([21.1, 28.8, 36.1], abs=0.06)


def test_report_method():
    r = fuel_rates()
    for s in EmissionStandard:
        assert r.unknown_load_rate(s) == pytest.approx(0.4 * r.rate(s, "empty") + 0.6 * r.rate(s, "full"))
        assert r.rate(s, "empty") < r.rate(s, "half") < r.rate(s, "full")
    assert ef_kg_per_l() == 2.6765
    # 100 km of a China V truck with unknown load: (0.4 * 22.74 + 0.6 * 42.89) L * 2.6765 kg/L
    co2 = 100 * r.unknown_load_rate("China V") / 100 * ef_kg_per_l()
    assert co2 == pytest.approx((0.4 * 22.74 + 0.6 * 42.89) * 2.6765)
    with pytest.raises(InputError, match="unknown emission factor"):
        ef_kg_per_l("petrol")
    with pytest.raises(ValueError):
        r.rate("China VII", "empty")
