"""Helpers of the jt808 tests: an in-process gateway, a child-process one, raw frames, the datasets written."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import struct
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.frame import Header, decode_frame, encode_frame
from truckcarbon.jt808.gateway import Gateway
from truckcarbon.jt808.location import BatchLocation, Location
from truckcarbon.jt808.messages import MSG_GENERAL_RESPONSE, MSG_LOCATION, GeneralResponse
from truckcarbon.jt808.process import GatewayProcess
from truckcarbon.jt808.validation import Limits

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
PHONE = "013800000007"  # a terminal (its vehicle: terminal id 7, plate PLATE)
OTHER = "013800000666"  # another terminal
PLATE = "京A00007"
T0 = dt.datetime(2022, 3, 1, tzinfo=dt.UTC)
# SmallChi/JT808, src/JT808.Protocol.Test/Simples/Demo3.cs (commit d47b1364): a 2013 location report of
# terminal 123456789012, serial 1, alarm 1, status 2, lat 12222222, lon 132444444 (x 1e-6 deg), altitude 40 m,
# speed 60 (0.1 km/h), direction 0, 2018-10-15 10:10:10 GMT+8, mileage 100 (0.1 km), oil 125 (0.1 L);
# the oil value 0x7d is escaped as 7d 01.
PUBLISHED = bytes.fromhex(
    "7E020000261234567890120001000000010000000200BA7F0E07E4F11C0028003C00001810151010100104000000640202007D016C7E"
)


@contextlib.asynccontextmanager
async def running(data: Path, **options: Any) -> AsyncIterator[tuple[Gateway, int]]:
    """A gateway on a free port in this event loop; stopped (log compacted) on exit.

    Reports of any age are taken unless ``limits`` is given.
    """
    options.setdefault("limits", Limits(max_age_s=0))
    gateway = Gateway(GatewayConfig(data=data, port=0, **options))
    port = await gateway.start()
    try:
        yield gateway, port
    finally:
        await gateway.stop()


@contextlib.asynccontextmanager
async def terminal(port: int, phone: str) -> AsyncIterator[Terminal]:
    """A connection to the gateway on ``port`` as terminal ``phone``, closed on exit even when the test fails.

    A connection left open by a failed test would be found by the garbage collector
    in a later test, after the event loop is gone, and fail that one with an
    unclosed-socket ResourceWarning.
    """
    term = await Terminal.open("127.0.0.1", port, phone)
    try:
        yield term
    finally:
        term.close()


async def frames_until(
    term: Terminal, want: int, count: int = 1, timeout_s: float = 10.0
) -> list[tuple[Header, bytes]]:
    """Frames from the gateway until ``count`` of message id ``want`` have come (all frames read are returned)."""
    got: list[tuple[Header, bytes]] = []
    async with asyncio.timeout(timeout_s):
        while sum(h.msg_id == want for h, _ in got) < count:
            got += [decode_frame(f) for f in await term.frames()]
    return got


async def acks(term: Terminal, count: int = 1) -> list[GeneralResponse]:
    """The next ``count`` 0x8001 answers."""
    got = await frames_until(term, MSG_GENERAL_RESPONSE, count)
    return [GeneralResponse.decode(b) for h, b in got if h.msg_id == MSG_GENERAL_RESPONSE]


async def closed_by_gateway(term: Terminal, timeout_s: float = 10.0) -> bool:
    """True once the gateway closes the connection (what it sends meanwhile is read and dropped)."""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                if not await term.reader.read(1 << 16):
                    return True
            except ConnectionError:
                return True


def report(phone: str, serial: int, when: dt.datetime = NOW, **fields: Any) -> bytes:
    fields.setdefault("lat", 30.5)
    fields.setdefault("lon", 114.3)
    return encode_frame(Header(MSG_LOCATION, phone, serial), Location(time=when, **fields).encode())


def dataset_rows(data: Path, folder: str = "pings") -> list[dict[str, Any]]:
    """The rows of a dataset the gateway wrote (``pings`` or ``quarantine``), ``ts`` as epoch milliseconds.

    Safe while the gateway compacts: the files are listed once and each one listed
    is whole (written under a hidden name, then renamed). Before the first file is
    renamed into place the folders may exist without any file: no rows then.
    """
    if not (data / folder).exists():
        return []
    dataset = ds.dataset(data / folder, format="parquet", partitioning="hive" if folder == "pings" else None)
    if not dataset.files:  # the first compaction made the partition folder, its file is not in place yet
        return []
    t = dataset.to_table()
    t = t.set_column(t.column_names.index("ts"), "ts", pc.cast(t["ts"], "int64"))
    return t.to_pylist()


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def dataset_keys(data: Path) -> list[tuple[Any, int]]:
    """(vehicle_id, ts ms) of every row of the pings dataset."""
    return [(r["vehicle_id"], r["ts"]) for r in dataset_rows(data)]


async def poll(check: Any, timeout_s: float = 30.0) -> None:
    """Wait until ``check()`` is true (a test that fails waits ``timeout_s``, one that passes does not)."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)


def child_gateway(data: Path, *options: str) -> GatewayProcess:
    """A gateway child process that compacts every second and takes reports of any age (the worlds are of 2022)."""
    return GatewayProcess(data, "--compact-s", "1", "--max-age-days", "0", *options)


def batch(n: int) -> BatchLocation:
    return BatchLocation(tuple(
        Location(lat=30 + k * 1e-3, lon=120.0, time=T0 + dt.timedelta(seconds=30 * k), speed_kmh=50.0,
                 odometer_km=float(k), fuel_l=100.0)
        for k in range(n)
    ))  # fmt: skip


def raw_location(lat_raw: int, lon_raw: int, when: dt.datetime, speed_raw: int = 0, status: int = 0b10,
                 items: bytes = b"") -> bytes:  # fmt: skip
    stamp = bytes.fromhex(when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%y%m%d%H%M%S"))
    return struct.pack(">IIIIHHH", 0, status, lat_raw, lon_raw, 0, speed_raw, 0) + stamp + items


class FakeWriter:
    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class StreamWriterStub(FakeWriter):
    async def drain(self) -> None:
        pass


class BackgroundReplay:
    """A fleet replayed to the gateway on ``port`` from a thread (6 terminals, reconnecting) while a test acts."""

    def __init__(self, world: Path, port: int) -> None:
        from truckcarbon.jt808.replay import ReplaySummary

        self.world, self.port = world, port
        self.summary = ReplaySummary()
        self.errors: list[BaseException] = []
        self.total = ds.dataset(world / "pings", format="parquet", partitioning="hive").count_rows()
        self.thread = threading.Thread(target=self.load)
        self.thread.start()

    def load(self) -> None:
        from truckcarbon.jt808.replay import replay_async

        try:
            asyncio.run(replay_async(self.world / "pings", self.world / "vehicles.parquet", "127.0.0.1", self.port,
                                     6, window=16, summary=self.summary, reconnect_s=60))  # fmt: skip
        except BaseException as exc:
            self.errors.append(exc)

    def wait_for(self, share: float, timeout_s: float = 60.0) -> None:
        """Until ``share`` of the fleet's reports are acknowledged (or the replay ended)."""
        deadline = time.monotonic() + timeout_s
        while self.summary.acked < share * self.total and time.monotonic() < deadline and self.thread.is_alive():
            time.sleep(0.01)

    def check_every_acknowledged_report_landed_once(self, data: Path) -> None:
        """The replay finished, everything was acknowledged, and is in the pings or the quarantine once."""
        summary = self.summary
        self.thread.join(timeout=120)
        assert not self.errors and not self.thread.is_alive()
        assert summary.acked == summary.sent == self.total - summary.skipped and summary.failed == 0
        acked = set(summary.acked_keys)  # (the simulator repeats some rows: a set)
        pings = [(r["vehicle_id"], r["ts"]) for r in dataset_rows(data)]
        aside = {(int(r["vehicle_id"]), r["ts"]) for r in dataset_rows(data, "quarantine")}
        assert len(pings) == len(set(pings)), "a report stored twice"
        assert set(pings) | aside == acked, f"{len(acked - set(pings) - aside)} acknowledged reports lost"
