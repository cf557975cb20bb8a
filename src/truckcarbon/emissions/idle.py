"""Idle fuel rates of heavy trucks by fuel and class: ``data/factors/idle_rates.csv``, each row with its source.

Columns: ``fuel_type``, ``vehicle_class`` (a COPERT segment,
:class:`truckcarbon.emissions.copert.VehicleClass`), ``rate`` (the central rate),
``unit`` (L/h), ``low`` and ``high`` (the source's range: the uncertainty's bounds)
and ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from truckcarbon.core.errors import ReferenceDataError
from truckcarbon.emissions.copert import VehicleClass
from truckcarbon.emissions.tables import csv_rows, read_shipped_table

SHIPPED_TABLE: Final = "idle_rates.csv"
COLUMNS: Final = ("fuel_type", "vehicle_class", "rate", "unit", "low", "high", "source")


@dataclass(frozen=True)
class IdleRate:
    """One class's idle rate with its range."""

    rate: float
    low: float
    high: float
    unit: str
    source: str


def _parse(text: str, name: str) -> dict[tuple[str, str], IdleRate]:
    out = {}
    for line, row in csv_rows(text, name, COLUMNS):
        try:
            rate, low, high = (float(row[c]) for c in ("rate", "low", "high"))
        except ValueError:
            raise ReferenceDataError(f"{name}, line {line}: rate, low and high must be numbers") from None
        if not 0.0 <= low <= rate <= high or not row["source"].strip():
            raise ReferenceDataError(f"{name}, line {line}: needs 0 <= low <= rate <= high and a source")
        out[(row["fuel_type"], row["vehicle_class"])] = IdleRate(rate, low, high, row["unit"], row["source"])
    return out


@cache
def idle_rates() -> dict[tuple[str, str], IdleRate]:
    """The shipped table by (fuel type, vehicle class)."""
    return read_shipped_table(SHIPPED_TABLE, _parse)


def idle_rate(vehicle_class: VehicleClass | str, fuel_type: str = "diesel") -> IdleRate:
    """The idle rate of a class and fuel; :class:`ReferenceDataError` when the table has none."""
    key = (fuel_type, str(vehicle_class))
    found = idle_rates().get(key)
    if found is None:
        raise ReferenceDataError(f"{SHIPPED_TABLE} has no idle rate for {fuel_type} {vehicle_class}")
    return found


def idle_rate_l_per_h(vehicle_class: VehicleClass | str) -> float:
    """A diesel truck's central idle rate in L/h."""
    return idle_rate(vehicle_class).rate


__all__ = ["IdleRate", "idle_rate", "idle_rate_l_per_h", "idle_rates"]
