"""Benchmark: JT/T 808 gateway throughput over loopback with thousands of concurrent terminals.

    python benchmarks/bench_gateway.py [--terminals 2000] [--reports 20] [--batch 30]

A gateway runs in a child process. Every terminal registers, authenticates, then
(1) sends ``--reports`` single 0x0200 reports, pipelined, and (2) the same number
of 0x0704 batches of ``--batch`` reports; a report counts when its 0x8001 success
arrives (the gateway acknowledges only after fsync). Prints reports/s of both,
the gateway's peak memory, and the ratio of the batch rate to the single rate.
Targets: >= 20,000 single reports/s and >= 100,000 batched reports/s, 2,000 terminals.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.eventloop import run_async
from truckcarbon.jt808.frame import Header, decode_frame, encode_frame
from truckcarbon.jt808.location import BatchLocation, Location
from truckcarbon.jt808.messages import MSG_BATCH_LOCATION, MSG_GENERAL_RESPONSE, MSG_LOCATION, GeneralResponse
from truckcarbon.jt808.process import GatewayProcess


async def connect(k: int, port: int) -> Terminal:
    term = await Terminal.open("127.0.0.1", port, f"{k + 1:012d}")
    await term.login(str(k + 1), maker="BENCH", model="B")
    return term


async def send(term: Terminal, frames: list[bytes], per_frame: int) -> int:
    """Send all frames (pipelined), return the reports acknowledged with success."""
    term.writer.write(b"".join(frames))
    await term.writer.drain()
    acked = answered = 0
    while answered < len(frames):
        for f in await term.frames():
            header, body = decode_frame(f)
            if header.msg_id == MSG_GENERAL_RESPONSE:
                answered += 1
                acked += per_frame if GeneralResponse.decode(body).result == 0 else 0
    return acked


def frames_for(k: int, term: Terminal, n: int, batch: int, start: int) -> list[bytes]:
    # Reports of the last days: within the gateway's window of valid times, so they go to the pings dataset.
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    out = []
    for i in range(n):
        if batch == 1:
            loc = Location(lat=30 + k * 1e-3, lon=110 + i * 1e-4, time=base + dt.timedelta(seconds=start + i))
            out.append(encode_frame(Header(MSG_LOCATION, term.phone, (start + i) & 0xFFFF), loc.encode()))
        else:
            items = tuple(
                Location(lat=30 + k * 1e-3, lon=110 + j * 1e-5, time=base + dt.timedelta(seconds=start + i * batch + j))
                for j in range(batch)
            )
            out.append(
                encode_frame(
                    Header(MSG_BATCH_LOCATION, term.phone, (start + i) & 0xFFFF), BatchLocation(items).encode()
                )
            )
    return out


async def bench(port: int, terminals: int, reports: int, batch: int) -> tuple[float, float]:
    terms: list[Terminal] = []
    for k in range(0, terminals, 200):
        terms += await asyncio.gather(*(connect(j, port) for j in range(k, min(k + 200, terminals))))
    single = [frames_for(k, t, reports, 1, 0) for k, t in enumerate(terms)]
    batched = [frames_for(k, t, reports, batch, 10_000) for k, t in enumerate(terms)]
    t0 = time.perf_counter()
    acked = sum(await asyncio.gather(*(send(t, f, 1) for t, f in zip(terms, single, strict=True))))
    rate_single = acked / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    acked_b = sum(await asyncio.gather(*(send(t, f, batch) for t, f in zip(terms, batched, strict=True))))
    rate_batch = acked_b / (time.perf_counter() - t0)
    for t in terms:
        t.close()
    if acked != terminals * reports or acked_b != terminals * reports * batch:
        raise SystemExit(f"not every report was acknowledged: {acked}, {acked_b}")
    return rate_single, rate_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--batch", type=int, default=30, help="reports per 0x0704 frame (30 fit the 1023-byte body)")
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    # Every terminal connects from 127.0.0.1: the per-address cap is lifted.
    gateway = GatewayProcess(data / "gw", "--max-reports-per-s", "1000000", "--max-connections-per-address",
                             str(args.terminals + 10), log=data / "gateway.log")  # fmt: skip
    try:
        single, batched = run_async(bench(gateway.port, args.terminals, args.reports, args.batch))
        peak_mib = gateway.peak_rss_mib()
    finally:
        gateway.stop()
    print(f"{args.terminals:,} terminals, {args.reports} frames each, batches of {args.batch}")
    print(f"single 0x0200: {single:,.0f} reports/s acknowledged durably (target >= 20,000)")
    print(f"batched 0x0704: {batched:,.0f} reports/s acknowledged durably (target >= 100,000)")
    print(f"gateway peak memory: {peak_mib:.0f} MiB")
    print(f"ratio batched / single: {batched / max(single, 1e-9):.1f}")


if __name__ == "__main__":
    main()
