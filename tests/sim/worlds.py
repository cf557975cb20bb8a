"""Small simulated worlds shared by the simulator's tests, and independent helpers to read them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.defects import DefectRates

CLEAN = DefectRates(0, 0, 0, 0, 0, 0, 0)
SMALL = SimConfig(trucks=12, start_month="2021-12", end_month="2022-02", interval_s=60, parked_interval_s=600, seed=7)


def pings(out: Path) -> pa.Table:
    """The pings of the world in ``out``, in vehicle and time order."""
    return (
        ds.dataset(out / "pings", partitioning="hive")
        .to_table()
        .sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    )


def haversine(lon0, lat0, lon1, lat1):
    """Great-circle km (mean Earth radius 6371.0088 km), written here independently of the package."""
    p0, p1 = np.radians(lat0), np.radians(lat1)
    h = np.sin((p1 - p0) / 2) ** 2 + np.cos(p0) * np.cos(p1) * np.sin(np.radians(lon1 - lon0) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(h))


def local_month(ts_s):
    """Month numbers (year * 12 + month - 1) of UTC epoch seconds in Asia/Shanghai (UTC+8)."""
    return [(d.year * 12 + d.month - 1) for d in (dt.datetime.fromtimestamp(int(x) + 8 * 3600, dt.UTC) for x in ts_s)]
