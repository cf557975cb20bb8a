"""Fuzz the gateway: random bytes and mutated frames of every message from many connections.

    python benchmarks/fuzz_gateway.py [--seconds 60] [--connections 20] [--workers 1]

Starts a gateway in a child process and, for ``--seconds``, sends from
``--connections`` concurrent connections (each opened anew after 1-50 frames):
random bytes, bit flips, truncations, oversize runs, and valid frames of every
message (registration, authentication with codes in any bytes, location reports,
batches, sub-packages, heartbeats, deregistration, 2013 and 2019 headers) mutated
at the unescaped level and given a right check code again, so that they get past
the check and into the decoders. Meanwhile a valid terminal on its own connection
sends a report every 0.2 s and must have each acknowledged. At the end the
gateway must still register a terminal and acknowledge a report, its log must
hold no traceback and its counters no internal error.

Prints: frames sent, tracebacks, internal errors, the valid terminal's reports
acknowledged and its longest wait, the reject counters, and the ratio of frames
rejected to frames sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import random
import struct
import tempfile
import time
from pathlib import Path

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.frame import (
    Header,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    frame_bytes,
    split_message,
    unescape,
)
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_DEREGISTER,
    MSG_GENERAL_RESPONSE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    Authentication,
    GeneralResponse,
    Registration,
)
from truckcarbon.jt808.process import GatewayProcess

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def valid_frames(rng: random.Random, own: str | None = None) -> list[bytes]:
    """Frames of every message from a random phone, or from ``own`` (a terminal authenticated on the connection)."""
    v2019 = rng.random() < 0.3
    phone = (own or f"{rng.randrange(10**12):012d}").rjust(20 if v2019 else 12, "0")
    version = 1 if v2019 else None
    when = NOW - dt.timedelta(seconds=rng.randrange(86400))
    loc = Location(
        lat=rng.uniform(18, 53),
        lon=rng.uniform(73, 135),
        time=when,
        status=rng.getrandbits(32) & ~0b1100,
        speed_kmh=rng.uniform(0, 120),
        odometer_km=rng.uniform(0, 1e6),
        fuel_l=rng.uniform(0, 600),
    )
    batch = struct.pack(">HB", 3, 1) + 3 * (struct.pack(">H", 28) + loc.encode()[:28])
    reg = Registration(rng.randrange(99), rng.randrange(9999), "FUZZ", "F", str(rng.randrange(10**6)), 1, "鲁A12345")
    code = rng.choice([b"x" * rng.randrange(20), rng.randbytes(rng.randrange(1, 40)), bytes.fromhex("b9fabcd2")])
    auth = Authentication("x").encode(v2019)
    auth = bytes((len(code),)) + code + auth[2:] if v2019 else code
    return [
        frame_bytes(MSG_REGISTER, phone, 1, version, reg.encode(v2019)),
        frame_bytes(MSG_AUTH, phone, 2, version, auth),
        frame_bytes(MSG_LOCATION, phone, 3, version, loc.encode()),
        frame_bytes(MSG_BATCH_LOCATION, phone, 4, version, batch),
        frame_bytes(MSG_HEARTBEAT, phone, 5, version, b""),
        frame_bytes(MSG_DEREGISTER, phone, 6, version, b""),
        *split_message(Header(MSG_BATCH_LOCATION, phone, 7, version), batch, 30),
    ]


def mutate(frame: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(8)
    if choice == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if choice == 1:
        return b"\x7e" + rng.randbytes(rng.randrange(1, 6000)).replace(b"\x7e", b"") + b"\x7e"
    if choice == 2:
        return frame[: rng.randrange(1, len(frame))]
    if choice == 3:
        return frame
    data = bytearray(unescape(frame[1:-1]))  # mutate inside, then give it a right check code again
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(4)
        if kind == 0 and data:
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        elif kind == 1 and len(data) > 1:
            del data[rng.randrange(1, len(data)) :]
        elif kind == 2:
            data[rng.randrange(len(data) + 1) : 0] = rng.randbytes(rng.randrange(1, 40))
        elif len(data) > 4:
            data[2:4] = rng.randbytes(2)  # length, encryption, sub-package and version bits
    if data and rng.random() < 0.85:
        data[-1] = check_code(bytes(data[:-1]))
    return b"\x7e" + escape(bytes(data)) + b"\x7e"


async def attack(port: int, seconds: float, seed: int, sent: list[int]) -> None:
    """Connections of 1-50 mutated frames; a third of them first register and authenticate a terminal of their own."""
    rng = random.Random(seed)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            own = None
            if rng.random() < 0.3:
                own = f"07{seed % 100:02d}{n:08d}"
                await asyncio.wait_for(Terminal(reader, writer, own).login(f"F{n}"), 10)
            for _ in range(rng.randrange(1, 50)):
                if writer.transport.is_closing():  # closed by the gateway (a deadline, a cap)
                    break
                writer.write(mutate(rng.choice(valid_frames(rng, own)), rng))
                sent[0] += 1
            await writer.drain()
            writer.close()
        except (ConnectionError, OSError, TimeoutError):
            await asyncio.sleep(0.01)


async def watch(port: int, seconds: float) -> tuple[int, int, float]:
    """A valid terminal reporting every 0.2 s during the fuzzing: (reports, acknowledged, longest wait s)."""
    term = await Terminal.open("127.0.0.1", port, "000000000888")
    await term.login("OK888", maker="OK", model="OK")
    sent = acked = 0
    longest = 0.0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            sent += 1
            loc = Location(lat=39.9, lon=116.4, time=NOW - dt.timedelta(seconds=sent))
            t0 = time.monotonic()
            term.writer.write(encode_frame(Header(MSG_LOCATION, term.phone, sent & 0xFFFF), loc.encode()))
            async with asyncio.timeout(10):
                while True:
                    got = [decode_frame(f) for f in await term.frames()]
                    acks = [GeneralResponse.decode(b) for h, b in got if h.msg_id == MSG_GENERAL_RESPONSE]
                    if any(a.serial == sent & 0xFFFF for a in acks):
                        acked += any(a.serial == sent & 0xFFFF and a.result == 0 for a in acks)
                        break
            longest = max(longest, time.monotonic() - t0)
            await asyncio.sleep(0.2)
    except (TimeoutError, ConnectionError):
        pass
    finally:
        term.close()
    return sent, acked, longest


async def still_serving(port: int) -> bool:
    term = await Terminal.open("127.0.0.1", port, "000000000777")
    await term.login("OK777", maker="OK", model="OK")
    loc = Location(lat=39.9, lon=116.4, time=NOW)
    body = await term.ask(encode_frame(Header(MSG_LOCATION, term.phone, 3), loc.encode()), MSG_GENERAL_RESPONSE)
    term.close()
    return GeneralResponse.decode(body).result == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1, help="gateway processes on the port (gateway --workers)")
    args = ap.parse_args()
    logging.getLogger("asyncio").setLevel(logging.ERROR)  # the attackers' "socket.send() raised exception."
    data = Path(tempfile.mkdtemp(prefix="fuzz-gw-"))
    gateway = GatewayProcess(data / "gw", "--idle-timeout-s", "2", "--workers", str(args.workers),
                             log=data / "gateway.log")  # fmt: skip
    try:
        sent = [0]

        async def run() -> tuple[tuple[int, int, float], bool]:
            watched = asyncio.create_task(watch(gateway.port, args.seconds))
            await asyncio.gather(*(attack(gateway.port, args.seconds, k, sent) for k in range(args.connections)))
            return await watched, await still_serving(gateway.port)

        (reports, acked, longest), ok = asyncio.run(run())
        alive = gateway.alive
    finally:
        final = gateway.stop(timeout_s=60)
    tracebacks = gateway.tracebacks()
    internal = final.get("internal_errors", -1)
    rejected = sum(final.get("rejects", {}).values())
    print(f"fuzz: {sent[0]:,} frames over {args.seconds:.0f} s from {args.connections} connections, "
          f"{args.workers} gateway worker(s)")  # fmt: skip
    print(f"tracebacks in the gateway's log: {tracebacks}; internal errors: {internal}")
    print(f"valid terminal meanwhile: {acked} of {reports} reports acknowledged, longest wait {longest:.2f} s")
    print(f"server alive: {alive}; still registers and acknowledges: {ok}")
    print(f"rejects: {final.get('rejects')}")
    print(f"ratio rejected / sent: {rejected / max(sent[0], 1):.2f}")
    if not (alive and ok and tracebacks == 0 and internal == 0 and reports > 0 and acked == reports):
        raise SystemExit("the gateway did not survive the fuzzing")


if __name__ == "__main__":
    main()
