"""A JT/T 808 gateway: terminals register, authenticate and report; no acknowledged report is lost.

Durability
  A location report (0x0200, or each item of a 0x0704 batch) is acknowledged with
  0x8001 success only after its record is in the write-ahead log and the log is
  fsynced (group commit: one fsync for every report that arrived meanwhile). Every
  ``compact_s`` seconds (and on SIGTERM) closed log segments are compacted into the
  month-partitioned pings dataset ``DATA/pings/month=YYYY-MM/`` that ``truckcarbon
  run`` reads, deduplicated on (vehicle, time), each file written atomically before
  its segment is deleted (:mod:`truckcarbon.jt808.storage`). On restart, segments
  left by a crash are compacted first. A failed compaction is logged, counted,
  retried with back-off and turns ``/healthz`` red; while it fails, reports are
  answered with result 1 and not taken in (the terminal keeps them and sends them
  again), and what was acknowledged waits in the log.

Identity (:mod:`truckcarbon.jt808.registry`)
  A terminal registers once (0x0100 -> 0x8100 with a code that is never sent
  again) and authenticates (0x0102) on every connection. A connection is bound to
  the phone it authenticated: a frame whose header carries another phone is
  refused (result 1, reject ``phone_mismatch``); a failed authentication ends the
  connection's rights, and ``max_auth_failures`` of them close it. Reports before
  authentication are refused (``not_authenticated``). A newer connection
  authenticated as the same terminal closes the older one.

Values (:mod:`truckcarbon.jt808.validation`)
  Every report is checked; one out of range is acknowledged and written to
  ``DATA/quarantine/`` with its reason, never to the pings. Load state (status
  bits 8-9): 01 half and 11 full; 00 is empty only for a terminal the terminal
  list marks ``load-sensor`` (``load_sensing="listed"``), otherwise unknown.

Resources
  Deadlines: authenticate within ``auth_timeout_s`` of connecting; a frame complete
  within ``frame_timeout_s`` of its first byte; ``idle_timeout_s`` without a
  complete frame (bytes that make no frame do not count). Caps: connections in all
  (also kept below the file descriptors left), per source address, bytes of frames
  before authentication, reports per second per connection, sub-package bytes per
  connection and over all connections. Sub-packages are refused before
  authentication.

Sub-packages
  Sub-packaged messages (bit 13 of the body properties) are reassembled per
  connection, pieces in any order, and handled as if they had come in one frame.
  Every piece is answered once the whole message is handled: for location
  reports, once durable. When the last piece of a message is in but others are
  missing the gateway asks for them once with 0x8003. An incomplete message is
  dropped ``partial_timeout_s`` after its first piece (``subpackage_timeout``;
  ``subpackage_abandoned`` when the connection closes); a piece over a bound is
  answered with result 1 (``subpackage_overflow``).

Protocol answers
  A frame whose check code is right but whose length or package fields are not is
  answered with 0x8001 result 2; an encrypted body (bits 10-12) with result 3.

Robustness and observability (:mod:`truckcarbon.jt808.observe`)
  No input produces a traceback: an unexpected error is caught at the frame (or
  connection) boundary, counted as ``internal_error`` and logged as one JSON line;
  the other frames and connections carry on. Counters are logged as JSON lines
  every 10 s and on shutdown, and served as Prometheus metrics with ``/healthz`` and
  ``/readyz`` when ``metrics_port`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truckcarbon.jt808.codec import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_DEREGISTER,
    MSG_GENERAL_RESPONSE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    MSG_RESEND_REQUEST,
    RESULT_BAD_MESSAGE,
    RESULT_FAILURE,
    RESULT_OK,
    RESULT_UNSUPPORTED,
    FrameError,
    Header,
    Location,
    RegisterResult,
    Registration,
    RegistrationResponse,
    ResendRequest,
    auth_code_bytes,
    batch_items,
    decode_frame,
    frame_bytes,
    location_values,
    split_frames,
)
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.observe import (
    HttpEndpoints,
    error_text,
    event,
    loop_exception_handler,
    setup_logging,
)
from truckcarbon.jt808.reassembly import ByteBudget, Reassembler, ReassemblyFullError
from truckcarbon.jt808.registry import (
    Registry,
    VehicleId,
    canonical_phone,
    known_terminals,
    known_vehicles,
    read_terminal_list,
)
from truckcarbon.jt808.storage import RECORD, Compactor, Wal, resolve
from truckcarbon.jt808.validation import LAT, LON, QUARANTINE_REASONS, STATUS_ENCRYPTED, Limits, check

__all__ = [
    "RECORD",
    "Compactor",
    "Gateway",
    "GatewayConfig",
    "Metrics",
    "Registry",
    "Wal",
    "known_terminals",
    "known_vehicles",
    "read_terminal_list",
    "record",
    "run_gateway",
]

log = logging.getLogger("truckcarbon.gateway")
GENERAL_RESPONSE = struct.Struct(">HHB")  # 0x8001 body: serial, message id, result
FD_RESERVE = 24  # file descriptors kept free of connections: log segments, compaction, metrics endpoint
LOAD_SENSING = ("listed", "all", "none")


@dataclass
class GatewayConfig:
    """Gateway settings; every default is here (see the module docstring for what each bounds).

    ``known_vehicles`` (plate -> vehicle id) and ``known_terminals`` (terminal
    phone numbers) are the platform's allow-lists for registration; None accepts
    any plate or terminal. ``load_sensors``: the terminals whose status bits 8-9
    = 00 mean empty (``load_sensing="listed"``; ``"all"``: every terminal's;
    ``"none"``: the load state is never taken from the status). ``limits``: the
    valid ranges of a report. ``dedup_months`` is how many months, up to the
    newest one reported, keep their deduplication keys in memory.
    """

    host: str = "127.0.0.1"
    port: int = 7808
    data: Path = Path("gateway_data")
    max_frame: int = 4096
    idle_timeout_s: float = 300.0
    auth_timeout_s: float = 30.0
    frame_timeout_s: float = 10.0
    max_reports_per_s: float = 20000.0
    compact_s: float = 5.0
    compaction_retry_max_s: float = 30.0
    commit_interval_s: float = 0.002
    load_sensing: str = "listed"
    load_sensors: frozenset[str] = frozenset()
    max_partial_messages: int = 16
    max_partial_bytes: int = 1 << 20
    max_partial_bytes_total: int = 64 << 20
    partial_timeout_s: float = 60.0
    max_connections: int = 10000
    max_connections_per_address: int = 256
    max_preauth_bytes: int = 16384
    max_auth_failures: int = 3
    max_registrations: int = 3  # registration attempts per connection (a terminal registers itself once)
    known_vehicles: Mapping[str, VehicleId] | None = None
    known_terminals: frozenset[str] | None = None
    dedup_months: int = 2
    limits: Limits = field(default_factory=Limits)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no HTTP endpoint; 0: a free port

    def __post_init__(self) -> None:
        if self.load_sensing not in LOAD_SENSING:
            raise ValueError(f"load_sensing {self.load_sensing!r}: use one of {', '.join(LOAD_SENSING)}")


@dataclass
class Metrics:
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

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1

    def quarantine(self, reason: str) -> None:
        self.quarantine_reasons[reason] = self.quarantine_reasons.get(reason, 0) + 1


@dataclass(frozen=True)
class Held:
    """Reports of one message taken into the log: its records, how many, and its acknowledgement."""

    records: bytes
    reports: int
    ack: Callable[[int], None]


class Session:
    """One connection's state."""

    __slots__ = ("address", "auth", "auth_failures", "buffer", "closing", "connected", "frame_started",
                 "last_frame", "load_codes", "out", "parts", "phone", "preauth_bytes", "raw_phone", "registrations",
                 "serial", "t", "tokens", "vid", "writer")  # fmt: skip

    def __init__(self, writer: asyncio.StreamWriter, address: str, parts: Reassembler, rate: float,
                 now: float | None = None) -> None:  # fmt: skip
        now = time.monotonic() if now is None else now
        self.writer, self.address, self.parts = writer, address, parts
        self.auth: dict[str, Any] | None = None  # the registry binding authenticated as
        self.phone: str | None = None  # canonical phone authenticated as
        self.raw_phone = ""  # ... as the header spells it (the fast path of the phone check)
        self.vid = b""  # the vehicle id as the log records hold it
        self.load_codes = (-1, 1, -1, 2)  # status bits 8-9 -> load code (0 empty, 1 half, 2 full, -1 unknown)
        self.serial = 0
        self.tokens, self.t = rate, now
        self.out: list[bytes] = []  # replies not written yet: one write per read of the connection
        self.buffer = b""
        self.connected = self.last_frame = now
        self.frame_started: float | None = None
        self.preauth_bytes = 0
        self.auth_failures = 0
        self.registrations = 0
        self.closing: str | None = None


def record(vid: VehicleId, loc: Location, load: int = -1, reason: int = 0, received_ms: int = 0) -> bytes:
    """The log record of one decoded report (as the gateway writes it from :func:`location_values`)."""
    odometer = float("nan") if loc.odometer_km is None else loc.odometer_km
    fuel = float("nan") if loc.fuel_l is None else loc.fuel_l
    ts_ms = int(loc.time.timestamp() * 1000)
    return RECORD.pack(str(vid).encode(), ts_ms, loc.lon, loc.lat, loc.speed_kmh, load, odometer, fuel, reason,
                       loc.status & 0xFFFFFFFF, received_ms)  # fmt: skip


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``: give freed heap pages back to the system (a no-op elsewhere).

    The pieces and buffers of many connections are freed in the middle of the
    heap; without this the process keeps them resident after the connections close.
    """
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]

    def run() -> None:
        trim(0)

    return run


def _fd_room() -> int:
    """File descriptors that can still be opened (soft limit less those open); large when unknown."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft == resource.RLIM_INFINITY:
            return 1 << 30
        return soft - len(os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"))
    except (ImportError, OSError, ValueError):
        return 1 << 30


class Gateway:
    """The server: connections in, reports into the write-ahead log, the log compacted into the dataset."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        config.data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.registry = Registry(config.data / "terminals.json", config.known_vehicles, config.known_terminals)
        self.compactor = Compactor(config.data, self.metrics, config.dedup_months, self.registry.id_kind)
        self.limits = config.limits
        self.load_sensors = {canonical_phone(p) for p in config.load_sensors}
        self.stopping = asyncio.Event()
        self.sessions: dict[int, Session] = {}  # open connections by id(session) (for the sweeper)
        self.handlers: set[asyncio.Task[Any]] = set()  # their tasks (shutdown waits for them)
        self.by_phone: dict[str, Session] = {}  # authenticated connections by canonical phone
        self.per_address: dict[str, int] = {}
        self.budget = ByteBudget(config.max_partial_bytes_total)
        self.connection_cap = config.max_connections
        self.compaction_error: str | None = None
        self.wal_error: str | None = None
        self.started = False
        self.http: asyncio.Server | None = None
        self.http_port: int | None = None
        self.closed_since_trim = 0
        self.trim = _malloc_trim()
        self.clock: Callable[[], float] = time.monotonic  # the deadlines' clock (a test sets its own)

    async def serve(self) -> None:
        """Serve until :attr:`stopping` is set (SIGTERM, SIGINT), then flush and compact."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        await self.stop()

    async def start(self) -> int:
        """Compact what a crash left, listen, start the background tasks; the port listened on."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(loop_exception_handler(self._count_internal))
        self.wal = Wal(self.config.data / "wal")
        self.apply_operator_requests()
        # Segments a crash left behind go to the dataset before anything new is taken in.
        self.compactor.compact([p for p in self.wal.segments() if p != self.wal.current])
        self.connection_cap = max(1, min(self.config.max_connections, _fd_room() - FD_RESERVE))
        self.server = await asyncio.start_server(self.handle, self.config.host, self.config.port, limit=1 << 16)
        if self.config.metrics_port is not None:
            endpoints = HttpEndpoints(self.status)
            self.http = await endpoints.start(self.config.metrics_host, self.config.metrics_port)
            self.http_port = int(self.http.sockets[0].getsockname()[1])
        self.tasks = [asyncio.create_task(self.committer()), asyncio.create_task(self.compacting()),
                      asyncio.create_task(self.reporting()), asyncio.create_task(self.sweeper())]  # fmt: skip
        port = int(self.server.sockets[0].getsockname()[1])
        self.started = True
        event("listening", host=self.config.host, port=port, connection_cap=self.connection_cap,
              metrics_port=self.http_port)  # fmt: skip
        return port

    async def stop(self) -> None:
        """Stop listening and the background tasks, then compact the whole log."""
        self.stopping.set()
        self.server.close()
        if self.http is not None:
            self.http.close()
        for session in list(self.sessions.values()):  # what they sent is in the log: compacted below
            session.writer.close()
        if self.handlers:  # each connection finishes what it was doing (an acknowledgement waiting on the log)
            await asyncio.wait(list(self.handlers), timeout=5.0)
        await self.server.wait_closed()
        for t in self.tasks:
            t.cancel()
        try:
            segments = self.wal.rotate()
            self.wal.close()
            self.compactor.compact(segments)
        except Exception as exc:  # the segments stay in the log: compacted at the next start
            self.metrics.compaction_failures += 1
            event("compaction_failed", logging.ERROR, error=error_text(exc), at="shutdown")
        self.log_metrics("stopped")

    def _count_internal(self) -> None:
        self.metrics.internal_errors += 1

    # ------------------------------------------------------------------ background tasks

    def close_session(self, session: Session, reason: str) -> None:
        """Close a connection once (after the replies gathered so far), counting why."""
        if session.closing is None:
            session.closing = reason
            self.metrics.reject(reason)
            self.flush(session)
            session.writer.close()

    async def sweeper(self) -> None:
        """Deadlines of every connection, timed-out sub-packages, the operator's requests.

        One timer for all connections instead of a timeout on every read; the
        timeouts are kept to a quarter of their length (or a second).
        """
        c = self.config
        period = min(1.0, c.idle_timeout_s / 4, c.partial_timeout_s / 4, c.auth_timeout_s / 4, c.frame_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep(self.clock())
                self.apply_operator_requests()
                if self.closed_since_trim:  # connections went away: their memory goes back to the system
                    self.closed_since_trim = 0
                    self.trim()
            except Exception as exc:
                self.metrics.internal_errors += 1
                event("internal_error", logging.ERROR, error=error_text(exc), at="sweeper")

    def sweep(self, now: float) -> None:
        c = self.config
        for session in list(self.sessions.values()):
            for _ in session.parts.expire(now):
                self.metrics.reject("subpackage_timeout")
            if session.closing is not None:
                continue
            if session.auth is None and now - session.connected > c.auth_timeout_s:
                self.close_session(session, "auth_timeout")
            elif session.frame_started is not None and now - session.frame_started > c.frame_timeout_s:
                self.close_session(session, "frame_timeout")
            elif now - session.last_frame > c.idle_timeout_s:
                self.close_session(session, "idle_timeout")

    def apply_operator_requests(self) -> None:
        """Releases queued by ``truckcarbon gateway terminals release``: unbound, their connections closed."""
        for phone, entry in self.registry.apply_operator_requests(self.config.data / "operator"):
            event("terminal_released", phone=phone, by="operator", bound=entry is not None,
                  vehicle_id=None if entry is None else entry["vehicle_id"])  # fmt: skip
            session = self.by_phone.get(canonical_phone(phone))
            if session is not None:
                self.close_session(session, "released")

    async def committer(self) -> None:
        while True:
            await self.wal.wakeup.wait()
            self.wal.wakeup.clear()
            await asyncio.sleep(self.config.commit_interval_s)  # let a group gather
            batch = self.wal.take()
            if not batch:
                continue
            try:
                await asyncio.to_thread(self.wal.write, [r for r, _ in batch])
            except Exception as exc:  # a full disk, an I/O error: none of these reports is acknowledged
                self.wal_error = error_text(exc)
                event("wal_write_failed", logging.ERROR, error=self.wal_error, reports=len(batch))
                resolve(batch, exc)
            else:
                self.wal_error = None
                resolve(batch, None)

    async def compacting(self) -> None:
        """Compact every ``compact_s``; after a failure retry in 1 s, 2 s, 4 s ... up to ``compaction_retry_max_s``."""
        delay = self.config.compact_s
        retry = first_retry = min(1.0, self.config.compaction_retry_max_s)
        while True:
            await asyncio.sleep(delay)
            try:
                segments = self.wal.rotate()
                await asyncio.to_thread(self.compactor.compact, segments)
            except Exception as exc:
                self.metrics.compaction_failures += 1
                self.compaction_error = error_text(exc)
                delay, retry = retry, min(self.config.compaction_retry_max_s, retry * 2)
                event("compaction_failed", logging.ERROR, error=self.compaction_error, retry_in_s=delay,
                      failures=self.metrics.compaction_failures)  # fmt: skip
            else:
                if self.compaction_error is not None:
                    event("compaction_resumed", failures=self.metrics.compaction_failures)
                self.compaction_error = None
                delay, retry = self.config.compact_s, first_retry

    async def reporting(self) -> None:
        while True:
            await asyncio.sleep(10)
            self.log_metrics("metrics")

    def accepting_reports(self) -> bool:
        return self.compaction_error is None

    def status(self) -> dict[str, Any]:
        """Counters, gauges, health and readiness (for ``/metrics``, ``/healthz``, ``/readyz``)."""
        m = self.metrics
        wal_bytes, lag = self.wal.backlog()
        problems = [p for p in (self.compaction_error and f"compaction: {self.compaction_error}",
                                self.wal_error and f"log: {self.wal_error}") if p]  # fmt: skip
        healthy = not problems
        return {
            "reports": m.reports, "acked": m.acked, "quarantined": sum(m.quarantine_reasons.values()),
            "compacted": m.compacted, "duplicates": m.duplicates, "compaction_failures": m.compaction_failures,
            "internal_errors": m.internal_errors, "connections_accepted": m.connections_accepted,
            "rejects": dict(m.rejects), "quarantine_reasons": dict(m.quarantine_reasons),
            "connections": m.connections, "authenticated_connections": len(self.by_phone),
            "connection_cap": self.connection_cap, "terminals_registered": len(self.registry.terminals),
            "wal_bytes": wal_bytes, "compaction_lag_seconds": lag, "subpackage_bytes": self.budget.used,
            "healthy": int(healthy),
            "ready": int(healthy and self.started and not self.stopping.is_set() and self.accepting_reports()),
            "problems": problems,
        }  # fmt: skip

    def log_metrics(self, name: str) -> None:
        m = self.metrics
        event(name, connections=m.connections, reports=m.reports, acked=m.acked, compacted=m.compacted,
              duplicates=m.duplicates, reassembled=m.reassembled, resend_requests=m.resend_requests,
              quarantined=m.quarantine_reasons, quarantine_written=m.quarantine_written,
              compaction_failures=m.compaction_failures, internal_errors=m.internal_errors,
              rejects=m.rejects)  # fmt: skip

    # ------------------------------------------------------------------ connections

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        except Exception:
            address = "?"
        self.metrics.connections_accepted += 1
        if self.stopping.is_set():
            writer.close()
            return
        if len(self.sessions) >= self.connection_cap:
            self.metrics.reject("connection_cap")
            writer.close()
            return
        if self.per_address.get(address, 0) >= self.config.max_connections_per_address:
            self.metrics.reject("address_cap")
            writer.close()
            return
        c = self.config
        parts = Reassembler(c.max_partial_messages, c.max_partial_bytes, c.partial_timeout_s, self.budget)
        session = Session(writer, address, parts, c.max_reports_per_s, self.clock())
        self.sessions[id(session)] = session
        task = asyncio.current_task()
        if task is not None:
            self.handlers.add(task)
        self.per_address[address] = self.per_address.get(address, 0) + 1
        self.metrics.connections += 1
        try:
            await self.serve_connection(reader, writer, session)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception as exc:  # never a traceback: counted, logged in one line, the other connections go on
            self.metrics.internal_errors += 1
            event("internal_error", logging.ERROR, error=error_text(exc), at="connection")
        finally:
            for _ in session.parts.drop_all():
                self.metrics.reject("subpackage_abandoned")
            del self.sessions[id(session)]
            left = self.per_address.get(address, 1) - 1
            if left > 0:
                self.per_address[address] = left
            else:
                self.per_address.pop(address, None)
            if session.phone is not None and self.by_phone.get(session.phone) is session:
                del self.by_phone[session.phone]
            self.metrics.connections -= 1
            self.closed_since_trim += 1
            writer.close()
            if task is not None:
                self.handlers.discard(task)

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               session: Session) -> None:  # fmt: skip
        c = self.config
        while not self.stopping.is_set() and session.closing is None:
            chunk = await reader.read(1 << 16)  # the sweeper closes the connection past its deadlines
            if not chunk:
                break
            now = self.clock()
            now_ms = time.time_ns() // 1_000_000
            frames, session.buffer, dropped = split_frames(session.buffer + chunk, c.max_frame)
            if not session.buffer:
                session.frame_started = None
            elif session.frame_started is None or frames or dropped:  # a new frame began in this read
                session.frame_started = now
            for _ in range(dropped):
                self.metrics.reject("oversize_frame")
            # Every frame of the read is taken in first; their reports go to the log as one entry
            # and are acknowledged together once it is durable.
            held: list[Held] = []
            for frame in frames:
                if session.auth is None:
                    session.preauth_bytes += len(frame)
                    if session.preauth_bytes > c.max_preauth_bytes:
                        self.close_session(session, "preauth_bytes")
                        break
                try:
                    h = self.dispatch(frame, session, now, now_ms)
                except Exception as exc:  # never a traceback: counted, logged in one line, the next frame goes on
                    self.internal_error(exc, frame)
                    h = None
                if h is not None:
                    held.append(h)
                if session.closing is not None:
                    break
            self.request_missing(session)
            self.flush(session)
            if held:
                try:
                    await self.wal.append(b"".join(h.records for h in held))  # in the log and fsynced
                except OSError:  # the log could not be written: close without acknowledging; sent again
                    self.metrics.reject("storage_error")
                    break
                for h in held:
                    self.metrics.acked += h.reports
                    h.ack(RESULT_OK)
                self.flush(session)
            await writer.drain()

    def reply(self, session: Session, header: Header, msg_id: int, body: bytes) -> None:
        session.serial = (session.serial + 1) & 0xFFFF
        session.out.append(frame_bytes(msg_id, header.phone, session.serial, header.version, body))

    @staticmethod
    def flush(session: Session) -> None:
        """Send the replies gathered so far in one write."""
        if session.out:
            if not session.writer.is_closing():
                session.writer.write(b"".join(session.out))
            session.out.clear()

    def answer(self, session: Session, header: Header, serials: tuple[int, ...], result: int) -> None:
        """0x8001 with ``result`` for each frame (serial) a message came in."""
        for serial in serials:  # the body of GeneralResponse(serial, header.msg_id, result), packed directly
            self.reply(session, header, MSG_GENERAL_RESPONSE, GENERAL_RESPONSE.pack(serial, header.msg_id, result))

    def request_missing(self, session: Session) -> None:
        """0x8003 for messages whose last package is in and others are not (once per message)."""
        for part in session.parts.resend_due():
            v2019 = part.header.version is not None
            missing = tuple(part.missing()[: 0xFFFF if v2019 else 0xFF])  # the 2013 count is one byte
            self.reply(session, part.header, MSG_RESEND_REQUEST,
                       ResendRequest(part.first_serial, missing).encode(v2019))  # fmt: skip
            self.metrics.resend_requests += 1

    def internal_error(self, exc: Exception, frame: bytes) -> None:
        """An unexpected error handling ``frame``: counted and logged in one line (no traceback)."""
        self.metrics.internal_errors += 1
        self.metrics.reject("internal_error")
        event("internal_error", logging.ERROR, error=error_text(exc), at="frame", frame_bytes=len(frame))

    def dispatch(self, frame: bytes, session: Session, now: float = 0.0, now_ms: int | None = None) -> Held | None:
        """Answer a frame; for location reports return their records and acknowledgement, to send once durable.

        A sub-package is held until its message is whole; then the message is
        handled and every piece answered (see the module docstring).
        """
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        try:
            header, body = decode_frame(frame)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            if exc.header is not None:  # the check code is right: the header is the terminal's
                self.answer(session, exc.header, (exc.header.serial,), RESULT_BAD_MESSAGE)
            return None
        session.last_frame = now or self.clock()
        if (
            session.phone is not None
            and header.phone != session.raw_phone
            and (canonical_phone(header.phone) != session.phone)
        ):
            self.metrics.reject("phone_mismatch")
            self.answer(session, header, (header.serial,), RESULT_FAILURE)
            return None
        if header.encryption:
            self.metrics.reject("encrypted_body")
            self.answer(session, header, (header.serial,), RESULT_UNSUPPORTED)
            return None
        if header.package_total is None:
            return self.handle_message(header, body, (header.serial,), session, now_ms)
        if session.auth is None:  # nothing a terminal sends before authenticating needs sub-packages
            self.metrics.reject("not_authenticated")
            self.answer(session, header, (header.serial,), RESULT_FAILURE)
            return None
        try:
            message = session.parts.add(header, body, now or self.clock())
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            full = isinstance(exc, ReassemblyFullError)
            self.answer(session, header, (header.serial,), RESULT_FAILURE if full else RESULT_BAD_MESSAGE)
            return None
        if message is None:
            return None
        self.metrics.reassembled += 1
        return self.handle_message(message.header, message.body, message.serials, session, now_ms)

    def handle_message(self, header: Header, body: bytes, serials: tuple[int, ...], session: Session,
                       now_ms: int) -> Held | None:  # fmt: skip
        """Answer one whole message that came in the frames ``serials``; location reports as in :meth:`dispatch`."""
        v2019 = header.version is not None

        def ack(result: int) -> None:
            self.answer(session, header, serials, result)

        try:
            msg_id = header.msg_id
            if msg_id in (MSG_LOCATION, MSG_BATCH_LOCATION):
                if session.auth is None:
                    self.metrics.reject("not_authenticated")
                    ack(RESULT_FAILURE)
                    return None
                items = [body] if msg_id == MSG_LOCATION else batch_items(body)
                if not self.accepting_reports():
                    self.metrics.reject("storage_unavailable")
                    ack(RESULT_FAILURE)
                    return None
                if not self.allow(session, len(items)):
                    self.metrics.reject("rate_limited")
                    ack(RESULT_FAILURE)
                    return None
                records = self.records(session, items, now_ms)
                self.metrics.reports += len(items)
                return Held(records, len(items), ack)
            if msg_id == MSG_HEARTBEAT:
                ack(RESULT_OK)
            elif msg_id == MSG_AUTH:
                ok = self.authenticate(session, header, auth_code_bytes(body, v2019))
                ack(RESULT_OK if ok else RESULT_FAILURE)
                if not ok and session.auth_failures >= self.config.max_auth_failures:
                    self.close_session(session, "auth_failures")
            elif msg_id == MSG_REGISTER:
                session.registrations += 1
                if session.registrations > self.config.max_registrations:
                    self.close_session(session, "registrations")
                    return None
                reg = Registration.decode(body, v2019)
                result, code, entry = self.registry.register(header.phone, reg, authenticated=session.auth is not None)
                if result != RegisterResult.OK:
                    self.metrics.reject(f"register_{result.name.lower()}")
                elif session.auth is not None:  # a new code from its own session: the old one is void
                    session.auth = entry
                    event("terminal_registered_again", phone=header.phone)
                response = RegistrationResponse(serials[0], result, code).encode()
                self.reply(session, header, MSG_REGISTER_RESPONSE, response)
            elif msg_id == MSG_DEREGISTER:
                if session.auth is None:
                    self.metrics.reject("not_authenticated")
                    ack(RESULT_FAILURE)
                else:
                    entry = self.registry.release(header.phone)
                    event("terminal_released", phone=header.phone, by="terminal",
                          vehicle_id=None if entry is None else entry["vehicle_id"])  # fmt: skip
                    self.unbind(session)
                    ack(RESULT_OK)
            else:
                self.metrics.reject("unsupported_message")
                ack(RESULT_UNSUPPORTED)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            ack(RESULT_BAD_MESSAGE)
        return None

    def authenticate(self, session: Session, header: Header, code: bytes) -> bool:
        """Bind the session to the terminal whose code ``code`` is; a wrong code ends the session's rights."""
        entry = self.registry.get(header.phone)
        if entry is not None and Registry.verify(entry, code) and self.allowed(entry):
            key = canonical_phone(header.phone)
            older = self.by_phone.get(key)
            if older is not None and older is not session:
                self.close_session(older, "superseded")  # the terminal reconnected: its old connection goes
            self.unbind(session)
            session.auth, session.phone, session.raw_phone = entry, key, header.phone
            session.vid = str(entry["vehicle_id"]).encode()
            sensor = self.config.load_sensing == "all" or (self.config.load_sensing == "listed" and
                                                          key in self.load_sensors)  # fmt: skip
            session.load_codes = (0 if sensor else -1, 1, -1, 2)
            if self.config.load_sensing == "none":
                session.load_codes = (-1, -1, -1, -1)
            self.by_phone[key] = session
            return True
        self.metrics.reject("bad_authentication")
        self.unbind(session)
        session.auth_failures += 1
        return False

    def allowed(self, entry: dict[str, Any]) -> bool:
        """Whether a binding is still on the operator's allow-lists (they may have changed since it was made)."""
        r = self.registry
        if r.known_terminals is not None and canonical_phone(entry["phone"]) not in r.known_terminals:
            return False
        return r.known_vehicles is None or r.known_vehicles.get(entry.get("plate", "")) == entry["vehicle_id"]

    def unbind(self, session: Session) -> None:
        if session.phone is not None and self.by_phone.get(session.phone) is session:
            del self.by_phone[session.phone]
        session.auth, session.phone, session.raw_phone, session.vid = None, None, "", b""

    def allow(self, session: Session, n: int) -> bool:
        now = self.clock()
        rate = self.config.max_reports_per_s
        session.tokens = min(rate, session.tokens + (now - session.t) * rate)
        session.t = now
        if session.tokens < n:
            return False
        session.tokens -= n
        return True

    def records(self, session: Session, items: list[bytes], now_ms: int) -> bytes:
        """The log records of location bodies, checked (the hot path: :func:`check` only for a report out of range)."""
        lim = self.limits
        lo = now_ms - int(lim.max_age_s * 1000) if lim.max_age_s > 0 else -(1 << 62)
        hi = now_ms + int(lim.max_future_s * 1000)
        max_speed, max_odometer, max_fuel = lim.max_speed_kmh, lim.max_odometer_km, lim.max_fuel_l
        pack, vid, codes = RECORD.pack, session.vid, session.load_codes
        (lat_lo, lat_hi), (lon_lo, lon_hi) = LAT, LON
        out = []
        for item in items:
            values = location_values(item)
            ts_ms, lon, lat, speed, status, odometer, fuel = values
            if (
                lat_lo <= lat <= lat_hi and lon_lo <= lon <= lon_hi and (lat != 0.0 or lon != 0.0) and lo <= ts_ms <= hi
                and speed <= max_speed and not odometer > max_odometer and not fuel > max_fuel
                and not status & STATUS_ENCRYPTED and status & 0x300 != 0x200
            ):  # fmt: skip
                reason = 0
            else:
                reason = check(values, now_ms, lim)
                if reason:
                    self.metrics.quarantine(QUARANTINE_REASONS[reason])
            out.append(pack(vid, ts_ms, lon, lat, speed, codes[(status >> 8) & 0b11], odometer, fuel, reason, status,
                            now_ms))  # fmt: skip
        return b"".join(out)

    def record_values(self, session: Session, values: tuple[int, float, float, float, int, float, float],
                      now_ms: int) -> bytes:  # fmt: skip
        """The log record of one report from :func:`~truckcarbon.jt808.codec.location_values`, checked."""
        ts_ms, lon, lat, speed, status, odometer, fuel = values
        reason = check(values, now_ms, self.limits)
        if reason:
            self.metrics.quarantine(QUARANTINE_REASONS[reason])
        load = session.load_codes[(status >> 8) & 0b11]
        return RECORD.pack(session.vid, ts_ms, lon, lat, speed, load, odometer, fuel, reason, status, now_ms)


def run_gateway(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then flush the log and compact it. Logs are JSON lines on standard output."""
    setup_logging()
    run_async(Gateway(config).serve())
