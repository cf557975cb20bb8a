"""Fuels other than diesel: natural gas (LNG, CNG), electricity and hydrogen.

A vehicle's ``fuel_type`` (the vehicles table; default diesel) decides what its
kilometres burn. The methods (:mod:`truckcarbon.emissions.method`) give every row
the diesel litres of its work (report, COPERT, the gauge); a truck of another fuel
burns ``per_diesel_l`` units of its own fuel for each of those litres
(``data/factors/fuel_types.csv``: kg of gas, kWh from the grid, kg of hydrogen, each
derived from heating values and tank-to-wheel efficiencies, the derivation and its
sources in the row), less the idling for fuels that do not idle (electric and
hydrogen drives draw nothing at a standstill beyond their auxiliaries, not counted).

CO2: diesel at the settings' factor per litre; gas at 2.693 kg per kg (IPCC 2006);
electricity at the grid factor of the province the truck drove in, for the year
(``data/factors/grid_factors.csv``: the MEE and NBS provincial factors; a year
before the first published takes the first, after the last the last; a row outside
the mainland the national factor); hydrogen 0 at the tailpipe. Exhaust pollutants:
the methods' for diesel and gas trucks (the guideline's heavy-truck factors, no
gas-specific ones are shipped), none for electric and hydrogen trucks.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.tables import csv_rows, read_shipped_table, read_user_table

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class FuelType(StrEnum):
    """The fuels a heavy truck runs on (the vehicles table's ``fuel_type``)."""

    DIESEL = "diesel"
    LNG = "LNG"
    CNG = "CNG"
    ELECTRIC = "electric"
    HYDROGEN = "hydrogen"


FUELS: Final = tuple(FuelType)  # a vehicle's fuel code is the index here
# Written forms of each fuel (lower case, spaces removed): the Chinese registration terms and common English.
_WORDS: Final = (
    (("diesel", "柴油", "柴", "d", "dsl"), FuelType.DIESEL),
    (("lng", "液化天然气", "液化气", "liquefiednaturalgas"), FuelType.LNG),
    (("cng", "压缩天然气", "compressednaturalgas", "天然气", "naturalgas", "gas", "ng", "燃气"), FuelType.CNG),
    (
        ("electric", "bev", "ev", "battery", "batteryelectric", "纯电动", "电动", "纯电", "电", "换电"),
        FuelType.ELECTRIC,
    ),
    (("hydrogen", "fcev", "fuelcell", "h2", "氢", "氢燃料", "氢燃料电池", "燃料电池"), FuelType.HYDROGEN),
)
GRID_TABLE: Final = "grid_factors.csv"
FUEL_TABLE: Final = "fuel_types.csv"
FUEL_COLUMNS: Final = ("fuel_type", "unit", "per_diesel_l", "low", "high", "co2_kg_per_unit", "idles", "source")
GRID_COLUMNS: Final = ("province_adcode", "year", "kg_co2_per_kwh", "source")


def fuel_type_code(text: str | None) -> int:
    """Index in :data:`FUELS` of a written fuel (``LNG``, ``纯电动``, ``氢燃料电池``...); 0 (diesel) when empty;
    -1 when unknown. A bare ``天然气`` (natural gas) reads as CNG: the two burn alike (fuel_types.csv)."""
    if text is None or not str(text).strip():
        return 0
    s = str(text).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    for k, fuel in enumerate(FUELS):
        if s == fuel.value.lower():
            return k
    for words, fuel in _WORDS:
        if s in words:
            return FUELS.index(fuel)
    return -1


@dataclass(frozen=True)
class Fuel:
    """One row of fuel_types.csv."""

    fuel: FuelType
    unit: str
    per_diesel_l: float
    low: float
    high: float
    co2_kg_per_unit: float | None  # None: the grid's (electricity) or the settings' (diesel)
    idles: bool
    source: str


def _parse_fuels(text: str, name: str) -> dict[FuelType, Fuel]:
    out = {}
    for line, row in csv_rows(text, name, FUEL_COLUMNS):
        try:
            fuel = FuelType(row["fuel_type"])
            per, low, high = (float(row[c]) for c in ("per_diesel_l", "low", "high"))
            co2 = None if row["co2_kg_per_unit"] in ("", "grid") else float(row["co2_kg_per_unit"])
        except ValueError:
            raise InputError(f"{name}, line {line}: a fuel of {', '.join(FUELS)} and numbers") from None
        if not 0.0 < low <= per <= high or not row["source"].strip() or row["idles"] not in ("yes", "no"):
            raise InputError(f"{name}, line {line}: needs 0 < low <= per_diesel_l <= high, idles yes/no, a source")
        out[fuel] = Fuel(fuel, row["unit"], per, low, high, co2, row["idles"] == "yes", row["source"])
    if set(out) != set(FUELS):
        raise InputError(f"{name}: needs one row for each of {', '.join(FUELS)}")
    return out


@cache
def fuels(path: str = "") -> dict[FuelType, Fuel]:
    """The fuel table: the shipped one, or a user's at ``path`` (its columns; checked with file and line)."""
    if path:
        return read_user_table(path, "[emissions] fuel_factors", _parse_fuels)
    return read_shipped_table(FUEL_TABLE, _parse_fuels)


@dataclass(frozen=True)
class GridFactors:
    """kg CO2 per kWh by province and year (province 0: the national factor)."""

    years: tuple[int, ...]
    by_province: dict[int, FloatArray]  # province adcode -> factor per year of ``years``

    def factor(self, province: IntArray, year: IntArray) -> FloatArray:
        """Each row's factor: its province's (unknown or 0: national) in its year, clamped to the years
        published."""
        first, last = self.years[0], self.years[-1]
        at = np.clip(np.asarray(year, np.int64), first, last) - first
        national = self.by_province[0]
        out = national[at].astype(np.float64)
        province = np.asarray(province, np.int64)
        for code, values in self.by_province.items():
            if code:
                rows = province == code
                out[rows] = values[at[rows]]
        return out


def _parse_grid(text: str, name: str) -> GridFactors:
    values: dict[int, dict[int, float]] = {}
    for line, row in csv_rows(text, name, GRID_COLUMNS):
        try:
            code, year, factor = int(row["province_adcode"]), int(row["year"]), float(row["kg_co2_per_kwh"])
        except ValueError:
            raise InputError(f"{name}, line {line}: province_adcode, year and kg_co2_per_kwh must be numbers") from None
        if not 0.0 <= factor <= 2.0 or not row["source"].strip():
            raise InputError(f"{name}, line {line}: a factor within 0-2 kg/kWh and a source")
        values.setdefault(code, {})[year] = factor
    years = tuple(sorted({y for v in values.values() for y in v}))
    if (
        0 not in values
        or any(set(v) != set(years) for v in values.values())
        or years != tuple(range(years[0], years[-1] + 1))
    ):
        raise InputError(f"{name}: needs the national row (0) and every province in every year, consecutive")
    return GridFactors(years, {c: np.array([v[y] for y in years]) for c, v in values.items()})


@cache
def grid_factors(path: str = "") -> GridFactors:
    """The grid factors: the shipped ones, or a user's at ``path`` (its columns; checked with file and line)."""
    if path:
        return read_user_table(path, "[emissions] grid_factors", _parse_grid)
    return read_shipped_table(GRID_TABLE, _parse_grid)


# The column of each fuel's own units (activity rows and the inventory).
ENERGY_COLUMN: Final = {
    FuelType.DIESEL: "diesel_l", FuelType.LNG: "gas_kg", FuelType.CNG: "gas_kg", FuelType.ELECTRIC: "electricity_kwh",
    FuelType.HYDROGEN: "hydrogen_kg",
}  # fmt: skip
ENERGY_COLUMNS: Final = tuple(dict.fromkeys(ENERGY_COLUMN.values()))


def fuel_emissions(
    diesel_eq_l: FloatArray,
    idle_eq_l: FloatArray,
    fuel_code: IntArray,
    province_adcode: IntArray,
    year: IntArray,
    diesel_ef_kg_per_l: float,
    fuel_table: str = "",
    grid_table: str = "",
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Each row's energy in its fuel's units (:data:`ENERGY_COLUMNS`) and its CO2 (kg).

    ``diesel_eq_l``: the method's diesel litres of the row's work, ``idle_eq_l`` the part of them spent idling
    (taken out for fuels that do not idle); ``fuel_code`` the index in :data:`FUELS`; ``province_adcode`` and
    ``year`` pick an electric row's grid factor; ``fuel_table`` and ``grid_table`` a user's tables ("": the
    shipped ones)."""
    table = fuels(fuel_table)
    n = diesel_eq_l.size
    energy = {c: np.zeros(n) for c in ENERGY_COLUMNS}
    co2 = np.zeros(n)
    for k, fuel in enumerate(FUELS):
        rows = np.flatnonzero(fuel_code == k)
        if rows.size == 0:
            continue
        f = table[fuel]
        work = diesel_eq_l[rows] - (0.0 if f.idles else idle_eq_l[rows])
        units = np.maximum(work, 0.0) * f.per_diesel_l
        energy[ENERGY_COLUMN[fuel]][rows] = units
        if fuel is FuelType.DIESEL:
            co2[rows] = units * diesel_ef_kg_per_l
        elif f.co2_kg_per_unit is None:  # electricity: the grid's
            co2[rows] = units * grid_factors(grid_table).factor(province_adcode[rows], year[rows])
        else:
            co2[rows] = units * f.co2_kg_per_unit
    return energy, co2


__all__ = [
    "ENERGY_COLUMN",
    "ENERGY_COLUMNS",
    "FUELS",
    "Fuel",
    "FuelType",
    "GridFactors",
    "fuel_emissions",
    "fuel_type_code",
    "fuels",
    "grid_factors",
]
