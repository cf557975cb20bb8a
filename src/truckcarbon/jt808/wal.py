"""The gateway's write-ahead log: every acknowledged report is in it, fsynced, before its 0x8001 is sent.

Records are fixed-size (:data:`RECORD`): the vehicle id as UTF-8 text (up to 32
bytes, so ``013912345678`` keeps its leading zero and ``鲁A12345`` fits), the
report's values, its quarantine reason (0: valid; see
:mod:`truckcarbon.jt808.validation`), its raw status word and the server time it
was received. They are appended to segments named ``DATA/wal/segment-<ns>.v2.log``;
segments of the earlier layout (``segment-<ns>.log``, integer vehicle ids) left by
a crash are still read. Group commit: the reports that arrive while one write is
being fsynced go to the log together, with one fsync. A crash can tear only the
last record of a segment, one that was never acknowledged: it is ignored when
the segment is read. :mod:`truckcarbon.jt808.compactor` moves closed segments
into the datasets and deletes them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np

from truckcarbon.jt808.location import Location
from truckcarbon.jt808.observe import error_text, event
from truckcarbon.jt808.registry import VehicleId

# vehicle id, ts_ms, lon, lat, speed, load, odometer, fuel, quarantine reason, status, received_ms
RECORD = struct.Struct("<32sqddfbddBIq")
RECORD_DTYPE = np.dtype([("vid", "S32"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                         ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8"), ("reason", "u1"), ("status", "<u4"),
                         ("received", "<i8")])  # fmt: skip
RECORD_V1_DTYPE = np.dtype([("vid", "<i8"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                            ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8")])  # fmt: skip
assert RECORD_DTYPE.itemsize == RECORD.size and RECORD_V1_DTYPE.itemsize == 53
SEGMENT_SUFFIX = ".v2.log"


def record(vid: VehicleId, loc: Location, load: int = -1, reason: int = 0, received_ms: int = 0) -> bytes:
    """The log record of one decoded report (as the gateway writes it from :func:`location_values`)."""
    odometer = float("nan") if loc.odometer_km is None else loc.odometer_km
    fuel = float("nan") if loc.fuel_l is None else loc.fuel_l
    ts_ms = int(loc.time.timestamp() * 1000)
    return RECORD.pack(str(vid).encode(), ts_ms, loc.lon, loc.lat, loc.speed_kmh, load, odometer, fuel, reason,
                       loc.status & 0xFFFFFFFF, received_ms)  # fmt: skip


class Wal:
    """Append-only segments of fixed-size records; group commit with one fsync per batch.

    ``error`` is the last write's failure (None once a write succeeds again).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self.wakeup = asyncio.Event()
        self.lock = threading.Lock()  # the file is written by a worker thread and rotated by the loop
        self.error: str | None = None
        self._open()

    def _open(self) -> None:
        self.current = self.folder / f"segment-{time.time_ns():020d}{SEGMENT_SUFFIX}"
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
            resolve(batch, None)
        return len(batch)

    async def committing(self, interval_s: float) -> None:
        """The group commit, until cancelled: ``interval_s`` after a record comes, write and fsync all pending.

        The write runs on a worker thread. When it fails (a full disk, an I/O
        error) none of its records is acknowledged: their futures get the error.
        """
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            await asyncio.sleep(interval_s)  # let a group gather
            batch = self.take()
            if not batch:
                continue
            try:
                await asyncio.to_thread(self.write, [r for r, _ in batch])
            except Exception as exc:
                self.error = error_text(exc)
                event("wal_write_failed", logging.ERROR, error=self.error, reports=len(batch))
                resolve(batch, exc)
            else:
                self.error = None
                resolve(batch, None)

    def segments(self) -> list[Path]:
        """Every segment in the folder, oldest first (the current one included)."""
        return sorted(self.folder.glob("segment-*.log"))

    def rotate(self) -> list[Path]:
        """Close the current segment (after committing) and return every closed segment.

        A write in flight on a worker thread finishes (into the old segment) first.
        If a new segment cannot be opened (no file descriptor left), the current one
        stays open and nothing is returned: the error is raised to the caller.
        """
        self.commit()
        with self.lock:
            old_fh = self.fh
            self._open()  # may raise: then the old segment goes on being written
            old_fh.close()
            return [p for p in self.segments() if p != self.current]

    def close(self) -> None:
        """Commit and close the current segment (removed if empty)."""
        self.commit()
        self.fh.close()
        if self.current.stat().st_size == 0:
            self.current.unlink()

    def backlog(self) -> tuple[int, float]:
        """Bytes in the log not compacted yet, and the age in seconds of its oldest segment (0 when none)."""
        return backlog(self.segments())


def backlog(segments: list[Path]) -> tuple[int, float]:
    """Bytes of ``segments`` and the age in seconds of the oldest non-empty one (0 when none)."""
    size, oldest = 0, None
    for p in segments:
        try:
            n = p.stat().st_size
        except OSError:  # compacted meanwhile
            continue
        size += n
        if n:
            born = int(p.name.split("segment-", 1)[1].split(".", 1)[0])
            oldest = born if oldest is None else min(oldest, born)
    return size, 0.0 if oldest is None else max(0.0, (time.time_ns() - oldest) / 1e9)


READY = "ready"  # the folder workers hand their closed segments to, for the one compaction


def every_segment(folder: Path) -> list[Path]:
    """Every segment under the log folder: a single gateway's, each worker's, those handed over for compaction."""
    return (
        sorted(folder.glob("segment-*.log"))
        + sorted(folder.glob("worker-*/segment-*.log"))
        + sorted((folder / READY).glob("*segment-*.log"))
    )


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hand_over(segments: list[Path], ready: Path, prefix: str) -> list[Path]:
    """Move closed segments into ``ready`` (renamed ``PREFIX-segment-...``), durably; their new paths."""
    ready.mkdir(parents=True, exist_ok=True)
    moved = []
    for p in segments:
        target = ready / f"{prefix}-{p.name}"
        os.replace(p, target)
        moved.append(target)
    if moved:  # both folders: a crash after this finds every segment in one of them
        _fsync_folder(ready)
        _fsync_folder(segments[0].parent)
    return moved


def resolve(batch: list[tuple[bytes, asyncio.Future[None]]], error: BaseException | None) -> None:
    """Settle the futures of a committed batch (in the event loop's thread: futures are not thread-safe)."""
    for _, fut in batch:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


def read_segment(path: Path) -> np.ndarray:
    """The records of a segment (either layout) as :data:`RECORD_DTYPE`; a torn last record is ignored."""
    data = path.read_bytes()
    if path.name.endswith(SEGMENT_SUFFIX):
        n = len(data) // RECORD.size  # a torn last record (crash while writing, never acked) is ignored
        return np.frombuffer(data[: n * RECORD.size], dtype=RECORD_DTYPE)
    n = len(data) // RECORD_V1_DTYPE.itemsize
    old = np.frombuffer(data[: n * RECORD_V1_DTYPE.itemsize], dtype=RECORD_V1_DTYPE)
    out = np.zeros(n, dtype=RECORD_DTYPE)
    for name in RECORD_V1_DTYPE.names or ():
        if name != "vid":
            out[name] = old[name]
    out["vid"] = np.array([str(v).encode() for v in old["vid"].tolist()], dtype="S32")
    return out
