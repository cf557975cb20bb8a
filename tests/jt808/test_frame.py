"""JT/T 808 framing: escaping, check code, header round trips, malformed frames, stream splitting, sub-packages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.jt808.frame import (
    FrameError,
    Header,
    bcd,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    from_bcd,
    split_frames,
    split_message,
    unescape,
)
from truckcarbon.jt808.messages import MSG_BATCH_LOCATION, MSG_LOCATION

from .gwkit import PUBLISHED


def test_escaping() -> None:
    assert escape(b"\x30\x7e\x08\x7d\x55") == b"\x30\x7d\x02\x08\x7d\x01\x55"
    assert unescape(b"\x30\x7d\x02\x08\x7d\x01\x55") == b"\x30\x7e\x08\x7d\x55"
    with pytest.raises(FrameError, match="bad_escape"):
        unescape(b"\x30\x7d\x03")


headers = st.builds(
    Header,
    msg_id=st.integers(0, 0xFFFF),
    phone=st.text("0123456789", min_size=12, max_size=12),
    serial=st.integers(0, 0xFFFF),
    version=st.none(),
) | st.builds(
    Header,
    msg_id=st.integers(0, 0xFFFF),
    phone=st.text("0123456789", min_size=20, max_size=20),
    serial=st.integers(0, 0xFFFF),
    version=st.integers(0, 255),
    package_total=st.none() | st.integers(1, 100),
    package_index=st.just(1),
)


@settings(max_examples=200, deadline=None)
@given(headers, st.binary(max_size=300))
def test_frames_round_trip(header: Header, body: bytes) -> None:
    if header.package_total is None:
        header = Header(header.msg_id, header.phone, header.serial, header.version)
    frame = encode_frame(header, body)
    assert frame[0] == 0x7E and frame[-1] == 0x7E and b"\x7e" not in frame[1:-1]
    assert decode_frame(frame) == (header, body)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (PUBLISHED[:-2] + bytes([PUBLISHED[-2] ^ 1]) + b"\x7e", "bad_check_code"),
        (b"\x7e\x02\x00\x00\x7d\x03\x7e", "bad_escape"),
        (PUBLISHED[:10] + b"\x7e", "truncated"),
    ],
)
def test_malformed_frames(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError) as err:
        decode_frame(frame)
    assert err.value.reason == reason


def test_wrong_length_field_and_stream_splitting() -> None:
    header, body = decode_frame(PUBLISHED)
    frame = encode_frame(header, body)
    raw = bytearray(unescape(frame[1:-1]))
    raw[3] += 1  # body length one more than sent
    raw[-1] = 0
    for b in raw[:-1]:
        raw[-1] ^= b
    with pytest.raises(FrameError) as err:
        decode_frame(b"\x7e" + escape(bytes(raw)) + b"\x7e")
    assert err.value.reason == "bad_length"
    stream = b"junk" + PUBLISHED + PUBLISHED[:20]
    frames, rest, dropped = split_frames(stream)
    assert frames == [PUBLISHED] and rest == PUBLISHED[:20] and dropped == 0
    frames, rest, dropped = split_frames(b"\x7e" + b"\x01" * 5000, max_frame=4096)
    assert frames == [] and rest == b"" and dropped == 1


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=5000),
    st.integers(1, 1023),
    st.integers(0, 0xFFFF),
    st.booleans(),
)
def test_split_message_gives_consecutive_sub_packages_that_join_to_the_body(
    body: bytes, max_body: int, serial: int, v2019: bool
) -> None:
    phone = "1" * (20 if v2019 else 12)
    header = Header(MSG_BATCH_LOCATION, phone, serial, 1 if v2019 else None)
    frames = split_message(header, body, max_body)
    decoded = [decode_frame(f) for f in frames]
    if len(body) <= max_body:
        assert decoded == [(header, body)]  # fits: one ordinary frame, no package fields
        return
    n = len(frames)
    assert n == -(-len(body) // max_body)
    for k, (h, b) in enumerate(decoded):
        assert (h.msg_id, h.phone, h.version) == (MSG_BATCH_LOCATION, phone, header.version)
        assert (h.package_total, h.package_index, h.serial) == (n, k + 1, (serial + k) & 0xFFFF)
        assert 0 < len(b) <= max_body
    assert b"".join(b for _, b in decoded) == body


@pytest.mark.parametrize("v2019", [False, True])
def test_package_fields_in_both_editions(v2019: bool) -> None:
    phone = "013912345678" if not v2019 else "00000000013912345678"
    frame = encode_frame(Header(MSG_BATCH_LOCATION, phone, 9, 1 if v2019 else None, 0, 3, 2), b"\x01\x02")
    raw = unescape(frame[1:-1])
    props = int.from_bytes(raw[2:4], "big")
    assert props & (1 << 13) and props & 0x3FF == 2 and bool(props & (1 << 14)) == v2019
    fields = 17 if v2019 else 12  # id, properties, [version], phone, serial
    assert raw[fields : fields + 4] == b"\x00\x03\x00\x02"  # total 3, index 2
    assert raw[fields + 4 : -1] == b"\x01\x02"


def test_bad_package_fields() -> None:
    for total, index in ((3, 0), (3, 4), (0, 0)):
        with pytest.raises(ValueError, match="index must be"):
            encode_frame(Header(MSG_LOCATION, "123456789012", 1, None, 0, total, index), b"")
        # The same fields on the wire: build the frame by hand.
        raw = bytearray(
            bytes.fromhex("0200 2000 123456789012 0001") + total.to_bytes(2, "big") + index.to_bytes(2, "big")
        )
        raw.append(check_code(raw))
        with pytest.raises(FrameError) as err:
            decode_frame(b"\x7e" + escape(bytes(raw)) + b"\x7e")
        assert err.value.reason == "bad_package"


@given(st.binary(min_size=0, max_size=64))
def test_check_code_is_the_xor_of_every_byte(data: bytes) -> None:
    want = 0
    for b in data:
        want ^= b
    assert check_code(data) == want


def test_a_frame_error_is_a_truckcarbon_error_and_a_value_error() -> None:
    with pytest.raises(TruckcarbonError) as err:
        decode_frame(b"\x7e\x02\x00\x7e")
    assert isinstance(err.value, ValueError) and err.value.reason == "truncated" and err.value.header is None


def test_bcd_packs_two_digits_a_byte_left_padded() -> None:
    assert bcd("13800000007", 6) == bytes.fromhex("013800000007")
    assert bcd("7", 2) == b"\x00\x07"
    assert from_bcd(bytes.fromhex("0123456789")) == "0123456789"
    with pytest.raises(ValueError):
        bcd("1234567", 3)  # 7 digits do not fit 3 bytes
    with pytest.raises(ValueError):
        bcd("12a4", 2)
    with pytest.raises(FrameError, match="bad_bcd"):
        from_bcd(b"\x1a")


def test_a_2019_header_carries_the_version_and_a_20_digit_phone() -> None:
    frame = encode_frame(Header(0x0002, "00000000013800000007", 0x0102, version=1), b"")
    raw = unescape(frame[1:-1])
    # id 0x0002, properties: version flag (bit 14), length 0; version 1; BCD[10] phone; serial; check code.
    assert raw[:-1] == bytes.fromhex("0002 4000 01 00000000013800000007 0102")
    assert raw[-1] == check_code(raw[:-1])
    assert decode_frame(frame) == (Header(0x0002, "00000000013800000007", 0x0102, version=1), b"")


def test_split_frames_skips_empty_runs_and_drops_oversize_frames() -> None:
    small = encode_frame(Header(0x0002, "013800000007", 1), b"")
    big = encode_frame(Header(0x0200, "013800000007", 2), b"\x01" * 200)
    frames, rest, dropped = split_frames(b"\x7e" + small + big + small, max_frame=100)
    assert frames == [small, small] and rest == b"" and dropped == 1
