"""Benchmark: JT/T 808 gateway throughput over loopback with thousands of concurrent terminals.

    python benchmarks/bench_gateway.py [--terminals 2000] [--reports 20] [--batch 30] [--workers 2]

A gateway runs in a child process. Every terminal registers, authenticates, then
(1) sends ``--reports`` single 0x0200 reports, pipelined, and (2) the same number
of 0x0704 batches of ``--batch`` reports; a report counts when its 0x8001 success
arrives (the gateway acknowledges only after fsync). Prints reports/s of both,
the gateway's peak memory, and the ratio of the batch rate to the single rate.
Targets: >= 20,000 single reports/s and >= 100,000 batched reports/s, 2,000 terminals.

``--workers N``: the same load against ``gateway --workers 1`` and then
``--workers N`` in the same run; prints both rates and their ratio (target 1.7
for 2 workers on 2 cores), and the CPU seconds the load generator and the
gateway processes used per million reports.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Callable
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


async def bench(port: int, terminals: int, reports: int, batch: int,
                cpu: Callable[[], tuple[float, float]]) -> dict[str, float]:  # fmt: skip
    """Rates of both phases, and the CPU microseconds per report of the load generator and the gateway in each."""
    terms: list[Terminal] = []
    for k in range(0, terminals, 200):
        terms += await asyncio.gather(*(connect(j, port) for j in range(k, min(k + 200, terminals))))
    out: dict[str, float] = {}
    for phase, per_frame, start in (("single", 1, 0), ("batched", batch, 10_000)):
        frames = [frames_for(k, t, reports, per_frame, start) for k, t in enumerate(terms)]
        c0, t0 = cpu(), time.perf_counter()
        acked = sum(await asyncio.gather(*(send(t, f, per_frame) for t, f in zip(terms, frames, strict=True))))
        seconds, c1 = time.perf_counter() - t0, cpu()
        if acked != terminals * reports * per_frame:
            raise SystemExit(f"not every report was acknowledged: {acked} of {terminals * reports * per_frame}")
        out[phase] = acked / seconds
        out[f"{phase}_client_us"] = (c1[0] - c0[0]) / acked * 1e6
        out[f"{phase}_gateway_us"] = (c1[1] - c0[1]) / acked * 1e6
    for t in terms:
        t.close()
    return out


def run_once(args: argparse.Namespace, workers: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    # Every terminal connects from 127.0.0.1: the per-address cap is lifted.
    gateway = GatewayProcess(data / "gw", "--max-reports-per-s", "1000000", "--max-connections-per-address",
                             str(args.terminals + 10), "--workers", str(workers), log=data / "gateway.log")  # fmt: skip

    def cpu() -> tuple[float, float]:
        own = os.times()
        return own.user + own.system, gateway_cpu_s(gateway)

    try:
        out = run_async(bench(gateway.port, args.terminals, args.reports, args.batch, cpu))
        out["peak_mib"] = gateway.peak_rss_mib()
    finally:
        gateway.stop()
        shutil.rmtree(data, ignore_errors=True)
    return out


def gateway_cpu_s(gateway: GatewayProcess) -> float:
    """CPU seconds (user + system) of the gateway process and its workers so far (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in gateway.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--reports", type=int, default=20)
    ap.add_argument("--batch", type=int, default=30, help="reports per 0x0704 frame (30 fit the 1023-byte body)")
    ap.add_argument("--workers", type=int, default=1, help="also run against gateway --workers N and compare")
    args = ap.parse_args()
    print(f"{args.terminals:,} terminals, {args.reports} frames each, batches of {args.batch}")
    runs = {1: run_once(args, 1)}
    if args.workers > 1:
        runs[args.workers] = run_once(args, args.workers)
    for n, r in runs.items():
        print(
            f"--workers {n}: single 0x0200 {r['single']:,.0f} reports/s (target >= 20,000), batched 0x0704 "
            f"{r['batched']:,.0f} reports/s (target >= 100,000), peak memory {r['peak_mib']:.0f} MiB"
        )
        print(
            f"  CPU us per report, gateway / load generator: single {r['single_gateway_us']:.1f} / "
            f"{r['single_client_us']:.1f}, batched {r['batched_gateway_us']:.2f} / {r['batched_client_us']:.2f}"
        )
    one = runs[1]
    print(f"ratio batched / single: {one['batched'] / max(one['single'], 1e-9):.1f}")
    if args.workers > 1:
        n = runs[args.workers]
        print(
            f"ratio --workers {args.workers} / --workers 1: single {n['single'] / one['single']:.2f}, "
            f"batched {n['batched'] / one['batched']:.2f} (target >= 1.7 on 2 cores; cores: {os.cpu_count()})"
        )


if __name__ == "__main__":
    main()
