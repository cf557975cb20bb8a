"""One connection's state, and the replies it gathers until they are written in one go.

A :class:`Session` knows which terminal the connection authenticated as (its
binding, canonical phone, vehicle id as the log holds it, how its load bits
read), its deadlines (connected, last frame, start of the frame in progress), its
report-rate tokens, its counters of bytes before authentication, failed
authentications and registrations, its sub-packages being reassembled, and the
replies not written yet: every reply of one read goes out in one write.
:class:`Held` is what a location message leaves to be acknowledged once its
records are durable.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from truckcarbon.jt808.frame import Header, frame_bytes
from truckcarbon.jt808.messages import MSG_GENERAL_RESPONSE
from truckcarbon.jt808.reassembly import Reassembler

GENERAL_RESPONSE = struct.Struct(">HHB")  # 0x8001 body: serial, message id, result


@dataclass(frozen=True)
class Held:
    """Reports of one message taken into the log: its records, how many, and its acknowledgement."""

    records: bytes
    reports: int
    ack: Callable[[int], None]


class Session:
    """One connection's state."""

    __slots__ = ("address", "auth", "auth_failures", "buffer", "closing", "connected", "frame_started",
                 "last_frame", "load_codes", "out", "parts", "phone", "preauth_bytes", "raw_phone", "registrations",
                 "serial", "t", "tokens", "vid", "writer")  # fmt: skip

    def __init__(self, writer: asyncio.StreamWriter, address: str, parts: Reassembler, rate: float,
                 now: float | None = None) -> None:  # fmt: skip
        now = time.monotonic() if now is None else now
        self.writer, self.address, self.parts = writer, address, parts
        self.auth: dict[str, Any] | None = None  # the registry binding authenticated as
        self.phone: str | None = None  # canonical phone authenticated as
        self.raw_phone = ""  # ... as the header spells it (the fast path of the phone check)
        self.vid = b""  # the vehicle id as the log records hold it
        self.load_codes = (-1, 1, -1, 2)  # status bits 8-9 -> load code (0 empty, 1 half, 2 full, -1 unknown)
        self.serial = 0
        self.tokens, self.t = rate, now
        self.out: list[bytes] = []  # replies not written yet: one write per read of the connection
        self.buffer = b""
        self.connected = self.last_frame = now
        self.frame_started: float | None = None
        self.preauth_bytes = 0
        self.auth_failures = 0
        self.registrations = 0
        self.closing: str | None = None

    def reply(self, header: Header, msg_id: int, body: bytes) -> None:
        """Gather a reply to the terminal of ``header`` (the platform's next serial number)."""
        self.serial = (self.serial + 1) & 0xFFFF
        self.out.append(frame_bytes(msg_id, header.phone, self.serial, header.version, body))

    def answer(self, header: Header, serials: tuple[int, ...], result: int) -> None:
        """0x8001 with ``result`` for each frame (serial) a message came in."""
        for serial in serials:  # the body of GeneralResponse(serial, header.msg_id, result), packed directly
            self.reply(header, MSG_GENERAL_RESPONSE, GENERAL_RESPONSE.pack(serial, header.msg_id, result))

    def flush(self) -> None:
        """Send the replies gathered so far in one write."""
        if self.out:
            if not self.writer.is_closing():
                self.writer.write(b"".join(self.out))
            self.out.clear()

    def take_tokens(self, n: int, now: float, rate: float) -> bool:
        """Whether ``n`` more reports fit the rate of ``rate`` per second (a token bucket of one second's worth)."""
        self.tokens = min(rate, self.tokens + (now - self.t) * rate)
        self.t = now
        if self.tokens < n:
            return False
        self.tokens -= n
        return True
