"""Replay a fleet's pings over JT/T 808: many concurrent terminals register, authenticate, report.

Each vehicle is one terminal. It registers once (the code it is given is kept in
``codes``, as a terminal keeps it, and used on every later connection) and sends
its reports pipelined, at most ``window`` unanswered. When the connection breaks
(the gateway restarts, a read times out) it reconnects with back-off (0.1 s
doubling to 2 s) for up to ``reconnect_s`` and sends again every report not
acknowledged yet; the gateway's deduplication makes a report that was stored
but whose acknowledgement was lost count once. The summary tells what was sent,
acknowledged, sent again, refused (answered with a result other than 0, or the
terminal's registration refused) and given up.

Phone numbers: an integer vehicle id ``v`` is terminal ``f"{v:012d}"`` with
terminal id ``str(v)[-7:]`` (the gateway binds it to vehicle ``v``); a text id of
at most 12 digits is its own phone number, zero-padded (``013912345678``); any
other text id gets a 12-digit number derived from it, and its plate (from the
vehicles table) is sent so that a gateway given that table binds it to the id.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_write_text
from truckcarbon.jt808.client import AuthenticationRefusedError, RegistrationRefusedError, Terminal
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.frame import FrameError, decode_frame, frame_bytes
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.messages import MSG_GENERAL_RESPONSE, MSG_LOCATION, GeneralResponse

LOAD_STATUS = {"empty": 0b00, "half": 0b01, "full": 0b11}
READ_TIMEOUT_S = 30.0


@dataclass
class ReplaySummary:
    terminals: int = 0
    sent: int = 0  # reports sent (each once, however often it was sent again)
    acked: int = 0  # acknowledged with success
    resent: int = 0  # sends after the first (after a reconnection)
    refused: int = 0  # answered with a result other than 0, or whose terminal's registration was refused
    unsent: int = 0  # not acknowledged when the gateway stayed away longer than reconnect_s
    skipped: int = 0  # rows that are not a fix (bad coordinates)
    reconnects: int = 0
    seconds: float = 0.0
    acked_keys: list[tuple[Any, int]] = field(default_factory=list)  # (vehicle_id, ts_ms) of acknowledged reports

    @property
    def failed(self) -> int:
        """Reports not acknowledged with success (refused or given up)."""
        return self.refused + self.unsent


def phone_for(vid: Any) -> str:
    """The terminal phone number replay uses for vehicle ``vid`` (see the module docstring)."""
    if isinstance(vid, int | np.integer):
        return f"{int(vid):012d}"
    text = str(vid)
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return text.rjust(12, "0")
    return "9" + f"{int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10**11:011d}"


def _location(row: dict[str, object]) -> Location | None:
    lon, lat = row["lon"], row["lat"]
    if not (isinstance(lon, float) and isinstance(lat, float) and abs(lon) <= 180 and abs(lat) <= 90):
        return None
    status = 0b10  # positioned
    load = row.get("load_state")
    if isinstance(load, str) and load in LOAD_STATUS:
        status |= LOAD_STATUS[load] << 8
    if row.get("acc_on") is True:
        status |= 0b1  # ACC (ignition) on
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


@dataclass
class _Options:
    host: str
    port: int
    speedup: float
    window: int
    reconnect_s: float
    codes: dict[str, str]


async def _terminal(vid: Any, plate: str, rows: list[dict[str, object]], opt: _Options,
                    summary: ReplaySummary) -> None:  # fmt: skip
    phone = phone_for(vid)
    terminal_id = str(vid)[-7:] if isinstance(vid, int | np.integer) else phone[-7:]
    items: list[tuple[int, bytes]] = []  # (ts_ms, 0x0200 body)
    for row in rows:
        loc = _location(row)
        if loc is None:
            summary.skipped += 1
        else:
            items.append((int(loc.time.timestamp() * 1000), loc.encode()))
    todo = list(range(len(items)))  # not answered yet, in order
    sent = bytearray(len(items))
    serial = 2
    start_wall, start_ts = time.monotonic(), items[0][0] if items else 0
    failing_since: float | None = None
    backoff = 0.1
    while todo:
        done: set[int] = set()
        term: Terminal | None = None
        try:
            term = await asyncio.wait_for(Terminal.open(opt.host, opt.port, phone), READ_TIMEOUT_S)
            code = opt.codes.get(phone)
            if code is None:
                code = await asyncio.wait_for(term.register(terminal_id, plate), READ_TIMEOUT_S)
                opt.codes[phone] = code
            await asyncio.wait_for(term.authenticate(code), READ_TIMEOUT_S)
            failing_since, backoff = None, 0.1
            pending: dict[int, int] = {}  # serial -> item
            queue = iter(list(todo))
            more = True
            while more or pending:
                while more and len(pending) < opt.window:
                    k = next(queue, None)
                    if k is None:
                        more = False
                        break
                    if opt.speedup > 0 and not sent[k]:
                        delay = (items[k][0] - start_ts) / 1000 / opt.speedup - (time.monotonic() - start_wall)
                        if delay > 0:
                            await asyncio.sleep(delay)
                    serial = (serial + 1) & 0xFFFF
                    pending[serial] = k
                    term.writer.write(frame_bytes(MSG_LOCATION, phone, serial, None, items[k][1]))
                    if sent[k]:
                        summary.resent += 1
                    else:
                        sent[k] = 1
                        summary.sent += 1
                await term.writer.drain()
                if not pending:
                    break
                for f in await asyncio.wait_for(term.frames(), READ_TIMEOUT_S):
                    header, body = decode_frame(f)
                    if header.msg_id != MSG_GENERAL_RESPONSE:
                        continue
                    resp = GeneralResponse.decode(body)
                    got = pending.pop(resp.serial, None)
                    if got is None:
                        continue
                    done.add(got)
                    if resp.result == 0:
                        summary.acked += 1
                        summary.acked_keys.append((vid, items[got][0]))
                    else:
                        summary.refused += 1
        except RegistrationRefusedError:
            summary.refused += len(todo) - len(done)
            todo = []
        except (ConnectionError, OSError, TimeoutError, FrameError) as exc:
            if isinstance(exc, AuthenticationRefusedError):
                opt.codes.pop(phone, None)  # the code is void (released or renewed): register again
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since > opt.reconnect_s:
                summary.unsent += len(todo) - len(done)
                todo = []
            else:
                summary.reconnects += 1
                await asyncio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
        finally:
            if term is not None:
                term.close()
        todo = [k for k in todo if k not in done]


def _groups(table: pa.Table) -> list[tuple[int, int]]:
    """[start, end) row ranges of each vehicle in a table sorted by vehicle."""
    ids = table["vehicle_id"].combine_chunks()
    n = len(ids)
    if n == 0:
        return []
    change = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False) if n > 1 else []
    bounds = (np.flatnonzero(np.asarray(change, dtype=bool)) + 1).tolist()
    return list(zip([0, *bounds], [*bounds, n], strict=True))


def _plates(vehicles: Path) -> dict[Any, str]:
    """Vehicle id -> plate from the vehicles table (empty when it has no plate column or is not Parquet)."""
    try:
        table = pq.read_table(vehicles) if vehicles.suffix.lower() != ".csv" else None
    except (OSError, pa.ArrowInvalid):
        return {}
    if table is None or not {"vehicle_id", "plate"} <= set(table.column_names):
        return {}
    pairs = zip(table["vehicle_id"].to_pylist(), table["plate"].to_pylist(), strict=True)
    return {v: p for v, p in pairs if p is not None}


async def replay_async(pings: Path, vehicles: Path, host: str, port: int, terminals: int = 100,
                       speedup: float = 0.0, window: int = 64, summary: ReplaySummary | None = None,
                       codes: dict[str, str] | None = None, reconnect_s: float = 60.0) -> ReplaySummary:  # fmt: skip
    """Send every vehicle's pings, ``terminals`` vehicles at a time, and count the acknowledgements.

    ``summary`` (optional) is filled as acknowledgements arrive, so a caller keeps
    what was acknowledged even when the replay is stopped mid-way. ``codes``
    (phone -> authentication code) is used and filled: pass the same dict to
    replay again against the same gateway.
    """
    if not pings.exists() or not vehicles.exists():
        raise InputError(f"replay needs existing --pings and --vehicles ({pings}, {vehicles})")
    table = ds.dataset(pings, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
    cols = [c for c in ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km", "fuel_level_l",
                        "acc_on") if c in table.column_names]  # fmt: skip
    table = table.select(cols).sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    if "load_state" in cols:
        table = table.set_column(cols.index("load_state"), "load_state", pc.cast(table["load_state"], pa.string()))
    text_ids = pa.types.is_string(table.schema.field("vehicle_id").type)
    plates = _plates(vehicles) if text_ids else {}
    summary = summary if summary is not None else ReplaySummary()
    opt = _Options(host, port, speedup, max(1, window), reconnect_s, codes if codes is not None else {})
    started = time.monotonic()
    groups = _groups(table)
    semaphore = asyncio.Semaphore(max(1, terminals))

    async def one(a: int, b: int) -> None:
        async with semaphore:
            vid = table["vehicle_id"][a].as_py()
            await _terminal(vid, plates.get(vid, ""), table.slice(a, b - a).to_pylist(), opt, summary)

    summary.terminals = len(groups)
    await asyncio.gather(*(one(a, b) for a, b in groups))
    summary.seconds = time.monotonic() - started
    return summary


def read_codes(path: Path | None) -> dict[str, str]:
    """Phone -> authentication code from a codes file written by :func:`write_codes` ({} when absent)."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a codes file written by replay: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"{path}: not a codes file written by replay (phone -> code)")
    return data


def write_codes(path: Path, codes: dict[str, str]) -> None:
    """The codes, readable by the owner only (they are the terminals' secrets)."""
    atomic_write_text(path, json.dumps(codes, indent=0, sort_keys=True))
    os.chmod(path, 0o600)


def replay(pings: Path, vehicles: Path, to: str, terminals: int = 100, speedup: float = 0.0,
           acked_out: Path | None = None, codes_file: Path | None = None,
           reconnect_s: float = 60.0) -> ReplaySummary:  # fmt: skip
    """:func:`replay_async` against ``HOST:PORT``; optionally the acknowledged (vehicle, time) pairs as CSV."""
    host, _, port = to.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--to {to!r}: use HOST:PORT, e.g. 127.0.0.1:7808")
    codes = read_codes(codes_file)
    summary = ReplaySummary()
    try:
        run_async(replay_async(pings, vehicles, host, int(port), terminals, speedup, summary=summary, codes=codes,
                               reconnect_s=reconnect_s))  # fmt: skip
    finally:
        if codes_file is not None:
            write_codes(codes_file, codes)
        if acked_out is not None:
            acked_out.parent.mkdir(parents=True, exist_ok=True)
            with open(acked_out, "w", newline="", encoding="utf-8") as fh:
                out = csv.writer(fh)
                out.writerow(["vehicle_id", "ts_ms"])
                out.writerows(summary.acked_keys)
    return summary
