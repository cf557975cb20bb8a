"""COPERT heavy-truck speed functions (emissions.copert) against hand values and published figures.

Hand values, articulated 40-50 t, Euro VI, flat road (EMEP/EEA Guidebook annex, ARTEMIS HDV sheet):
0 % load FC = 3135.99 * 1.007818**V * V**-0.79522, 50 % 2183.59 * 1.000548**V * V**-0.50994,
100 % -0.0017824 V**3 + 0.35088 V**2 - 25.5701 V + 1017.37 (g/km): 206 / 305 / 393 g/km at 50 km/h.
Published COPERT fuel, articulated 40-50 t, flat, 60 km/h, at 0.835 kg/L: Euro V 22.7 / 33.0 / 42.9 L/100 km,
Euro III 24.5 / 34.6 / 43.8.
"""

from __future__ import annotations

import csv
from functools import partial
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from truckcarbon.core.errors import InputError, ReferenceDataError
from truckcarbon.emissions import copert
from truckcarbon.emissions.copert import (
    CopertPollutant,
    VehicleClass,
    copert_table,
    euro_stage,
    hot_ef_g_per_km,
    hot_fc_g_per_km,
    hot_fc_l_per_100km,
    litres_per_100km,
    read_copert_table,
)

ARTIC = VehicleClass.ARTICULATED_40_50
RIGID = VehicleClass.RIGID_28_32


nox = partial(hot_ef_g_per_km, CopertPollutant.NOX)  # hot exhaust NOx, g/km


def shipped_rows() -> list[dict[str, str]]:
    text = files("truckcarbon.data").joinpath("factors", "copert_hdv.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_euro_vi_articulated_fuel_at_50_kmh_matches_the_hand_formulas():
    v = 50.0
    by_hand = (
        3135.99 * 1.007818**v * v**-0.79522,
        2183.59 * 1.000548**v * v**-0.50994,
        -0.0017824 * v**3 + 0.35088 * v**2 - 25.5701 * v + 1017.37,
    )
    got = [float(hot_fc_g_per_km(ARTIC, "China VI", load, v)) for load in (0.0, 0.5, 1.0)]
    assert got == pytest.approx(by_hand, abs=1.0)
    assert got == pytest.approx([206, 305, 393], abs=1.0)


@pytest.mark.parametrize(
    ("standard", "published"),
    [("China V", (22.7, 33.0, 42.9)), ("China III", (24.5, 34.6, 43.8))],
)
def test_published_copert_litres_at_60_kmh(standard, published):
    got = [float(hot_fc_l_per_100km(ARTIC, standard, load, 60.0)) for load in (0.0, 0.5, 1.0)]
    assert got == pytest.approx(published, rel=0.03)


def test_the_functions_give_the_fuel_rates_table_the_report_method_uses():
    """fuel_rates.csv was evaluated from the same functions at 60 and 80 km/h; both agree to its rounding."""
    text = files("truckcarbon.data").joinpath("factors", "fuel_rates.csv").read_text(encoding="utf-8")
    load = {"empty": 0.0, "half": 0.5, "full": 1.0}
    for row in csv.DictReader(text.splitlines()):
        got = float(
            hot_fc_l_per_100km(
                ARTIC, row["emission_standard"], load[row["load_state"]], float(row["reference_speed_kmh"])
            )
        )
        assert got == pytest.approx(float(row["fuel_rate_l_per_100km"]), abs=0.006), row


def test_every_shipped_row_reproduces_the_source_value_at_its_check_speed():
    """Each row carries the source's own value of its function (HDV_parameter.csv's Calc_func at Speed)."""
    table = copert_table()
    rows = shipped_rows()
    assert len(rows) == len(table.functions) == 150
    for row in rows:
        tech = row["technology"]
        fn = table.function(row["vehicle_class"], row["euro_stage"], tech, row["pollutant"], int(row["load_pct"]))
        expected = float(row["check_value"])
        assert float(fn(float(row["check_speed_kmh"]))) == pytest.approx(expected, rel=1e-4, abs=5e-5), row


def test_every_shipped_row_has_its_source_and_a_class_note():
    for row in shipped_rows():
        assert "pollemission/pollemission, input/HDV_parameter.csv, commit a41ba776" in row["source"]
        assert row["euro_stage"] in row["source"].replace("Euro-", "Euro ")
        assert row["class_note"].strip()
        assert row["slope_pct"] == "0"


def test_both_classes_hold_every_stage_pollutant_and_load():
    table = copert_table()
    for cls in VehicleClass:
        for standard in ("China III", "China IV", "China V", "China VI"):
            stage, tech = euro_stage(standard)
            for pol in CopertPollutant:
                for load in (0, 50, 100):
                    table.function(cls, stage, tech, pol, load)


def test_china_to_euro_map():
    assert euro_stage("China III") == ("Euro III", "")
    assert euro_stage("China IV") == ("Euro IV", "EGR")
    assert euro_stage("China V") == ("Euro V", "SCR")
    assert euro_stage("China VI") == ("Euro VI", "")
    with pytest.raises(InputError, match="China VII"):
        euro_stage("China VII")


def test_speeds_outside_the_valid_range_are_clamped_to_it():
    fn = copert_table().function(ARTIC, "Euro VI", "", "FC", 0)
    assert (fn.v_min_kmh, fn.v_max_kmh) == (12.0, 86.0)
    got = hot_fc_g_per_km(ARTIC, "China VI", 0.0, np.array([0.0, 5.0, 12.0, 86.0, 120.0]))
    at_12, at_86 = float(fn(12.0)), float(fn(86.0))
    np.testing.assert_allclose(got, [at_12, at_12, at_12, at_86, at_86])
    assert at_86 == pytest.approx(177.37482, abs=1e-4)  # the source's own value at 86 km/h


def test_load_is_interpolated_linearly_between_0_50_and_100_percent():
    v = np.array([20.0, 50.0, 80.0])
    ef = {load: nox(RIGID, "China IV", load, v) for load in (0.0, 0.25, 0.5, 0.75, 1.0)}
    np.testing.assert_allclose(ef[0.25], (ef[0.0] + ef[0.5]) / 2)
    np.testing.assert_allclose(ef[0.75], (ef[0.5] + ef[1.0]) / 2)
    per_row = nox(RIGID, "China IV", np.array([0.0, 0.25, 1.0]), v)
    np.testing.assert_allclose(per_row, [ef[0.0][0], ef[0.25][1], ef[1.0][2]])


def test_vectorised_over_any_shape():
    v = np.linspace(10, 90, 12).reshape(3, 4)
    out = hot_ef_g_per_km("PM", ARTIC, "China V", 0.5, v)
    assert out.shape == (3, 4)
    assert np.all(out > 0)
    assert np.isnan(hot_fc_g_per_km(ARTIC, "China V", 0.5, [np.nan, 50.0])[0])


def test_china_v_takes_scr_unless_told_otherwise():
    scr = nox(ARTIC, "China V", 1.0, 60.0)
    egr = nox(ARTIC, "China V", 1.0, 60.0, technology="EGR")
    assert float(scr) != pytest.approx(float(egr))
    assert float(nox(ARTIC, "China V", 1.0, 60.0, technology="SCR")) == float(scr)


def test_litres_from_grams():
    assert float(litres_per_100km(835.0)) == pytest.approx(100.0)
    assert copert.DIESEL_DENSITY_KG_PER_L == 0.835
    with pytest.raises(InputError):
        litres_per_100km(1.0, density_kg_per_l=0.0)


def test_bad_arguments_are_input_errors():
    with pytest.raises(InputError, match="speeds"):
        hot_fc_g_per_km(ARTIC, "China VI", 0.5, [-1.0, 50.0])
    with pytest.raises(InputError, match="load"):
        hot_fc_g_per_km(ARTIC, "China VI", 1.5, 50.0)
    with pytest.raises(InputError, match="SO2"):
        hot_ef_g_per_km("SO2", ARTIC, "China VI", 0.5, 50.0)
    with pytest.raises(ReferenceDataError, match="Rigid 20 - 26 t"):
        hot_fc_g_per_km("Rigid 20 - 26 t", "China VI", 0.5, 50.0)


def write_table(tmp_path: Path, edit) -> Path:
    """The shipped table, edited row by row: ``edit(i, row)`` returns the row (or None to drop it)."""
    rows = shipped_rows()
    out = tmp_path / "my_copert.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        for i, row in enumerate(rows):
            if (new := edit(i, dict(row))) is not None:
                w.writerow(new)
    return out


def test_a_user_table_with_the_same_columns_is_used(tmp_path):
    path = write_table(tmp_path, lambda i, r: r)
    table = read_copert_table(path)
    v = np.array([30.0, 70.0])
    np.testing.assert_array_equal(
        hot_fc_g_per_km(ARTIC, "China III", 0.3, v, table=table), hot_fc_g_per_km(ARTIC, "China III", 0.3, v)
    )


def test_a_bad_value_is_named_by_file_line_and_column(tmp_path):
    path = write_table(tmp_path, lambda i, r: {**r, "c": "abc"} if i == 2 else r)
    with pytest.raises(InputError) as e:
        read_copert_table(path)
    assert str(e.value) == f"{path}, line 4, column 'c': 'abc' is not a number"


def test_a_wrong_coefficient_is_caught_by_the_check_value(tmp_path):
    path = write_table(tmp_path, lambda i, r: {**r, "a": str(float(r["a"]) * 1.01)} if i == 5 else r)
    with pytest.raises(InputError, match=r"line 7: the function gives .* not the row's check_value"):
        read_copert_table(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda i, r: {**r, "function_id": "99"} if i == 0 else r, r"line 2, column 'function_id': '99' is not one of"),
        (
            lambda i, r: {**r, "load_pct": "75"} if i == 0 else r,
            r"line 2, column 'load_pct': '75' is not one of 0, 50, 100",
        ),
        (lambda i, r: {**r, "v_min_kmh": "90"} if i == 0 else r, r"line 2, column 'v_max_kmh': the valid range 90-86"),
        (lambda i, r: {**r, "pollutant": "SO2"} if i == 0 else r, r"line 2, column 'pollutant': 'SO2' is not one of"),
        (lambda i, r: {**r, "source": " "} if i == 0 else r, r"line 2, column 'source': empty"),
        (lambda i, r: {**r, "unit": "g/kWh"} if i == 0 else r, r"line 2, column 'unit': 'g/kWh' is not g/km"),
        (lambda i, r: None if i == 1 else r, r"has no row for load 50 %"),
        (lambda i, r: {**r, "load_pct": "0"} if i == 1 else r, r"line 3: a second row for .* \(the first is line 2\)"),
    ],
)
def test_bad_user_tables_are_refused_with_the_place(tmp_path, edit, message):
    path = write_table(tmp_path, edit)
    with pytest.raises(InputError, match=message) as e:
        read_copert_table(path)
    assert str(path) in str(e.value)


def test_a_missing_column_or_file_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("vehicle_class,euro_stage\nx,y\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1: missing column\(s\) technology, pollutant"):
        read_copert_table(path)
    with pytest.raises(InputError, match="cannot be read"):
        read_copert_table(tmp_path / "absent.csv")


def test_rows_of_other_slopes_are_read_but_not_evaluated(tmp_path):
    rows = shipped_rows()
    path = write_table(tmp_path, lambda i, r: r)
    with path.open("a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writerow({**rows[0], "slope_pct": "2", "a": "1", "check_speed_kmh": "", "check_value": ""})
    table = read_copert_table(path)
    assert len(table.functions) == 150
