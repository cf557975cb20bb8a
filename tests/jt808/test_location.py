"""JT/T 808 location reports: a published frame, round trips (hypothesis), the fast reader equal to the decoder."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.frame import FrameError, Header, decode_frame, encode_frame
from truckcarbon.jt808.location import BatchLocation, Location, batch_items, location_values
from truckcarbon.jt808.messages import MSG_LOCATION

from .gwkit import PUBLISHED


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


def test_south_and_west_are_status_bits_and_the_time_is_gmt8() -> None:
    when = dt.datetime(2024, 2, 29, 16, 30, 5, tzinfo=dt.UTC)  # 2024-03-01 00:30:05 in GMT+8
    body = Location(lat=-33.5, lon=-70.25, time=when, speed_kmh=12.3, status=0b10).encode()
    _, status, lat, lon = struct.unpack_from(">IIII", body)
    assert status == 0b10 | 0b0100 | 0b1000 and (lat, lon) == (33_500_000, 70_250_000)
    assert body[22:28] == bytes.fromhex("240301003005")
    ts_ms, lon_deg, lat_deg, speed, status, odometer, fuel = location_values(body)
    assert ts_ms == int(when.timestamp() * 1000) and (lon_deg, lat_deg) == (-70.25, -33.5)
    assert speed == pytest.approx(12.3) and odometer != odometer and fuel != fuel  # absent: NaN


def test_batch_items_refuse_bodies_that_do_not_add_up() -> None:
    item = Location(lat=30, lon=114, time=dt.datetime(2022, 3, 1, tzinfo=dt.UTC)).encode()
    good = struct.pack(">HB", 2, 1) + 2 * (struct.pack(">H", len(item)) + item)
    assert batch_items(good) == [item, item]
    for bad in (good[:2], good + b"\x00", good[:-1], struct.pack(">HB", 3, 0) + good[3:]):
        with pytest.raises(FrameError, match="bad_body"):
            batch_items(bad)
