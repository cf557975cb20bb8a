"""Fuel and CO2 of hand-built activity rows (emissions.method), computed here from the factor CSV rows.

Every expected value is the report's formula applied by hand to rates read from
``data/factors/fuel_rates.csv`` and factors from ``emission_factors.csv``:
``fuel_l = sum_s km_s * rate(standard, s) / 100``, the unknown load at ``0.4 empty + 0.6 full``,
``co2_kg = fuel_l * ef``; the measured-fuel path adds the gauge's litres where it covered the km.
"""

from __future__ import annotations

import csv
from importlib.resources import files

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError, ReferenceDataError, TruckcarbonError
from truckcarbon.emissions.method import EmissionSettings, apply_method, rate_table

STANDARDS = ("China III", "China IV", "China V", "China VI")  # codes 0-3
EF = 2.6765  # kg CO2 per litre, the default factor (the source report's)


def csv_rows(name: str) -> list[dict[str, str]]:
    text = files("truckcarbon.data").joinpath("factors", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def rate(standard: str, load: str, speed: int = 60) -> float:
    """L/100 km from the CSV row; ``unknown``: the report's 0.4 empty + 0.6 full."""
    if load == "unknown":
        return 0.4 * rate(standard, "empty", speed) + 0.6 * rate(standard, "full", speed)
    (row,) = [
        r
        for r in csv_rows("fuel_rates.csv")
        if (r["emission_standard"], r["load_state"], int(r["reference_speed_kmh"])) == (standard, load, speed)
    ]
    return float(row["fuel_rate_l_per_100km"])


def activity(rows: list[dict[str, object]]) -> pa.Table:
    """Activity rows with the kernel's columns; distances not given are 0, ``distance_km`` their sum."""
    full = []
    for r in rows:
        km = {k: float(r.get(k, 0.0)) for k in ("empty", "half", "full", "unknown")}  # type: ignore[arg-type]
        full.append(
            {
                "vehicle_id": r["vehicle_id"],
                "month": r.get("month", "2022-03"),
                "city_adcode": r.get("city_adcode", 110100),
                "distance_km": sum(km.values()),
                "distance_km_empty": km["empty"],
                "distance_km_half": km["half"],
                "distance_km_full": km["full"],
                "distance_km_unknown_load": km["unknown"],
                "fuel_measured_l": float(r.get("fuel_l", 0.0)),  # type: ignore[arg-type]
                "distance_km_fuel_measured": float(r.get("fuel_km", 0.0)),  # type: ignore[arg-type]
                "gps_noise_m": None,
                "fix_interval_s": None,
            }
        )
    schema = pa.schema(
        [("vehicle_id", pa.int64()), ("month", pa.string()), ("city_adcode", pa.int32())]
        + [(c, pa.float64()) for c in ("distance_km", "distance_km_empty", "distance_km_half", "distance_km_full")]
        + [(c, pa.float64()) for c in ("distance_km_unknown_load", "fuel_measured_l", "distance_km_fuel_measured")]
        + [("gps_noise_m", pa.float64()), ("fix_interval_s", pa.float64())]
    )
    return pa.Table.from_pylist(full, schema=schema)


def test_rate_table_is_the_csv_by_standard_and_load_with_the_unknown_load_weights():
    table = rate_table(EmissionSettings())
    assert table.shape == (4, 4)
    for code, s in enumerate(STANDARDS):
        want = [rate(s, ld) for ld in ("empty", "half", "full", "unknown")]
        assert table[code].tolist() == pytest.approx(want, rel=1e-12)
    assert rate_table(EmissionSettings(reference_speed_kmh=80))[2, 0] == pytest.approx(rate("China V", "empty", 80))


@pytest.mark.parametrize("code", range(4))
def test_each_load_branch_for_every_standard(code):
    s = STANDARDS[code]
    e, h, f, u = (rate(s, ld) for ld in ("empty", "half", "full", "unknown"))
    t = activity(
        [
            {"vehicle_id": 1, "empty": 10.0, "half": 20.0, "full": 30.0},  # every km with its load state
            {"vehicle_id": 2, "unknown": 50.0},  # none
            {"vehicle_id": 3, "empty": 15.0, "unknown": 25.0},  # some
        ]
    )
    out = apply_method(t, [code] * 3)
    assert out.column_names == [
        *t.column_names, "fuel_l_report", "fuel_l_copert", "fuel_l_measured", "fuel_l", "co2_kg", "diesel_l",
        "gas_kg", "electricity_kwh", "hydrogen_kg", "method", "fuel_gauge_used", "nox_kg", "pm25_kg", "co_kg",
        "hc_kg",
    ]  # fmt: skip
    want = [(10 * e + 20 * h + 30 * f) / 100, 50 * u / 100, (15 * e + 25 * u) / 100]
    assert out["fuel_l"].to_pylist() == pytest.approx(want, rel=1e-12)
    assert out["co2_kg"].to_pylist() == pytest.approx([w * EF for w in want], rel=1e-12)
    assert out["method"].to_pylist() == ["load_state", "unknown_load", "mixed_load"]
    assert out.select(t.column_names).equals(t)  # the activity columns as they were


def test_reference_speed_and_emission_factor_are_the_settings():
    (defra,) = [r for r in csv_rows("emission_factors.csv") if r["factor_id"] == "diesel_ttw_defra_2025"]
    settings = EmissionSettings(reference_speed_kmh=80, emission_factor="diesel_ttw_defra_2025")
    out = apply_method(activity([{"vehicle_id": 1, "half": 100.0}]), [3], settings)
    fuel = 100 * rate("China VI", "half", 80) / 100
    assert out["fuel_l"][0].as_py() == pytest.approx(fuel, rel=1e-12)
    assert out["co2_kg"][0].as_py() == pytest.approx(fuel * float(defra["ef_kg_per_l"]), rel=1e-12)


def test_measured_fuel_per_vehicle_month_when_it_covers_enough_km_at_a_plausible_rate():
    e5, f5, u5 = rate("China V", "empty"), rate("China V", "full"), rate("China V", "unknown")
    rows = [
        # Vehicle 1, two cities: 84 of 100 km measured at 30 L/100 km (coverage 0.84: the gauge is used).
        {"vehicle_id": 1, "full": 60.0, "fuel_km": 60.0, "fuel_l": 18.0},
        {"vehicle_id": 1, "city_adcode": 130600, "empty": 40.0, "fuel_km": 24.0, "fuel_l": 7.2},
        {"vehicle_id": 2, "full": 100.0, "fuel_km": 50.0, "fuel_l": 15.0},  # coverage 0.5: the report's
        {"vehicle_id": 3, "unknown": 100.0, "fuel_km": 100.0, "fuel_l": 5.0},  # 5 L/100 km: implausible
        {"vehicle_id": 4, "full": 100.0, "fuel_km": 100.0, "fuel_l": 90.0},  # 90 L/100 km: implausible
        {"vehicle_id": 5, "full": 100.0, "fuel_km": 80.0, "fuel_l": 20.0},  # coverage 0.8 exactly: used
        # Vehicle 6: January covered, February not (one vehicle-month at a time: 60 of 100 km overall).
        {"vehicle_id": 6, "month": "2022-01", "full": 50.0, "fuel_km": 50.0, "fuel_l": 15.0},
        {"vehicle_id": 6, "month": "2022-02", "full": 50.0, "fuel_km": 10.0, "fuel_l": 3.0},
    ]
    t = activity(rows)
    measured = EmissionSettings(method="measured")
    out = apply_method(t, [2] * len(rows), measured)
    want = [
        18.0,  # every km measured: the gauge alone
        7.2 + 40 * e5 / 100 * (16 / 40),  # the gauge, plus the report's fuel for the 16 km it did not cover
        100 * f5 / 100,
        100 * u5 / 100,
        100 * f5 / 100,
        20.0 + 100 * f5 / 100 * 0.2,
        15.0,
        50 * f5 / 100,
    ]
    assert out["fuel_l"].to_pylist() == pytest.approx(want, rel=1e-12)
    assert out["co2_kg"].to_pylist() == pytest.approx([w * EF for w in want], rel=1e-12)
    assert out["method"].to_pylist() == [
        "measured_fuel", "measured_fuel", "load_state", "unknown_load", "load_state", "measured_fuel",
        "measured_fuel", "load_state",
    ]  # fmt: skip
    assert out["fuel_gauge_used"].to_pylist() == [m == "measured_fuel" for m in out["method"].to_pylist()]
    # The decision is per vehicle-month whatever the row order.
    perm = np.array([7, 3, 1, 5, 0, 6, 2, 4])
    shuffled = apply_method(t.take(perm), np.full(len(rows), 2), measured)
    assert shuffled["fuel_l"].to_pylist() == pytest.approx([want[k] for k in perm], rel=1e-12)
    # Every method's fuel is on every row, whichever is chosen: the report method (the default) never reads
    # the gauge; the coverage and rate bounds are the settings.
    report = apply_method(t, [2] * len(rows))
    assert report["fuel_l"][0].as_py() == pytest.approx(60 * f5 / 100, rel=1e-12)
    assert "measured_fuel" not in report["method"].to_pylist()
    assert report["fuel_l_measured"].to_pylist() == pytest.approx(want, rel=1e-12)
    assert report["fuel_l_report"].to_pylist() == report["fuel_l"].to_pylist()
    loose = apply_method(
        t, [2] * len(rows), EmissionSettings(method="measured", min_fuel_coverage=0.5, min_rate_l_per_100km=4.0)
    )
    assert loose["fuel_l"][2].as_py() == pytest.approx(15.0 + 100 * f5 / 100 * 0.5, rel=1e-12)
    assert loose["fuel_l"][3].as_py() == pytest.approx(5.0, rel=1e-12)


def test_no_rows_give_no_rows_with_the_three_columns():
    t = activity([]).slice(0, 0)
    out = apply_method(t, np.zeros(0, np.int64))
    assert out.num_rows == 0
    assert out.schema.field("fuel_l").type == pa.float64() and out.schema.field("co2_kg").type == pa.float64()
    assert out.schema.field("method").type == pa.string()


@pytest.mark.parametrize("codes", [[2], [2, 2, 2], [4, 2], [-1, 2]])
def test_rows_without_a_valid_standard_code_are_refused(codes):
    t = activity([{"vehicle_id": 1, "full": 10.0}, {"vehicle_id": 2, "full": 10.0}])
    with pytest.raises(InputError, match="emission standard code"):
        apply_method(t, codes)


@pytest.mark.parametrize(
    ("settings", "error", "match"),
    [
        (EmissionSettings(method="gauge"), InputError, "method"),
        (EmissionSettings(min_fuel_coverage=1.5), InputError, "min_fuel_coverage"),
        (EmissionSettings(min_fuel_coverage=-0.1), InputError, "min_fuel_coverage"),
        (EmissionSettings(emission_factor="petrol"), InputError, "unknown emission factor"),
        (EmissionSettings(reference_speed_kmh=70), ReferenceDataError, "no fuel rate"),
    ],
)
def test_bad_settings_are_refused(settings, error, match):
    with pytest.raises(error, match=match) as raised:
        settings.validate()
    assert isinstance(raised.value, TruckcarbonError)
    EmissionSettings().validate()  # the defaults are valid


def test_the_report_method_ignores_speed_idling_and_the_other_methods():
    """The default method is the source report's formula whatever else a row carries: idle hours, a speed
    profile, a fuel gauge reading it does not use (the rows of test_each_load_branch_for_every_standard, with
    the kernel's speed and idle columns added) give the same litres, CO2 and method codes as without them."""
    t = activity([
        {"vehicle_id": 1, "empty": 10.0, "half": 20.0, "full": 30.0}, {"vehicle_id": 2, "unknown": 50.0},
        {"vehicle_id": 3, "empty": 15.0, "unknown": 25.0, "fuel_l": 30.0, "fuel_km": 40.0},
    ])  # fmt: skip
    bins = 10
    km_bins = [[0.0] * (4 * bins), [0.0] * (4 * bins), [0.0] * (4 * bins)]
    km_bins[0][1 * bins + 2], km_bins[1][3 * bins + 0], km_bins[2][0 * bins + 8] = 20.0, 50.0, 15.0
    rich = (
        t.append_column("idle_h", pa.array([1.5, 0.0, 3.0]))
        .append_column("driving_h", pa.array([1.0, 2.5, 0.6]))
        .append_column("speed_bin_km", pa.array(km_bins, pa.list_(pa.float64(), 4 * bins)))
        .append_column("speed_bin_h", pa.array([[0.1] * bins] * 3, pa.list_(pa.float64(), bins)))
    )
    for code in range(4):
        plain, full = apply_method(t, [code] * 3), apply_method(rich, [code] * 3)
        for column in ("fuel_l", "co2_kg", "method", "fuel_l_report"):
            assert full[column].equals(plain[column]), (code, column)
        s = STANDARDS[code]
        e, h, f, u = (rate(s, ld) for ld in ("empty", "half", "full", "unknown"))
        assert full["fuel_l"].to_pylist() == pytest.approx(
            [(10 * e + 20 * h + 30 * f) / 100, 50 * u / 100, (15 * e + 25 * u) / 100], rel=1e-12
        )
        assert full["fuel_l_copert"].to_pylist() != plain["fuel_l_copert"].to_pylist()  # the speeds were read
