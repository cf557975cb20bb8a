"""A JT/T 808 gateway: terminals register, authenticate and report; no acknowledged report is lost.

- A location report (0x0200, or each item of a 0x0704 batch) is acknowledged with
  0x8001 success only after its record is in the write-ahead log and the log is
  fsynced (group commit: one fsync for every report that arrived meanwhile).
- Every ``compact_s`` seconds (and on SIGTERM) closed log segments are compacted into
  the month-partitioned pings dataset ``DATA/pings/month=YYYY-MM/`` that
  ``truckcarbon run`` reads, deduplicated on (vehicle, time) against what is already
  there, each file written atomically before its segment is deleted. On restart,
  segments left by a crash are compacted first.
  Deduplication keys are held only for the months still receiving reports (see
  :class:`Compactor`); a late report for an older month is checked against that
  month's files.
- Terminals must register (0x0100 -> 0x8100 with an authentication code, kept in
  ``DATA/terminals.json``; a new registration is appended to ``DATA/terminals.jsonl``
  and fsynced before the reply, and folded into the former at the next start) and
  authenticate (0x0102) before reports are accepted; a report before that is
  answered with result 1 (failure) and counted. Which
  registration result code is sent when is told by :class:`Registry`.
- Sub-packaged messages (bit 13 of the body properties, e.g. a 0x0704 batch longer
  than the 1023 bytes of one frame) are reassembled per connection, pieces in any
  order, and then handled as if they had come in one frame. JT/T 808 lets the
  receiver answer each piece with its own 0x8001 or all pieces with one; the gateway
  answers every piece, but only once the whole message is handled: for location
  reports, once they are durable. Acknowledging a piece on arrival would tell the
  terminal it may forget data the gateway holds only in memory, and a crash would
  lose it; a piece left unanswered is sent again by the terminal. When the last
  piece of a message is in but others are missing (refused as malformed), the
  gateway asks for them once with 0x8003. An incomplete message is dropped
  ``partial_timeout_s`` after its first piece and counted as reject
  ``subpackage_timeout`` (``subpackage_abandoned`` when the connection closes); a
  piece over the per-connection bounds (``max_partial_messages``,
  ``max_partial_bytes``) is answered with result 1 and counted as
  ``subpackage_overflow``.
- Limits: frame size, idle timeout, reports per second per connection, sub-package
  memory. Counters are logged as JSON lines every 10 s and on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_path, atomic_write_text
from truckcarbon.core.months import local_month, month_label
from truckcarbon.jt808.codec import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
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
    Authentication,
    FrameError,
    Header,
    Location,
    RegisterResult,
    Registration,
    RegistrationResponse,
    ResendRequest,
    batch_items,
    decode_frame,
    frame_bytes,
    location_values,
    split_frames,
)
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.reassembly import Reassembler, ReassemblyFullError

log = logging.getLogger("truckcarbon.gateway")
GENERAL_RESPONSE = struct.Struct(">HHB")  # 0x8001 body: serial, message id, result
RECORD = struct.Struct("<qqddfbdd")  # vehicle_id, ts_ms, lon, lat, speed, load, odometer, fuel
STATUS_LOAD = (0, 1, -1, 2)  # status bits 8-9 -> load code 0 empty, 1 half, 2 full (codec.LOAD_BITS; 0b10: unknown)
LOAD_NAMES = pa.array(["empty", "half", "full"])


@dataclass
class GatewayConfig:
    """Gateway settings; every default is here.

    ``max_partial_messages``, ``max_partial_bytes`` and ``partial_timeout_s`` bound
    the reassembly of sub-packaged messages per connection. ``known_vehicles``
    (plate -> vehicle id) and ``known_terminals`` (terminal phone numbers) are the
    platform's databases for registration; None accepts any plate or terminal.
    ``dedup_months`` is how many months, up to the newest one reported, keep their
    deduplication keys in memory.
    """

    host: str = "127.0.0.1"
    port: int = 7808
    data: Path = Path("gateway_data")
    max_frame: int = 4096
    idle_timeout_s: float = 300.0
    max_reports_per_s: float = 20000.0
    compact_s: float = 5.0
    commit_interval_s: float = 0.002
    load_bits: bool = True  # status bits 8-9 carry the load state (False: terminals without load sensing)
    max_partial_messages: int = 16
    max_partial_bytes: int = 1 << 20
    partial_timeout_s: float = 60.0
    known_vehicles: Mapping[str, int] | None = None
    known_terminals: frozenset[str] | None = None
    dedup_months: int = 2


@dataclass
class Metrics:
    connections: int = 0
    reports: int = 0
    acked: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    compacted: int = 0
    duplicates: int = 0
    reassembled: int = 0  # sub-packaged messages made whole
    resend_requests: int = 0  # 0x8003 sent
    months_loaded: int = 0  # months whose deduplication keys were read from the dataset

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1


@dataclass(frozen=True)
class Held:
    """Reports of one message taken into the log: its records, how many, and its acknowledgement."""

    records: bytes
    reports: int
    ack: Callable[[int], None]


class Registry:
    """Terminal phone number -> vehicle id, plate, terminal id and authentication code (persisted atomically).

    The 0x8100 result of a registration, checked in this order:

    - 4 no such terminal: ``known_terminals`` is given and the phone is not in it.
    - 3 terminal already registered: the phone is registered for another plate or
      as another terminal id. Binding it anew takes removing its entry.
    - 0 success, again: the phone registers once more with the same plate and
      terminal id; its stored authentication code is issued again. Terminals lose
      the code on a reset or a firmware update and register again (the common
      practice of JT/T 808 platforms); refusing them would lock them out.
    - 2 no such vehicle: ``known_vehicles`` is given and the plate is not in it.
    - 1 vehicle already registered: the plate, or the vehicle id the registration
      would get, is bound to another phone (two terminals would merge two trucks'
      tracks, or split one truck's).
    - 0 success: a new binding, stored with a fresh authentication code.

    The vehicle id comes from ``known_vehicles`` when given, else from a terminal
    id of digits (replay uses it), else it is the largest id so far plus one.
    """

    def __init__(
        self, path: Path, known_vehicles: Mapping[str, int] | None = None, known_terminals: frozenset[str] | None = None
    ) -> None:
        self.path = path
        self.journal = path.with_suffix(".jsonl")
        self.terminals: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
        if self.journal.exists():
            for line in self.journal.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError):  # a torn last line: never answered with success
                    item = json.loads(line)
                    self.terminals[item.pop("phone")] = item
            # Fold the journal into the snapshot (atomically), then start an empty journal.
            atomic_write_text(path, json.dumps(self.terminals, ensure_ascii=False))
            self.journal.unlink()
        self.vehicle_ids = {int(t["vehicle_id"]) for t in self.terminals.values()}
        self.plates = {t["plate"] for t in self.terminals.values() if t["plate"]}
        self.known_vehicles = known_vehicles
        self.known_terminals = None if known_terminals is None else {p.lstrip("0") for p in known_terminals}

    def register(self, phone: str, reg: Registration) -> tuple[RegisterResult, dict[str, Any] | None]:
        """The result code and, on success, the terminal's entry (with its authentication code)."""
        if self.known_terminals is not None and phone.lstrip("0") not in self.known_terminals:
            return RegisterResult.NO_SUCH_TERMINAL, None
        entry = self.terminals.get(phone)
        if entry is not None:
            same = entry["plate"] == reg.plate and entry.get("terminal_id", reg.terminal_id) == reg.terminal_id
            return (RegisterResult.OK, entry) if same else (RegisterResult.TERMINAL_REGISTERED, None)
        if self.known_vehicles is not None:
            if reg.plate not in self.known_vehicles:
                return RegisterResult.NO_SUCH_VEHICLE, None
            vid = int(self.known_vehicles[reg.plate])
        elif reg.terminal_id.isdigit():
            vid = int(reg.terminal_id)
        else:
            vid = max(self.vehicle_ids, default=0) + 1
        if vid in self.vehicle_ids or (reg.plate and reg.plate in self.plates):
            return RegisterResult.VEHICLE_REGISTERED, None
        code = secrets.token_hex(8)
        entry = {"vehicle_id": vid, "plate": reg.plate, "terminal_id": reg.terminal_id, "auth_code": code}
        # One fsynced journal line per registration (not a rewrite of every terminal), before the reply.
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"phone": phone, **entry}, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.terminals[phone] = entry
        self.vehicle_ids.add(vid)
        if reg.plate:
            self.plates.add(reg.plate)
        return RegisterResult.OK, entry


class Wal:
    """Append-only segments of fixed-size records; group commit with one fsync per batch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self.wakeup = asyncio.Event()
        self.lock = threading.Lock()  # the file is written by a worker thread and rotated by the loop
        self._open()

    def _open(self) -> None:
        self.current = self.folder / f"segment-{time.time_ns():020d}.log"
        self.fh = open(self.current, "ab", buffering=0)  # noqa: SIM115 (kept open across commits)

    def append(self, record: bytes) -> asyncio.Future[None]:
        """Queue records (one or more, concatenated) for the next commit; the future resolves after fsync."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((record, fut))
        self.wakeup.set()
        return fut

    def take(self) -> list[tuple[bytes, asyncio.Future[None]]]:
        """Everything pending, to be written by :meth:`write` and then resolved."""
        batch, self.pending = self.pending, []
        return batch

    def write(self, records: list[bytes]) -> None:
        """Append records to the current segment and fsync it (safe to call from a worker thread)."""
        with self.lock:
            self.fh.write(b"".join(records))
            os.fsync(self.fh.fileno())

    def commit(self) -> int:
        """Write and fsync everything pending, then resolve its futures (in the event loop's thread)."""
        batch = self.take()
        if batch:
            self.write([r for r, _ in batch])
            _resolve(batch, None)
        return len(batch)

    def rotate(self) -> list[Path]:
        """Close the current segment (after committing) and return every closed segment.

        A write in flight on a worker thread finishes (into the old segment) first.
        """
        self.commit()
        with self.lock:
            self.fh.close()
            closed = sorted(p for p in self.folder.glob("segment-*.log"))
            self._open()
        return closed

    def close(self) -> None:
        """Commit and close the current segment (removed if empty)."""
        self.commit()
        self.fh.close()
        if self.current.stat().st_size == 0:
            self.current.unlink()


def _resolve(batch: list[tuple[bytes, asyncio.Future[None]]], error: BaseException | None) -> None:
    """Settle the futures of a committed batch (in the event loop's thread: futures are not thread-safe)."""
    for _, fut in batch:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


def _read_segment(path: Path) -> np.ndarray:
    data = path.read_bytes()
    n = len(data) // RECORD.size  # a torn last record (crash while writing, never acked) is ignored
    dtype = np.dtype([("vid", "<i8"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                      ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8")])  # fmt: skip
    return np.frombuffer(data[: n * RECORD.size], dtype=dtype)


class Compactor:
    """WAL segments -> ``pings/month=YYYY-MM/gw-*.parquet``, deduplicated on (vehicle, time).

    Deduplication keys are held per local month, and only for the ``dedup_months``
    months up to the newest month compacted so far: the months still receiving
    reports. Older months are evicted after each compaction. A month's keys are
    read from its files when a report for it arrives and none are held, so a late
    report for an evicted month is still checked against everything written: while
    held, a month's keys are exactly the keys in its files.
    """

    def __init__(self, data: Path, metrics: Metrics, dedup_months: int = 2) -> None:
        self.pings = data / "pings"
        self.metrics = metrics
        self.dedup_months = max(1, dedup_months)
        self.seen: dict[int, set[tuple[int, int]]] = {}  # month number -> (vehicle id, ts ms)
        self.newest: int | None = None
        # The periodic compaction (a thread) may still run when shutdown compacts the rest: one at a time.
        self.lock = threading.Lock()

    def keys(self, month: int) -> set[tuple[int, int]]:
        """The (vehicle, time) keys in month ``month`` of the dataset, read from its files if not held."""
        held = self.seen.get(month)
        if held is None:
            held = self.seen[month] = set()
            for f in (self.pings / f"month={month_label(month)}").glob("*.parquet"):
                t = pq.read_table(f, columns=["vehicle_id", "ts"])
                ts = pc.cast(t["ts"], pa.int64()).to_numpy()
                held.update(zip(t["vehicle_id"].to_numpy().tolist(), ts.tolist(), strict=True))
            self.metrics.months_loaded += 1
        return held

    def compact(self, segments: list[Path]) -> int:
        """Move the records of ``segments`` into the dataset (new keys only), then delete the segments."""
        with self.lock:
            return self._compact([p for p in segments if p.exists()])  # another call may have done some

    def _compact(self, segments: list[Path]) -> int:
        if not segments:
            return 0
        rec: Any = np.concatenate([_read_segment(p) for p in segments])  # a structured array
        months = local_month(rec["ts"] // 1000)
        written = 0
        for m in np.unique(months).tolist():
            sel = rec[months == m]
            seen = self.keys(m)
            keep = []
            for k, key in enumerate(zip(sel["vid"].tolist(), sel["ts"].tolist(), strict=True)):
                if key in seen:
                    self.metrics.duplicates += 1
                    continue
                seen.add(key)
                keep.append(k)
            if keep:
                self.write(m, sel[np.array(keep, dtype=np.int64)])
                written += len(keep)
        for p in segments:  # only once their records are in the dataset
            p.unlink(missing_ok=True)
        if months.size:
            top = int(months.max())
            self.newest = top if self.newest is None else max(self.newest, top)
            for m in [m for m in self.seen if m <= self.newest - self.dedup_months]:
                del self.seen[m]
        self.metrics.compacted += written
        return written

    def write(self, month: int, sel: Any) -> None:
        """Records of one month as a new file of its partition, written atomically and fsynced."""
        table = pa.table(
            {
                "vehicle_id": pa.array(sel["vid"]),
                "ts": pa.array(sel["ts"]).cast(pa.timestamp("ms", tz="UTC")),
                "lon": pa.array(sel["lon"]),
                "lat": pa.array(sel["lat"]),
                "speed_kmh": pa.array(sel["speed"]),
                "load_state": pa.DictionaryArray.from_arrays(pa.array(sel["load"], mask=sel["load"] < 0), LOAD_NAMES),
                "odometer_km": pa.array(sel["odo"], mask=np.isnan(sel["odo"])),
                "fuel_level_l": pa.array(sel["fuel"], mask=np.isnan(sel["fuel"])),
            }
        )
        target = self.pings / f"month={month_label(month)}" / f"gw-{time.time_ns()}-{uuid.uuid4().hex[:6]}.parquet"
        with atomic_path(target) as tmp:
            pq.write_table(table, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())


class Gateway:
    """The server: connections in, reports into the write-ahead log, the log compacted into the dataset."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        config.data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.registry = Registry(config.data / "terminals.json", config.known_vehicles, config.known_terminals)
        self.compactor = Compactor(config.data, self.metrics, config.dedup_months)
        self.stopping = asyncio.Event()
        self.sessions: dict[int, dict[str, Any]] = {}  # open connections by id(session) (for the sweeper)

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
        self.wal = Wal(self.config.data / "wal")
        # Segments a crash left behind go to the dataset before anything new is taken in.
        self.compactor.compact([p for p in self.wal.folder.glob("segment-*.log") if p != self.wal.current])
        self.server = await asyncio.start_server(self.handle, self.config.host, self.config.port, limit=1 << 16)
        self.tasks = [asyncio.create_task(self.committer()), asyncio.create_task(self.compacting()),
                      asyncio.create_task(self.reporting()), asyncio.create_task(self.sweeper())]  # fmt: skip
        port = int(self.server.sockets[0].getsockname()[1])
        log.info(json.dumps({"event": "listening", "host": self.config.host, "port": port}))
        return port

    async def stop(self) -> None:
        """Stop listening and the background tasks, then compact the whole log."""
        self.stopping.set()
        self.server.close()
        for session in list(self.sessions.values()):  # what they sent is in the log: compacted below
            session["writer"].close()
        await self.server.wait_closed()
        for t in self.tasks:
            t.cancel()
        segments = self.wal.rotate()
        self.wal.close()
        self.compactor.compact(segments)
        self.log_metrics("stopped")

    async def sweeper(self) -> None:
        """Close idle connections and drop incomplete sub-packaged messages that timed out.

        One timer for all connections instead of a timeout on every read; the
        timeouts are kept to a quarter of their length (or a second).
        """
        period = min(1.0, self.config.idle_timeout_s / 4, self.config.partial_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                for _ in session["parts"].expire(now):
                    self.metrics.reject("subpackage_timeout")
                if now - session["last_read"] > self.config.idle_timeout_s and not session.get("idle"):
                    session["idle"] = True
                    self.metrics.reject("idle_timeout")
                    session["writer"].close()

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
                log.error(json.dumps({"event": "wal_write_failed", "error": repr(exc), "reports": len(batch)}))
                _resolve(batch, exc)
            else:
                _resolve(batch, None)

    async def compacting(self) -> None:
        while True:
            await asyncio.sleep(self.config.compact_s)
            segments = self.wal.rotate()
            await asyncio.to_thread(self.compactor.compact, segments)

    async def reporting(self) -> None:
        while True:
            await asyncio.sleep(10)
            self.log_metrics("metrics")

    def log_metrics(self, event: str) -> None:
        m = self.metrics
        log.info(json.dumps({"event": event, "connections": m.connections, "reports": m.reports, "acked": m.acked,
                             "compacted": m.compacted, "duplicates": m.duplicates, "reassembled": m.reassembled,
                             "resend_requests": m.resend_requests, "rejects": m.rejects}))  # fmt: skip

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.metrics.connections += 1
        buffer = b""
        parts = Reassembler(self.config.max_partial_messages, self.config.max_partial_bytes,
                            self.config.partial_timeout_s)  # fmt: skip
        session: dict[str, Any] = {
            "auth": None,
            "serial": 0,
            "tokens": self.config.max_reports_per_s,
            "t": time.monotonic(),
            "parts": parts,
            "out": [],  # replies not written yet: one write per read of the connection
            "writer": writer,
            "last_read": time.monotonic(),
        }
        self.sessions[id(session)] = session
        try:
            while not self.stopping.is_set():
                chunk = await reader.read(1 << 16)  # the sweeper closes the connection when it is idle
                if not chunk:
                    break
                session["last_read"] = time.monotonic()
                frames, buffer, dropped = split_frames(buffer + chunk, self.config.max_frame)
                for _ in range(dropped):
                    self.metrics.reject("oversize_frame")
                # Every frame of the read is taken in first; their reports go to the log as one entry
                # and are acknowledged together once it is durable.
                held = [h for h in (self.dispatch(frame, session, writer) for frame in frames) if h is not None]
                self.request_missing(parts, session, writer)
                self.flush(writer, session)
                if held:
                    await self.wal.append(b"".join(h.records for h in held))  # in the log and fsynced
                    for h in held:
                        self.metrics.acked += h.reports
                        h.ack(RESULT_OK)
                    self.flush(writer, session)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except OSError:  # the log could not be written: close without acknowledging; the terminal sends again
            self.metrics.reject("storage_error")
        finally:
            for _ in parts.drop_all():
                self.metrics.reject("subpackage_abandoned")
            del self.sessions[id(session)]
            self.metrics.connections -= 1
            writer.close()

    def reply(
        self, writer: asyncio.StreamWriter, session: dict[str, Any], header: Header, msg_id: int, body: bytes
    ) -> None:
        session["serial"] = (session["serial"] + 1) & 0xFFFF
        session["out"].append(frame_bytes(msg_id, header.phone, session["serial"], header.version, body))

    @staticmethod
    def flush(writer: asyncio.StreamWriter, session: dict[str, Any]) -> None:
        """Send the replies gathered so far in one write."""
        if session["out"]:
            writer.write(b"".join(session["out"]))
            session["out"].clear()

    def answer(
        self, writer: asyncio.StreamWriter, session: dict[str, Any], header: Header, serials: tuple[int, ...],
        result: int,
    ) -> None:  # fmt: skip
        """0x8001 with ``result`` for each frame (serial) a message came in."""
        for serial in serials:  # the body of GeneralResponse(serial, header.msg_id, result), packed directly
            self.reply(
                writer, session, header, MSG_GENERAL_RESPONSE, GENERAL_RESPONSE.pack(serial, header.msg_id, result)
            )

    def request_missing(self, parts: Reassembler, session: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        """0x8003 for messages whose last package is in and others are not (once per message)."""
        for part in parts.resend_due():
            v2019 = part.header.version is not None
            missing = tuple(part.missing()[: 0xFFFF if v2019 else 0xFF])  # the 2013 count is one byte
            self.reply(writer, session, part.header, MSG_RESEND_REQUEST,
                       ResendRequest(part.first_serial, missing).encode(v2019))  # fmt: skip
            self.metrics.resend_requests += 1

    def dispatch(self, frame: bytes, session: dict[str, Any], writer: asyncio.StreamWriter) -> Held | None:
        """Answer a frame; for location reports return their records and acknowledgement, to send once durable.

        A sub-package is held until its message is whole; then the message is
        handled and every piece answered (see the module docstring).
        """
        try:
            header, body = decode_frame(frame)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            return None
        if header.package_total is None:
            return self.handle_message(header, body, (header.serial,), session, writer)
        try:
            message = session["parts"].add(header, body, time.monotonic())
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            full = isinstance(exc, ReassemblyFullError)
            self.answer(writer, session, header, (header.serial,), RESULT_FAILURE if full else RESULT_BAD_MESSAGE)
            return None
        if message is None:
            return None
        self.metrics.reassembled += 1
        return self.handle_message(message.header, message.body, message.serials, session, writer)

    def handle_message(
        self, header: Header, body: bytes, serials: tuple[int, ...], session: dict[str, Any],
        writer: asyncio.StreamWriter,
    ) -> Held | None:  # fmt: skip
        """Answer one whole message that came in the frames ``serials``; location reports as in :meth:`dispatch`."""
        v2019 = header.version is not None

        def ack(result: int) -> None:
            self.answer(writer, session, header, serials, result)

        try:
            if header.msg_id == MSG_REGISTER:
                result, entry = self.registry.register(header.phone, Registration.decode(body, v2019))
                if result != RegisterResult.OK:
                    self.metrics.reject(f"register_{result.name.lower()}")
                code = entry["auth_code"] if entry is not None else ""
                self.reply(writer, session, header, MSG_REGISTER_RESPONSE,
                           RegistrationResponse(serials[0], result, code).encode())  # fmt: skip
            elif header.msg_id == MSG_AUTH:
                known = self.registry.terminals.get(header.phone)
                auth = Authentication.decode(body, v2019)
                if known is not None and secrets.compare_digest(auth.auth_code, known["auth_code"]):
                    session["auth"] = known
                    ack(RESULT_OK)
                else:
                    self.metrics.reject("bad_authentication")
                    ack(RESULT_FAILURE)
            elif header.msg_id == MSG_HEARTBEAT:
                ack(RESULT_OK)
            elif header.msg_id in (MSG_LOCATION, MSG_BATCH_LOCATION):
                if session["auth"] is None:
                    self.metrics.reject("not_authenticated")
                    ack(RESULT_FAILURE)
                    return None
                items = [body] if header.msg_id == MSG_LOCATION else batch_items(body)
                if not self.allow(session, len(items)):
                    self.metrics.reject("rate_limited")
                    ack(RESULT_FAILURE)
                    return None
                vid = int(session["auth"]["vehicle_id"])
                load_bits = self.config.load_bits
                records = b"".join(self.record_values(vid, location_values(item), load_bits) for item in items)
                self.metrics.reports += len(items)
                return Held(records, len(items), ack)
            else:
                self.metrics.reject("unsupported_message")
                ack(RESULT_UNSUPPORTED)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            ack(RESULT_BAD_MESSAGE)
        return None

    def allow(self, session: dict[str, Any], n: int) -> bool:
        now = time.monotonic()
        rate = self.config.max_reports_per_s
        session["tokens"] = min(rate, session["tokens"] + (now - session["t"]) * rate)
        session["t"] = now
        if session["tokens"] < n:
            return False
        session["tokens"] -= n
        return True

    @staticmethod
    def record(vid: int, loc: Location, load_bits: bool) -> bytes:
        """The log record of one decoded report (as :meth:`record_values` of its fields)."""
        odometer = np.nan if loc.odometer_km is None else loc.odometer_km
        fuel = np.nan if loc.fuel_l is None else loc.fuel_l
        ts_ms = int(loc.time.timestamp() * 1000)
        values = (ts_ms, loc.lon, loc.lat, loc.speed_kmh, loc.status, odometer, fuel)
        return Gateway.record_values(vid, values, load_bits)

    @staticmethod
    def record_values(vid: int, values: tuple[int, float, float, float, int, float, float], load_bits: bool) -> bytes:
        """The log record of one report from :func:`~truckcarbon.jt808.codec.location_values`."""
        ts_ms, lon, lat, speed, status, odometer, fuel = values
        load = STATUS_LOAD[(status >> 8) & 0b11] if load_bits else -1
        return RECORD.pack(vid, ts_ms, lon, lat, speed, load, odometer, fuel)


def known_vehicles(path: Path) -> dict[str, int]:
    """Plate -> vehicle id from a vehicles table (Parquet or CSV with columns ``plate`` and ``vehicle_id``)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the vehicles table (Parquet or CSV with plate, vehicle_id)")
    try:
        if path.suffix.lower() == ".csv":
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"plate": pa.string()}))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        raise InputError(f"{path}: cannot be read as {kind}: {exc}") from None
    missing = [c for c in ("plate", "vehicle_id") if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; the table needs plate and vehicle_id")
    out: dict[str, int] = {}
    for row, (plate, vid) in enumerate(zip(table["plate"].to_pylist(), table["vehicle_id"].to_pylist(), strict=True)):
        if plate is None or vid is None:
            raise InputError(f"{path}: row {row + 1} has no plate or no vehicle_id")
        if plate in out and out[plate] != int(vid):
            raise InputError(f"{path}: row {row + 1}: plate {plate} is listed for vehicles {out[plate]} and {vid}")
        out[str(plate)] = int(vid)
    return out


def known_terminals(path: Path) -> frozenset[str]:
    """Terminal phone numbers from a text file, one per line (blank lines and ``#`` comments ignored)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a text file with one terminal phone number per line")
    out = set()
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        phone = line.split("#", 1)[0].strip()
        if not phone:
            continue
        if not phone.isdigit() or len(phone) > 20:
            raise InputError(f"{path}: line {row}: {phone!r} is not a terminal phone number (up to 20 digits)")
        out.add(phone)
    return frozenset(out)


def run_gateway(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then flush the log and compact it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_async(Gateway(config).serve())
