"""JT/T 808 framing and messages (2013 and 2019 editions): encoder and decoder.

Frame: ``0x7e | header | body | check code | 0x7e``. Inside the delimiters ``0x7e``
is sent as ``0x7d 0x02`` and ``0x7d`` as ``0x7d 0x01``; the check code is the
XOR of every header and body byte. Words are big-endian.

Header: message id (WORD), body properties (WORD: length bits 0-9, encryption
bits 10-12, sub-package bit 13, version flag bit 14 in 2019), [protocol version
BYTE, 2019 only], terminal phone number (BCD[6] in 2013, BCD[10] in 2019),
serial number (WORD), [package total WORD, package index WORD when sub-packaged].

Sub-packages (分包): a body longer than one frame carries (1023 bytes) is sent as
``total`` frames with bit 13 set, package indices 1..total and consecutive serial
numbers, each frame holding the next slice of the body; the same layout in both
editions. :func:`split_message` cuts a body into such frames; the gateway joins
them again. A receiver that misses pieces asks for them with 0x8003 (the serial of
the first piece, the count of missing pieces, BYTE in 2013 and WORD in 2019, and
their indices as WORDs).

Messages: 0x0100 registration -> 0x8100 registration response (with an
authentication code), 0x0102 authentication, 0x0002 heartbeat, 0x0003 terminal
deregistration (注销, empty body), 0x0200 location
report (status bits 8-9 load state, bit 2 south, bit 3 west; latitude and
longitude x 1e6; speed 0.1 km/h; BCD time in GMT+8; additional items 0x01
odometer 0.1 km and 0x02 fuel 0.1 L), 0x0704 batch location upload, 0x8001
platform general response, 0x8003 re-transmission request for missing sub-packages.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field, replace
from enum import IntEnum
from functools import lru_cache

GMT8 = dt.timezone(dt.timedelta(hours=8))

MSG_HEARTBEAT = 0x0002
MSG_DEREGISTER = 0x0003
MSG_REGISTER = 0x0100
MSG_AUTH = 0x0102
MSG_LOCATION = 0x0200
MSG_BATCH_LOCATION = 0x0704
MSG_GENERAL_RESPONSE = 0x8001
MSG_RESEND_REQUEST = 0x8003
MSG_REGISTER_RESPONSE = 0x8100
MAX_BODY = 0x3FF  # bytes of body one frame can carry (body properties bits 0-9)

# 0x8001 result codes
RESULT_OK, RESULT_FAILURE, RESULT_BAD_MESSAGE, RESULT_UNSUPPORTED, RESULT_ALARM_ACK = 0, 1, 2, 3, 4
LOAD_BITS = {0b00: "empty", 0b01: "half", 0b11: "full"}  # status bits 8-9 (0b10 is reserved)


class RegisterResult(IntEnum):
    """0x8100 result codes."""

    OK = 0
    VEHICLE_REGISTERED = 1  # the vehicle is already bound to another terminal
    NO_SUCH_VEHICLE = 2  # the vehicle is not in the platform's database
    TERMINAL_REGISTERED = 3  # the terminal is already registered for another vehicle
    NO_SUCH_TERMINAL = 4  # the terminal is not in the platform's database


class FrameError(ValueError):
    """A frame that cannot be decoded; ``reason`` is a short code for counting.

    ``header`` is set when the frame's check code was right and its header could
    be read, but the rest is inconsistent (a wrong length field, bad package
    fields): such a frame can be answered with 0x8001 result 2.
    """

    def __init__(self, reason: str, detail: str, header: Header | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.header = header


def escape(data: bytes) -> bytes:
    """Escape 0x7e and 0x7d inside a frame."""
    if b"\x7e" not in data and b"\x7d" not in data:
        return data
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo :func:`escape`; a 0x7d not followed by 0x01 or 0x02 is an error."""
    if b"\x7d" not in data:
        return data
    if data.count(b"\x7d") != data.count(b"\x7d\x01") + data.count(b"\x7d\x02"):
        i = next(k for k in range(len(data)) if data[k] == 0x7D and data[k + 1 : k + 2] not in (b"\x01", b"\x02"))
        raise FrameError("bad_escape", f"0x7d at {i} not followed by 0x01 or 0x02")
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def check_code(data: bytes | bytearray) -> int:
    """XOR of all bytes.

    Computed on the bytes as one integer, folded in halves: the XOR of the low
    and the high half keeps the XOR of all bytes, a few big-integer operations
    instead of a Python loop over every byte.
    """
    x = int.from_bytes(data, "little")
    n = len(data)
    while n > 1:
        half = (n + 1) // 2
        x = (x & ((1 << (8 * half)) - 1)) ^ (x >> (8 * half))
        n = half
    return x


@lru_cache(maxsize=1 << 16)
def bcd(digits: str, size: int) -> bytes:
    """Digits (left-padded with 0 to ``2 * size``) as packed BCD."""
    if not digits.isdigit() or len(digits) > 2 * size:
        raise ValueError(f"{digits!r} is not at most {2 * size} digits")
    return bytes.fromhex(digits.rjust(2 * size, "0"))


def from_bcd(data: bytes) -> str:
    text = data.hex()
    if not text.isdigit():
        raise FrameError("bad_bcd", f"{text!r} is not BCD")
    return text


@dataclass(frozen=True)
class Header:
    """Message header. ``version`` is None for JT/T 808-2013 frames, the protocol version byte for 2019.

    ``package_total`` and ``package_index`` (1-based) are set only on sub-packaged frames.
    """

    msg_id: int
    phone: str
    serial: int
    version: int | None = None
    encryption: int = 0
    package_total: int | None = None
    package_index: int | None = None


def encode_frame(header: Header, body: bytes) -> bytes:
    """A complete escaped frame with delimiters."""
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds the 1023-byte limit; use split_message")
    sub = header.package_total is not None
    if sub:
        total, index = header.package_total or 0, header.package_index or 0
        if not 1 <= index <= total <= 0xFFFF:
            raise ValueError(f"package {index} of {total}: the index must be 1..total, total at most 65535")
        packages = struct.pack(">HH", total, index)
    else:
        packages = b""
    return frame_bytes(header.msg_id, header.phone, header.serial, header.version, body, header.encryption, packages)


def frame_bytes(
    msg_id: int,
    phone: str,
    serial: int,
    version: int | None,
    body: bytes,
    encryption: int = 0,
    packages: bytes = b"",
) -> bytes:
    """:func:`encode_frame` from the header's fields (no :class:`Header` made; ``packages``: total and index).

    The platform's hot path: every acknowledgement goes through here.
    """
    props = len(body) | (encryption & 0x7) << 10 | ((1 << 13) if packages else 0)
    if version is not None:
        head = struct.pack(">HHB", msg_id, props | (1 << 14), version & 0xFF) + bcd(phone, 10)
    else:
        head = struct.pack(">HH", msg_id, props) + bcd(phone, 6)
    raw = head + struct.pack(">H", serial & 0xFFFF) + packages + body
    raw += bytes((check_code(raw),))
    return b"\x7e" + escape(raw) + b"\x7e"


def decode_frame(frame: bytes) -> tuple[Header, bytes]:
    """Header and body of one frame (with or without its 0x7e delimiters)."""
    data = frame[1:-1] if frame[:1] == b"\x7e" and frame[-1:] == b"\x7e" and len(frame) >= 2 else frame
    if b"\x7e" in data:
        raise FrameError("bad_delimiter", "0x7e inside a frame")
    raw = unescape(data)
    if len(raw) < 13:
        raise FrameError("truncated", f"{len(raw)} bytes after unescaping, a header needs at least 12 and a check code")
    if check_code(raw[:-1]) != raw[-1]:
        raise FrameError("bad_check_code", f"check code {raw[-1]:#04x}, computed {check_code(raw[:-1]):#04x}")
    raw = raw[:-1]
    msg_id, props = struct.unpack_from(">HH", raw, 0)
    length = props & 0x3FF
    encryption = (props >> 10) & 0x7
    sub = bool(props & (1 << 13))
    v2019 = bool(props & (1 << 14))
    pos = 4
    version = None
    if v2019:
        if len(raw) < 17:
            raise FrameError("truncated", "a 2019 header needs 17 bytes")
        version = raw[4]
        phone = from_bcd(raw[5:15])
        pos = 15
    else:
        phone = from_bcd(raw[4:10])
        pos = 10
    (serial,) = struct.unpack_from(">H", raw, pos)
    pos += 2
    total = index = None
    if sub:
        if len(raw) < pos + 4:
            raise FrameError("truncated", "sub-package fields missing", Header(msg_id, phone, serial, version))
        total, index = struct.unpack_from(">HH", raw, pos)
        if not 1 <= index <= total:
            raise FrameError(
                "bad_package", f"package {index} of {total}: the index must be 1..total",
                Header(msg_id, phone, serial, version),
            )  # fmt: skip
        pos += 4
    body = raw[pos:]
    header = Header(msg_id, phone, serial, version, encryption, total, index)
    if len(body) != length:
        raise FrameError("bad_length", f"body properties say {length} bytes, the frame has {len(body)}", header)
    return header, body


def split_message(header: Header, body: bytes, max_body: int = MAX_BODY) -> list[bytes]:
    """``body`` as frames of at most ``max_body`` body bytes each.

    A body that fits is one ordinary frame. A longer one becomes sub-packages
    1..n with serials ``header.serial``, ``header.serial + 1``, ... (mod 65536),
    which is how a terminal sends it and how the gateway expects it.
    """
    if not 1 <= max_body <= MAX_BODY:
        raise ValueError(f"max_body {max_body} must be 1..{MAX_BODY}")
    plain = replace(header, package_total=None, package_index=None)
    if len(body) <= max_body:
        return [encode_frame(plain, body)]
    total = -(-len(body) // max_body)
    if total > 0xFFFF:
        raise ValueError(f"a body of {len(body)} bytes needs {total} packages, at most 65535 are possible")
    return [
        encode_frame(
            replace(plain, serial=(header.serial + k) & 0xFFFF, package_total=total, package_index=k + 1),
            body[k * max_body : (k + 1) * max_body],
        )
        for k in range(total)
    ]


def split_frames(buffer: bytes, max_frame: int = 4096) -> tuple[list[bytes], bytes, int]:
    """Complete frames in a stream buffer, the unconsumed rest, and the number of oversize frames dropped.

    Bytes before the first 0x7e are discarded; an unterminated run longer than
    ``max_frame`` is dropped (counted) so that a client cannot grow the buffer.
    """
    frames: list[bytes] = []
    dropped = 0
    start = buffer.find(b"\x7e")
    while start >= 0:
        end = buffer.find(b"\x7e", start + 1)
        if end < 0:
            rest = buffer[start:]
            if len(rest) > max_frame:
                return frames, b"", dropped + 1
            return frames, rest, dropped
        if end == start + 1:  # two delimiters in a row: the second opens the next frame
            start = end
            continue
        if end - start + 1 > max_frame:
            dropped += 1
        else:
            frames.append(buffer[start : end + 1])
        start = buffer.find(b"\x7e", end + 1)
    return frames, b"", dropped


# --------------------------------------------------------------------------- messages


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


@dataclass(frozen=True)
class Location:
    """0x0200 body. Coordinates in degrees (negative south/west), speed km/h, time in UTC."""

    lat: float
    lon: float
    time: dt.datetime
    speed_kmh: float = 0.0
    direction: int = 0
    altitude_m: int = 0
    alarm: int = 0
    status: int = 0  # south/west bits are set from the coordinates' signs when encoding
    odometer_km: float | None = None
    fuel_l: float | None = None
    extras: dict[int, bytes] = field(default_factory=dict)

    @property
    def load_state(self) -> str | None:
        """Status bits 8-9: empty, half, full (None for the reserved value)."""
        return LOAD_BITS.get((self.status >> 8) & 0b11)

    def encode(self) -> bytes:
        status = self.status & ~0b1100
        if self.lat < 0:
            status |= 0b0100
        if self.lon < 0:
            status |= 0b1000
        local = self.time.astimezone(GMT8)
        out = struct.pack(
            ">IIIIHHH",
            self.alarm & 0xFFFFFFFF,
            status & 0xFFFFFFFF,
            round(abs(self.lat) * 1e6),
            round(abs(self.lon) * 1e6),
            self.altitude_m & 0xFFFF,
            round(self.speed_kmh * 10) & 0xFFFF,
            self.direction & 0xFFFF,
        ) + bcd(local.strftime("%y%m%d%H%M%S"), 6)
        items = dict(self.extras)
        if self.odometer_km is not None:
            items[0x01] = struct.pack(">I", round(self.odometer_km * 10))
        if self.fuel_l is not None:
            items[0x02] = struct.pack(">H", round(self.fuel_l * 10))
        for key in sorted(items):
            out += bytes((key, len(items[key]))) + items[key]
        return out

    @classmethod
    def decode(cls, body: bytes) -> Location:
        if len(body) < 28:
            raise FrameError("bad_body", f"location body of {len(body)} bytes, at least 28 needed")
        alarm, status, lat, lon, alt, speed, direction = struct.unpack_from(">IIIIHHH", body, 0)
        stamp = from_bcd(body[22:28])
        try:  # YY is 20YY: the BCD year of JT/T 808 terminals
            y, mo, d, h, mi, sec = (int(stamp[k : k + 2]) for k in range(0, 12, 2))
            local = dt.datetime(2000 + y, mo, d, h, mi, sec, tzinfo=GMT8)
        except ValueError:
            raise FrameError("bad_time", f"BCD time {stamp} is not a date") from None
        extras: dict[int, bytes] = {}
        p = 28
        while p < len(body):
            if p + 2 > len(body) or p + 2 + body[p + 1] > len(body):
                raise FrameError("bad_body", f"additional item at byte {p} runs past the body")
            extras[body[p]] = body[p + 2 : p + 2 + body[p + 1]]
            p += 2 + body[p + 1]
        odometer = struct.unpack(">I", extras.pop(0x01))[0] / 10 if len(extras.get(0x01, b"")) == 4 else None
        fuel = struct.unpack(">H", extras.pop(0x02))[0] / 10 if len(extras.get(0x02, b"")) == 2 else None
        return cls(
            lat=(-lat if status & 0b0100 else lat) / 1e6,
            lon=(-lon if status & 0b1000 else lon) / 1e6,
            time=local.astimezone(dt.UTC),
            speed_kmh=speed / 10,
            direction=direction,
            altitude_m=alt,
            alarm=alarm,
            status=status,
            odometer_km=odometer,
            fuel_l=fuel,
            extras=extras,
        )


@dataclass(frozen=True)
class BatchLocation:
    """0x0704: several location reports (``kind`` 0 regular, 1 blind-area re-upload)."""

    items: tuple[Location, ...]
    kind: int = 0

    def encode(self) -> bytes:
        out = struct.pack(">HB", len(self.items), self.kind)
        for item in self.items:
            body = item.encode()
            out += struct.pack(">H", len(body)) + body
        return out

    @classmethod
    def decode(cls, body: bytes) -> BatchLocation:
        kind = body[2] if len(body) >= 3 else 0
        return cls(tuple(Location.decode(item) for item in batch_items(body)), kind)


def batch_items(body: bytes) -> list[bytes]:
    """The location bodies of a 0x0704 batch upload, with the checks of :meth:`BatchLocation.decode`."""
    if len(body) < 3:
        raise FrameError("bad_body", "batch upload shorter than 3 bytes")
    (count,) = struct.unpack_from(">H", body, 0)
    p = 3
    items = []
    for _ in range(count):
        if p + 2 > len(body):
            raise FrameError("bad_body", "batch upload ends inside an item")
        n = (body[p] << 8) | body[p + 1]
        if p + 2 + n > len(body):
            raise FrameError("bad_body", "batch item runs past the body")
        items.append(body[p + 2 : p + 2 + n])
        p += 2 + n
    if p != len(body):
        raise FrameError("bad_body", f"{len(body) - p} bytes after the last batch item")
    return items


# BCD byte -> its two-digit value, -1 when a nibble is not a digit.
_BCD_VALUE = tuple((b >> 4) * 10 + (b & 15) if (b >> 4) < 10 and (b & 15) < 10 else -1 for b in range(256))
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAYS: dict[bytes, int] = {}  # BCD YYMMDD -> days since 1970-01-01 (valid dates only)
_LOCATION = struct.Struct(">IIIIHHH")
NAN = float("nan")


def location_values(body: bytes) -> tuple[int, float, float, float, int, float, float]:
    """The values of a 0x0200 body that a pings row needs, without building a :class:`Location`.

    Returns ``(ts_ms, lon, lat, speed_kmh, status, odometer_km, fuel_l)``: the
    time in UTC epoch milliseconds, NaN for an absent odometer or fuel item.
    Equal to :meth:`Location.decode`'s fields and raising the same errors (the
    gateway's hot path; a test holds the two together).
    """
    if len(body) < 28:
        raise FrameError("bad_body", f"location body of {len(body)} bytes, at least 28 needed")
    _, status, lat, lon, _, speed, _ = _LOCATION.unpack_from(body, 0)
    bcd_value = _BCD_VALUE
    h, mi, sec = bcd_value[body[25]], bcd_value[body[26]], bcd_value[body[27]]
    if h < 0 or mi < 0 or sec < 0:
        raise FrameError("bad_bcd", f"{body[22:28].hex()!r} is not BCD")
    days = _DAYS.get(body[22:25])  # the day changes rarely: its number is looked up, not computed
    if days is None:
        y, mo, d = bcd_value[body[22]], bcd_value[body[23]], bcd_value[body[24]]
        if y < 0 or mo < 0 or d < 0:
            raise FrameError("bad_bcd", f"{body[22:28].hex()!r} is not BCD")
        try:
            days = dt.date(2000 + y, mo, d).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            raise FrameError("bad_time", f"BCD time {body[22:28].hex()} is not a date") from None
        if len(_DAYS) < 1 << 16:  # at most every day of 2000-2099 (36,525): bounded
            _DAYS[body[22:25]] = days
    if h > 23 or mi > 59 or sec > 59:
        raise FrameError("bad_time", f"BCD time {body[22:28].hex()} is not a date")
    ts_ms = (days * 86400 + h * 3600 + mi * 60 + sec - 8 * 3600) * 1000  # BCD time is GMT+8
    odometer = fuel = NAN
    p = 28
    n = len(body)
    while p < n:
        if p + 2 > n or p + 2 + body[p + 1] > n:
            raise FrameError("bad_body", f"additional item at byte {p} runs past the body")
        item, size = body[p], body[p + 1]
        if item == 0x01:
            odometer = int.from_bytes(body[p + 2 : p + 6]) / 10 if size == 4 else NAN
        elif item == 0x02:
            fuel = int.from_bytes(body[p + 2 : p + 4]) / 10 if size == 2 else NAN
        p += 2 + size
    return (
        ts_ms,
        (-lon if status & 0b1000 else lon) / 1e6,
        (-lat if status & 0b0100 else lat) / 1e6,
        speed / 10,
        status,
        odometer,
        fuel,
    )
