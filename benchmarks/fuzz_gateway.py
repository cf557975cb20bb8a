"""Fuzz the gateway: random bytes, mutated valid frames and truncated frames from many connections.

    python benchmarks/fuzz_gateway.py [--seconds 60] [--connections 20]

Starts a gateway in a child process, sends garbage for ``--seconds``, then checks
that the server still registers a terminal and acknowledges a report, and prints
the reject counters and the ratio of frames answered to frames sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.codec import (
    MSG_AUTH,
    MSG_GENERAL_RESPONSE,
    MSG_LOCATION,
    MSG_REGISTER,
    Authentication,
    GeneralResponse,
    Header,
    Location,
    Registration,
    encode_frame,
)
from truckcarbon.jt808.process import GatewayProcess


def valid_frames(rng: random.Random) -> list[bytes]:
    phone = f"{rng.randrange(10**12):012d}"
    loc = Location(lat=rng.uniform(18, 53), lon=rng.uniform(73, 135), time=dt.datetime(2023, 3, 1, tzinfo=dt.UTC))
    return [
        encode_frame(Header(MSG_REGISTER, phone, 1), Registration(0, 0, "FUZZ", "F", "1", 1, "").encode()),
        encode_frame(Header(MSG_AUTH, phone, 2), Authentication("x" * rng.randrange(20)).encode()),
        encode_frame(Header(MSG_LOCATION, phone, 3), loc.encode()),
    ]


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    choice = rng.randrange(5)
    if choice == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
    if choice == 1 and len(data) > 4:
        data[rng.randrange(1, len(data) - 1)] ^= 1 << rng.randrange(8)
    elif choice == 2:
        return bytes(data[: rng.randrange(1, len(data))])
    elif choice == 3:
        return (
            b"\x7e" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 6000))).replace(b"\x7e", b"") + b"\x7e"
        )
    return bytes(data)


async def attack(port: int, seconds: float, seed: int, sent: list[int]) -> None:
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(rng.randrange(1, 50)):
                writer.write(mutate(rng.choice(valid_frames(rng)), rng))
                sent[0] += 1
            await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            await asyncio.sleep(0.01)


async def still_serving(port: int) -> bool:
    term = await Terminal.open("127.0.0.1", port, "000000000777")
    await term.login("777", maker="OK", model="OK")
    loc = Location(lat=39.9, lon=116.4, time=dt.datetime(2023, 3, 1, tzinfo=dt.UTC))
    body = await term.ask(encode_frame(Header(MSG_LOCATION, term.phone, 3), loc.encode()), MSG_GENERAL_RESPONSE)
    term.close()
    return GeneralResponse.decode(body).result == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=20)
    args = ap.parse_args()
    data = Path(tempfile.mkdtemp(prefix="fuzz-gw-"))
    gateway = GatewayProcess(data / "gw", "--idle-timeout-s", "2", log=data / "gateway.log")
    try:
        sent = [0]

        async def run() -> bool:
            await asyncio.gather(*(attack(gateway.port, args.seconds, k, sent) for k in range(args.connections)))
            return await still_serving(gateway.port)

        ok = asyncio.run(run())
        alive = gateway.alive
    finally:
        final = gateway.stop(timeout_s=60)
    rejected = sum(final.get("rejects", {}).values())
    print(f"fuzz: {sent[0]:,} frames over {args.seconds:.0f} s from {args.connections} connections")
    print(f"server alive: {alive}; still registers and acknowledges: {ok}")
    print(f"rejects: {final.get('rejects')}")
    print(f"ratio rejected / sent: {rejected / max(sent[0], 1):.2f}")
    if not (alive and ok):
        raise SystemExit("the gateway did not survive the fuzzing")


if __name__ == "__main__":
    main()
