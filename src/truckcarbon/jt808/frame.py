"""JT/T 808 framing (2013 and 2019 editions): delimiters, escaping, check code, header, sub-packages.

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
them again (:mod:`truckcarbon.jt808.reassembly`). The bodies of the messages are
in :mod:`truckcarbon.jt808.messages` and :mod:`truckcarbon.jt808.location`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from functools import lru_cache

from truckcarbon.core.errors import TruckcarbonError

MAX_BODY = 0x3FF  # bytes of body one frame can carry (body properties bits 0-9)


class FrameError(TruckcarbonError, ValueError):
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
    """Packed BCD as its digits; :class:`FrameError` ``bad_bcd`` when a nibble is not a digit."""
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
