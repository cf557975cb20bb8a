"""The gateway's TCP server: connections in, frames to the dispatcher, location records into the log, acks out.

Each read of a connection is cut into frames; every frame is answered by
:class:`~truckcarbon.jt808.dispatch.Dispatcher`, and the location records of all
the frames of the read go to the write-ahead log as one entry; they are
acknowledged (0x8001 result 0) once it is fsynced. If the log cannot be written
the connection is closed without acknowledging (``storage_error``): the terminal
sends them again.

Resources
  Deadlines: authenticate within ``auth_timeout_s`` of connecting; a frame complete
  within ``frame_timeout_s`` of its first byte; ``idle_timeout_s`` without a
  complete frame (bytes that make no frame do not count). One sweeper checks them
  for every connection, drops sub-packages that timed out and carries out the
  releases an operator queued. Caps: connections in all (also kept below the file
  descriptors left), per source address, bytes of frames before authentication,
  frames longer than ``max_frame`` (dropped), reports per second per connection,
  sub-package bytes per connection and over all connections.

Robustness
  No input produces a traceback: an unexpected error is caught at the frame (or
  connection) boundary, counted as ``internal_error`` and logged as one JSON line;
  the other frames and connections carry on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.dispatch import Dispatcher
from truckcarbon.jt808.frame import split_frames
from truckcarbon.jt808.messages import RESULT_OK
from truckcarbon.jt808.observe import Metrics, error_text, event
from truckcarbon.jt808.reassembly import ByteBudget, Reassembler
from truckcarbon.jt808.registry import Registry, canonical_phone
from truckcarbon.jt808.session import Held, Session
from truckcarbon.jt808.wal import Wal

FD_RESERVE = 24  # file descriptors kept free of connections: log segments, compaction, metrics endpoint


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


class Server:
    """Terminal connections: accepted within the caps, read, answered, watched for their deadlines.

    ``accepting_reports`` says whether reports may be taken in now; ``clock`` is
    the deadlines' clock (monotonic seconds; a test gives its own).
    """

    wal: Wal  # the log the reports go to: given by :meth:`listen`

    def __init__(
        self,
        config: GatewayConfig,
        metrics: Metrics,
        registry: Registry,
        accepting_reports: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config, self.metrics, self.registry, self.clock = config, metrics, registry, clock
        self.dispatcher = Dispatcher(config, metrics, registry, accepting_reports, clock)
        self.stopping = asyncio.Event()
        self.sessions: dict[int, Session] = {}  # open connections by id(session) (for the sweeper)
        self.handlers: set[asyncio.Task[Any]] = set()  # their tasks (shutdown waits for them)
        self.per_address: dict[str, int] = {}
        self.budget = ByteBudget(config.max_partial_bytes_total)
        self.connection_cap = config.max_connections
        self.closed_since_trim = 0
        self.trim = _malloc_trim()
        self.operator_requests = True  # this process carries out the operator's queued releases

    async def listen(self, wal: Wal, reuse_port: bool = False) -> int:
        """Listen for terminals, their reports going to ``wal``; the port listened on.

        ``reuse_port``: share the port with the other workers (SO_REUSEPORT: the
        kernel deals the connections out among them).
        """
        self.wal = wal
        self.connection_cap = max(1, min(self.config.max_connections, _fd_room() - FD_RESERVE))
        self.listener = await asyncio.start_server(self.handle, self.config.host, self.config.port, limit=1 << 16,
                                                   reuse_port=reuse_port or None)  # fmt: skip
        return int(self.listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, close every connection and wait (5 s at most) for their handlers to finish."""
        self.stopping.set()
        self.listener.close()
        for session in list(self.sessions.values()):  # what they sent is in the log
            session.writer.close()
        if self.handlers:  # each connection finishes what it was doing (an acknowledgement waiting on the log)
            await asyncio.wait(list(self.handlers), timeout=5.0)
        await self.listener.wait_closed()

    # ------------------------------------------------------------------ deadlines and operator requests

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
                if self.operator_requests:
                    self.apply_operator_requests()
                self.drop_stale_sessions()
                if self.closed_since_trim:  # connections went away: their memory goes back to the system
                    self.closed_since_trim = 0
                    self.trim()
            except Exception as exc:
                self.metrics.internal_errors += 1
                event("internal_error", logging.ERROR, error=error_text(exc), at="sweeper")

    def sweep(self, now: float) -> None:
        """Drop timed-out sub-packages; close the connections past a deadline."""
        c = self.config
        close = self.dispatcher.close_session
        for session in list(self.sessions.values()):
            for _ in session.parts.expire(now):
                self.metrics.reject("subpackage_timeout")
            if session.closing is not None:
                continue
            if session.auth is None and now - session.connected > c.auth_timeout_s:
                close(session, "auth_timeout")
            elif session.frame_started is not None and now - session.frame_started > c.frame_timeout_s:
                close(session, "frame_timeout")
            elif now - session.last_frame > c.idle_timeout_s:
                close(session, "idle_timeout")

    def drop_stale_sessions(self) -> None:
        """Close the connections of terminals another process released or gave a new code (workers share a registry)."""
        for key in self.registry.refresh():
            session = self.dispatcher.by_phone.get(key)
            if session is None or session.auth is None:
                continue
            entry = self.registry.terminals.get(key)
            if entry is None or entry.get("auth_hash") != session.auth.get("auth_hash"):
                self.dispatcher.close_session(session, "released")

    def apply_operator_requests(self) -> None:
        """Releases queued by ``truckcarbon gateway terminals release``: unbound, their connections closed."""
        for phone, entry in self.registry.apply_operator_requests(self.config.data / "operator"):
            event("terminal_released", phone=phone, by="operator", bound=entry is not None,
                  vehicle_id=None if entry is None else entry["vehicle_id"])  # fmt: skip
            session = self.dispatcher.by_phone.get(canonical_phone(phone))
            if session is not None:
                self.dispatcher.close_session(session, "released")

    # ------------------------------------------------------------------ connections

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, from its acceptance (or refusal at a cap) to its end."""
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
            self.dispatcher.unbind(session)
            self.metrics.connections -= 1
            self.closed_since_trim += 1
            writer.close()
            if task is not None:
                self.handlers.discard(task)

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                               session: Session) -> None:  # fmt: skip
        """Read, answer and log until the connection ends, is closed, or the server stops."""
        c, dispatcher = self.config, self.dispatcher
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
                        dispatcher.close_session(session, "preauth_bytes")
                        break
                try:
                    h = dispatcher.dispatch(frame, session, now, now_ms)
                except Exception as exc:  # never a traceback: counted, logged in one line, the next frame goes on
                    self.internal_error(exc, frame)
                    h = None
                if h is not None:
                    held.append(h)
                if session.closing is not None:
                    break
            dispatcher.request_missing(session)
            session.flush()
            if held:
                try:
                    await self.wal.append(b"".join(h.records for h in held))  # in the log and fsynced
                except OSError:  # the log could not be written: close without acknowledging; sent again
                    self.metrics.reject("storage_error")
                    break
                for h in held:
                    self.metrics.acked += h.reports
                    h.ack(RESULT_OK)
                session.flush()
            await writer.drain()

    def internal_error(self, exc: Exception, frame: bytes) -> None:
        """An unexpected error handling ``frame``: counted and logged in one line (no traceback)."""
        self.metrics.internal_errors += 1
        self.metrics.reject("internal_error")
        event("internal_error", logging.ERROR, error=error_text(exc), at="frame", frame_bytes=len(frame))
