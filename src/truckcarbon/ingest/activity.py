"""A pre-aggregated activity table given instead of pings: read, validated and turned into kernel activity rows.

``truckcarbon run --activity FILE`` skips the pings: the table gives km per
vehicle, month and city (``vehicle_id, month, city_adcode, distance_km`` and an
optional measured ``fuel_l`` and idle hours ``idle_h``). :func:`read_activity` checks every row (a vehicle
of the vehicles table, a mainland unit or 0 for outside it, a distance >= 0, a
YYYY-MM month, a fuel quantity >= 0) and refuses the table at the first bad
value, naming its file, row and column; the rows it returns have the columns of
the trajectory kernel's activity (load state unknown, no noise estimate, no speed profile), so the
emission method and the outputs treat them as those of the kernel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_label, parse_month
from truckcarbon.geo.reference import cities
from truckcarbon.ingest.ids import VehicleIds, id_text
from truckcarbon.ingest.sources import read_table

REQUIRED = ("vehicle_id", "month", "city_adcode", "distance_km")


def read_activity(path: Path, ids: VehicleIds) -> pa.Table:
    """A pre-aggregated activity table as kernel activity rows (load state unknown), ``vehicle_id`` the run's
    key of the vehicle (``ids``); raises :class:`InputError` naming the first bad value's row and column."""
    t = read_table(path, "activity")
    for c in REQUIRED:
        if c not in t.column_names:
            raise InputError(f"{path}: missing column {c}; activity needs {', '.join(REQUIRED)}")
    text = id_text(t["vehicle_id"], f"{path}: column vehicle_id")
    keys = ids.keys(text)
    city, _ = parse_float64(t["city_adcode"].combine_chunks())
    km, _ = parse_float64(t["distance_km"].combine_chunks())
    month = pc.cast(t["month"], pa.string()).to_pylist()
    units = set(cities()["city_adcode"].to_pylist()) | {0}
    for i in range(t.num_rows):
        row = i + 1
        if keys[i] < 0:
            raise InputError(
                f"{path}: row {row}, column vehicle_id: {text[i].as_py()!r} is not a vehicle of the vehicles table"
            )
        if not np.isfinite(city[i]) or int(city[i]) not in units:
            raise InputError(f"{path}: row {row}, column city_adcode: {city[i]} is not a mainland unit adcode")
        if not (np.isfinite(km[i]) and km[i] >= 0):
            raise InputError(f"{path}: row {row}, column distance_km: {km[i]} is not a distance >= 0")
        try:
            parse_month(str(month[i]))
        except InputError as exc:
            raise InputError(f"{path}: row {row}, column month: {exc}") from None
    fuel = np.full(t.num_rows, np.nan)
    if "fuel_l" in t.column_names:
        fuel, bad = parse_float64(t["fuel_l"].combine_chunks())
        if bad.any() or np.any(fuel < 0):
            row = int(np.flatnonzero(bad | (fuel < 0))[0]) + 1
            raise InputError(f"{path}: row {row}, column fuel_l: not a fuel quantity >= 0")
    has_fuel = np.isfinite(fuel)
    idle = np.zeros(t.num_rows)
    if "idle_h" in t.column_names:
        idle, bad = parse_float64(t["idle_h"].combine_chunks())
        bad |= ~np.isfinite(idle) & ~t["idle_h"].is_null().to_numpy(zero_copy_only=False)
        if bad.any() or np.any(idle < 0):
            row = int(np.flatnonzero(bad | (idle < 0))[0]) + 1
            raise InputError(f"{path}: row {row}, column idle_h: not a number of hours >= 0")
        idle = np.nan_to_num(idle, nan=0.0)
    return pa.table(
        {
            "vehicle_id": pa.array(keys),  # the run's key, as the kernel's activity rows carry it
            "month": pa.array([month_label(parse_month(str(m))) for m in month]),
            "city_adcode": pa.array(city.astype(np.int32)),
            "distance_km": pa.array(km),
            "distance_km_empty": pa.array(np.zeros(km.size)),
            "distance_km_half": pa.array(np.zeros(km.size)),
            "distance_km_full": pa.array(np.zeros(km.size)),
            "distance_km_unknown_load": pa.array(km),
            "fuel_measured_l": pa.array(np.where(has_fuel, fuel, 0.0)),
            "distance_km_fuel_measured": pa.array(np.where(has_fuel, km, 0.0)),
            "gps_noise_m": pa.nulls(km.size, pa.float64()),  # not estimated: the activity was given
            "fix_interval_s": pa.nulls(km.size, pa.float64()),
            "idle_h": pa.array(idle),
            "driving_h": pa.array(np.zeros(km.size)),  # not known: the km have no speed profile (nor its lists)
        }
    )


__all__ = ["REQUIRED", "read_activity"]
