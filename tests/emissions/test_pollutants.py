"""China's 2014 guideline factors for heavy diesel trucks (emissions.pollutants), computed here by hand.

Base factors (g/km, MEE 2014 guideline v3 as reproduced by vein's tests/testthat/test-ef_china.R):
China III CO 2.79, HC 0.255, NOx 7.934, PM2.5 0.243; China IV 2.20, 0.129, 5.554, 0.138;
China V 2.20, 0.129, 4.721, 0.027. Load factors (vein R/ef_china.R), CO / NOx / PM: empty 0.87 / 0.83 / 0.90,
full 1.33 / 1.43 / 1.26. Temperature (heavy diesel): CO x1.3, HC x1.06, NOx x1.15, PM x0.74 above 25 degC;
NOx x1.06, PM x1.7 below 10 degC. Altitude above 1500 m: CO x2.46, HC x2.05, NOx x1.02, PM x1.
"""

from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from truckcarbon.core.errors import InputError, ReferenceDataError
from truckcarbon.emissions import copert
from truckcarbon.emissions.pollutants import Interval, china_factor_g_per_km, china_table, read_china_table

BASE = {
    ("CO", "China III"): 2.79,
    ("HC", "China III"): 0.255,
    ("NOx", "China III"): 7.934,
    ("PM2.5", "China III"): 0.243,
    ("CO", "China IV"): 2.20,
    ("HC", "China IV"): 0.129,
    ("NOx", "China IV"): 5.554,
    ("PM2.5", "China IV"): 0.138,
    ("CO", "China V"): 2.20,
    ("HC", "China V"): 0.129,
    ("NOx", "China V"): 4.721,
    ("PM2.5", "China V"): 0.027,
}


def shipped_rows() -> list[dict[str, str]]:
    text = files("truckcarbon.data").joinpath("factors", "china_pollutants.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_the_table_holds_the_guideline_base_factors_each_with_its_source():
    rows = shipped_rows()
    base = {(r["pollutant"], r["standard"]): float(r["value"]) for r in rows if r["kind"] == "base"}
    assert base == BASE
    for row in rows:
        assert "vein" in row["source"] and "commit" in row["source"], row
    assert not [r for r in rows if r["kind"] == "speed"]  # not shipped: see the module docstring


def test_base_times_load_by_hand_at_the_reference_conditions():
    assert float(china_factor_g_per_km("NOx", "China III", "full", None)) == pytest.approx(7.934 * 1.43)
    assert float(china_factor_g_per_km("CO", "China IV", "empty", None)) == pytest.approx(2.20 * 0.87)
    assert float(china_factor_g_per_km("HC", "China III", "full", None)) == pytest.approx(0.255)
    assert float(china_factor_g_per_km("PM2.5", "China V", "half", None)) == pytest.approx(0.027)


def test_base_times_load_temperature_and_altitude_by_hand():
    # China IV PM2.5, empty, 30 degC, 2000 m: 0.138 * 0.90 (empty) * 0.74 (> 25 degC) * 1 (PM has no altitude factor)
    got = china_factor_g_per_km("PM2.5", "China IV", "empty", None, temperature_c=30.0, altitude_m=2000.0)
    assert float(got) == pytest.approx(0.138 * 0.90 * 0.74)
    # China V CO, half, at -5, 15 and 26 degC and 1600 m: 2.20 * 2.46, with x1.3 above 25 degC (CO has no cold factor)
    got = china_factor_g_per_km("CO", "China V", "half", None, temperature_c=[-5.0, 15.0, 26.0], altitude_m=1600.0)
    np.testing.assert_allclose(got, [2.20 * 2.46, 2.20 * 2.46, 2.20 * 2.46 * 1.3])


def test_temperature_and_altitude_bounds():
    t = np.array([9.9, 10.0, 25.0, 25.1])
    got = china_factor_g_per_km("NOx", "China IV", "half", None, temperature_c=t)
    np.testing.assert_allclose(got, 5.554 * np.array([1.06, 1.0, 1.0, 1.15]))
    got = china_factor_g_per_km("HC", "China III", "half", None, altitude_m=[1500.0, 1500.5])
    np.testing.assert_allclose(got, [0.255, 0.255 * 2.05])


def test_arrays_broadcast():
    got = china_factor_g_per_km(
        "NOx", "China V", "empty", None, temperature_c=[0.0, 20.0, 30.0], altitude_m=[[0.0], [2000.0]]
    )
    expected = 4.721 * 0.83 * np.array([[1.06, 1.0, 1.15], [1.06 * 1.02, 1.02, 1.15 * 1.02]])
    np.testing.assert_allclose(got, expected)
    with pytest.raises(InputError, match="broadcast"):
        china_factor_g_per_km("NOx", "China V", "empty", [50.0, 60.0], temperature_c=[0.0, 20.0, 30.0])


def test_a_speed_for_china_iii_to_v_needs_speed_bins_the_shipped_table_lacks():
    with pytest.raises(ReferenceDataError, match=r"no speed-bin factors for NOx China IV.*speed_kmh=None"):
        china_factor_g_per_km("NOx", "China IV", "full", [50.0])


def test_china_vi_is_copert_euro_vi_with_the_guideline_temperature_and_altitude_factors():
    v = np.array([20.0, 50.0, 80.0])
    cls = copert.VehicleClass.ARTICULATED_40_50
    got = china_factor_g_per_km("NOx", "China VI", "full", v, temperature_c=5.0, altitude_m=2000.0)
    np.testing.assert_allclose(got, copert.hot_ef_g_per_km("NOx", cls, "China VI", 1.0, v) * 1.06 * 1.02)
    at_base = china_factor_g_per_km("PM2.5", "China VI", "empty", None)
    assert float(at_base) == pytest.approx(float(copert.hot_ef_g_per_km("PM", cls, "China VI", 0.0, 30.0)))
    rigid = china_factor_g_per_km("CO", "China VI", "half", 60.0, copert_class=copert.VehicleClass.RIGID_28_32)
    assert float(rigid) == pytest.approx(
        float(copert.hot_ef_g_per_km("CO", copert.VehicleClass.RIGID_28_32, "China VI", 0.5, 60.0))
    )


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="pollutant 'SO2'"):
        china_factor_g_per_km("SO2", "China IV", "full", None)
    with pytest.raises(InputError, match="load state 'overloaded'"):
        china_factor_g_per_km("NOx", "China IV", "overloaded", None)
    with pytest.raises(InputError, match="speeds"):
        china_factor_g_per_km("NOx", "China VI", "full", [-3.0])


# Synthetic speed bins for a user table: test data only, not the guideline's values.
SPEED_BINS = [
    ("[0, 20)", 1.5),
    ("[20, 30)", 1.2),
    ("[30, 30]", 1.0),
    ("(30, 40)", 0.9),
    ("[40, 80)", 0.7),
    ("[80, inf)", 0.8),
]


def write_table(tmp_path: Path, extra: list[tuple[str, float]], edit=lambda i, r: r) -> Path:
    rows = shipped_rows()
    out = tmp_path / "my_factors.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        for i, row in enumerate(rows):
            if (new := edit(i, dict(row))) is not None:
                w.writerow(new)
        for interval, value in extra:
            w.writerow(
                {
                    "kind": "speed",
                    "pollutant": "NOx",
                    "standard": "China IV",
                    "load_state": "",
                    "interval": interval,
                    "value": value,
                    "unit": "factor",
                    "source": "synthetic test bins",
                }
            )
    return out


def test_a_user_table_with_speed_bins_applies_them(tmp_path):
    table = read_china_table(write_table(tmp_path, SPEED_BINS))
    v = np.array([0.0, 10.0, 25.0, 30.0, 35.0, 60.0, 80.0, 95.0])
    got = china_factor_g_per_km("NOx", "China IV", "half", v, table=table)
    np.testing.assert_allclose(got, 5.554 * np.array([1.5, 1.5, 1.2, 1.0, 0.9, 0.7, 0.8, 0.8]))
    with pytest.raises(ReferenceDataError, match=r"PM2\.5 China IV"):
        china_factor_g_per_km("PM2.5", "China IV", "half", v, table=table)


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        (
            [*SPEED_BINS[:2], ("[25, 30]", 1.0), *SPEED_BINS[3:]],
            r"lines \d+ and \d+: intervals \[20, 30\) and \[25, 30\] overlap",
        ),
        ([*SPEED_BINS[:3], *SPEED_BINS[4:]], r"intervals \[30, 30\] and \[40, 80\) leave a gap"),
        (SPEED_BINS[1:], r"the intervals start at \[20, 30\)"),
        (SPEED_BINS[:-1], r"the intervals end at \[40, 80\), not at inf"),
        ([("[0, 20", 1.0)], r"column 'interval': '\[0, 20' is not an interval"),
    ],
)
def test_bad_speed_bins_are_refused_with_the_place(tmp_path, bins, message):
    path = write_table(tmp_path, bins)
    with pytest.raises(InputError, match=message) as e:
        read_china_table(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda i, r: {**r, "value": "abc"} if i == 0 else r, r"line 2, column 'value': 'abc' is not a number"),
        (lambda i, r: {**r, "source": ""} if i == 3 else r, r"line 5, column 'source': empty"),
        (lambda i, r: {**r, "standard": "China II"} if i == 0 else r, r"line 2, column 'standard': 'China II'"),
        (lambda i, r: {**r, "unit": "g/kWh"} if i == 0 else r, r"line 2, column 'unit': a base row is in g/km"),
        (
            lambda i, r: None if r["kind"] == "load" and r["load_state"] == "full" and r["pollutant"] == "CO" else r,
            r"no load factor for CO full",
        ),
        (
            lambda i, r: (
                {**r, "interval": "(25, 30)"}
                if r["kind"] == "temperature" and r["interval"] == "(25, inf)" and r["pollutant"] == "HC"
                else r
            ),
            r"temperature HC all, line \d+: the intervals end at \(25, 30\)",
        ),
    ],
)
def test_bad_user_tables_are_refused_with_the_place(tmp_path, edit, message):
    path = write_table(tmp_path, [], edit)
    with pytest.raises(InputError, match=message):
        read_china_table(path)


def test_a_missing_column_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("kind,pollutant\nbase,NOx\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t.csv, line 1: missing column\(s\) standard, load_state"):
        read_china_table(path)


def test_intervals():
    assert str(Interval.parse("(25, inf)")) == "(25, inf)"
    i = Interval.parse("[10, 25]")
    np.testing.assert_array_equal(
        i.contains(np.array([9.99, 10.0, 25.0, 25.01, np.nan])), [False, True, True, False, False]
    )
    for bad in ("[1, 0]", "(3, 3)", "[-inf, 1)", "1, 2"):
        with pytest.raises(ValueError):
            Interval.parse(bad)


def test_the_shipped_table_is_cached_and_complete():
    t = china_table()
    assert t is china_table()
    assert len(t.base) == 12 and len(t.load) == 12
