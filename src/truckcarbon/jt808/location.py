"""JT/T 808 location reports: 0x0200 and the 0x0704 batch upload, encoded, decoded, and read fast.

0x0200 body: alarm flags (DWORD), status (DWORD: bit 2 south, bit 3 west, bit 5
coordinates encrypted, bits 8-9 load state), latitude and longitude (DWORD,
x 1e6 degrees), altitude (WORD, m), speed (WORD, 0.1 km/h), direction (WORD),
BCD[6] time YYMMDDhhmmss in GMT+8, then additional items (id BYTE, length BYTE,
value): 0x01 odometer (DWORD, 0.1 km), 0x02 fuel (WORD, 0.1 L). 0x0704: item
count (WORD), kind (BYTE: 0 regular, 1 blind-area re-upload), then each report
as its length (WORD) and its 0x0200 body.

:class:`Location` is the full decoder and encoder; :func:`location_values` reads
only what a pings row needs, without building objects (the gateway's hot path).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field

from truckcarbon.jt808.frame import FrameError, bcd, from_bcd

GMT8 = dt.timezone(dt.timedelta(hours=8))
LOAD_BITS = {0b00: "empty", 0b01: "half", 0b11: "full"}  # status bits 8-9 (0b10 is reserved)


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
