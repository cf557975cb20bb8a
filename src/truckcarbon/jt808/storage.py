"""The gateway's storage: the write-ahead log of acknowledged reports and its compaction into datasets.

Records are fixed-size (:data:`RECORD`): the vehicle id as UTF-8 text (up to 32
bytes, so ``013912345678`` keeps its leading zero and ``鲁A12345`` fits), the
report's values, its quarantine reason (0: valid; see
:mod:`truckcarbon.jt808.validation`), its raw status word and the server time it
was received. Segments are named ``segment-<ns>.v2.log``; segments of the earlier
layout (``segment-<ns>.log``, integer vehicle ids) left by a crash are still read.

Compaction writes valid records to ``pings/month=YYYY-MM/gw-*.parquet``
(deduplicated on vehicle and time) and quarantined ones to
``quarantine/gw-*.parquet`` with their reason, each file atomically and fsynced
before the segments are deleted.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_path
from truckcarbon.core.months import local_month, month_label
from truckcarbon.jt808.validation import BAD_VEHICLE_ID, QUARANTINE_REASONS

# vehicle id, ts_ms, lon, lat, speed, load, odometer, fuel, quarantine reason, status, received_ms
RECORD = struct.Struct("<32sqddfbddBIq")
RECORD_DTYPE = np.dtype([("vid", "S32"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                         ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8"), ("reason", "u1"), ("status", "<u4"),
                         ("received", "<i8")])  # fmt: skip
RECORD_V1_DTYPE = np.dtype([("vid", "<i8"), ("ts", "<i8"), ("lon", "<f8"), ("lat", "<f8"), ("speed", "<f4"),
                            ("load", "i1"), ("odo", "<f8"), ("fuel", "<f8")])  # fmt: skip
assert RECORD_DTYPE.itemsize == RECORD.size and RECORD_V1_DTYPE.itemsize == 53
LOAD_NAMES = pa.array(["empty", "half", "full"])
SEGMENT_SUFFIX = ".v2.log"


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
        size, oldest = 0, None
        for p in self.segments():
            try:
                n = p.stat().st_size
            except OSError:  # compacted meanwhile
                continue
            size += n
            if n and oldest is None:
                oldest = int(p.name.split("-", 1)[1].split(".", 1)[0])
        return size, 0.0 if oldest is None else max(0.0, (time.time_ns() - oldest) / 1e9)


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


def dataset_id_kind(pings: Path) -> str | None:
    """``int`` or ``text``: the type of ``vehicle_id`` in an existing pings dataset (None when empty)."""
    for f in pings.glob("month=*/*.parquet"):
        try:
            t = pq.read_schema(f).field("vehicle_id").type
        except (OSError, KeyError, pa.ArrowInvalid):
            continue
        return "int" if pa.types.is_integer(t) else "text"
    return None


class Compactor:
    """WAL segments -> ``pings/month=YYYY-MM/gw-*.parquet``, deduplicated on (vehicle, time), and the quarantine.

    Deduplication keys are held per local month, and only for the ``dedup_months``
    months up to the newest month compacted so far: the months still receiving
    reports. Older months are evicted after each compaction. A month's keys are
    read from its files when a report for it arrives and none are held, so a late
    report for an evicted month is still checked against everything written: while
    held, a month's keys are exactly the keys in its files.

    ``id_kind``: ``int`` writes ``vehicle_id`` as int64 (the ids are integers),
    ``text`` as strings exactly as registered.
    """

    def __init__(self, data: Path, metrics: Any, dedup_months: int = 2, id_kind: str = "int") -> None:
        self.pings = data / "pings"
        self.quarantine = data / "quarantine"
        self.metrics = metrics
        self.dedup_months = max(1, dedup_months)
        self.id_kind = id_kind
        have = dataset_id_kind(self.pings)
        if have is not None and have != id_kind:
            raise InputError(
                f"{self.pings}: the dataset has {have} vehicle ids, the terminals are bound to {id_kind} ids; "
                "one gateway data folder holds one kind (use a new --data folder)"
            )
        self.seen: dict[int, set[tuple[Any, int]]] = {}  # month number -> (vehicle id, ts ms)
        self.newest: int | None = None
        # The periodic compaction (a thread) may still run when shutdown compacts the rest: one at a time.
        self.lock = threading.Lock()

    def keys(self, month: int) -> set[tuple[Any, int]]:
        """The (vehicle, time) keys in month ``month`` of the dataset, read from its files if not held."""
        held = self.seen.get(month)
        if held is None:
            loaded: set[tuple[Any, int]] = set()
            for f in (self.pings / f"month={month_label(month)}").glob("*.parquet"):
                t = pq.read_table(f, columns=["vehicle_id", "ts"])
                ts = pc.cast(t["ts"], pa.int64()).to_numpy()
                vids = t["vehicle_id"].to_numpy().tolist() if self.id_kind == "int" else t["vehicle_id"].to_pylist()
                loaded.update(zip(vids, ts.tolist(), strict=True))
            held = self.seen[month] = loaded  # only once every file was read: a failed read is retried whole
            self.metrics.months_loaded += 1
        return held

    def compact(self, segments: list[Path]) -> int:
        """Move the records of ``segments`` into the datasets (new keys only), then delete the segments."""
        with self.lock:
            return self._compact([p for p in segments if p.exists()])  # another call may have done some

    def _key(self, vid: bytes) -> Any:
        """A log record's vehicle id as the dataset holds it; None when it cannot be held."""
        try:
            text = vid.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if self.id_kind == "text":
            return text or None
        try:
            value = int(text) if text.isascii() else None
        except ValueError:
            return None
        return value if value is not None and -(2**63) <= value < 2**63 else None

    def _compact(self, segments: list[Path]) -> int:
        if not segments:
            return 0
        rec: Any = np.concatenate([read_segment(p) for p in segments])  # a structured array
        uniq, inverse = np.unique(rec["vid"], return_inverse=True)
        keys = [self._key(v) for v in uniq.tolist()]
        bad_id = np.array([k is None for k in keys], dtype=bool)[inverse]
        if bad_id.any():
            rec = rec.copy()
            rec["reason"][bad_id & (rec["reason"] == 0)] = BAD_VEHICLE_ID
        vids = np.array(keys, dtype=object)[inverse]
        good = rec["reason"] == 0
        quarantined = rec[~good]
        rec, vids = rec[good], vids[good]
        months = local_month(rec["ts"] // 1000)
        written = 0
        batches: list[tuple[int, Any, list[Any]]] = []
        pending: dict[int, set[tuple[Any, int]]] = {}
        for m in np.unique(months).tolist():
            idx = np.flatnonzero(months == m)
            seen = self.keys(m)
            new = pending[m] = set()
            keep = []
            for k, key in zip(idx.tolist(), zip(vids[idx].tolist(), rec["ts"][idx].tolist(), strict=True), strict=True):
                if key in seen or key in new:
                    self.metrics.duplicates += 1
                    continue
                new.add(key)
                keep.append(k)
            if keep:
                batches.append((m, rec[np.array(keep, dtype=np.int64)], vids[keep].tolist()))
        for m, sel, sel_vids in batches:
            self.write(m, sel, sel_vids)
            self.seen[m] |= pending[m]  # the keys count as seen only once their file is written
            written += len(sel)
        if len(quarantined):
            self.write_quarantine(quarantined)
        for p in segments:  # only once their records are in the datasets
            p.unlink(missing_ok=True)
        if months.size:
            top = int(months.max())
            self.newest = top if self.newest is None else max(self.newest, top)
            for m in [m for m in self.seen if m <= self.newest - self.dedup_months]:
                del self.seen[m]
        self.metrics.compacted += written
        self.metrics.quarantine_written += len(quarantined)
        return written

    def write(self, month: int, sel: Any, vids: list[Any]) -> None:
        """Records of one month as a new file of its partition, written atomically and fsynced."""
        vid_type = pa.int64() if self.id_kind == "int" else pa.string()
        table = pa.table(
            {
                "vehicle_id": pa.array(vids, vid_type),
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
        _write_atomic(table, target)

    def write_quarantine(self, rec: Any) -> None:
        """Quarantined records, with their reason and raw status, as one new file of ``quarantine/``."""
        load = rec["load"]
        table = pa.table(
            {
                "vehicle_id": pa.array([v.decode("utf-8", "replace") for v in rec["vid"].tolist()], pa.string()),
                "ts": pa.array(rec["ts"]).cast(pa.timestamp("ms", tz="UTC")),
                "lon": pa.array(rec["lon"]),
                "lat": pa.array(rec["lat"]),
                "speed_kmh": pa.array(rec["speed"]),
                "load_state": pa.DictionaryArray.from_arrays(pa.array(load, mask=load < 0), LOAD_NAMES),
                "odometer_km": pa.array(rec["odo"], mask=np.isnan(rec["odo"])),
                "fuel_level_l": pa.array(rec["fuel"], mask=np.isnan(rec["fuel"])),
                "status": pa.array(rec["status"]),
                "reason": pa.array(np.asarray(QUARANTINE_REASONS, dtype=object)[rec["reason"]].tolist(), pa.string()),
                "received_at": pa.array(rec["received"]).cast(pa.timestamp("ms", tz="UTC")),
            }
        )
        _write_atomic(table, self.quarantine / f"gw-{time.time_ns()}-{uuid.uuid4().hex[:6]}.parquet")


def _write_atomic(table: pa.Table, target: Path) -> None:
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
