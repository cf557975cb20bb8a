"""Compaction: closed write-ahead log segments -> the month-partitioned pings dataset and the quarantine.

Every ``compact_s`` seconds (and at shutdown, and at start for the segments a
crash left) the closed segments of :mod:`truckcarbon.jt808.wal` are read; valid
records go to ``DATA/pings/month=YYYY-MM/gw-*.parquet``, the dataset ``truckcarbon
run`` reads, deduplicated on (vehicle, time), and quarantined ones to
``DATA/quarantine/gw-*.parquet`` with their reason. Each file is written under a
hidden temporary name, fsynced and renamed into place (a reader never sees a
partial file), and only then are the segments deleted: a crash at any point
leaves every record in the log or in the datasets, and compacting again writes
no duplicate. A failed compaction is logged, counted and retried with back-off;
:attr:`Compactor.error` says so meanwhile (the gateway then refuses new reports
and turns ``/healthz`` red), and what was acknowledged waits in the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_path
from truckcarbon.core.months import local_month, month_label
from truckcarbon.jt808.observe import Metrics, error_text, event
from truckcarbon.jt808.validation import BAD_VEHICLE_ID, QUARANTINE_REASONS
from truckcarbon.jt808.wal import read_segment

LOAD_NAMES = pa.array(["empty", "half", "full"])


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

    def __init__(self, data: Path, metrics: Metrics, dedup_months: int = 2, id_kind: str = "int") -> None:
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
        self.error: str | None = None  # the last periodic compaction's failure, None once one succeeds

    async def run(self, rotate: Callable[[], list[Path]], every_s: float, retry_max_s: float) -> None:
        """Until cancelled: every ``every_s`` compact the segments ``rotate()`` closes (on a worker thread).

        After a failure retry in 1 s, 2 s, 4 s ... up to ``retry_max_s``.
        """
        delay = every_s
        retry = first_retry = min(1.0, retry_max_s)
        while True:
            await asyncio.sleep(delay)
            try:
                segments = rotate()
                await asyncio.to_thread(self.compact, segments)
            except Exception as exc:
                self.metrics.compaction_failures += 1
                self.error = error_text(exc)
                delay, retry = retry, min(retry_max_s, retry * 2)
                event("compaction_failed", logging.ERROR, error=self.error, retry_in_s=delay,
                      failures=self.metrics.compaction_failures)  # fmt: skip
            else:
                if self.error is not None:
                    event("compaction_resumed", failures=self.metrics.compaction_failures)
                self.error = None
                delay, retry = every_s, first_retry

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
                "acc_on": pa.array((sel["status"] & 1).astype(bool)),  # status bit 0: ACC (ignition) on
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
