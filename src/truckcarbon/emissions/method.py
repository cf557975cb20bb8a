"""Fuel and CO2 of activity rows: the report's method, or the measured fuel when plausible.

Report method (default for every row without a usable fuel gauge)::

    fuel_l = sum over load states s of distance_km_s * rate(standard, s) / 100
    rate(standard, unknown) = 0.4 * rate(standard, empty) + 0.6 * rate(standard, full)
    co2_kg = fuel_l * ef_kg_per_l            (2.6765 kg CO2 / L by default)

Measured-fuel path (``fuel_source="auto"``): a vehicle-month whose fuel gauge
covers at least ``min_fuel_coverage`` of its kilometres at a plausible rate
(``min_rate``..``max_rate`` L/100 km) uses the gauge's fall where it was
observed, plus the report method for the kilometres it did not cover.

Each row carries ``method``: ``measured_fuel``, ``load_state`` (every km had a
load state), ``unknown_load`` (none had) or ``mixed_load``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.factors import DEFAULT_EF, EmissionStandard, ef_kg_per_l, fuel_rates

METHODS = ("measured_fuel", "load_state", "unknown_load", "mixed_load")
LOAD_COLUMNS = ("distance_km_empty", "distance_km_half", "distance_km_full")


@dataclass(frozen=True)
class EmissionSettings:
    """Which factors and which fuel source to use."""

    fuel_source: Literal["auto", "report"] = "auto"
    reference_speed_kmh: int = 60
    emission_factor: str = DEFAULT_EF
    min_fuel_coverage: float = 0.8
    min_rate_l_per_100km: float = 10.0
    max_rate_l_per_100km: float = 80.0

    def validate(self) -> None:
        if self.fuel_source not in ("auto", "report"):
            raise InputError(f"fuel_source must be 'auto' or 'report', not {self.fuel_source!r}")
        if not 0.0 <= self.min_fuel_coverage <= 1.0:
            raise InputError("min_fuel_coverage must be between 0 and 1")
        ef_kg_per_l(self.emission_factor)
        fuel_rates(self.reference_speed_kmh)


def rate_table(settings: EmissionSettings) -> npt.NDArray[np.float64]:
    """L/100 km as [standard code, (empty, half, full, unknown)]."""
    rates = fuel_rates(settings.reference_speed_kmh)
    m = rates.matrix()
    unknown = np.array([rates.unknown_load_rate(s) for s in EmissionStandard])
    return np.column_stack([m, unknown])


def _col(t: pa.Table, name: str) -> npt.NDArray[np.float64]:
    return np.asarray(t.column(name).to_numpy(), dtype=np.float64)


def _vehicle_month_groups(activity: pa.Table) -> npt.NDArray[np.int64]:
    """Group number of each row's (vehicle, month)."""
    month = activity["month"]
    year = pc.cast(pc.utf8_slice_codeunits(month, 0, 4), pa.int64()).to_numpy()
    mon = pc.cast(pc.utf8_slice_codeunits(month, 5, 7), pa.int64()).to_numpy()
    ym = year * 12 + mon
    vid = np.asarray(activity["vehicle_id"].to_numpy(), dtype=np.int64)
    order = np.lexsort((ym, vid))
    new = np.ones(vid.size, bool)
    new[1:] = (vid[order][1:] != vid[order][:-1]) | (ym[order][1:] != ym[order][:-1])
    group = np.empty(vid.size, np.int64)
    group[order] = np.cumsum(new) - 1
    return group


def apply_method(
    activity: pa.Table, standard_code: npt.ArrayLike, settings: EmissionSettings = EmissionSettings()
) -> pa.Table:
    """Add ``fuel_l``, ``co2_kg`` and ``method`` to activity rows (one standard code per row).

    ``activity`` has the kernel's columns (:data:`truckcarbon.trajectory.schema.ACTIVITY_COLUMNS`).
    The measured-fuel decision is made per (vehicle, month) over all its rows.
    """
    std = np.asarray(standard_code, dtype=np.int64)
    if activity.num_rows == 0:
        return (
            activity.append_column("fuel_l", pa.array([], pa.float64()))
            .append_column("co2_kg", pa.array([], pa.float64()))
            .append_column("method", pa.array([], pa.string()))
        )
    if std.size != activity.num_rows or std.min() < 0 or std.max() >= len(EmissionStandard):
        raise InputError("every activity row needs the emission standard code of its vehicle")
    r = rate_table(settings)[std]
    km = _col(activity, "distance_km")
    by_load = [_col(activity, c) for c in LOAD_COLUMNS]
    km_unknown = _col(activity, "distance_km_unknown_load")
    report = sum((k * r[:, i] for i, k in enumerate(by_load)), np.zeros(km.size)) + km_unknown * r[:, 3]
    report = report / 100.0
    known = km - km_unknown
    method = np.where(km_unknown <= 1e-9 * np.maximum(km, 1.0), 1, np.where(known <= 1e-9 * km, 2, 3))
    fuel = report
    if settings.fuel_source == "auto":
        measured_l = _col(activity, "fuel_measured_l")
        measured_km = _col(activity, "distance_km_fuel_measured")
        group = _vehicle_month_groups(activity)
        g_km = np.bincount(group, weights=km)
        g_mkm = np.bincount(group, weights=measured_km)
        g_ml = np.bincount(group, weights=measured_l)
        with np.errstate(divide="ignore", invalid="ignore"):
            coverage = np.where(g_km > 0, g_mkm / g_km, 0.0)
            rate = np.where(g_mkm > 0, g_ml / g_mkm * 100.0, np.nan)
        usable = (
            (coverage >= settings.min_fuel_coverage)
            & (rate >= settings.min_rate_l_per_100km)
            & (rate <= settings.max_rate_l_per_100km)
        )[group]
        with np.errstate(divide="ignore", invalid="ignore"):
            unmeasured_share = np.where(km > 0, np.clip((km - measured_km) / km, 0.0, 1.0), 0.0)
        fuel = np.where(usable, measured_l + report * unmeasured_share, report)
        method = np.where(usable, 0, method)
    ef = ef_kg_per_l(settings.emission_factor)
    return (
        activity.append_column("fuel_l", pa.array(fuel))
        .append_column("co2_kg", pa.array(fuel * ef))
        .append_column("method", pa.array(np.asarray(METHODS)[method]))
    )


__all__ = ["METHODS", "EmissionSettings", "apply_method", "rate_table"]
