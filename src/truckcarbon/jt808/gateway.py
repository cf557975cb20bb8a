"""A JT/T 808 gateway: terminals register, authenticate and report; no acknowledged report is lost.

- A location report (0x0200, or each item of a 0x0704 batch) is acknowledged with
  0x8001 success only after its record is in the write-ahead log and the log is
  fsynced (group commit: one fsync for every report that arrived meanwhile).
- Every ``compact_s`` seconds (and on SIGTERM) closed log segments are compacted into
  the month-partitioned pings dataset ``DATA/pings/month=YYYY-MM/`` that
  ``truckcarbon run`` reads, deduplicated on (vehicle, time) against what is already
  there, each file written atomically before its segment is deleted. On restart,
  segments left by a crash are compacted first.
- Terminals must register (0x0100 -> 0x8100 with an authentication code, kept in
  ``DATA/terminals.json``) and authenticate (0x0102) before reports are accepted;
  a report before that is answered with result 1 (failure) and counted.
- Limits: frame size, idle timeout, reports per second per connection. Counters are
  logged as JSON lines every 10 s and on shutdown.
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
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
    RESULT_BAD_MESSAGE,
    RESULT_FAILURE,
    RESULT_OK,
    RESULT_UNSUPPORTED,
    Authentication,
    BatchLocation,
    FrameError,
    GeneralResponse,
    Header,
    Location,
    Registration,
    RegistrationResponse,
    decode_frame,
    encode_frame,
    split_frames,
)

log = logging.getLogger("truckcarbon.gateway")
RECORD = struct.Struct("<qqddfbdd")  # vehicle_id, ts_ms, lon, lat, speed, load, odometer, fuel
LOAD_CODE = {"empty": 0, "half": 1, "full": 2}
LOAD_NAMES = pa.array(["empty", "half", "full"])


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 7808
    data: Path = Path("gateway_data")
    max_frame: int = 4096
    idle_timeout_s: float = 300.0
    max_reports_per_s: float = 20000.0
    compact_s: float = 5.0
    commit_interval_s: float = 0.002
    load_bits: bool = True  # status bits 8-9 carry the load state (False: terminals without load sensing)


@dataclass
class Metrics:
    connections: int = 0
    reports: int = 0
    acked: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    compacted: int = 0
    duplicates: int = 0

    def reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1


class Registry:
    """Terminal phone number -> vehicle id, plate and authentication code (persisted atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.terminals: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def register(self, phone: str, reg: Registration) -> dict[str, Any]:
        entry = self.terminals.get(phone)
        if entry is None:
            vid = max((int(t["vehicle_id"]) for t in self.terminals.values()), default=0) + 1
            if reg.terminal_id.isdigit():
                vid = int(reg.terminal_id)  # a terminal id of digits is taken as the vehicle id (replay uses it)
            entry = {"vehicle_id": vid, "plate": reg.plate, "auth_code": secrets.token_hex(8)}
            self.terminals[phone] = entry
            atomic_write_text(self.path, json.dumps(self.terminals, ensure_ascii=False))
        return entry


class Wal:
    """Append-only segments of fixed-size records; group commit with one fsync per batch."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self.wakeup = asyncio.Event()
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

    def commit(self) -> int:
        """Write and fsync everything pending, then resolve its futures."""
        batch, self.pending = self.pending, []
        if not batch:
            return 0
        self.fh.write(b"".join(r for r, _ in batch))
        os.fsync(self.fh.fileno())
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)
        return len(batch)

    def rotate(self) -> list[Path]:
        """Close the current segment (after committing) and return every closed segment."""
        self.commit()
        self.fh.close()
        closed = sorted(p for p in self.folder.glob("segment-*.log"))
        self._open()
        return closed


def _read_segment(path: Path) -> np.ndarray:
    data = path.read_bytes()
    n = len(data) // RECORD.size  # a torn last record (crash while writing, never acked) is ignored
    dtype = np.dtype([("vid", "<i8"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                      ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8")])  # fmt: skip
    return np.frombuffer(data[: n * RECORD.size], dtype=dtype)


class Compactor:
    """WAL segments -> ``pings/month=YYYY-MM/gw-*.parquet``, deduplicated on (vehicle, time)."""

    def __init__(self, data: Path, metrics: Metrics) -> None:
        self.pings = data / "pings"
        self.metrics = metrics
        self.seen: set[tuple[int, int]] = set()
        for f in self.pings.glob("month=*/*.parquet"):
            t = pq.read_table(f, columns=["vehicle_id", "ts"])
            ts = pc.cast(t["ts"], pa.int64()).to_numpy()
            self.seen.update(zip(t["vehicle_id"].to_numpy().tolist(), ts.tolist(), strict=True))

    def compact(self, segments: list[Path]) -> int:
        if not segments:
            return 0
        rec: Any = np.concatenate([_read_segment(p) for p in segments])  # a structured array
        keep = []
        for k, (v, t) in enumerate(zip(rec["vid"].tolist(), rec["ts"].tolist(), strict=True)):
            if (v, t) in self.seen:
                self.metrics.duplicates += 1
                continue
            self.seen.add((v, t))
            keep.append(k)
        rec = rec[np.array(keep, dtype=np.int64)] if keep else rec[:0]
        if rec.size:
            months = local_month(rec["ts"] // 1000)
            for m in np.unique(months).tolist():
                sel = rec[months == m]
                table = pa.table(
                    {
                        "vehicle_id": pa.array(sel["vid"]),
                        "ts": pa.array(sel["ts"]).cast(pa.timestamp("ms", tz="UTC")),
                        "lon": pa.array(sel["lon"]),
                        "lat": pa.array(sel["lat"]),
                        "speed_kmh": pa.array(sel["speed"]),
                        "load_state": pa.DictionaryArray.from_arrays(
                            pa.array(sel["load"], mask=sel["load"] < 0), LOAD_NAMES
                        ),
                        "odometer_km": pa.array(sel["odo"], mask=np.isnan(sel["odo"])),
                        "fuel_level_l": pa.array(sel["fuel"], mask=np.isnan(sel["fuel"])),
                    }
                )
                target = self.pings / f"month={month_label(m)}" / f"gw-{time.time_ns()}-{uuid.uuid4().hex[:6]}.parquet"
                with atomic_path(target) as tmp:
                    pq.write_table(table, tmp)
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
        for p in segments:  # only once their records are in the dataset
            p.unlink(missing_ok=True)
        self.metrics.compacted += int(rec.size)
        return int(rec.size)


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        config.data.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.registry = Registry(config.data / "terminals.json")
        self.compactor = Compactor(config.data, self.metrics)
        self.stopping = asyncio.Event()

    async def serve(self) -> None:
        self.wal = Wal(self.config.data / "wal")
        # Segments a crash left behind go to the dataset before anything new is taken in.
        self.compactor.compact([p for p in self.wal.folder.glob("segment-*.log") if p != self.wal.current])
        server = await asyncio.start_server(self.handle, self.config.host, self.config.port, limit=1 << 16)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stopping.set)
        tasks = [asyncio.create_task(self.committer()), asyncio.create_task(self.compacting()),
                 asyncio.create_task(self.reporting())]  # fmt: skip
        log.info(json.dumps({"event": "listening", "host": self.config.host, "port": self.config.port}))
        async with server:
            await self.stopping.wait()
            server.close()
        for t in tasks:
            t.cancel()
        self.compactor.compact(self.wal.rotate())
        self.log_metrics("stopped")

    async def committer(self) -> None:
        while True:
            await self.wal.wakeup.wait()
            self.wal.wakeup.clear()
            await asyncio.sleep(self.config.commit_interval_s)  # let a group gather
            await asyncio.to_thread(self.wal.commit)

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
                             "compacted": m.compacted, "duplicates": m.duplicates, "rejects": m.rejects}))  # fmt: skip

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.metrics.connections += 1
        buffer = b""
        session: dict[str, Any] = {
            "auth": None,
            "serial": 0,
            "tokens": self.config.max_reports_per_s,
            "t": time.monotonic(),
        }
        try:
            while not self.stopping.is_set():
                try:
                    chunk = await asyncio.wait_for(reader.read(1 << 16), self.config.idle_timeout_s)
                except TimeoutError:
                    self.metrics.reject("idle_timeout")
                    break
                if not chunk:
                    break
                frames, buffer, dropped = split_frames(buffer + chunk, self.config.max_frame)
                for _ in range(dropped):
                    self.metrics.reject("oversize_frame")
                # Every frame of the read is taken in first; location acks wait for one durable commit together.
                waits = [w for w in (self.dispatch(frame, session, writer) for frame in frames) if w is not None]
                if waits:
                    await asyncio.gather(*waits)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.metrics.connections -= 1
            writer.close()

    def reply(
        self, writer: asyncio.StreamWriter, session: dict[str, Any], header: Header, msg_id: int, body: bytes
    ) -> None:
        session["serial"] = (session["serial"] + 1) & 0xFFFF
        writer.write(encode_frame(Header(msg_id, header.phone, session["serial"], header.version), body))

    def dispatch(
        self, frame: bytes, session: dict[str, Any], writer: asyncio.StreamWriter
    ) -> Coroutine[Any, Any, None] | None:
        """Answer a frame; for location reports return what acknowledges them once they are durable."""
        try:
            header, body = decode_frame(frame)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            return None
        v2019 = header.version is not None

        def ack(result: int) -> None:
            self.reply(writer, session, header, MSG_GENERAL_RESPONSE,
                       GeneralResponse(header.serial, header.msg_id, result).encode())  # fmt: skip

        try:
            if header.msg_id == MSG_REGISTER:
                entry = self.registry.register(header.phone, Registration.decode(body, v2019))
                self.reply(writer, session, header, MSG_REGISTER_RESPONSE,
                           RegistrationResponse(header.serial, 0, entry["auth_code"]).encode())  # fmt: skip
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
                locs = (
                    [Location.decode(body)] if header.msg_id == MSG_LOCATION else list(BatchLocation.decode(body).items)
                )
                if not self.allow(session, len(locs)):
                    self.metrics.reject("rate_limited")
                    ack(RESULT_FAILURE)
                    return None
                vid = int(session["auth"]["vehicle_id"])
                # One log entry (and one future) per frame, however many reports it carries.
                future = self.wal.append(b"".join(self.record(vid, loc, self.config.load_bits) for loc in locs))
                self.metrics.reports += len(locs)

                async def durable() -> None:
                    await future  # in the log and fsynced
                    self.metrics.acked += len(locs)
                    ack(RESULT_OK)

                return durable()
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
        load = LOAD_CODE.get(loc.load_state or "", -1) if load_bits else -1
        return RECORD.pack(
            vid,
            int(loc.time.timestamp() * 1000),
            loc.lon,
            loc.lat,
            loc.speed_kmh,
            load,
            np.nan if loc.odometer_km is None else loc.odometer_km,
            np.nan if loc.fuel_l is None else loc.fuel_l,
        )


def run_gateway(config: GatewayConfig) -> None:
    """Serve until SIGTERM/SIGINT; then flush the log and compact it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(Gateway(config).serve())
