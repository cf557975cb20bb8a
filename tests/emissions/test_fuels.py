"""Trucks of other fuels by hand: an LNG, an electric and a hydrogen truck, from the factor CSV rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.emissions.fuels import FUELS, FuelType, fuel_type_code, grid_factors
from truckcarbon.emissions.idle import idle_rate_l_per_h
from truckcarbon.emissions.method import CLASSES, EmissionSettings, apply_method

from .test_method import EF, activity, csv_rows, rate

BEIJING = 110000


def fuel_row(fuel: str) -> dict[str, str]:
    (row,) = [r for r in csv_rows("fuel_types.csv") if r["fuel_type"] == fuel]
    return row


def grid(province: int, year: int) -> float:
    (row,) = [
        r for r in csv_rows("grid_factors.csv") if (int(r["province_adcode"]), int(r["year"])) == (province, year)
    ]
    return float(row["kg_co2_per_kwh"])


def code(fuel: FuelType) -> int:
    return FUELS.index(fuel)


@pytest.mark.parametrize(
    ("text", "fuel"),
    [("", FuelType.DIESEL), (None, FuelType.DIESEL), ("柴油", FuelType.DIESEL), ("LNG", FuelType.LNG),
     ("液化天然气", FuelType.LNG), ("lng", FuelType.LNG), ("压缩天然气", FuelType.CNG), ("天然气", FuelType.CNG),
     ("纯电动", FuelType.ELECTRIC), ("BEV", FuelType.ELECTRIC), ("换电", FuelType.ELECTRIC),
     ("氢燃料电池", FuelType.HYDROGEN), ("FCEV", FuelType.HYDROGEN), ("hydrogen", FuelType.HYDROGEN)],
)  # fmt: skip
def test_fuel_types_are_read_in_their_written_forms(text: str | None, fuel: FuelType) -> None:
    assert fuel_type_code(text) == FUELS.index(fuel)


def test_an_unknown_fuel_is_refused() -> None:
    assert fuel_type_code("coal") == -1 and fuel_type_code("汽油") == -1


def rows_of(fuel: FuelType, settings: EmissionSettings | None = None, **extra: object) -> pa.Table:
    """One China V truck of ``fuel``: 60 km full at 80 km/h and 40 km empty, in Beijing in 2022-03."""
    t = activity([{"vehicle_id": 1, "full": 60.0, "empty": 40.0, **extra}])
    return apply_method(t, [2], settings or EmissionSettings(), [0], [code(fuel)], [BEIJING])


def test_an_lng_truck_burns_gas_for_the_diesel_of_its_work() -> None:
    diesel_l = (60.0 * rate("China V", "full") + 40.0 * rate("China V", "empty")) / 100.0
    lng = fuel_row("LNG")
    out = rows_of(FuelType.LNG).to_pylist()[0]
    assert out["fuel_l"] == pytest.approx(diesel_l, rel=1e-12)  # the methods' litres: the diesel of the work
    assert out["gas_kg"] == pytest.approx(diesel_l * float(lng["per_diesel_l"]), rel=1e-12)
    assert out["co2_kg"] == pytest.approx(out["gas_kg"] * float(lng["co2_kg_per_unit"]), rel=1e-12)
    assert out["diesel_l"] == 0.0 and out["electricity_kwh"] == 0.0
    diesel = rows_of(FuelType.DIESEL).to_pylist()[0]
    assert diesel["diesel_l"] == pytest.approx(diesel_l) and diesel["co2_kg"] == pytest.approx(diesel_l * EF)
    assert out["co2_kg"] < diesel["co2_kg"]  # 2.24 kg CO2 per diesel litre of work against 2.68
    assert out["nox_kg"] == diesel["nox_kg"] > 0  # the guideline's heavy-truck factors


def test_an_electric_truck_draws_grid_power_at_its_provinces_factor() -> None:
    diesel_l = (60.0 * rate("China V", "full") + 40.0 * rate("China V", "empty")) / 100.0
    per = float(fuel_row("electric")["per_diesel_l"])
    out = rows_of(FuelType.ELECTRIC).to_pylist()[0]
    assert out["electricity_kwh"] == pytest.approx(diesel_l * per, rel=1e-12)
    assert out["co2_kg"] == pytest.approx(diesel_l * per * grid(BEIJING, 2022), rel=1e-12)
    assert out["nox_kg"] == out["pm25_kg"] == out["co_kg"] == out["hc_kg"] == 0.0  # no exhaust
    # With the COPERT method its idle hours cost nothing: an electric drive draws no idle fuel.
    copert = EmissionSettings(method="copert")
    idle = apply_method(
        activity([{"vehicle_id": 1, "full": 60.0, "empty": 40.0}]).append_column("idle_h", pa.array([2.0])),
        [2], copert, [0], [code(FuelType.ELECTRIC)], [BEIJING],
    ).to_pylist()[0]  # fmt: skip
    idle_l = 2.0 * idle_rate_l_per_h(CLASSES[0])
    assert idle["electricity_kwh"] == pytest.approx((idle["fuel_l_copert"] - idle_l) * per, rel=1e-12)


def test_a_gauge_on_a_truck_of_another_fuel_is_not_read_as_diesel() -> None:
    measured = EmissionSettings(method="measured")
    out = rows_of(FuelType.ELECTRIC, measured, fuel_l=30.0, fuel_km=100.0).to_pylist()[0]
    assert out["fuel_gauge_used"] is False and out["method"] == "load_state"
    assert rows_of(FuelType.DIESEL, measured, fuel_l=30.0, fuel_km=100.0).to_pylist()[0]["fuel_l"] == 30.0


def test_a_hydrogen_truck_emits_no_co2_at_the_tailpipe() -> None:
    diesel_l = (60.0 * rate("China V", "full") + 40.0 * rate("China V", "empty")) / 100.0
    out = rows_of(FuelType.HYDROGEN).to_pylist()[0]
    assert out["hydrogen_kg"] == pytest.approx(diesel_l * float(fuel_row("hydrogen")["per_diesel_l"]), rel=1e-12)
    assert out["co2_kg"] == 0.0 and out["nox_kg"] == 0.0


def test_grid_factors_by_province_and_year_clamped_to_the_years_published() -> None:
    factors = grid_factors()
    assert factors.years == (2021, 2022, 2023)
    got = factors.factor(np.array([BEIJING, BEIJING, BEIJING, 0, 999999]), np.array([2019, 2022, 2030, 2022, 2022]))
    assert got.tolist() == [grid(BEIJING, 2021), grid(BEIJING, 2022), grid(BEIJING, 2023), grid(0, 2022),
                            grid(0, 2022)]  # fmt: skip
    tibet = [r for r in csv_rows("grid_factors.csv") if r["province_adcode"] == "540000"]
    assert len(tibet) == 3 and all("Southwest" in r["source"] for r in tibet)  # not published: its region's


def test_every_fuel_row_and_grid_factor_has_a_source() -> None:
    for name in ("fuel_types.csv", "grid_factors.csv"):
        rows = csv_rows(name)
        assert rows and all(r["source"].strip() for r in rows), name
    assert {r["fuel_type"] for r in csv_rows("fuel_types.csv")} == {f.value for f in FuelType}


def test_a_users_fuel_and_grid_tables_replace_the_shipped_ones(tmp_path) -> None:
    rows = csv_rows("fuel_types.csv")
    header = list(rows[0])
    own = tmp_path / "my_fuels.csv"
    lines = [",".join(header)]
    for r in rows:
        values = dict(r, per_diesel_l="0.9", high="0.95") if r["fuel_type"] == "LNG" else r
        lines.append(",".join(f'"{values[h]}"' for h in header))
    own.write_text("\n".join(lines) + "\n", encoding="utf-8")
    grid = tmp_path / "my_grid.csv"
    grid.write_text("province_adcode,year,kg_co2_per_kwh,source\n0,2022,0.5,mine\n110000,2022,0.1,mine\n",
                    encoding="utf-8")  # fmt: skip
    settings = EmissionSettings(fuel_factors=str(own), grid_factors=str(grid))
    settings.validate()
    diesel_l = (60.0 * rate("China V", "full") + 40.0 * rate("China V", "empty")) / 100.0
    lng = rows_of(FuelType.LNG, settings).to_pylist()[0]
    assert lng["gas_kg"] == pytest.approx(diesel_l * 0.9, rel=1e-12)
    electric = rows_of(FuelType.ELECTRIC, settings).to_pylist()[0]
    per = float(fuel_row("electric")["per_diesel_l"])
    assert electric["co2_kg"] == pytest.approx(diesel_l * per * 0.1, rel=1e-12)  # Beijing's own factor


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [("fuel_factors", "fuel_type,unit\nLNG,kg\n", "missing column"),
     ("grid_factors", "province_adcode,year,kg_co2_per_kwh,source\n0,2022,abc,x\n", "line 2"),
     ("grid_factors", "province_adcode,year,kg_co2_per_kwh,source\n110000,2022,0.5,x\n", "national row")],
)  # fmt: skip
def test_a_bad_users_table_names_its_file_and_line(tmp_path, field, text, message) -> None:
    from truckcarbon.core.errors import InputError

    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        EmissionSettings(**{field: str(path)}).validate()
    assert "bad.csv" in str(err.value)
    with pytest.raises(InputError, match="is not a file"):
        EmissionSettings(**{field: str(tmp_path / "none.csv")}).validate()
