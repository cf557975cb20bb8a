"""One group's month: trucks in service only, state carried on, each truck's data independent of its group."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.months import month_number
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.context import context
from truckcarbon.sim.fleet import active
from truckcarbon.sim.month import TruckGroup, simulate_group_month

from .worlds import CLEAN

CONFIG = SimConfig(
    trucks=40, start_month="2022-01", end_month="2022-01", interval_s=300, parked_interval_s=1800, seed=5
)
MONTH = month_number(2022, 1)


def _rows(folder, prefix: str) -> pa.Table:
    """The rows of the part files ``prefix*`` in ``folder``, in part order."""
    parts = sorted(folder.glob(f"{prefix}*.parquet"))
    assert parts
    return pa.concat_tables([pq.read_table(p) for p in parts])


def test_a_group_starts_parked_at_home_with_a_tank_four_fifths_full():
    ctx = context(CONFIG)
    group = TruckGroup.start(3, np.array([4, 5, 6]), ctx)
    for state, k in zip(group.states, (4, 5, 6), strict=True):
        home = int(ctx.fleet.city[k])
        assert state.home == home and (state.lon, state.lat) == (ctx.world.lon[home], ctx.world.lat[home])
    assert group.tank_l.tolist() == [480.0] * 3 and group.odometer.tolist() == [0.0] * 3
    assert group.last_fix == [None] * 3 and group.index == 3


def test_a_group_month_simulates_the_trucks_in_service(tmp_path):
    ctx = context(CONFIG)
    group = TruckGroup.start(0, np.arange(40), ctx)
    result = simulate_group_month(CONFIG, group, MONTH, tmp_path)
    rows = _rows(tmp_path, "part-000-")
    serving = set(ctx.fleet.vehicle_id[active(ctx.fleet, MONTH)].tolist())
    assert rows.num_rows == result.pings > 0
    assert set(pc.unique(rows["vehicle_id"]).to_pylist()) == serving
    assert set(result.truth["vid"].tolist()) <= serving
    assert sum(result.defects.values()) > 0  # the default defect rates
    moved = group.odometer > 0
    assert set(ctx.fleet.vehicle_id[moved].tolist()) <= serving and moved.sum() >= len(serving) - 1
    # The odometer a truck ends the month with is its last reading's.
    for k in np.flatnonzero(moved)[:5]:
        mine = rows.filter(pc.equal(rows["vehicle_id"], int(ctx.fleet.vehicle_id[k])))
        assert abs(pc.max(mine["odometer_km"]).as_py() - group.odometer[k]) < 0.06
        assert group.last_fix[k] is not None


def test_a_trucks_month_does_not_depend_on_its_group(tmp_path):
    """Each truck-month draws from its own stream (seed, vehicle, month): alone or with others, the same pings."""
    config = replace(CONFIG, defects=CLEAN)
    ctx = context(config)
    serving = np.flatnonzero(active(ctx.fleet, MONTH))
    k = int(serving[-1])
    simulate_group_month(config, TruckGroup.start(0, np.arange(40), ctx), MONTH, tmp_path)
    alone = TruckGroup.start(1, np.array([k]), ctx)
    result = simulate_group_month(config, alone, MONTH, tmp_path)
    everyone = _rows(tmp_path, "part-000-")
    vid = int(ctx.fleet.vehicle_id[k])
    assert _rows(tmp_path, "part-001-").equals(everyone.filter(pc.equal(everyone["vehicle_id"], vid)))
    assert result.pings > 0 and set(result.truth["vid"].tolist()) == {vid}


def test_the_road_world_counts_multipath(tmp_path):
    config = replace(CONFIG, trucks=40, geometry="road", interval_s=120)
    ctx = context(config)
    result = simulate_group_month(config, TruckGroup.start(0, np.arange(40), ctx), MONTH, tmp_path)
    assert result.defects["multipath"] > 0 and result.pings == _rows(tmp_path, "part-000-").num_rows
