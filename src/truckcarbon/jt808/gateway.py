"""A JT/T 808 gateway: terminals register, authenticate and report; no acknowledged report is lost.

This module wires the parts together, starts and stops them:

- :mod:`truckcarbon.jt808.server` accepts connections within their caps and
  deadlines; :mod:`truckcarbon.jt808.dispatch` answers each frame (identity,
  reports, sub-packages) on its :mod:`~truckcarbon.jt808.session`.
- :mod:`truckcarbon.jt808.registry` binds terminals to vehicles and checks their codes.
- Durability: a location report (0x0200, or each item of a 0x0704 batch) is
  acknowledged with 0x8001 success only after its record is in the write-ahead
  log (:mod:`truckcarbon.jt808.wal`) and the log is fsynced. Every ``compact_s``
  seconds (and on SIGTERM) closed log segments are compacted into the
  month-partitioned pings dataset ``DATA/pings/month=YYYY-MM/`` that
  ``truckcarbon run`` reads (:mod:`truckcarbon.jt808.compactor`). On restart,
  segments left by a crash are compacted first. While compaction fails, reports
  are answered with result 1 and not taken in (the terminal keeps them and sends
  them again), and what was acknowledged waits in the log.
- Observability (:mod:`truckcarbon.jt808.observe`): counters are logged as JSON
  lines every 10 s and on shutdown, and served as Prometheus metrics with
  ``/healthz`` and ``/readyz`` when ``metrics_port`` is set.

The settings and their defaults are :class:`~truckcarbon.jt808.config.GatewayConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.jt808.compactor import Compactor
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.observe import HttpEndpoints, Metrics, error_text, event, loop_exception_handler, setup_logging
from truckcarbon.jt808.registry import Registry
from truckcarbon.jt808.server import Server
from truckcarbon.jt808.wal import Wal, every_segment

REPORT_EVERY_S = 10.0  # the counters logged as one JSON line


class Gateway:
    """The gateway: the registry, the server, the write-ahead log and its compaction, the metrics endpoint."""

    FOLD_REGISTRY = True  # the only process using the registry (see truckcarbon.jt808.workers)

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        config.data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.registry = Registry(config.data / "terminals.json", config.known_vehicles, config.known_terminals,
                                 fold=self.FOLD_REGISTRY)  # fmt: skip
        self.compactor = Compactor(config.data, self.metrics, config.dedup_months, self.registry.id_kind)
        self.server = Server(config, self.metrics, self.registry, self.accepting_reports)
        self.started = False
        self.http: asyncio.Server | None = None
        self.http_port: int | None = None

    async def serve(self) -> None:
        """Serve until SIGTERM or SIGINT, then flush and compact."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.server.stopping.set)
        await self.server.stopping.wait()
        await self.stop()

    async def start(self) -> int:
        """Compact what a crash left, listen, start the background tasks; the port listened on."""
        c = self.config
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(loop_exception_handler(self._count_internal))
        self.wal = Wal(c.data / "wal")
        self.server.apply_operator_requests()
        # Segments a crash left behind go to the dataset before anything new is taken in.
        self.compactor.compact([p for p in every_segment(c.data / "wal") if p != self.wal.current])
        port = await self.server.listen(self.wal)
        if c.metrics_port is not None:
            endpoints = HttpEndpoints(self.status)
            self.http = await endpoints.start(c.metrics_host, c.metrics_port)
            self.http_port = int(self.http.sockets[0].getsockname()[1])
        self.tasks = [
            asyncio.create_task(self.wal.committing(c.commit_interval_s)),
            asyncio.create_task(self.compactor.run(self.wal.rotate, c.compact_s, c.compaction_retry_max_s)),
            asyncio.create_task(self.reporting("metrics")),
            asyncio.create_task(self.server.sweeper()),
        ]
        self.started = True
        event("listening", host=c.host, port=port, connection_cap=self.server.connection_cap,
              metrics_port=self.http_port)  # fmt: skip
        return port

    async def stop(self) -> None:
        """Stop listening and the background tasks, then compact the whole log."""
        self.server.stopping.set()
        if self.http is not None:
            self.http.close()
        await self.server.close()  # the connections' reports are in the log: compacted below
        for t in self.tasks:
            t.cancel()
        try:
            segments = self.wal.rotate()
            self.wal.close()
            self.compactor.compact(segments)
        except Exception as exc:  # the segments stay in the log: compacted at the next start
            self.metrics.compaction_failures += 1
            event("compaction_failed", logging.ERROR, error=error_text(exc), at="shutdown")
        self.metrics.log("stopped")

    def _count_internal(self) -> None:
        self.metrics.internal_errors += 1

    async def reporting(self, name: str) -> None:
        """Log the counters as event ``name`` every 10 s, until cancelled."""
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            self.metrics.log(name)

    def accepting_reports(self) -> bool:
        """Whether reports are taken in: not while the compaction fails."""
        return self.compaction_problem() is None

    def compaction_problem(self) -> str | None:
        """The compaction's last failure, None while it works."""
        return self.compactor.error

    def status(self) -> dict[str, Any]:
        """Counters, gauges, health and readiness (for ``/metrics``, ``/healthz``, ``/readyz``)."""
        m, server = self.metrics, self.server
        wal_bytes, lag = self.wal.backlog()
        failure = self.compaction_problem()
        problems = [p for p in (failure and f"compaction: {failure}",
                                self.wal.error and f"log: {self.wal.error}") if p]  # fmt: skip
        healthy = not problems
        return {
            **m.counters(), "connections": m.connections, "authenticated_connections": len(server.dispatcher.by_phone),
            "connection_cap": server.connection_cap, "terminals_registered": len(self.registry.terminals),
            "wal_bytes": wal_bytes, "compaction_lag_seconds": lag, "subpackage_bytes": server.budget.used,
            "healthy": int(healthy),
            "ready": int(healthy and self.started and not server.stopping.is_set() and self.accepting_reports()),
            "problems": problems,
        }  # fmt: skip


@contextlib.contextmanager
def holding_data_folder(data: Path) -> Iterator[None]:
    """Hold ``DATA/gateway.lock`` while serving (one gateway per data folder; the kernel frees it on a kill)."""
    data.mkdir(parents=True, exist_ok=True)
    fd = os.open(data / "gateway.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(
                f"{data}: another gateway serves this data folder; stop it first or give another --data"
            ) from None
        yield
    finally:
        os.close(fd)


def run_gateway(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then flush the log and compact it. Logs are JSON lines on standard output.

    On every core: :func:`truckcarbon.jt808.workers.run_workers`.
    """
    with holding_data_folder(config.data):
        setup_logging()
        run_async(Gateway(config).serve())
