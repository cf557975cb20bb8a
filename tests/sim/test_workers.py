"""The run's processes: the fleet split into groups, tasks dealt out in month order, helpers that start cheaply."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from truckcarbon.sim.context import context, sampled_fleet
from truckcarbon.sim.month import MonthResult, TruckGroup
from truckcarbon.sim.run import simulate
from truckcarbon.sim.workers import _Tasks, group_count, split_fleet

from .worlds import CLEAN, SMALL, pings


def test_worker_processes_do_not_change_the_data(tmp_path, clean_run):
    out = tmp_path / "two"
    simulate(out, replace(SMALL, defects=CLEAN), workers=2)
    assert pings(out).equals(pings(clean_run))
    assert pq.read_table(out / "truth.parquet").equals(pq.read_table(clean_run / "truth.parquet"))
    assert len(list((out / "pings" / "month=2022-01").glob("part-*.parquet"))) == 2


def test_a_failure_stops_the_run_and_leaves_nothing(tmp_path):
    """An error in the month callback (run on whichever thread finished the month) stops every worker."""
    calls = []

    def on_month(label: str, n: int) -> None:
        calls.append(label)
        raise RuntimeError("progress display failed")

    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="progress display failed"):
        simulate(out, SMALL, workers=2, on_month=on_month)
    assert calls == ["2021-12"]  # no later month was collected
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name != "failed"]


# A helper process's start-up (sim.workers._start_helper, which takes the fleet from a queue); prints the scipy
# modules it loaded.
HELPER = """
import pickle, queue, sys
from truckcarbon.sim import context, workers
config, fleet, use = pickle.loads(open(sys.argv[1], "rb").read())
fleets = queue.Queue()
fleets.put((fleet, use))
workers._start_helper(config, fleets)
context.context(config)
print(",".join(m for m in sys.modules if m.startswith(("scipy.stats", "scipy.special", "scipy.sparse"))))
"""


def test_helper_processes_get_the_fleet_and_import_no_scipy(tmp_path):
    """The main process samples the fleet and hands it to its helpers, which import no scipy."""
    shipped = tmp_path / "fleet.pickle"
    shipped.write_bytes(pickle.dumps((SMALL, *sampled_fleet(SMALL))))
    result = subprocess.run([sys.executable, "-c", HELPER, str(shipped)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_fleet_is_split_into_groups_of_consecutive_trucks():
    ctx = context(SMALL)
    groups = split_fleet(ctx, 5)
    assert list(groups) == [0, 1, 2, 3, 4] and [g.index for g in groups.values()] == [0, 1, 2, 3, 4]
    trucks = np.concatenate([g.trucks for g in groups.values()])
    assert trucks.tolist() == list(range(12))  # every truck once, in order
    assert [g.trucks.size for g in groups.values()] == [3, 3, 2, 2, 2]
    assert group_count(ctx.fleet, None, 2) == 1
    a_pool = object()  # helpers running: several groups per process
    assert group_count(ctx.fleet, a_pool, 2) == 8
    assert group_count(ctx.fleet, a_pool, 4) == 12  # at most one group per truck


def _groups(n: int) -> dict[int, TruckGroup]:
    return {g: TruckGroup(g, np.array([g]), [], [None], np.zeros(1), np.zeros(1)) for g in range(n)}


def test_tasks_run_each_groups_months_in_order_and_collect_whole_months_in_order(tmp_path):
    months = [100, 101, 102]
    ran: list[tuple[int, int]] = []
    collected: list[tuple[int, list[int]]] = []
    lock = threading.Lock()

    def run(config, group: TruckGroup, m: int, part_dir: Path) -> MonthResult:
        assert part_dir == tmp_path / "pings" / f"month={m // 12:04d}-{m % 12 + 1:02d}"
        with lock:
            ran.append((group.index, m))
        return MonthResult(group, 10 * group.index + m - 100, {}, {})

    def collect(m: int, results: list[MonthResult]) -> None:
        collected.append((m, [r.group.index for r in results]))

    tasks = _Tasks(SMALL, _groups(3), months, tmp_path, collect)
    threads = [threading.Thread(target=tasks.work, args=(run,)) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not tasks.failed
    assert collected == [(m, [0, 1, 2]) for m in months]
    assert sorted(ran) == [(g, m) for g in range(3) for m in months]
    for g in range(3):
        assert [m for h, m in ran if h == g] == months


def test_a_failed_task_stops_the_others_from_taking_more(tmp_path):
    ran: list[tuple[int, int]] = []

    def run(config, group: TruckGroup, m: int, part_dir: Path) -> MonthResult:
        ran.append((group.index, m))
        if m == 101:
            raise ValueError("broken month")
        return MonthResult(group, 0, {}, {})

    tasks = _Tasks(SMALL, _groups(2), [100, 101, 102], tmp_path, lambda m, r: None)
    tasks.work(run)
    assert [type(e) for e in tasks.failed] == [ValueError]
    assert (0, 102) not in ran and (1, 102) not in ran and len(ran) == 3
    assert tasks.take() is None
