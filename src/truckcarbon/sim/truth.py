"""The ground truth: kilometres, fuel and CO2 of each vehicle, month and city, from the true path.

A truck-month's true path is split exactly at city borders
(:meth:`~truckcarbon.geo.locator.CityLocator.path_km`), by the load state of each
stretch: one truth row per unit it drove in (:class:`UnitKm`). In the straight
world the path is the chord of the true fixes (:func:`track_truth`), continued
from the month before's last fix; in the road world it is the 1 s path
(:func:`path_truth`). Rows are gathered per group month (:class:`TruthRows`) and
for the run (:class:`RunTruth`), which makes ``truth.parquet``: vehicle_id,
month, city_adcode, distance_km, distance_km_empty/_half/_full, fuel_l, co2_kg,
fuel_l_unknown_load, co2_kg_unknown_load, sorted by vehicle, month and city, fuel
and CO2 by the report's method (:func:`_emissions`); in the road world also
fuel_l_physical and co2_kg_physical, the true fuel of the tractive-power model
(:mod:`truckcarbon.sim.physics`) burnt in each unit (idling included; null in the
straight world); and fuel_type. The fuel columns are diesel litres of the work
whatever the truck burns; its CO2 is its own fuel's
(:func:`truckcarbon.emissions.fuels.fuel_emissions`: gas, the province's grid,
none for hydrogen; an electric or fuel-cell truck's physical fuel has no idling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.months import month_labels
from truckcarbon.emissions.factors import EmissionStandard, ef_kg_per_l, fuel_rates
from truckcarbon.emissions.fuels import FUELS, fuel_emissions
from truckcarbon.geo.distance import haversine_many
from truckcarbon.geo.locator import CityLocator
from truckcarbon.geo.reference import province_of
from truckcarbon.sim.drive import Track
from truckcarbon.sim.physics import DIESEL_KG_PER_L
from truckcarbon.sim.road import Path1s

# Columns of gathered truth rows: vehicle id, unit adcode, km, km empty, half and full, physical fuel (L).
TRUTH_COLUMNS = ("vid", "city", "km", "e", "h", "f", "fuel")


class UnitKm(NamedTuple):
    """A truck-month's true kilometres by unit: adcodes, km, and km by load state (empty, half, full)."""

    units: npt.NDArray[np.int32]
    km: npt.NDArray[np.float64]
    by_load: list[npt.NDArray[np.float64]]
    fuel_l: npt.NDArray[np.float64] | None = None  # the physical fuel burnt in each unit (road world)


def track_truth(locator: CityLocator, prev: tuple[float, float] | None, tr: Track) -> UnitKm | None:
    """Units, km and km by load state of a truck-month's true path through its fixes ``tr``.

    ``prev`` is the truck's last true fix of the month before (parked: no distance,
    but it keeps the path continuous); None when the truck-month has no segment.
    """
    lon, lat, load, step = tr.lon, tr.lat, tr.load, tr.step_km[1:]
    if prev is not None and tr.t_s.size:
        lon = np.concatenate([[prev[0]], lon])
        lat = np.concatenate([[prev[1]], lat])
        load = np.concatenate([load[:1], load])
        step = np.concatenate([haversine_many(lon[:1], lat[:1], lon[1:2], lat[1:2]), tr.step_km[1:]])
    if lon.size < 2:
        return None
    uniq, by_load_km = locator.path_km(lon, lat, load[1:], 3, segment_km=step)
    return UnitKm(uniq, by_load_km.sum(axis=1), [by_load_km[:, s] for s in range(3)])


def path_truth(
    locator: CityLocator,
    lon0: float,
    lat0: float,
    start_load: int,
    path: Path1s,
    fuel_g: npt.NDArray[np.float64] | None = None,
) -> UnitKm | None:
    """Units, km and km by load state of a truck-month's 1 s path from its start position (lon0, lat0); with
    ``fuel_g`` (the fuel of each second, :func:`truckcarbon.sim.physics.path_fuel_g`), the litres burnt in
    each unit (each second's in the unit it ends in: 1 s steps are some 20 m)."""
    if path.lon.size == 0:
        return None
    lon = np.concatenate([[lon0], path.lon])
    lat = np.concatenate([[lat0], path.lat])
    uniq, by_load_km = locator.path_km(lon, lat, path.load, 3)
    if fuel_g is None:
        return UnitKm(uniq, by_load_km.sum(axis=1), [by_load_km[:, s] for s in range(3)])
    at = locator.locate_units(path.lon, path.lat)
    n = locator.adcodes.size
    burnt = np.bincount(np.where(at >= 0, at, n), weights=fuel_g, minlength=n + 1)  # slot n: outside, invalid
    where = np.flatnonzero(burnt)
    codes = np.append(locator.adcodes, np.int32(0))[where]  # outside the mainland (or invalid): 0
    units = np.union1d(uniq, codes).astype(np.int32)
    km = np.zeros((units.size, 3))
    km[np.searchsorted(units, uniq)] = by_load_km
    fuel = np.zeros(units.size)
    fuel[np.searchsorted(units, codes)] = burnt[where]
    return UnitKm(units, km.sum(axis=1), [km[:, s] for s in range(3)], fuel / (DIESEL_KG_PER_L * 1000.0))


def _concatenated(parts: dict[str, list[npt.NDArray[np.generic]]]) -> dict[str, npt.NDArray[np.generic]]:
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}


class TruthRows:
    """The truth rows of one group of trucks in one month, gathered truck by truck."""

    def __init__(self) -> None:
        self.parts: dict[str, list[npt.NDArray[np.generic]]] = {k: [] for k in TRUTH_COLUMNS}

    def add(self, vid: int, rows: UnitKm) -> None:
        """Add a truck-month's rows (vehicle ``vid``)."""
        self.parts["vid"].append(np.full(rows.units.size, vid))
        self.parts["city"].append(rows.units)
        self.parts["km"].append(rows.km)
        for key, arr in zip(("e", "h", "f"), rows.by_load, strict=True):
            self.parts[key].append(arr)
        self.parts["fuel"].append(rows.fuel_l if rows.fuel_l is not None else np.full(rows.units.size, np.nan))

    def columns(self) -> dict[str, npt.NDArray[np.generic]]:
        """The rows gathered, one array per :data:`TRUTH_COLUMNS` name."""
        return _concatenated(self.parts)


class RunTruth:
    """The truth rows of a run, gathered group month by group month."""

    def __init__(self) -> None:
        self.parts: dict[str, list[npt.NDArray[np.generic]]] = {k: [] for k in ("vid", "month", *TRUTH_COLUMNS[1:])}

    def add(self, month: int, columns: dict[str, npt.NDArray[np.generic]]) -> None:
        """Add a group's rows of ``month`` (:meth:`TruthRows.columns`)."""
        for key, arr in columns.items():
            self.parts[key].append(arr)
        self.parts["month"].append(np.full(columns["vid"].size, month))

    def table(
        self, standard: npt.NDArray[np.int8], load_known: bool, fuel: npt.NDArray[np.int8] | None = None
    ) -> pa.Table:
        """``truth.parquet`` (module docstring); ``standard`` and ``fuel``: the emission standard and fuel code
        of vehicle ids 1, 2, ... (no fuel: diesel); ``load_known``: whether the pings carry the load state."""
        cat = _concatenated(self.parts)
        order = np.lexsort((cat["city"], cat["month"], cat["vid"]))
        cat = {k: v[order] for k, v in cat.items()}
        physical = np.asarray(cat["fuel"], np.float64)
        codes = (
            np.zeros(cat["vid"].size, np.int64)
            if fuel is None
            else fuel[cat["vid"].astype(np.int64) - 1].astype(np.int64)
        )
        province = np.asarray(
            pc.fill_null(province_of(pa.array(cat["city"].astype(np.int32))), 0).to_numpy(zero_copy_only=False),
            np.int64,
        )
        year = np.asarray(cat["month"], np.int64) // 12

        def co2_of(diesel_eq_l: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return fuel_emissions(diesel_eq_l, np.zeros(diesel_eq_l.size), codes, province, year, ef_kg_per_l())[1]

        return pa.table(
            {
                "vehicle_id": pa.array(cat["vid"].astype(np.int64)),
                "month": pa.array(month_labels(cat["month"]), pa.string()),
                "city_adcode": pa.array(cat["city"].astype(np.int32)),
                "distance_km": pa.array(cat["km"]),
                "distance_km_empty": pa.array(cat["e"]),
                "distance_km_half": pa.array(cat["h"]),
                "distance_km_full": pa.array(cat["f"]),
                **_emissions(cat, standard, load_known, co2_of),
                "fuel_l_physical": pa.array(physical, pa.float64(), from_pandas=True),  # NaN (straight world): null
                "co2_kg_physical": pa.array(co2_of(physical), pa.float64(), from_pandas=True),
                "fuel_type": pa.array(np.array([f.value for f in FUELS])[codes]),
            }
        )


def _emissions(
    cat: dict[str, npt.NDArray[np.generic]],
    standard: npt.NDArray[np.int8],
    load_known: bool,
    co2_of: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
) -> dict[str, pa.Array]:
    """Fuel and CO2 of the truth rows by the report's method.

    ``fuel_l``/``co2_kg`` use the load state when the pings carry it (the
    kilometres by load state times each state's rate), else the report's
    unknown-load rate; the ``*_unknown_load`` columns always use the latter.
    """
    rates = fuel_rates()
    matrix = rates.matrix()  # [standard, load: empty, half, full], L/100 km
    std = standard[cat["vid"].astype(np.int64) - 1]
    known = (cat["e"] * matrix[std, 0] + cat["h"] * matrix[std, 1] + cat["f"] * matrix[std, 2]) / 100.0
    unknown = cat["km"] * np.array([rates.unknown_load_rate(s) for s in EmissionStandard])[std] / 100.0
    fuel = known if load_known else unknown
    return {
        "fuel_l": pa.array(fuel),
        "co2_kg": pa.array(co2_of(fuel)),
        "fuel_l_unknown_load": pa.array(unknown),
        "co2_kg_unknown_load": pa.array(co2_of(unknown)),
    }
