"""What the gateway shows the platform: its counters, JSON log lines, Prometheus metrics, health and readiness.

- :class:`Metrics` holds the counters; they are logged as one JSON line every
  10 s and on shutdown.
- Every log line is one JSON object (``ts``, ``level``, ``logger``, ``event`` and
  the event's fields). An exception is logged as its type and message, never as a
  traceback, whoever logs it (the gateway, asyncio, a worker thread).
- ``GET /metrics`` (Prometheus text format, the ``prometheus-client`` library),
  ``GET /healthz`` (200 while the log and the compaction work, else 503) and
  ``GET /readyz`` (200 while the gateway accepts reports) on a separate port,
  loopback by default. Requests are bounded: 8 KiB of request head, 5 s, 16 at
  a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("truckcarbon.gateway")


EVENT_FIELDS: dict[str, Any] = {}  # fields every event of this process carries (a worker's number)


def set_event_fields(**fields: Any) -> None:
    """Fields added to every event this process logs from now on (``worker=K`` in a gateway worker)."""
    EVENT_FIELDS.update(fields)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event."""
    log.log(level, json.dumps({"event": name, **EVENT_FIELDS, **fields}, ensure_ascii=False, default=str))


def error_text(exc: BaseException) -> str:
    """An exception as one short line: its type and message (no traceback)."""
    return f"{type(exc).__name__}: {exc}"[:500]


@dataclass
class Metrics:
    """The gateway's counters (reports, acknowledgements, rejects and quarantine reasons by name, compaction)."""

    connections: int = 0
    connections_accepted: int = 0
    reports: int = 0
    acked: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # reports set aside, by reason
    quarantine_written: int = 0  # quarantined records written by compaction
    compacted: int = 0
    duplicates: int = 0
    reassembled: int = 0  # sub-packaged messages made whole
    resend_requests: int = 0  # 0x8003 sent
    months_loaded: int = 0  # months whose deduplication keys were read from the dataset
    compaction_failures: int = 0
    internal_errors: int = 0

    def counters(self) -> dict[str, Any]:
        """The counters as ``/metrics`` shows them (``quarantined``: all reasons summed)."""
        return {
            "reports": self.reports, "acked": self.acked, "quarantined": sum(self.quarantine_reasons.values()),
            "compacted": self.compacted, "duplicates": self.duplicates,
            "compaction_failures": self.compaction_failures, "internal_errors": self.internal_errors,
            "connections_accepted": self.connections_accepted, "rejects": dict(self.rejects),
            "quarantine_reasons": dict(self.quarantine_reasons),
        }  # fmt: skip

    def reject(self, reason: str) -> None:
        """Count a frame, message or connection refused for ``reason``."""
        self.rejects[reason] = self.rejects.get(reason, 0) + 1

    def quarantine(self, reason: str) -> None:
        """Count a report set aside for ``reason``."""
        self.quarantine_reasons[reason] = self.quarantine_reasons.get(reason, 0) + 1

    def log(self, name: str) -> None:
        """Log the counters as the event ``name`` (``metrics`` every 10 s, ``stopped`` on shutdown)."""
        event(name, connections=self.connections, reports=self.reports, acked=self.acked, compacted=self.compacted,
              duplicates=self.duplicates, reassembled=self.reassembled, resend_requests=self.resend_requests,
              quarantined=self.quarantine_reasons, quarantine_written=self.quarantine_written,
              compaction_failures=self.compaction_failures, internal_errors=self.internal_errors,
              rejects=self.rejects)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line; a JSON object message is merged in, any other text goes in ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        fields: Any = None
        if msg.startswith("{"):
            try:
                fields = json.loads(msg)
            except ValueError:
                fields = None
        if not isinstance(fields, dict):
            fields = {"event": "log", "message": msg}
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            **fields,
        }
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = error_text(record.exc_info[1])
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on standard output for every logger; uncaught exceptions logged as events, no traceback."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)

    def uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        event("uncaught_exception", logging.ERROR, error=error_text(exc))

    def thread_uncaught(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            event("uncaught_exception", logging.ERROR, error=error_text(args.exc_value), thread=str(args.thread))

    sys.excepthook = uncaught
    threading.excepthook = thread_uncaught


def loop_exception_handler(count: Callable[[], None]) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """An event-loop exception handler that logs one JSON event (no traceback) and counts it."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError):  # a task cancelled at shutdown: not an error
            return
        count()
        event("loop_error", logging.ERROR, message=str(context.get("message", ""))[:300],
              error=error_text(exc) if isinstance(exc, BaseException) else None)  # fmt: skip

    return handler


class GatewayCollector(Collector):
    """Prometheus metrics read from the gateway's counters at scrape time (nothing on the report path)."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot()
        counters = {
            "reports": "Location reports received (each item of a batch counts)",
            "acked": "Location reports acknowledged with success after they were durable",
            "quarantined": "Reports acknowledged and set aside in the quarantine (all reasons)",
            "compacted": "Reports written to the pings dataset",
            "duplicates": "Reports already in the dataset, dropped at compaction",
            "compaction_failures": "Compactions that failed (retried with back-off)",
            "internal_errors": "Unexpected errors caught at a frame or connection boundary",
            "connections_accepted": "Connections accepted",
        }
        for key, doc in counters.items():
            yield CounterMetricFamily(f"jt808_{key}", doc, value=float(s[key]))
        for key, doc in (("rejects", "Frames or messages refused or dropped, by reason"),
                         ("quarantine_reasons", "Reports set aside in the quarantine, by reason")):  # fmt: skip
            family = CounterMetricFamily(f"jt808_{key}", doc, labels=["reason"])
            for reason, n in sorted(s[key].items()):
                family.add_metric([reason], float(n))
            yield family
        gauges = {
            "connections": "Open terminal connections",
            "authenticated_connections": "Open connections authenticated as a terminal",
            "connection_cap": "Connections allowed at once (the configured cap and the file descriptors left)",
            "terminals_registered": "Terminals bound to a vehicle",
            "wal_bytes": "Bytes in the write-ahead log not compacted yet",
            "compaction_lag_seconds": "Age of the oldest report not compacted yet",
            "subpackage_bytes": "Body bytes of incomplete sub-packaged messages held",
            "healthy": "1 while the log and the compaction work",
            "ready": "1 while reports are accepted",
        }
        for key, doc in gauges.items():
            yield GaugeMetricFamily(f"jt808_{key}", doc, value=float(s[key]))


class HttpEndpoints:
    """``/metrics``, ``/healthz`` and ``/readyz`` over plain HTTP/1.1 (one request per connection)."""

    MAX_OPEN = 16

    def __init__(self, snapshot: Callable[[], Mapping[str, Any]]) -> None:
        self.snapshot = snapshot
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(GatewayCollector(snapshot))
        self.open = 0

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, host, port, limit=8192)

    def route(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path in ("/healthz", "/readyz"):
            s = self.snapshot()
            ok = bool(s["healthy"] if path == "/healthz" else s["ready"])
            body = {"status": "ok" if ok else "failing", **{k: s[k] for k in ("healthy", "ready", "problems")}}
            return (200 if ok else 503), "application/json", json.dumps(body).encode()
        return 404, "text/plain", b"not found\n"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.open >= self.MAX_OPEN:
            writer.close()
            return
        self.open += 1
        try:
            async with asyncio.timeout(5.0):
                request = await reader.readline()
                for _ in range(100):  # the headers, ignored
                    if (await reader.readline()) in (b"\r\n", b"\n", b""):
                        break
                parts = request.decode("latin-1").split()
                if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                    status, ctype, body = 405, "text/plain", b"only GET\n"
                else:
                    status, ctype, body = self.route(parts[1].split("?", 1)[0])
                reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
                head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                        "Connection: close\r\n\r\n")  # fmt: skip
                writer.write(head.encode() + (body if parts[:1] != ["HEAD"] else b""))
                await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # never a traceback: the endpoint answers nothing and the gateway goes on
            event("http_error", logging.ERROR, error=error_text(exc))
        finally:
            self.open -= 1
            writer.close()
