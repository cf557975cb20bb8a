"""``truckcarbon gateway --workers N``: N gateway processes on one port, one compaction, one registry.

The parent process (:class:`Supervisor`) folds the registry's journal, compacts
what a crash left, then starts N workers (:class:`WorkerGateway`, each a child
process started afresh) and watches them:

- every worker listens on the same port with SO_REUSEPORT; the kernel deals the
  connections out among them. A worker answers its terminals exactly as a single
  gateway does (:mod:`truckcarbon.jt808.server`) and acknowledges a report only
  once it is fsynced in the worker's own write-ahead log,
  ``DATA/wal/worker-K/``. Every ``compact_s`` it closes its segment and hands
  the closed ones over to ``DATA/wal/ready/`` (a rename, then both folders are
  fsynced).
- the parent alone compacts ``ready/`` into the pings dataset, so a report a
  terminal sent to one worker and, after reconnecting, again to another is stored
  once (deduplicated on vehicle and time as always). While the compaction fails
  it sets ``DATA/wal/compaction-failed``; the workers then refuse reports
  (result 1, ``storage_unavailable``) as a single gateway does.
- the registry (``terminals.json`` and its journal) is shared: a registration or
  release is decided under a lock, and a worker reads the journal again before
  every authentication and every second, closing connections of terminals
  released or given a new code elsewhere (:mod:`truckcarbon.jt808.registry`).
  Operator releases are carried out by worker 0.
- a worker that dies is started again (1 s, doubling to 30 s); what it
  acknowledged is in its log folder and is handed over when it starts. Workers
  die with the parent (``PR_SET_PDEATHSIG``), so a killed gateway leaves no
  orphan on the port; at the next start everything in ``DATA/wal`` is compacted
  first.
- counters: each worker writes its counters to ``DATA/run/worker-K.json`` every
  second; the parent logs their sum (with its compaction's) every 10 s and on
  shutdown, and serves it on the metrics endpoint.

``max_connections`` and ``max_partial_bytes_total`` are shared out among the
workers; the per-connection and per-address caps apply in each worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_write_text
from truckcarbon.jt808.compactor import Compactor
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.gateway import REPORT_EVERY_S, Gateway, holding_data_folder
from truckcarbon.jt808.observe import (
    HttpEndpoints,
    Metrics,
    error_text,
    event,
    loop_exception_handler,
    set_event_fields,
    setup_logging,
)
from truckcarbon.jt808.registry import Registry
from truckcarbon.jt808.wal import READY, Wal, backlog, every_segment, hand_over

STATUS_EVERY_S = 1.0  # a worker's counters written for the parent; the compaction flag read
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
RESTART_MAX_S = 30.0
FAILED_FLAG = "compaction-failed"
COMPACTION_COUNTERS = ("compacted", "duplicates", "quarantine_written", "months_loaded", "compaction_failures")
GAUGES_SUMMED = ("connections", "authenticated_connections", "connection_cap", "wal_bytes", "subpackage_bytes")


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies (no orphan keeps the port)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class WorkerGateway(Gateway):
    """One of the workers: a gateway whose closed log segments go to the parent's compaction."""

    FOLD_REGISTRY = False

    def __init__(self, config: GatewayConfig, worker: int) -> None:
        super().__init__(config)
        self.worker = worker
        self.folder = config.data / "wal" / f"worker-{worker}"
        self.ready = config.data / "wal" / READY
        self.flag = config.data / "wal" / FAILED_FLAG
        self.status_path = config.data / "run" / f"worker-{worker}.json"
        self.compaction_error: str | None = None
        self.server.operator_requests = worker == 0
        self.port: int | None = None

    async def start(self) -> int:
        c = self.config
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(loop_exception_handler(self._count_internal))
        # What an earlier run of this worker acknowledged goes to the compaction before anything new.
        hand_over(sorted(self.folder.glob("segment-*.log")), self.ready, f"w{self.worker}")
        self.wal = Wal(self.folder)
        if self.worker == 0:
            self.server.apply_operator_requests()
        self.port = await self.server.listen(self.wal, reuse_port=True)
        self.tasks = [
            asyncio.create_task(self.wal.committing(c.commit_interval_s)),
            asyncio.create_task(self.handing_over()),
            asyncio.create_task(self.reporting("worker_metrics")),
            asyncio.create_task(self.server.sweeper()),
            asyncio.create_task(self.publishing()),
        ]
        self.started = True
        self.publish()
        event("worker_listening", port=self.port, connection_cap=self.server.connection_cap)
        return self.port

    async def stop(self) -> None:
        self.server.stopping.set()
        await self.server.close()
        for t in self.tasks:
            t.cancel()
        try:
            segments = self.wal.rotate()
            self.wal.close()
            hand_over([*segments, *(p for p in [self.wal.current] if p.exists())], self.ready, f"w{self.worker}")
        except Exception as exc:  # the segments stay in the worker's folder: handed over at the next start
            event("hand_over_failed", logging.ERROR, error=error_text(exc), at="shutdown")
        self.publish()
        self.metrics.log("worker_stopped")

    async def handing_over(self) -> None:
        """Every ``compact_s``: close the segment and hand the closed ones to the compaction."""
        while True:
            await asyncio.sleep(self.config.compact_s)
            try:
                hand_over(self.wal.rotate(), self.ready, f"w{self.worker}")
            except Exception as exc:  # a full disk or no descriptor: tried again next time; nothing acked is lost
                self.metrics.internal_errors += 1
                event("hand_over_failed", logging.ERROR, error=error_text(exc))

    async def publishing(self) -> None:
        """Every second: the counters for the parent, and whether its compaction fails."""
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            try:
                self.compaction_error = self.flag.read_text(encoding="utf-8") if self.flag.exists() else None
                self.publish()
            except Exception as exc:
                self.metrics.internal_errors += 1
                event("internal_error", logging.ERROR, error=error_text(exc), at="status")

    def publish(self) -> None:
        """This worker's counters and gauges for the parent (``run/worker-K.json``, replaced whole)."""
        s = self.status()
        atomic_write_text(self.status_path, json.dumps({
            "pid": os.getpid(), "port": self.port, "metrics": asdict(self.metrics),
            "gauges": {k: s[k] for k in (*GAUGES_SUMMED, "compaction_lag_seconds", "healthy", "problems")},
        }))  # fmt: skip

    def accepting_reports(self) -> bool:
        return self.compaction_error is None

    def compaction_problem(self) -> str | None:
        return self.compaction_error


def worker_main(config: GatewayConfig, worker: int) -> None:
    """A worker process: serve until SIGTERM/SIGINT (or the parent's death), then hand the log over."""
    _die_with_parent()
    setup_logging()
    set_event_fields(worker=worker)
    try:
        run_async(WorkerGateway(config, worker).serve())
    except Exception as exc:  # never a traceback: the parent starts the worker again
        event("worker_failed", logging.ERROR, error=error_text(exc))
        raise SystemExit(1) from None


def _shared_out(config: GatewayConfig, n: int) -> GatewayConfig:
    """The settings of one of ``n`` workers: the gateway-wide caps shared out among them."""
    return replace(config, max_connections=max(1, -(-config.max_connections // n)),
                   max_partial_bytes_total=max(1, -(-config.max_partial_bytes_total // n)))  # fmt: skip


class Supervisor:
    """The parent of ``--workers N``: the workers, the one compaction, the summed counters (module docstring)."""

    def __init__(self, config: GatewayConfig, workers: int) -> None:
        if workers < 1:
            raise InputError(f"--workers {workers}: give 1 or more")
        if config.port == 0:
            raise InputError("--workers needs a fixed --port (the workers share it)")
        self.config, self.n = config, workers
        config.data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.registry = Registry(config.data / "terminals.json", config.known_vehicles, config.known_terminals)
        self.compactor = Compactor(config.data, self.metrics, config.dedup_months, self.registry.id_kind)
        self.wal = config.data / "wal"
        self.ready = self.wal / READY
        self.flag = self.wal / FAILED_FLAG
        self.run_dir = config.data / "run"
        self.context = multiprocessing.get_context("spawn")
        self.procs: dict[int, Any] = {}
        self.retired = Metrics()  # the counters of worker processes that ended
        self.stopping = asyncio.Event()
        self.http: asyncio.Server | None = None

    def start_worker(self, k: int) -> None:
        (self.run_dir / f"worker-{k}.json").unlink(missing_ok=True)
        proc = self.context.Process(target=worker_main, args=(_shared_out(self.config, self.n), k),
                                    name=f"truckcarbon-gateway-{k}")  # fmt: skip
        proc.start()
        self.procs[k] = proc

    def worker_status(self, k: int) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.run_dir / f"worker-{k}.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    async def wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = set(self.procs)
        while waiting:
            for k in list(waiting):
                if (self.worker_status(k) or {}).get("port"):
                    waiting.discard(k)
                elif not self.procs[k].is_alive():
                    raise InputError(f"gateway worker {k} exited ({self.procs[k].exitcode}) before listening; "
                                     "see its log lines above")  # fmt: skip
            if time.monotonic() > deadline:
                raise InputError(f"gateway workers {sorted(waiting)} did not listen within {START_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)

    async def serve(self) -> None:
        """Start the workers, compact and watch until SIGTERM or SIGINT; then stop them and compact the rest."""
        c = self.config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stopping.set)
        self.flag.unlink(missing_ok=True)
        self.compactor.compact(every_segment(self.wal))  # what a crash left, before anything new
        for k in range(self.n):
            self.start_worker(k)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self.wait_listening()
            if c.metrics_port is not None:
                self.http = await HttpEndpoints(self.status).start(c.metrics_host, c.metrics_port)
            tasks = [
                asyncio.create_task(self.compactor.run(self.handed_over, c.compact_s, c.compaction_retry_max_s)),
                asyncio.create_task(self.watching()),
            ]
            http_port = None if self.http is None else int(self.http.sockets[0].getsockname()[1])
            event("listening", host=c.host, port=c.port, workers=self.n, metrics_port=http_port,
                  connection_cap=sum(int(s["gauges"]["connection_cap"]) for s in self.statuses()))  # fmt: skip
            await self.stopping.wait()
        finally:
            for t in tasks:
                t.cancel()
            await self.stop_workers()
            if self.http is not None:
                self.http.close()
            try:
                self.compactor.compact(every_segment(self.wal))
            except Exception as exc:  # left in the log: compacted at the next start
                self.metrics.compaction_failures += 1
                event("compaction_failed", logging.ERROR, error=error_text(exc), at="shutdown")
            self.flag.unlink(missing_ok=True)
            self.total().log("stopped")

    def handed_over(self) -> list[Path]:
        return sorted(self.ready.glob("*segment-*.log"))

    async def watching(self) -> None:
        """Start dead workers again, keep the compaction flag, log the summed counters every 10 s."""
        delays = dict.fromkeys(self.procs, 1.0)
        due: dict[int, float] = {}
        last_report = time.monotonic()
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            for k, proc in self.procs.items():
                if proc.is_alive() or self.stopping.is_set():
                    continue
                if k not in due:
                    self.retire(k)
                    due[k] = now + delays[k]
                    event("worker_exited", logging.ERROR, worker=k, exitcode=proc.exitcode, restart_in_s=delays[k])
                    delays[k] = min(RESTART_MAX_S, delays[k] * 2)
                elif now >= due.pop(k):
                    self.start_worker(k)
            error = self.compactor.error
            if error is not None and not self.flag.exists():
                atomic_write_text(self.flag, error)
            elif error is None and self.flag.exists():
                self.flag.unlink(missing_ok=True)
            if now - last_report >= REPORT_EVERY_S:
                last_report = now
                self.total().log("metrics")

    def retire(self, k: int) -> None:
        """Keep the counters of worker ``k``'s process that ended."""
        s = self.worker_status(k)
        if s is not None:
            _add(self.retired, s["metrics"])
        (self.run_dir / f"worker-{k}.json").unlink(missing_ok=True)

    async def stop_workers(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()  # SIGTERM: the worker closes its connections and hands its log over
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(p.is_alive() for p in self.procs.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for k, proc in self.procs.items():
            if proc.is_alive():  # what it acknowledged is in its folder: compacted below all the same
                event("worker_killed", logging.ERROR, worker=k, after_s=STOP_TIMEOUT_S)
                proc.kill()
            proc.join(5)
            self.retire(k)

    def statuses(self) -> list[dict[str, Any]]:
        return [s for s in (self.worker_status(k) for k in self.procs) if s is not None]

    def total(self, statuses: list[dict[str, Any]] | None = None) -> Metrics:
        """The counters of every worker (those running and those that ended) and of the compaction.

        ``statuses``: the running workers' status files, when already read."""
        out = Metrics()
        _add(out, asdict(self.retired))
        for s in self.statuses() if statuses is None else statuses:
            _add(out, s["metrics"])
        for name in COMPACTION_COUNTERS:
            setattr(out, name, getattr(out, name) + getattr(self.metrics, name))
        return out

    def status(self) -> dict[str, Any]:
        """Summed counters and gauges, health and readiness (``/metrics``, ``/healthz``, ``/readyz``)."""
        statuses = self.statuses()
        m = self.total(statuses)
        alive = sum(p.is_alive() for p in self.procs.values())
        gauges = {k: sum(int(s["gauges"][k]) for s in statuses) for k in GAUGES_SUMMED}
        ready_bytes, ready_lag = backlog(self.handed_over())
        lag = max([ready_lag, *(float(s["gauges"]["compaction_lag_seconds"]) for s in statuses)])
        problems = [p for s in statuses for p in s["gauges"]["problems"]]
        if self.compactor.error:
            problems.append(f"compaction: {self.compactor.error}")
        if alive < self.n:
            problems.append(f"workers: {alive} of {self.n} running")
        healthy = not problems
        self.registry.refresh()
        return {
            **m.counters(), **gauges, "wal_bytes": gauges["wal_bytes"] + ready_bytes, "compaction_lag_seconds": lag,
            "terminals_registered": len(self.registry.terminals), "healthy": int(healthy),
            "ready": int(healthy and not self.stopping.is_set()), "problems": problems,
        }  # fmt: skip


def _add(total: Metrics, counters: dict[str, Any]) -> None:
    """Add a worker's counters (as :func:`dataclasses.asdict` gave them) to ``total``."""
    for f in fields(Metrics):
        value = counters.get(f.name)
        if isinstance(value, dict):
            mine = getattr(total, f.name)
            for k, v in value.items():
                mine[k] = mine.get(k, 0) + int(v)
        elif isinstance(value, int | float):
            setattr(total, f.name, getattr(total, f.name) + value)


def run_workers(config: GatewayConfig, workers: int) -> None:
    """``truckcarbon gateway --workers N``: serve on N processes until SIGTERM/SIGINT."""
    with holding_data_folder(config.data):
        setup_logging()
        run_async(Supervisor(config, workers).serve())
