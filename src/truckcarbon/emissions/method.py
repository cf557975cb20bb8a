"""Fuel, CO2 and pollutants of activity rows by three methods, side by side; the settings pick one.

Every row gets the fuel of each method (``fuel_l_report``, ``fuel_l_copert``,
``fuel_l_measured``), and ``fuel_l``, ``co2_kg`` and ``method`` of the one chosen by
``[emissions] method``:

``report`` (default: the source report's method, as the published figures were made)::

    fuel_l = sum over load states s of distance_km_s * rate(standard, s) / 100
    rate(standard, unknown) = 0.4 * rate(standard, empty) + 0.6 * rate(standard, full)

``copert``: the EMEP/EEA Guidebook's (COPERT) hot fuel consumption of the
vehicle's class, Euro stage and load at each speed bin's average speed
(:mod:`truckcarbon.emissions.profile`), plus ``idle_h`` times the class's idle rate
(``data/factors/idle_rates.csv``).

``measured`` (the fuel gauge path): a vehicle-month whose fuel gauge covers at
least ``min_fuel_coverage`` of its kilometres at a plausible rate
(``min_rate``..``max_rate`` L/100 km) uses the gauge's fall where it was observed,
plus the report method for the kilometres it did not cover; other vehicle-months
take the report method.

``co2_kg = fuel_l * ef_kg_per_l`` (2.6765 kg CO2 / L by default) for every method.
Each row's ``method`` says what gave its fuel: ``measured_fuel``, ``copert``, or the
report method's ``load_state`` (every km had a load state), ``unknown_load`` (none
had) or ``mixed_load``; ``fuel_gauge_used`` whether its vehicle-month's gauge
qualified (``fuel_l_measured`` is then the gauge's), whichever method is chosen.
The pollutants (``nox_kg``, ``pm25_kg``, ``co_kg``, ``hc_kg``) come from
:mod:`truckcarbon.emissions.pollutants` whatever the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.errors import InputError
from truckcarbon.emissions import copert
from truckcarbon.emissions.factors import DEFAULT_EF, EmissionStandard, ef_kg_per_l, fuel_rates
from truckcarbon.emissions.fuels import ENERGY_COLUMNS, FUELS, FuelType, fuel_emissions, fuels, grid_factors
from truckcarbon.emissions.idle import idle_rate_l_per_h
from truckcarbon.emissions.pollutants import pollutants_kg
from truckcarbon.emissions.profile import DEFAULT_SPEED_KMH, SpeedProfile

METHODS: Final = ("report", "copert", "measured")
ROW_METHODS: Final = ("measured_fuel", "load_state", "unknown_load", "mixed_load", "copert")
LOAD_COLUMNS = ("distance_km_empty", "distance_km_half", "distance_km_full")
CLASSES: Final = tuple(copert.VehicleClass)  # a vehicle's class code is the index here


@dataclass(frozen=True)
class EmissionSettings:
    """Which method gives ``fuel_l`` and ``co2_kg``, and the factors of each."""

    method: str = "report"
    reference_speed_kmh: int = 60
    emission_factor: str = DEFAULT_EF
    min_fuel_coverage: float = 0.8
    min_rate_l_per_100km: float = 10.0
    max_rate_l_per_100km: float = 80.0
    copert_factors: str = ""  # a COPERT table of one's own (copert_hdv.csv's columns); "" the shipped one
    default_speed_kmh: float = DEFAULT_SPEED_KMH  # the speed methods' speed for km without a speed profile
    fuel_factors: str = ""  # a fuel table of one's own (fuel_types.csv's columns); "" the shipped one
    grid_factors: str = ""  # grid factors of one's own (grid_factors.csv's columns); "" the shipped ones

    def validate(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"[emissions] method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if not 0.0 <= self.min_fuel_coverage <= 1.0:
            raise InputError("min_fuel_coverage must be between 0 and 1")
        if not 0.0 < self.default_speed_kmh <= 130.0:
            raise InputError("default_speed_kmh must be above 0 and at most 130 km/h")
        ef_kg_per_l(self.emission_factor)
        fuel_rates(self.reference_speed_kmh)
        self.copert_table()
        for name, path in (("fuel_factors", self.fuel_factors), ("grid_factors", self.grid_factors)):
            if path and not Path(path).is_file():
                raise InputError(f"[emissions] {name}: {path} is not a file")
        fuels(self.fuel_factors)
        grid_factors(self.grid_factors)

    def copert_table(self) -> copert.CopertTable:
        """The COPERT table the settings name (checked, naming file, line and column when it is bad)."""
        return _user_copert(self.copert_factors) if self.copert_factors else copert.copert_table()


@cache
def _user_copert(path: str) -> copert.CopertTable:
    if not Path(path).is_file():
        raise InputError(f"[emissions] copert_factors: {path} is not a file")
    return copert.read_copert_table(path)


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


def report_fuel(
    activity: pa.Table, std: npt.NDArray[np.int64], settings: EmissionSettings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The report method's litres of each row and its ``ROW_METHODS`` code (load_state, unknown_load, mixed)."""
    r = rate_table(settings)[std]
    km = _col(activity, "distance_km")
    by_load = [_col(activity, c) for c in LOAD_COLUMNS]
    km_unknown = _col(activity, "distance_km_unknown_load")
    fuel = sum((k * r[:, i] for i, k in enumerate(by_load)), np.zeros(km.size)) + km_unknown * r[:, 3]
    known = km - km_unknown
    code = np.where(km_unknown <= 1e-9 * np.maximum(km, 1.0), 1, np.where(known <= 1e-9 * km, 2, 3))
    return fuel / 100.0, code


def measured_fuel(
    activity: pa.Table, report: npt.NDArray[np.float64], settings: EmissionSettings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """The fuel gauge path's litres of each row and whether its vehicle-month's gauge was used."""
    km = _col(activity, "distance_km")
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
    return np.where(usable, measured_l + report * unmeasured_share, report), usable


def copert_fuel(
    activity: pa.Table,
    std: npt.NDArray[np.int64],
    vehicle_class: npt.NDArray[np.int64],
    settings: EmissionSettings,
    profile: SpeedProfile | None = None,
) -> npt.NDArray[np.float64]:
    """COPERT's hot fuel at each speed bin's average speed and load, plus the idle hours at the idle rate (L)."""
    table = settings.copert_table()
    per_km = 1.0 / (1000.0 * copert.DIESEL_DENSITY_KG_PER_L)  # g/km -> L/km

    def fc(c: int, standard: EmissionStandard, load: float, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return copert.hot_fc_g_per_km(CLASSES[c], standard, load, v, table=table) * per_km

    p = SpeedProfile.of(activity, settings.default_speed_kmh) if profile is None else profile
    out: npt.NDArray[np.float64] = p.apply(fc, vehicle_class, std) + idle_litres(activity, vehicle_class)
    return out


def idle_litres(activity: pa.Table, vehicle_class: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The rows' idle hours (``idle_h``; none when absent) at their class's idle rate (L), as COPERT's fuel has."""
    if "idle_h" not in activity.column_names:
        return np.zeros(activity.num_rows)
    rates = np.array([idle_rate_l_per_h(c) for c in CLASSES])
    litres: npt.NDArray[np.float64] = _col(activity, "idle_h") * rates[vehicle_class]
    return litres


def _years(activity: pa.Table) -> npt.NDArray[np.int64]:
    """Each row's year (of its month)."""
    year = pc.cast(pc.utf8_slice_codeunits(activity["month"], 0, 4), pa.int64())
    return np.asarray(year.to_numpy(zero_copy_only=False), np.int64)


def apply_method(
    activity: pa.Table,
    standard_code: npt.ArrayLike,
    settings: EmissionSettings = EmissionSettings(),
    vehicle_class: npt.ArrayLike | None = None,
    fuel_code: npt.ArrayLike | None = None,
    province_adcode: npt.ArrayLike | None = None,
) -> pa.Table:
    """Add every method's fuel, the chosen method's ``fuel_l``, ``co2_kg`` and ``method``, each fuel's energy
    and the pollutants.

    ``activity`` has the kernel's columns (:data:`truckcarbon.trajectory.schema.ACTIVITY_COLUMNS`; the speed
    lists and ``idle_h`` may be missing); ``standard_code`` one emission standard code per row,
    ``vehicle_class`` one index of :data:`CLASSES` (default: articulated), ``fuel_code`` one index of
    :data:`~truckcarbon.emissions.fuels.FUELS` (default: diesel), ``province_adcode`` the province each row
    drove in (an electric row's grid; default 0: the national factor). The measured-fuel decision is made per
    (vehicle, month) over all its rows. The methods' litres (``fuel_l_*``, ``fuel_l``) are diesel litres of
    the rows' work whatever the fuel (the gauge path for diesel trucks only); ``diesel_l``, ``gas_kg``,
    ``electricity_kwh`` and ``hydrogen_kg`` what each burnt of its own fuel
    (:func:`~truckcarbon.emissions.fuels.fuel_emissions`), and ``co2_kg`` its CO2.
    """
    std = np.asarray(standard_code, dtype=np.int64)
    n = activity.num_rows
    cls = np.zeros(n, np.int64) if vehicle_class is None else np.asarray(vehicle_class, dtype=np.int64)
    fuel_code = np.zeros(n, np.int64) if fuel_code is None else np.asarray(fuel_code, dtype=np.int64)
    if n and (fuel_code.size != n or fuel_code.min() < 0 or fuel_code.max() >= len(FUELS)):
        raise InputError("every activity row needs the fuel type code of its vehicle")
    if n and (std.size != n or std.min() < 0 or std.max() >= len(EmissionStandard)):
        raise InputError("every activity row needs the emission standard code of its vehicle")
    if n and (cls.size != n or cls.min() < 0 or cls.max() >= len(CLASSES)):
        raise InputError("every activity row needs the vehicle class code of its vehicle")
    if n == 0:
        report, code = np.zeros(0), np.zeros(0, np.int64)
        measured, used, cop = np.zeros(0), np.zeros(0, np.bool_), np.zeros(0)
        pollutants = pollutants_kg(activity, std, cls, settings.copert_table(), None)
    else:
        report, code = report_fuel(activity, std, settings)
        measured, used = measured_fuel(activity, report, settings)
        diesel = fuel_code == FUELS.index(FuelType.DIESEL)
        measured, used = np.where(diesel, measured, report), used & diesel  # a diesel gauge: diesel trucks only
        profile = SpeedProfile.of(activity, settings.default_speed_kmh)
        cop = copert_fuel(activity, std, cls, settings, profile)
        pollutants = pollutants_kg(activity, std, cls, settings.copert_table(), profile)
        exhaust = np.isin(fuel_code, [FUELS.index(FuelType.ELECTRIC), FUELS.index(FuelType.HYDROGEN)])
        for values in pollutants.values():
            values[exhaust] = 0.0  # no exhaust
    idle_l = np.zeros(n)  # the chosen litres' idling (only COPERT's have any)
    if settings.method == "copert":
        fuel, code = cop, np.full(n, ROW_METHODS.index("copert"))
        idle_l = idle_litres(activity, cls)
    elif settings.method == "measured":
        fuel, code = measured, np.where(used, 0, code)
    else:
        fuel = report
    ef = ef_kg_per_l(settings.emission_factor)
    province = np.zeros(n, np.int64) if province_adcode is None else np.asarray(province_adcode, np.int64)
    year = _years(activity) if n else np.zeros(0, np.int64)
    energy, co2 = fuel_emissions(
        fuel, idle_l, fuel_code, province, year, ef, settings.fuel_factors, settings.grid_factors
    )
    out = activity
    columns = {
        "fuel_l_report": report,
        "fuel_l_copert": cop,
        "fuel_l_measured": measured,
        "fuel_l": fuel,
        "co2_kg": co2,
        **{c: energy[c] for c in ENERGY_COLUMNS},
    }
    for name, values in columns.items():
        out = out.append_column(name, pa.array(values, pa.float64()))
    out = out.append_column("method", pa.array(np.asarray(ROW_METHODS, dtype=object)[code], pa.string()))
    out = out.append_column("fuel_gauge_used", pa.array(used, pa.bool_()))
    for name, values in pollutants.items():
        out = out.append_column(name, pa.array(values, pa.float64()))
    return out


__all__ = [
    "CLASSES",
    "METHODS",
    "ROW_METHODS",
    "EmissionSettings",
    "apply_method",
    "copert_fuel",
    "idle_litres",
    "measured_fuel",
    "rate_table",
    "report_fuel",
]
