"""Heavy diesel truck NOx, PM2.5, CO and HC factors of China's 2014 inventory guideline, China VI from COPERT Euro VI.

For China III-V, the MEE 2014 national road-vehicle emission inventory guideline
(v3) gives a base factor per standard and multiplies it by corrections::

    EF = base(pollutant, standard) * load(pollutant, load state) * speed bin * temperature * altitude    g/km

The numbers are in ``data/factors/china_pollutants.csv``, each row with its source
(the guideline as reproduced by the vein R package). Its columns: ``kind``
(``base``, ``load``, ``temperature``, ``altitude`` or ``speed``), ``pollutant``,
``standard`` (a China standard, or ``all`` for corrections that do not depend on
it), ``load_state`` (``load`` rows), ``interval`` (``temperature`` in degC,
``altitude`` in m, ``speed`` in km/h, written ``(25, inf)``, ``[10, 25]``...),
``value`` (g/km for ``base``, a factor otherwise), ``unit`` and ``source``. The
intervals of one correction cover every value exactly once. A user table with
the same columns is read by :func:`read_china_table`.

Reference conditions (no correction): load half, temperature 10-25 degC
(``temperature_c=None``), altitude up to 1500 m (``altitude_m=None``), average
speed 30 km/h (``speed_kmh=None``), humidity 50 % and the guideline's base
diesel (vein's tests reproduce the base factors at 350 ppm sulphur). The
humidity and sulphur corrections are not applied. **The guideline's speed-bin
factors (< 20, 20-30, 30, 30-40, 40-80, > 80 km/h) are not shipped**: vein keeps
them in a binary data file only. A speed given for China III-V therefore needs a
table with ``speed`` rows; the shipped one raises :class:`ReferenceDataError`.

The guideline has no China VI factors: China VI takes the COPERT Euro VI hot
functions of :mod:`truckcarbon.emissions.copert` (``copert_class``, articulated
40-50 t by default) at the load of the load state (0, 50, 100 %) and the speed
(30 km/h when none is given); PM2.5 is COPERT's exhaust PM. The guideline's
temperature and altitude factors, which do not depend on the standard, apply to
it too; its load and speed factors do not (COPERT has its own).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.errors import InputError, ReferenceDataError
from truckcarbon.emissions import copert
from truckcarbon.emissions.factors import EmissionStandard, LoadState
from truckcarbon.emissions.profile import SpeedProfile
from truckcarbon.emissions.tables import Rows, csv_rows, enum_value, read_shipped_table, read_user_table

FloatArray = npt.NDArray[np.float64]

SHIPPED_TABLE: Final = "china_pollutants.csv"
COLUMNS: Final = ("kind", "pollutant", "standard", "load_state", "interval", "value", "unit", "source")
KINDS: Final = ("base", "load", "temperature", "altitude", "speed")
CORRECTIONS: Final = ("temperature", "altitude", "speed")
ALL_STANDARDS: Final = "all"
BASE_SPEED_KMH: Final = 30.0  # the guideline's reference speed: vein R/ef_china.R applies no speed factor at 30 km/h


class Pollutant(StrEnum):
    """The pollutants of the guideline's heavy diesel truck factors."""

    NOX = "NOx"
    PM25 = "PM2.5"
    CO = "CO"
    HC = "HC"


COPERT_POLLUTANT: Final[Mapping[Pollutant, copert.CopertPollutant]] = {
    Pollutant.NOX: copert.CopertPollutant.NOX,
    Pollutant.PM25: copert.CopertPollutant.PM,  # the Guidebook takes all exhaust PM as PM2.5
    Pollutant.CO: copert.CopertPollutant.CO,
    Pollutant.HC: copert.CopertPollutant.HC,
}
COPERT_LOAD: Final[Mapping[LoadState, float]] = {LoadState.EMPTY: 0.0, LoadState.HALF: 0.5, LoadState.FULL: 1.0}

E = TypeVar("E", bound=StrEnum)

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


@dataclass(frozen=True)
class Interval:
    """A real interval, each end open or closed; ``-inf``/``inf`` ends are open."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> Interval:
        m = _INTERVAL.match(text)
        if not m:
            raise ValueError(f"{text!r} is not an interval like '(25, inf)' or '[10, 25]'")
        low, high = float(m[2]), float(m[3])
        closed_low, closed_high = m[1] == "[", m[4] == "]"
        if math.isnan(low) or math.isnan(high) or low > high or (low == high and not (closed_low and closed_high)):
            raise ValueError(f"{text!r} is an empty interval")
        if (closed_low and math.isinf(low)) or (closed_high and math.isinf(high)):
            raise ValueError(f"{text!r} closes an infinite end")
        return cls(low, high, closed_low, closed_high)

    def contains(self, x: FloatArray) -> npt.NDArray[np.bool_]:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return np.asarray(above & below)

    def __str__(self) -> str:
        return f"{'[' if self.low_closed else '('}{self.low:g}, {self.high:g}{']' if self.high_closed else ')'}"


@dataclass(frozen=True)
class ChinaTable:
    """The guideline's base factors, load factors and interval corrections of one table."""

    path: str
    base: Mapping[tuple[Pollutant, EmissionStandard], float]
    load: Mapping[tuple[Pollutant, LoadState], float]
    corrections: Mapping[tuple[str, Pollutant, str], tuple[tuple[Interval, float], ...]]

    def correction(
        self, kind: str, pollutant: Pollutant, standard: EmissionStandard
    ) -> tuple[tuple[Interval, float], ...]:
        """The intervals of one correction for a standard (its own rows, else the ``all`` rows; may be empty)."""
        own = self.corrections.get((kind, pollutant, standard.value))
        return own if own is not None else self.corrections.get((kind, pollutant, ALL_STANDARDS), ())

    def factor(self, kind: str, pollutant: Pollutant, standard: EmissionStandard, x: npt.ArrayLike) -> FloatArray:
        """The correction factor at each value (1 for a correction the table does not have)."""
        values = np.asarray(x, dtype=np.float64)
        out = np.full(values.shape, np.nan)
        pieces = self.correction(kind, pollutant, standard)
        if not pieces:
            return np.ones(values.shape)
        for interval, factor in pieces:
            out = np.where(interval.contains(values), factor, out)
        return out


def _check_cover(pieces: list[tuple[Interval, float, int]], domain_low: float, where: str) -> None:
    """The intervals of one correction cover ``[domain_low, inf)`` (or the real line), each value once."""
    pieces.sort(key=lambda p: (p[0].low, not p[0].low_closed))
    first = pieces[0][0]
    if first.low > domain_low or (first.low == domain_low and not first.low_closed and math.isfinite(domain_low)):
        raise InputError(f"{where}: the intervals start at {first} and leave values below it without a factor")
    for (a, _, line_a), (b, _, line_b) in itertools.pairwise(pieces):
        if a.high != b.low or a.high_closed == b.low_closed:
            problem = (
                "overlap" if a.high > b.low or (a.high == b.low and a.high_closed and b.low_closed) else "leave a gap"
            )
            raise InputError(f"{where}, lines {line_a} and {line_b}: intervals {a} and {b} {problem}")
    if math.isfinite(pieces[-1][0].high):
        raise InputError(f"{where}, line {pieces[-1][2]}: the intervals end at {pieces[-1][0]}, not at inf")


def _parse(rows: Rows, path: str) -> ChinaTable:
    base: dict[tuple[Pollutant, EmissionStandard], float] = {}
    load: dict[tuple[Pollutant, LoadState], float] = {}
    pieces: dict[tuple[str, Pollutant, str], list[tuple[Interval, float, int]]] = {}
    seen: dict[tuple[str, ...], int] = {}
    for line, row in rows:
        here = f"{path}, line {line}"

        def col(name: str, here: str = here) -> str:
            return f"{here}, column {name!r}"

        kind = row["kind"].strip()
        if kind not in KINDS:
            raise InputError(f"{col('kind')}: {kind!r} is not one of {', '.join(KINDS)}")
        try:
            pollutant = Pollutant(row["pollutant"].strip())
        except ValueError:
            raise InputError(f"{col('pollutant')}: {row['pollutant']!r} is not one of {', '.join(Pollutant)}") from None
        standard = row["standard"].strip()
        if standard != ALL_STANDARDS and standard not in set(EmissionStandard):
            raise InputError(f"{col('standard')}: {standard!r} is not a China standard or {ALL_STANDARDS!r}")
        try:
            value = float(row["value"])
        except ValueError:
            raise InputError(f"{col('value')}: {row['value']!r} is not a number") from None
        if not (math.isfinite(value) and value > 0.0):
            raise InputError(f"{col('value')}: {row['value']!r} is not a finite number > 0")
        unit = row["unit"].strip()
        if unit != ("g/km" if kind == "base" else "factor"):
            raise InputError(
                f"{col('unit')}: a {kind} row is in {'g/km' if kind == 'base' else 'factor'}, not {unit!r}"
            )
        if not row["source"].strip():
            raise InputError(f"{col('source')}: empty (every number needs its source)")
        state, interval_text = row["load_state"].strip(), row["interval"].strip()
        if kind in CORRECTIONS:
            try:
                interval: Interval | None = Interval.parse(interval_text)
            except ValueError as e:
                raise InputError(f"{col('interval')}: {e}") from None
        elif interval_text:
            raise InputError(f"{col('interval')}: a {kind} row has no interval")
        else:
            interval = None
        if kind != "load" and state:
            raise InputError(f"{col('load_state')}: only load rows have a load state")
        key = (kind, pollutant.value, standard, state, interval_text)
        if key in seen:
            raise InputError(f"{here}: a second {kind} row for {pollutant} {standard} (the first is line {seen[key]})")
        seen[key] = line
        if kind == "base":
            if standard == ALL_STANDARDS:
                raise InputError(f"{col('standard')}: a base factor is of one standard, not {ALL_STANDARDS!r}")
            base[(pollutant, EmissionStandard(standard))] = value
        elif kind == "load":
            if standard != ALL_STANDARDS:
                raise InputError(f"{col('standard')}: load factors are for {ALL_STANDARDS!r} standards")
            try:
                load[(pollutant, LoadState(state))] = value
            except ValueError:
                raise InputError(f"{col('load_state')}: {state!r} is not one of {', '.join(LoadState)}") from None
        else:
            assert interval is not None
            pieces.setdefault((kind, pollutant, standard), []).append((interval, value, line))
    for (kind, pollutant, standard), items in pieces.items():
        _check_cover(items, 0.0 if kind == "speed" else -math.inf, f"{path}: {kind} {pollutant} {standard}")
    for pollutant in sorted({p for p, _ in base}):
        missing = [s for s in LoadState if (pollutant, s) not in load]
        if missing:
            raise InputError(f"{path}: no load factor for {pollutant} {', '.join(missing)} (base rows need all three)")
    corrections = {k: tuple((i, v) for i, v, _ in items) for k, items in pieces.items()}
    return ChinaTable(path, base, load, corrections)


def _table_from_text(text: str, name: str) -> ChinaTable:
    return _parse(csv_rows(text, name, COLUMNS), name)


def read_china_table(path: str | Path) -> ChinaTable:
    """Read and check a table with the columns of ``china_pollutants.csv`` (a user's, or the shipped one)."""
    return read_user_table(path, "pollutant factor table", _table_from_text)


@cache
def china_table() -> ChinaTable:
    """The shipped table ``data/factors/china_pollutants.csv``, read and checked once."""
    return read_shipped_table(SHIPPED_TABLE, _table_from_text)


def china_factor_g_per_km(
    pollutant: Pollutant | str,
    standard: EmissionStandard | str,
    load_state: LoadState | str,
    speed_kmh: npt.ArrayLike | None,
    temperature_c: npt.ArrayLike | None = None,
    altitude_m: npt.ArrayLike | None = None,
    *,
    table: ChinaTable | None = None,
    copert_class: copert.VehicleClass | str = copert.VehicleClass.ARTICULATED_40_50,
    copert_table: copert.CopertTable | None = None,
) -> FloatArray:
    """Hot g/km of a heavy diesel truck; speed, temperature and altitude are scalars or arrays that broadcast.

    ``None`` for speed, temperature or altitude means the guideline's reference
    condition (30 km/h, 10-25 degC, up to 1500 m). China III-V use the table's
    guideline factors; China VI (absent from the guideline) uses COPERT Euro VI.
    """
    pol = enum_value(Pollutant, pollutant, "pollutant")
    std = enum_value(EmissionStandard, standard, "emission standard")
    state = enum_value(LoadState, load_state, "load state")
    t = china_table() if table is None else table
    speed = None if speed_kmh is None else np.asarray(speed_kmh, dtype=np.float64)
    if speed is not None and np.any(speed < 0.0):
        raise InputError("speeds must be >= 0 km/h")
    temperature = None if temperature_c is None else np.asarray(temperature_c, dtype=np.float64)
    altitude = None if altitude_m is None else np.asarray(altitude_m, dtype=np.float64)
    shapes = [a.shape for a in (speed, temperature, altitude) if a is not None]
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise InputError(f"speed, temperature and altitude of shapes {shapes} do not broadcast") from None
    if (pol, std) in t.base:
        ef = np.full(shape, t.base[(pol, std)] * t.load[(pol, state)])
        if speed is not None:
            if not t.correction("speed", pol, std):
                raise ReferenceDataError(
                    f"{t.path} has no speed-bin factors for {pol} {std}: pass speed_kmh=None for the guideline's"
                    f" reference speed ({BASE_SPEED_KMH:g} km/h), or a table with 'speed' rows"
                )
            ef = ef * t.factor("speed", pol, std, speed)
    elif std is EmissionStandard.CHINA_VI:
        v = np.full(shape, BASE_SPEED_KMH) if speed is None else np.broadcast_to(speed, shape)
        ef = copert.hot_ef_g_per_km(COPERT_POLLUTANT[pol], copert_class, std, COPERT_LOAD[state], v, table=copert_table)
    else:
        raise ReferenceDataError(f"{t.path} has no base factor for {pol} {std}")
    if temperature is not None:
        ef = ef * t.factor("temperature", pol, std, temperature)
    if altitude is not None:
        ef = ef * t.factor("altitude", pol, std, altitude)
    return np.asarray(np.broadcast_to(ef, shape), dtype=np.float64)


POLLUTANT_COLUMNS: Final[Mapping[Pollutant, str]] = {
    Pollutant.NOX: "nox_kg",
    Pollutant.PM25: "pm25_kg",
    Pollutant.CO: "co_kg",
    Pollutant.HC: "hc_kg",
}
_STATE_OF_LOAD: Final = {0.0: LoadState.EMPTY, 0.5: LoadState.HALF, 1.0: LoadState.FULL}


def pollutants_kg(
    activity: pa.Table,
    standard_code: npt.NDArray[np.int64],
    class_code: npt.NDArray[np.int64],
    copert_table: copert.CopertTable,
    profile: SpeedProfile | None,
    *,
    table: ChinaTable | None = None,
) -> dict[str, FloatArray]:
    """Hot exhaust kg of each pollutant on activity rows (:data:`POLLUTANT_COLUMNS`): China III-V at the
    guideline's base factor and load correction (reference speed, temperature and altitude), China VI at
    COPERT Euro VI per speed bin and load (``profile``: the rows' speed profile; None for no rows)."""
    if profile is None:
        return {name: np.zeros(activity.num_rows) for name in POLLUTANT_COLUMNS.values()}
    classes = tuple(copert.VehicleClass)
    out = {}
    for pol, name in POLLUTANT_COLUMNS.items():

        def ef(c: int, std: EmissionStandard, load: float, v: FloatArray, pol: Pollutant = pol) -> FloatArray:
            state = _STATE_OF_LOAD[load]
            speed = v if std is EmissionStandard.CHINA_VI else None
            g = china_factor_g_per_km(
                pol, std, state, speed, table=table, copert_class=classes[c], copert_table=copert_table
            )
            return np.broadcast_to(g, v.shape)

        out[name] = profile.apply(ef, class_code, standard_code) / 1000.0
    return out


__all__ = [
    "BASE_SPEED_KMH",
    "COPERT_LOAD",
    "COPERT_POLLUTANT",
    "POLLUTANT_COLUMNS",
    "ChinaTable",
    "Interval",
    "Pollutant",
    "china_factor_g_per_km",
    "china_table",
    "pollutants_kg",
    "read_china_table",
]
