"""JT/T 808 codec: a published frame, round trips of every message (hypothesis), malformed input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.frame import (
    FrameError,
    Header,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    split_frames,
    split_message,
    unescape,
)
from truckcarbon.jt808.location import BatchLocation, Location, location_values
from truckcarbon.jt808.messages import (
    MSG_BATCH_LOCATION,
    MSG_LOCATION,
    Authentication,
    GeneralResponse,
    Registration,
    RegistrationResponse,
    ResendRequest,
)

# SmallChi/JT808, src/JT808.Protocol.Test/Simples/Demo3.cs (commit d47b1364): a 2013 location report of
# terminal 123456789012, serial 1, alarm 1, status 2, lat 12222222, lon 132444444 (x 1e-6 deg), altitude 40 m,
# speed 60 (0.1 km/h), direction 0, 2018-10-15 10:10:10 GMT+8, mileage 100 (0.1 km), oil 125 (0.1 L);
# the oil value 0x7d is escaped as 7d 01.
PUBLISHED = bytes.fromhex(
    "7E020000261234567890120001000000010000000200BA7F0E07E4F11C0028003C00001810151010100104000000640202007D016C7E"
)


def test_published_location_frame() -> None:
    header, body = decode_frame(PUBLISHED)
    assert header == Header(MSG_LOCATION, "123456789012", 1)
    loc = Location.decode(body)
    assert (loc.alarm, loc.status, loc.altitude_m, loc.direction) == (1, 2, 40, 0)
    assert loc.lat == pytest.approx(12.222222) and loc.lon == pytest.approx(132.444444)
    assert loc.speed_kmh == pytest.approx(6.0)
    assert loc.time == dt.datetime(2018, 10, 15, 2, 10, 10, tzinfo=dt.UTC)  # 10:10:10 GMT+8
    assert loc.odometer_km == pytest.approx(10.0) and loc.fuel_l == pytest.approx(12.5)
    assert encode_frame(header, loc.encode()) == PUBLISHED


def test_escaping() -> None:
    assert escape(b"\x30\x7e\x08\x7d\x55") == b"\x30\x7d\x02\x08\x7d\x01\x55"
    assert unescape(b"\x30\x7d\x02\x08\x7d\x01\x55") == b"\x30\x7e\x08\x7d\x55"
    with pytest.raises(FrameError, match="bad_escape"):
        unescape(b"\x30\x7d\x03")


times = st.datetimes(min_value=dt.datetime(2001, 1, 1), max_value=dt.datetime(2098, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=dt.UTC)
)
locations = st.builds(
    Location,
    lat=st.integers(-90_000_000, 90_000_000).map(lambda v: v / 1e6),
    lon=st.integers(-180_000_000, 180_000_000).map(lambda v: v / 1e6),
    time=times,
    speed_kmh=st.integers(0, 2500).map(lambda v: v / 10),
    direction=st.integers(0, 359),
    altitude_m=st.integers(0, 8000),
    alarm=st.integers(0, 2**32 - 1),
    status=st.integers(0, 2**32 - 1).map(lambda s: s & ~0b1100),
    odometer_km=st.none() | st.integers(0, 2**32 - 1).map(lambda v: v / 10),
    fuel_l=st.none() | st.integers(0, 2**16 - 1).map(lambda v: v / 10),
)
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


@settings(max_examples=200, deadline=None)
@given(locations)
def test_location_round_trip(loc: Location) -> None:
    back = Location.decode(loc.encode())
    assert back.lat == pytest.approx(loc.lat, abs=1e-9) and back.lon == pytest.approx(loc.lon, abs=1e-9)
    assert (back.time, back.speed_kmh, back.direction, back.altitude_m, back.alarm) == (
        loc.time, loc.speed_kmh, loc.direction, loc.altitude_m, loc.alarm,
    )  # fmt: skip
    assert back.odometer_km == loc.odometer_km and back.fuel_l == loc.fuel_l
    assert back.load_state == loc.load_state


@settings(max_examples=50, deadline=None)
@given(st.lists(locations, max_size=5), st.integers(0, 1))
def test_batch_round_trip(items: list[Location], kind: int) -> None:
    back = BatchLocation.decode(BatchLocation(tuple(items), kind).encode())
    assert back.kind == kind and [b.time for b in back.items] == [i.time for i in items]


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        Registration,
        province=st.integers(0, 0xFFFF),
        city=st.integers(0, 0xFFFF),
        maker=st.text("ABCDE12345", max_size=5),
        model=st.text("ABCDEFGH-123", max_size=20),
        terminal_id=st.text("ABCDEF0123", max_size=7),
        plate_color=st.integers(0, 9),
        plate=st.sampled_from(["鲁Q12345", "京A0001", "粤B8H888", ""]),
    ),
    st.booleans(),
)
def test_registration_round_trip(reg: Registration, v2019: bool) -> None:
    assert Registration.decode(reg.encode(v2019), v2019) == reg


@given(st.integers(0, 0xFFFF), st.integers(0, 4), st.text("0123456789abcdef", max_size=20))
def test_responses_and_authentication_round_trip(serial: int, result: int, code: str) -> None:
    rr = RegistrationResponse(serial, result, code if result == 0 else "")
    assert RegistrationResponse.decode(rr.encode()) == rr
    gr = GeneralResponse(serial, MSG_LOCATION, result)
    assert GeneralResponse.decode(gr.encode()) == gr
    for v2019 in (False, True):
        auth = Authentication(code, "860000000000001" if v2019 else "", "1.0" if v2019 else "")
        assert Authentication.decode(auth.encode(v2019), v2019) == auth


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


def test_resend_request_layouts() -> None:
    req = ResendRequest(0x1234, (2, 5))
    assert req.encode() == bytes.fromhex("1234 02 0002 0005")  # 2013: the count is a BYTE
    assert req.encode(v2019=True) == bytes.fromhex("1234 0002 0002 0005")  # 2019: a WORD
    for v2019 in (False, True):
        assert ResendRequest.decode(req.encode(v2019), v2019) == req
    with pytest.raises(FrameError):
        ResendRequest.decode(bytes.fromhex("1234 03 0002 0005"))


def _values_by_decode(body: bytes) -> tuple[object, ...]:
    loc = Location.decode(body)
    nan = float("nan")
    return (
        round(loc.time.timestamp() * 1000),
        loc.lon,
        loc.lat,
        loc.speed_kmh,
        loc.status,
        nan if loc.odometer_km is None else loc.odometer_km,
        nan if loc.fuel_l is None else loc.fuel_l,
    )


def _outcome(f, body: bytes) -> tuple[object, ...]:
    try:
        return ("ok", *f(body))
    except FrameError as exc:
        return ("error", exc.reason)


@settings(max_examples=400)
@given(locations, st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=6)), max_size=4), st.data())
def test_location_values_equal_location_decode(loc: Location, items: list[tuple[int, bytes]], data) -> None:
    """The gateway's fast decoding gives Location.decode's values, and its errors, on good and damaged bodies."""
    body = loc.encode() + b"".join(bytes((k, len(v))) + v for k, v in items)
    damage = data.draw(st.sampled_from(["none", "time", "truncate", "item"]))
    if damage == "time":  # a byte of the BCD time replaced: bad BCD, or a date or time that does not exist
        k = data.draw(st.integers(22, 27))
        body = body[:k] + bytes((data.draw(st.integers(0, 255)),)) + body[k + 1 :]
    elif damage == "truncate":
        body = body[: data.draw(st.integers(0, len(body)))]
    elif damage == "item" and len(body) > 28:
        body = body + bytes((1, 9))  # an item whose length runs past the body
    want, got = _outcome(_values_by_decode, body), _outcome(location_values, body)
    assert len(want) == len(got) and want[:2] == got[:2], (want, got)
    for a, b in zip(want[2:], got[2:], strict=True):
        assert a == b or (a != a and b != b), (want, got)  # equal, or both NaN


@given(st.binary(min_size=0, max_size=64))
def test_check_code_is_the_xor_of_every_byte(data: bytes) -> None:
    want = 0
    for b in data:
        want ^= b
    assert check_code(data) == want
