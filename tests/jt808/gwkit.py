"""Helpers of the gateway tests: an in-process gateway, a raw connection, the datasets it wrote."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.frame import Header, decode_frame, encode_frame
from truckcarbon.jt808.gateway import Gateway
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.messages import MSG_GENERAL_RESPONSE, MSG_LOCATION, GeneralResponse
from truckcarbon.jt808.validation import Limits

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


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
