"""Replay a simulated fleet's pings over JT/T 808: many concurrent terminals register, authenticate, report."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from truckcarbon.core.errors import InputError
from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.codec import (
    MSG_GENERAL_RESPONSE,
    MSG_LOCATION,
    GeneralResponse,
    Header,
    Location,
    decode_frame,
    encode_frame,
)
from truckcarbon.jt808.eventloop import run_async

LOAD_STATUS = {"empty": 0b00, "half": 0b01, "full": 0b11}


@dataclass
class ReplaySummary:
    terminals: int = 0
    sent: int = 0
    acked: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    acked_keys: list[tuple[int, int]] = field(default_factory=list)  # (vehicle_id, ts_ms) of acknowledged reports


def _location(row: dict[str, object]) -> Location | None:
    lon, lat = row["lon"], row["lat"]
    if not (isinstance(lon, float) and isinstance(lat, float) and abs(lon) <= 180 and abs(lat) <= 90):
        return None
    status = 0b10  # positioned
    load = row.get("load_state")
    if isinstance(load, str) and load in LOAD_STATUS:
        status |= LOAD_STATUS[load] << 8
    speed = row.get("speed_kmh")
    odo, fuel = row.get("odometer_km"), row.get("fuel_level_l")
    ts = row["ts"]
    assert isinstance(ts, dt.datetime)
    return Location(
        lat=lat, lon=lon, time=ts.replace(microsecond=0), status=status,
        speed_kmh=float(speed) if isinstance(speed, float) and np.isfinite(speed) else 0.0,
        odometer_km=float(odo) if isinstance(odo, float) and np.isfinite(odo) else None,
        fuel_l=float(fuel) if isinstance(fuel, float) and np.isfinite(fuel) else None,
    )  # fmt: skip


async def _terminal(vid: int, rows: list[dict[str, object]], host: str, port: int, speedup: float,
                    window: int, summary: ReplaySummary) -> None:  # fmt: skip
    phone = f"{vid:012d}"
    term = await Terminal.open(host, port, phone)
    writer = term.writer
    try:
        await term.login(str(vid)[-7:])
        pending: dict[int, int] = {}  # serial -> ts_ms
        serial = 2
        start_wall, start_ts = time.monotonic(), None

        async def read_acks(block: bool) -> None:
            while pending and (block or len(pending) >= window):
                for f in await term.frames():
                    header, b = decode_frame(f)
                    if header.msg_id == MSG_GENERAL_RESPONSE:
                        resp = GeneralResponse.decode(b)
                        ts = pending.pop(resp.serial, None)
                        if ts is None:
                            continue
                        if resp.result == 0:
                            summary.acked += 1
                            summary.acked_keys.append((vid, ts))
                        else:
                            summary.failed += 1
                if not block:
                    break

        for row in rows:
            loc = _location(row)
            if loc is None:
                summary.skipped += 1
                continue
            if speedup > 0:
                ts_s = loc.time.timestamp()
                start_ts = ts_s if start_ts is None else start_ts
                delay = (ts_s - start_ts) / speedup - (time.monotonic() - start_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
            serial = (serial + 1) & 0xFFFF
            pending[serial] = int(loc.time.timestamp() * 1000)
            writer.write(encode_frame(Header(MSG_LOCATION, phone, serial), loc.encode()))
            summary.sent += 1
            if len(pending) >= window:
                await writer.drain()
                await read_acks(False)
        await writer.drain()
        await read_acks(True)
    finally:
        term.close()


async def replay_async(pings: Path, vehicles: Path, host: str, port: int, terminals: int = 100,
                       speedup: float = 0.0, window: int = 64,
                       summary: ReplaySummary | None = None) -> ReplaySummary:  # fmt: skip
    """Send every vehicle's pings, ``terminals`` vehicles at a time, and count the acknowledgements.

    ``summary`` (optional) is filled as acknowledgements arrive, so a caller keeps
    what was acknowledged even when the gateway goes away mid-way.
    """
    if not pings.exists() or not vehicles.exists():
        raise InputError(f"replay needs existing --pings and --vehicles ({pings}, {vehicles})")
    table = ds.dataset(pings, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    cols = [c for c in ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km", "fuel_level_l")
            if c in table.column_names]  # fmt: skip
    table = table.select(cols).sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    if "load_state" in cols:
        table = table.set_column(cols.index("load_state"), "load_state", pc.cast(table["load_state"], pa.string()))
    summary = summary if summary is not None else ReplaySummary()
    started = time.monotonic()
    ids = table["vehicle_id"].to_numpy()
    bounds = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [ids.size]])
    semaphore = asyncio.Semaphore(max(1, terminals))

    async def one(a: int, b: int) -> None:
        async with semaphore:
            rows = table.slice(a, b - a).to_pylist()
            await _terminal(int(ids[a]), rows, host, port, speedup, window, summary)

    summary.terminals = len(starts)
    await asyncio.gather(*(one(int(a), int(b)) for a, b in zip(starts, ends, strict=True)))
    summary.seconds = time.monotonic() - started
    return summary


def replay(pings: Path, vehicles: Path, to: str, terminals: int = 100, speedup: float = 0.0) -> ReplaySummary:
    """:func:`replay_async` against ``HOST:PORT``."""
    host, _, port = to.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--to {to!r}: use HOST:PORT, e.g. 127.0.0.1:7808")
    return run_async(replay_async(pings, vehicles, host, int(port), terminals, speedup))
