"""JT/T 808 message bodies other than location reports (2013 and 2019 editions): encoder and decoder.

Messages: 0x0100 registration -> 0x8100 registration response (with an
authentication code), 0x0102 authentication, 0x0002 heartbeat, 0x0003 terminal
deregistration (注销, empty body), 0x0200 location report and 0x0704 batch
location upload (:mod:`truckcarbon.jt808.location`), 0x8001 platform general
response, 0x8003 re-transmission request for missing sub-packages (the serial of
the first piece, the count of missing pieces, BYTE in 2013 and WORD in 2019, and
their indices as WORDs). Text fields are GBK, NUL-padded to their width.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from truckcarbon.jt808.frame import FrameError

MSG_HEARTBEAT = 0x0002
MSG_DEREGISTER = 0x0003
MSG_REGISTER = 0x0100
MSG_AUTH = 0x0102
MSG_LOCATION = 0x0200
MSG_BATCH_LOCATION = 0x0704
MSG_GENERAL_RESPONSE = 0x8001
MSG_RESEND_REQUEST = 0x8003
MSG_REGISTER_RESPONSE = 0x8100

# 0x8001 result codes
RESULT_OK, RESULT_FAILURE, RESULT_BAD_MESSAGE, RESULT_UNSUPPORTED, RESULT_ALARM_ACK = 0, 1, 2, 3, 4


class RegisterResult(IntEnum):
    """0x8100 result codes."""

    OK = 0
    VEHICLE_REGISTERED = 1  # the vehicle is already bound to another terminal
    NO_SUCH_VEHICLE = 2  # the vehicle is not in the platform's database
    TERMINAL_REGISTERED = 3  # the terminal is already registered for another vehicle
    NO_SUCH_TERMINAL = 4  # the terminal is not in the platform's database


def _string(data: bytes) -> str:
    return data.rstrip(b"\x00").decode("gbk", errors="replace")


@dataclass(frozen=True)
class Registration:
    """0x0100: terminal registration."""

    province: int
    city: int
    maker: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str

    def encode(self, v2019: bool = False) -> bytes:
        m, md, tid = (11, 30, 30) if v2019 else (5, 20, 7)
        return (
            struct.pack(">HH", self.province, self.city)
            + self.maker.encode("gbk")[:m].ljust(m, b"\x00")
            + self.model.encode("gbk")[:md].ljust(md, b"\x00")
            + self.terminal_id.encode("gbk")[:tid].ljust(tid, b"\x00")
            + bytes((self.plate_color,))
            + self.plate.encode("gbk")
        )

    @classmethod
    def decode(cls, body: bytes, v2019: bool = False) -> Registration:
        m, md, tid = (11, 30, 30) if v2019 else (5, 20, 7)
        need = 4 + m + md + tid + 1
        if len(body) < need:
            raise FrameError("bad_body", f"registration body of {len(body)} bytes, at least {need} needed")
        province, city = struct.unpack_from(">HH", body, 0)
        p = 4
        maker = _string(body[p : p + m])
        p += m
        model = _string(body[p : p + md])
        p += md
        terminal = _string(body[p : p + tid])
        p += tid
        return cls(province, city, maker, model, terminal, body[p], _string(body[p + 1 :]))


@dataclass(frozen=True)
class RegistrationResponse:
    """0x8100 registration response.

    ``result`` is a :class:`RegisterResult`: 0 success (with the authentication
    code), 1 vehicle already registered, 2 no such vehicle, 3 terminal already
    registered, 4 no such terminal.
    """

    serial: int
    result: int
    auth_code: str = ""

    def encode(self) -> bytes:
        out = struct.pack(">HB", self.serial, self.result)
        return out + self.auth_code.encode("gbk") if self.result == 0 else out

    @classmethod
    def decode(cls, body: bytes) -> RegistrationResponse:
        if len(body) < 3:
            raise FrameError("bad_body", "registration response shorter than 3 bytes")
        serial, result = struct.unpack_from(">HB", body, 0)
        return cls(serial, result, _string(body[3:]) if result == 0 else "")


@dataclass(frozen=True)
class Authentication:
    """0x0102: the authentication code (2019 adds IMEI and software version)."""

    auth_code: str
    imei: str = ""
    software_version: str = ""

    def encode(self, v2019: bool = False) -> bytes:
        code = self.auth_code.encode("gbk")
        if not v2019:
            return code
        return (
            bytes((len(code),))
            + code
            + self.imei.encode("ascii")[:15].ljust(15, b"\x00")
            + self.software_version.encode("ascii")[:20].ljust(20, b"\x00")
        )

    @classmethod
    def decode(cls, body: bytes, v2019: bool = False) -> Authentication:
        if not v2019:
            return cls(_string(body))
        if not body or len(body) < 1 + body[0] + 35:
            raise FrameError("bad_body", "2019 authentication body too short")
        n = body[0]
        return cls(_string(body[1 : 1 + n]), _string(body[1 + n : 16 + n]), _string(body[16 + n : 36 + n]))


def auth_code_bytes(body: bytes, v2019: bool = False) -> bytes:
    """The authentication code of a 0x0102 body as the bytes sent (trailing NULs removed), never decoded.

    The gateway compares these bytes, so a code in any encoding, or none, is
    simply a wrong code.
    """
    if not v2019:
        return body.rstrip(b"\x00")
    if not body or len(body) < 1 + body[0]:
        raise FrameError("bad_body", "2019 authentication body too short")
    return body[1 : 1 + body[0]].rstrip(b"\x00")


@dataclass(frozen=True)
class GeneralResponse:
    """0x8001 (platform) / 0x0001 (terminal) general response."""

    serial: int
    msg_id: int
    result: int

    def encode(self) -> bytes:
        return struct.pack(">HHB", self.serial, self.msg_id, self.result)

    @classmethod
    def decode(cls, body: bytes) -> GeneralResponse:
        if len(body) != 5:
            raise FrameError("bad_body", f"general response of {len(body)} bytes, 5 expected")
        return cls(*struct.unpack(">HHB", body))


@dataclass(frozen=True)
class ResendRequest:
    """0x8003: the platform asks for missing sub-packages of the message whose first package had ``serial``."""

    serial: int
    indices: tuple[int, ...]

    def encode(self, v2019: bool = False) -> bytes:
        count = struct.pack(">H", len(self.indices)) if v2019 else bytes((len(self.indices),))
        return struct.pack(">H", self.serial) + count + struct.pack(f">{len(self.indices)}H", *self.indices)

    @classmethod
    def decode(cls, body: bytes, v2019: bool = False) -> ResendRequest:
        head = 4 if v2019 else 3
        if len(body) < head:
            raise FrameError("bad_body", f"re-transmission request shorter than {head} bytes")
        serial = struct.unpack_from(">H", body, 0)[0]
        n = struct.unpack_from(">H", body, 2)[0] if v2019 else body[2]
        if len(body) != head + 2 * n:
            raise FrameError("bad_body", f"re-transmission request of {n} packages has {len(body)} bytes")
        return cls(serial, struct.unpack_from(f">{n}H", body, head))
