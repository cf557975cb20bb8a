"""Factor tables and the source report's method.

    CO2[kg] = distance_km * fuel_rate_l_per_100km(standard, load) / 100 * ef_kg_per_l

Fuel rates per emission standard and load state come from
``data/factors/fuel_rates.csv`` and CO2 per litre of diesel from
``data/factors/emission_factors.csv``; every number there carries its source.
When the load state is unknown the report's weights apply:
``0.4 * empty + 0.6 * full`` (:data:`UNKNOWN_LOAD_WEIGHTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from truckcarbon.core.errors import InputError, ReferenceDataError


class EmissionStandard(StrEnum):
    """China's heavy-duty diesel emission stages (China III ~ Euro III ... China VI ~ Euro VI)."""

    CHINA_III = "China III"
    CHINA_IV = "China IV"
    CHINA_V = "China V"
    CHINA_VI = "China VI"


class LoadState(StrEnum):
    """Load state as JT/T 808 status bits 8-9 report it."""

    EMPTY = "empty"
    HALF = "half"
    FULL = "full"


UNKNOWN_LOAD_WEIGHTS = {LoadState.EMPTY: 0.4, LoadState.FULL: 0.6}  # the source report's weights
DEFAULT_EF = "diesel_ttw_ghg_protocol_2017"


def _read(name: str) -> pa.Table:
    path = files("truckcarbon.data").joinpath("factors", name)
    with path.open("rb") as f:
        return pacsv.read_csv(f)


DEFAULT_SPEED_KMH = 60


@dataclass(frozen=True)
class FuelRates:
    """Litres per 100 km by (standard, load state), at one reference speed."""

    table: pa.Table
    speed_kmh: int = DEFAULT_SPEED_KMH

    def rate(self, standard: EmissionStandard | str, load: LoadState | str) -> float:
        s, ld = EmissionStandard(standard).value, LoadState(load).value
        for row in self.table.to_pylist():
            if (
                row["emission_standard"] == s
                and row["load_state"] == ld
                and row["reference_speed_kmh"] == self.speed_kmh
            ):
                return float(row["fuel_rate_l_per_100km"])
        raise ReferenceDataError(f"no fuel rate for {s}, {ld} at {self.speed_kmh} km/h in fuel_rates.csv")

    def unknown_load_rate(self, standard: EmissionStandard | str) -> float:
        """The report's rate when the load state is unknown: 0.4 empty + 0.6 full."""
        return sum(w * self.rate(standard, ld) for ld, w in UNKNOWN_LOAD_WEIGHTS.items())

    def matrix(self) -> npt.NDArray[np.float64]:
        """Rates as an array [standard index, load index] in Enum order."""
        return np.array([[self.rate(s, ld) for ld in LoadState] for s in EmissionStandard])


@cache
def fuel_rates(speed_kmh: int = DEFAULT_SPEED_KMH) -> FuelRates:
    """The shipped fuel-rate table at a reference speed (60 km/h by default, 80 km/h also shipped)."""
    t = _read("fuel_rates.csv")
    if t["source"].null_count:
        raise ReferenceDataError("every fuel rate in fuel_rates.csv needs its source")
    rates = FuelRates(t, speed_kmh)
    rates.matrix()  # every (standard, load) present, or a clear error
    return rates


@cache
def emission_factors() -> pa.Table:
    """CO2 per litre of fuel: ``factor_id``, ``fuel``, ``scope``, ``ef_kg_per_l``, ``source``."""
    return _read("emission_factors.csv")


def ef_kg_per_l(factor_id: str = DEFAULT_EF) -> float:
    """One emission factor by id (default: the report's 2.6765 kg CO2 per litre of diesel)."""
    t = emission_factors()
    for row in t.to_pylist():
        if row["factor_id"] == factor_id:
            return float(row["ef_kg_per_l"])
    raise InputError(f"unknown emission factor {factor_id!r}; choose one of {', '.join(t['factor_id'].to_pylist())}")
