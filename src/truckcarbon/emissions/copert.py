"""COPERT hot-emission speed functions of heavy trucks: the table, its checks and its vectorised evaluation.

The shipped table ``data/factors/copert_hdv.csv`` holds the EMEP/EEA Guidebook
(2013 annex, ARTEMIS heavy-duty sheet) functions of two segments, articulated
40-50 t and rigid 28-32 t, for Euro III-VI, fuel (FC) and exhaust NOx, PM, CO
and HC, at 0, 50 and 100 % load on a flat road. One row is one function::

    EF(V) = function_id(a, b, c, d, e, f, g; V)    g/km,  V clamped to [v_min_kmh, v_max_kmh]

Columns: ``vehicle_class``, ``euro_stage``, ``technology`` (``EGR``/``SCR`` where
the stage has variants, else empty), ``pollutant`` (FC, NOx, PM, CO, HC),
``load_pct`` (0, 50, 100), ``slope_pct`` (only 0 is evaluated), ``function_id``
(the Guidebook's shapes 0-15, :data:`FUNCTION_FORMS`), ``a``..``g``,
``v_min_kmh``, ``v_max_kmh``, ``unit`` (g/km), ``source``; optional
``check_speed_kmh`` and ``check_value`` (the source's own value of the function
at that speed: a row that does not reproduce it is refused), ``r2`` and
``class_note``. A user table with the same columns is read by
:func:`read_copert_table`; every problem names the file, line and column.

Between the tabulated loads the factor is interpolated linearly (0-0.5, 0.5-1).
China's stages map to Euro stages one to one (:data:`EURO_STAGE`); China IV
takes the EGR variant (the only Euro IV variant of both segments) and China V
the SCR variant, as in ``fuel_rates.csv``. Fuel in grams converts to litres at
:data:`DIESEL_DENSITY_KG_PER_L`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError, ReferenceDataError
from truckcarbon.emissions.factors import EmissionStandard
from truckcarbon.emissions.tables import Rows, csv_rows, enum_value, read_shipped_table, read_user_table

FloatArray = npt.NDArray[np.float64]

SHIPPED_TABLE: Final = "copert_hdv.csv"
COEFFICIENTS: Final = ("a", "b", "c", "d", "e", "f", "g")
REQUIRED_COLUMNS: Final = (
    "vehicle_class",
    "euro_stage",
    "technology",
    "pollutant",
    "load_pct",
    "slope_pct",
    "function_id",
    *COEFFICIENTS,
    "v_min_kmh",
    "v_max_kmh",
    "unit",
    "source",
)
LOADS_PCT: Final = (0, 50, 100)

# Diesel density, kg/L: the value at which the shipped functions give the Guidebook's published COPERT L/100 km
# (articulated 40-50 t, 60 km/h: Euro V 22.7/33.0/42.9, Euro III 24.5/34.6/43.8; tests/emissions/test_copert.py) and
# the one fuel_rates.csv uses. Inside EN 590's 820-845 kg/m3 at 15 degC; 835 kg/m3 is also the default 2005 diesel of
# the EMEP/EEA Guidebook 2019 fuel-effect relations as coded in ipeaGIT/gtfs2emis R/fuel_correction.R (commit 6a675a3e;
# its 1996 and 2000 base diesels are 840 kg/m3).
DIESEL_DENSITY_KG_PER_L: Final = 0.835


class CopertPollutant(StrEnum):
    """What a COPERT heavy-duty function gives, in g/km: fuel or an exhaust pollutant."""

    FC = "FC"
    NOX = "NOx"
    PM = "PM"  # exhaust PM; the Guidebook takes all exhaust PM as PM2.5
    CO = "CO"
    HC = "HC"


class VehicleClass(StrEnum):
    """The COPERT segments shipped in ``copert_hdv.csv`` (a user table may hold others)."""

    ARTICULATED_40_50 = "Articulated 40 - 50 t"
    RIGID_28_32 = "Rigid 28 - 32 t"


# How a vehicles table may write a class (lower case, spaces removed): a tractor pulling a semi-trailer
# (牵引车, 半挂) is articulated; a truck carrying its own body (厢式, 栏板, 自卸, 仓栅, 罐式, 载货) is rigid.
_CLASS_WORDS: Final = (
    (("articulated", "tractor", "semi-trailer", "semitrailer", "牵引", "半挂", "铰接"), 0),
    (("rigid", "box", "dump", "tipper", "tanker", "厢式", "栏板", "自卸", "仓栅", "罐式", "载货", "单体"), 1),
)


def vehicle_class_code(text: str | None) -> int:
    """Index in :class:`VehicleClass` of a written class (a segment's name, or words such as ``tractor``,
    ``牵引车``, ``rigid``, ``厢式货车``); 0 (articulated, the default) when empty; -1 when unknown."""
    if text is None or not str(text).strip():
        return 0
    s = str(text).strip().lower().replace(" ", "")
    for k, member in enumerate(VehicleClass):
        if s == member.value.lower().replace(" ", ""):
            return k
    for words, code in _CLASS_WORDS:
        if any(w in s for w in words):
            return code
    return -1


# China N ~ Euro N (the project's equivalence); technology variant where the Euro stage has several.
EURO_STAGE: Final[Mapping[EmissionStandard, tuple[str, str]]] = {
    EmissionStandard.CHINA_III: ("Euro III", ""),
    EmissionStandard.CHINA_IV: ("Euro IV", "EGR"),
    EmissionStandard.CHINA_V: ("Euro V", "SCR"),
    EmissionStandard.CHINA_VI: ("Euro VI", ""),
}


def _exp(x: FloatArray) -> FloatArray:
    return np.exp(x)


# The Guidebook's heavy-duty function shapes by id (x: speed in km/h, c[0..6]: a..g).
FUNCTION_FORMS: Final[Mapping[int, str]] = {
    0: "a * b**x * x**c",
    1: "a * x**b + c * x**d",
    2: "(a + b*x) ** (-1/c)",
    3: "a + b*x + (c - b) * (1 - exp(-d*x)) / d",
    4: "e + a*exp(-b*x) + c*exp(-d*x)",
    5: "1 / (c*x**2 + b*x + a)",
    6: "1 / (a + b * x**c)",
    7: "1 / (a + b*x)",
    8: "a - b * exp(-c * x**d)",
    9: "a / (1 + b*exp(-c*x))",
    10: "a + b / (1 + exp(-c + d*ln(x) + e*x))",
    11: "c + a*exp(-b*x)",
    12: "c + a*exp(b*x)",
    13: "exp(a + b/x + c*ln(x))",
    14: "a*x**3 + b*x**2 + c*x + d",
    15: "a*x**2 + b*x + c",
}
_FUNCTIONS: Final[Mapping[int, Callable[[tuple[float, ...], FloatArray], FloatArray]]] = {
    0: lambda c, x: c[0] * c[1] ** x * x ** c[2],
    1: lambda c, x: c[0] * x ** c[1] + c[2] * x ** c[3],
    2: lambda c, x: (c[0] + c[1] * x) ** (-1.0 / c[2]),
    3: lambda c, x: c[0] + c[1] * x + (c[2] - c[1]) * (1.0 - _exp(-c[3] * x)) / c[3],
    4: lambda c, x: c[4] + c[0] * _exp(-c[1] * x) + c[2] * _exp(-c[3] * x),
    5: lambda c, x: 1.0 / (c[2] * x**2 + c[1] * x + c[0]),
    6: lambda c, x: 1.0 / (c[0] + c[1] * x ** c[2]),
    7: lambda c, x: 1.0 / (c[0] + c[1] * x),
    8: lambda c, x: c[0] - c[1] * _exp(-c[2] * x ** c[3]),
    9: lambda c, x: c[0] / (1.0 + c[1] * _exp(-c[2] * x)),
    10: lambda c, x: c[0] + c[1] / (1.0 + _exp(-c[2] + c[3] * np.log(x) + c[4] * x)),
    11: lambda c, x: c[2] + c[0] * _exp(-c[1] * x),
    12: lambda c, x: c[2] + c[0] * _exp(c[1] * x),
    13: lambda c, x: _exp(c[0] + c[1] / x + c[2] * np.log(x)),
    14: lambda c, x: c[0] * x**3 + c[1] * x**2 + c[2] * x + c[3],
    15: lambda c, x: c[0] * x**2 + c[1] * x + c[2],
}


@dataclass(frozen=True)
class SpeedFunction:
    """One row of the table: a hot-emission function of average speed, valid on ``[v_min_kmh, v_max_kmh]``."""

    function_id: int
    coefficients: tuple[float, ...]
    v_min_kmh: float
    v_max_kmh: float
    origin: str  # "FILE, line N", for messages

    def __call__(self, speed_kmh: npt.ArrayLike) -> FloatArray:
        """g/km at each speed, the speed clamped to the valid range (NaN stays NaN)."""
        v = np.clip(np.asarray(speed_kmh, dtype=np.float64), self.v_min_kmh, self.v_max_kmh)
        with np.errstate(all="ignore"):
            out = np.asarray(_FUNCTIONS[self.function_id](self.coefficients, v), dtype=np.float64)
        bad = ~np.isfinite(out) & np.isfinite(v)
        if bad.any():
            raise InputError(f"{self.origin}: the function gives no finite value at {float(v[bad].flat[0])} km/h")
        return out


Key = tuple[str, str, str, str, int]  # vehicle class, Euro stage, technology, pollutant, load %


@dataclass(frozen=True)
class CopertTable:
    """The functions of a COPERT table, by (vehicle class, Euro stage, technology, pollutant, load %)."""

    path: str
    functions: Mapping[Key, SpeedFunction]

    def vehicle_classes(self) -> list[str]:
        return sorted({k[0] for k in self.functions})

    def function(
        self, vehicle_class: str, euro_stage: str, technology: str, pollutant: str, load_pct: int
    ) -> SpeedFunction:
        key = (vehicle_class, euro_stage, technology, pollutant, load_pct)
        try:
            return self.functions[key]
        except KeyError:
            variant = f"{euro_stage} {technology}".strip()
            raise ReferenceDataError(
                f"{self.path} has no {pollutant} function for {vehicle_class!r}, {variant}, load {load_pct} %"
                f" (vehicle classes: {', '.join(self.vehicle_classes())})"
            ) from None


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not a finite number")
    return value


def _integer(text: str, where: str, allowed: Mapping[int, object] | tuple[int, ...]) -> int:
    value = _number(text, where)
    if value != int(value) or int(value) not in allowed:
        raise InputError(f"{where}: {text!r} is not one of {', '.join(str(a) for a in allowed)}")
    return int(value)


def _check_value_reproduced(fn: SpeedFunction, row: Mapping[str, str], where: str) -> None:
    """When the row names a check speed and value (the source's own), the function must give that value."""
    speed_text, value_text = (row.get("check_speed_kmh") or "").strip(), (row.get("check_value") or "").strip()
    if not speed_text and not value_text:
        return
    speed = _number(speed_text, f"{where}, column 'check_speed_kmh'")
    expected = _number(value_text, f"{where}, column 'check_value'")
    got = float(fn(speed))
    if abs(got - expected) > 5e-5 + 1e-4 * abs(expected):
        raise InputError(
            f"{where}: the function gives {got:.6g} g/km at {speed:g} km/h, not the row's check_value {expected:g}"
            " (a coefficient, the function_id or the speed range is wrong)"
        )


def _parse_rows(rows: Rows, path: str) -> dict[Key, SpeedFunction]:
    functions: dict[Key, SpeedFunction] = {}
    lines: dict[Key, int] = {}
    for line, row in rows:
        here = f"{path}, line {line}"

        def col(name: str, here: str = here) -> str:
            return f"{here}, column {name!r}"

        for name in ("vehicle_class", "euro_stage", "source"):
            if not (row.get(name) or "").strip():
                raise InputError(f"{col(name)}: empty (every row needs it)")
        pollutant = row["pollutant"].strip()
        if pollutant not in set(CopertPollutant):
            raise InputError(f"{col('pollutant')}: {pollutant!r} is not one of {', '.join(CopertPollutant)}")
        load = _integer(row["load_pct"], col("load_pct"), LOADS_PCT)
        slope = _number(row["slope_pct"], col("slope_pct"))
        function_id = _integer(row["function_id"], col("function_id"), FUNCTION_FORMS)
        coefficients = tuple(_number(row[c], col(c)) for c in COEFFICIENTS)
        v_min = _number(row["v_min_kmh"], col("v_min_kmh"))
        v_max = _number(row["v_max_kmh"], col("v_max_kmh"))
        if not 0.0 < v_min < v_max:
            raise InputError(f"{col('v_max_kmh')}: the valid range {v_min:g}-{v_max:g} km/h must satisfy 0 < min < max")
        if row["unit"].strip() != "g/km":
            raise InputError(f"{col('unit')}: {row['unit']!r} is not g/km")
        fn = SpeedFunction(function_id, coefficients, v_min, v_max, here)
        _check_value_reproduced(fn, row, here)
        if slope != 0.0:
            continue  # only flat-road functions are evaluated
        key = (row["vehicle_class"].strip(), row["euro_stage"].strip(), row["technology"].strip(), pollutant, load)
        if key in functions:
            raise InputError(f"{here}: a second row for {key[:4]}, load {load} % (the first is line {lines[key]})")
        functions[key] = fn
        lines[key] = line
    for key in functions:
        missing = [p for p in LOADS_PCT if (*key[:4], p) not in functions]
        if missing:
            raise InputError(
                f"{path}, line {lines[key]}: {key[3]} of {key[0]!r}, {key[1]} {key[2]}".rstrip()
                + f" has no row for load {', '.join(map(str, missing))} % (loads 0, 50 and 100 are all needed)"
            )
    return functions


def read_copert_table(path: str | Path) -> CopertTable:
    """Read and check a COPERT table with the columns of ``copert_hdv.csv`` (a user's, or the shipped one)."""
    return read_user_table(path, "COPERT table", _table_from_text)


def _table_from_text(text: str, name: str) -> CopertTable:
    rows = csv_rows(text, name, REQUIRED_COLUMNS)
    if not rows:
        raise InputError(f"{name}: no rows")
    return CopertTable(name, _parse_rows(rows, name))


@cache
def copert_table() -> CopertTable:
    """The shipped table ``data/factors/copert_hdv.csv``, read and checked once."""
    return read_shipped_table(SHIPPED_TABLE, _table_from_text)


def euro_stage(standard: EmissionStandard | str) -> tuple[str, str]:
    """The COPERT Euro stage and technology variant taken for a China standard."""
    return EURO_STAGE[_standard(standard)]


def _standard(standard: EmissionStandard | str) -> EmissionStandard:
    return enum_value(EmissionStandard, standard, "emission standard")


def _speeds_and_loads(speed_kmh: npt.ArrayLike, load_fraction: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    speed = np.asarray(speed_kmh, dtype=np.float64)
    load = np.asarray(load_fraction, dtype=np.float64)
    if np.any(speed < 0.0):
        raise InputError("speeds must be >= 0 km/h")
    if not np.all(np.isfinite(load)) or np.any((load < 0.0) | (load > 1.0)):
        raise InputError("load fractions must be between 0 (empty) and 1 (full)")
    try:
        s, ld = np.broadcast_arrays(speed, load)
    except ValueError:
        raise InputError(f"speeds of shape {speed.shape} and loads of shape {load.shape} do not broadcast") from None
    return s, ld


def hot_ef_g_per_km(
    pollutant: CopertPollutant | str,
    vehicle_class: VehicleClass | str,
    standard: EmissionStandard | str,
    load_fraction: npt.ArrayLike,
    speed_kmh: npt.ArrayLike,
    *,
    technology: str | None = None,
    table: CopertTable | None = None,
) -> FloatArray:
    """Hot g/km on a flat road at each average speed (clamped to each function's range), load interpolated.

    ``load_fraction`` is 0 (empty) to 1 (full), a scalar or an array broadcast with
    ``speed_kmh``; ``technology`` overrides the variant of :data:`EURO_STAGE`.
    """
    try:
        pol = CopertPollutant(pollutant)
    except ValueError:
        raise InputError(
            f"unknown COPERT pollutant {pollutant!r}; choose one of {', '.join(CopertPollutant)}"
        ) from None
    stage, variant = euro_stage(standard)
    tech = variant if technology is None else technology
    t = copert_table() if table is None else table
    speed, load = _speeds_and_loads(speed_kmh, load_fraction)
    ef0, ef50, ef100 = (t.function(str(vehicle_class), stage, tech, pol.value, p)(speed) for p in LOADS_PCT)
    lower = ef0 + (ef50 - ef0) * (load / 0.5)
    upper = ef50 + (ef100 - ef50) * ((load - 0.5) / 0.5)
    return np.where(load <= 0.5, lower, upper)


def hot_fc_g_per_km(
    vehicle_class: VehicleClass | str,
    standard: EmissionStandard | str,
    load_fraction: npt.ArrayLike,
    speed_kmh: npt.ArrayLike,
    *,
    technology: str | None = None,
    table: CopertTable | None = None,
) -> FloatArray:
    """Hot fuel consumption in g/km (see :func:`hot_ef_g_per_km`)."""
    return hot_ef_g_per_km(
        CopertPollutant.FC, vehicle_class, standard, load_fraction, speed_kmh, technology=technology, table=table
    )


def litres_per_100km(fc_g_per_km: npt.ArrayLike, density_kg_per_l: float = DIESEL_DENSITY_KG_PER_L) -> FloatArray:
    """Fuel in L/100 km from g/km: ``g/km / (1000 * kg/L) * 100``."""
    if not density_kg_per_l > 0.0:
        raise InputError("the fuel density must be > 0 kg/L")
    return np.asarray(fc_g_per_km, dtype=np.float64) / (10.0 * density_kg_per_l)


def hot_fc_l_per_100km(
    vehicle_class: VehicleClass | str,
    standard: EmissionStandard | str,
    load_fraction: npt.ArrayLike,
    speed_kmh: npt.ArrayLike,
    *,
    technology: str | None = None,
    table: CopertTable | None = None,
) -> FloatArray:
    """Hot fuel consumption in L/100 km of diesel at :data:`DIESEL_DENSITY_KG_PER_L`."""
    return litres_per_100km(
        hot_fc_g_per_km(vehicle_class, standard, load_fraction, speed_kmh, technology=technology, table=table)
    )


__all__ = [
    "DIESEL_DENSITY_KG_PER_L",
    "EURO_STAGE",
    "FUNCTION_FORMS",
    "CopertPollutant",
    "CopertTable",
    "SpeedFunction",
    "VehicleClass",
    "copert_table",
    "euro_stage",
    "hot_ef_g_per_km",
    "hot_fc_g_per_km",
    "hot_fc_l_per_100km",
    "litres_per_100km",
    "read_copert_table",
    "vehicle_class_code",
]
