"""The processes of a run and how the fleet's months are dealt out among them.

The fleet is split into groups of consecutive trucks (:func:`split_fleet`,
:data:`GROUPS_PER_WORKER` per process, so that work moves to whichever process is
free); a task is one group's month (:func:`~truckcarbon.sim.month.simulate_group_month`).
A group's months run in order, groups never wait for each other. This process
is one of the ``workers``; the others are helper processes (:func:`start_helpers`),
each handed one task at a time by a thread of this process as soon as its last
one is done, while this process takes tasks between its own (:func:`run_tasks`).
Months are collected in order, each once all its groups are done. The data do
not depend on the number of workers: every truck-month draws from its own
random stream.
"""

from __future__ import annotations

import atexit
import heapq
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from truckcarbon.core.runtime import fewer_collections
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.context import SimContext, adopt_fleet, sampled_fleet, warm_up
from truckcarbon.sim.fleet import Fleet
from truckcarbon.sim.month import MonthResult, TruckGroup, simulate_group_month
from truckcarbon.sim.pingfile import month_folder

GROUPS_PER_WORKER = 4

# How helpers start: forked on Linux under Python 3.11, ready at once with this process's modules
# imported (a spawned helper imports them and loads its compiled kernels first: about 2 s, during which
# this process works alone); spawned elsewhere. Python 3.12 warns about forking a process that runs
# threads (numpy's BLAS, Arrow's and DuckDB's pools run some), so it spawns too. A forked helper only
# simulates with numpy and numba and writes Parquet files (OpenBLAS and Arrow restart their pools in a
# forked process).
HELPER_START = "fork" if sys.platform == "linux" and sys.version_info < (3, 12) else "spawn"


class _FleetSource(Protocol):
    def get(self) -> tuple[Fleet, npt.NDArray[np.float64]]: ...


def _start_helper(config: SimConfig, fleets: _FleetSource) -> None:
    """Start-up of a helper process: load the world and the compiled kernels, then take the fleet the
    main process sampled meanwhile from ``fleets``.

    A helper ends without the interpreter's teardown (:func:`_exit_now`): by then it has sent every
    result and holds nothing to flush, and the teardown of its modules took about half a second,
    which the main process would wait for.
    """
    with fewer_collections():
        warm_up()
    adopt_fleet(config, fleets.get())
    atexit.register(_exit_now)


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _ready() -> None:
    """A helper's first task: it returns once the helper has started (see :func:`_start_helper`)."""


def start_helpers(config: SimConfig, workers: int) -> ProcessPoolExecutor | None:
    """The ``workers - 1`` helper processes of a run of ``config`` (None when this process works alone).

    They start first and load while this process samples the fleet, which they
    then take from a queue.
    """
    if workers <= 1 or config.trucks <= 1:
        return None
    helpers = workers - 1
    mp = multiprocessing.get_context(HELPER_START)
    fleets = mp.Queue()
    fleets.cancel_join_thread()  # a helper that died before taking the fleet must not hold up the exit
    pool = ProcessPoolExecutor(helpers, mp_context=mp, initializer=_start_helper, initargs=(config, fleets))
    try:
        for _ in range(helpers):
            pool.submit(_ready)  # starts a helper
        sampled = sampled_fleet(config)
        for _ in range(helpers):
            fleets.put(sampled)
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    return pool


def split_fleet(ctx: SimContext, n_groups: int) -> dict[int, TruckGroup]:
    """The fleet's trucks in ``n_groups`` groups of consecutive trucks, by index."""
    parts = np.array_split(np.arange(ctx.fleet.n), n_groups)
    return {g: TruckGroup.start(g, trucks, ctx) for g, trucks in enumerate(parts)}


def group_count(fleet: Fleet, pool: ProcessPoolExecutor | None, workers: int) -> int:
    """Groups to split the fleet into: one when this process works alone, else several per process."""
    return 1 if pool is None else min(fleet.n, GROUPS_PER_WORKER * workers)


class _Tasks:
    """The tasks (month position, group) of a run, taken earliest month first by the threads that run them.

    ``collect(month, results)`` is called once per month, in month order, with its
    groups' results in group order, on whichever thread finished the month last.
    A failure anywhere (a task, or ``collect``) stops every thread from taking more.
    """

    def __init__(
        self,
        config: SimConfig,
        groups: dict[int, TruckGroup],
        months: list[int],
        out: Path,
        collect: Callable[[int, list[MonthResult]], None],
    ) -> None:
        self.config, self.groups, self.months, self.out, self.collect = config, groups, months, out, collect
        self.ready = [(0, g) for g in groups]
        heapq.heapify(self.ready)
        self.done_by_month: dict[int, list[MonthResult]] = {}
        self.next_k = 0  # the earliest month not yet collected
        self.running = 0  # tasks taken and not finished
        self.failed: list[BaseException] = []
        self.lock = threading.Condition()

    def args(self, k: int, g: int) -> tuple[SimConfig, TruckGroup, int, Path]:
        """The arguments of :func:`~truckcarbon.sim.month.simulate_group_month` for task ``(k, g)``."""
        return self.config, self.groups[g], self.months[k], month_folder(self.out, self.months[k])

    def take(self) -> tuple[int, int] | None:
        """The next task (earliest month first), once there is one; None when all are done or one failed."""
        with self.lock:
            while not self.ready and self.running and not self.failed:
                self.lock.wait()
            if self.failed or not self.ready:
                return None
            self.running += 1
            return heapq.heappop(self.ready)

    def finished(self, k: int, r: MonthResult | BaseException) -> None:
        """Record the result of task ``(k, group)``: the group's next month is ready; collect complete months."""
        with self.lock:
            self.running -= 1
            self.lock.notify_all()
            if isinstance(r, BaseException):
                self.failed.append(r)
                return
            try:
                self.groups[r.group.index] = r.group
                self.done_by_month.setdefault(k, []).append(r)
                if k + 1 < len(self.months):
                    heapq.heappush(self.ready, (k + 1, r.group.index))
                while len(self.done_by_month.get(self.next_k, ())) == len(self.groups):
                    results = sorted(self.done_by_month.pop(self.next_k), key=lambda x: x.group.index)
                    self.collect(self.months[self.next_k], results)
                    self.next_k += 1
            except BaseException as exc:  # e.g. from collect, on a helper's thread: the run stops
                self.failed.append(exc)

    def stop(self, exc: BaseException) -> None:
        """Stop every thread from taking more tasks (``exc``: why)."""
        with self.lock:
            self.failed.append(exc)
            self.lock.notify_all()

    def work(self, run: Callable[..., MonthResult]) -> None:
        """Take tasks and run them with ``run`` until none is left (a failure is raised by the main thread)."""
        while (kg := self.take()) is not None:
            try:
                r: MonthResult | BaseException = run(*self.args(*kg))
            except BaseException as exc:
                r = exc
            self.finished(kg[0], r)


def run_tasks(
    config: SimConfig,
    groups: dict[int, TruckGroup],
    months: list[int],
    out: Path,
    pool: ProcessPoolExecutor | None,
    workers: int,
    collect: Callable[[int, list[MonthResult]], None],
) -> None:
    """Simulate every month of every group into ``out`` (module docstring), on this process and the
    ``workers - 1`` helpers of ``pool``; ``collect`` as in :class:`_Tasks`. Raises the first failure."""
    tasks = _Tasks(config, groups, months, out, collect)

    def on_helper(*args: Any) -> MonthResult:
        assert pool is not None
        return pool.submit(simulate_group_month, *args).result()

    helpers = workers - 1 if pool is not None else 0
    feeders = [threading.Thread(target=tasks.work, args=(on_helper,)) for _ in range(helpers)]
    for th in feeders:
        th.start()
    try:
        tasks.work(simulate_group_month)
    except BaseException as exc:  # e.g. an interrupt while waiting: the helpers' threads stop too
        tasks.stop(exc)
        raise
    finally:
        for th in feeders:
            th.join()
    if tasks.failed:
        raise tasks.failed[0]
