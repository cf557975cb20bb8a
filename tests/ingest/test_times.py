"""Timestamps: every accepted form against Python's datetime; impossible dates refused, never rolled over."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.ingest.times import compact_ms, days_from_civil, parse_times

CST = dt.timezone(dt.timedelta(hours=8))
moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31, 23, 59, 59))


@settings(max_examples=60, deadline=None)
@given(moments, st.integers(-12, 14))
def test_every_form_names_the_same_instant(moment: dt.datetime, offset_h: int) -> None:
    moment = moment.replace(microsecond=(moment.microsecond // 1000) * 1000)
    local = moment.replace(tzinfo=CST)
    whole = float(int(local.replace(microsecond=0).timestamp()) * 1000)
    want = whole + moment.microsecond // 1000
    zone = dt.timezone(dt.timedelta(hours=offset_h))
    other = local.astimezone(zone)
    sign = "+" if offset_h >= 0 else "-"
    forms = {
        moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]: want,
        moment.strftime("%Y-%m-%dT%H:%M:%S"): whole,
        moment.strftime("%Y/%m/%d %H:%M:%S"): whole,
        f"{moment.year}/{moment.month}/{moment.day} {moment.hour}:{moment.minute:02d}:{moment.second:02d}": whole,
        moment.strftime("%Y%m%d%H%M%S"): whole,
        other.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(offset_h):02d}:00": whole,
        other.strftime("%Y-%m-%dT%H:%M:%S") + f"{sign}{abs(offset_h):02d}00": whole,
        local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"): whole,
        str(int(whole // 1000)): whole,
        str(int(whole)): whole,
        str(int(whole) * 1000): whole,
    }
    got = parse_times(pa.array(list(forms)))
    assert got.tolist() == list(forms.values())


@settings(max_examples=80, deadline=None)
@given(st.integers(2000, 2099), st.integers(1, 12), st.integers(29, 32))
def test_impossible_days_are_refused_in_every_form(year: int, month: int, day: int) -> None:
    try:
        dt.date(year, month, day)
    except ValueError:
        pass
    else:
        return  # a real date: not this test's concern
    texts = [
        f"{year}-{month:02d}-{day:02d} 08:00:00",
        f"{year}/{month}/{day} 08:00",
        f"{year}{month:02d}{day:02d}080000",
    ]
    assert np.isnan(parse_times(pa.array(texts))).all()
    assert np.isnan(parse_times(pa.array([int(texts[2])], pa.int64()))).all()


def test_bad_fields_and_odd_values() -> None:
    bad = ["2022-03-10 24:00:00", "2022-03-10 08:60:00", "2022-03-10 08:00:60", "2022-13-01", "2022-00-10",
           "2022-03-10T08:00:00+15:00", "yesterday", "", None, "2022-03-10 08:00:00 +08:99"]  # fmt: skip
    assert np.isnan(parse_times(pa.array(bad, pa.string()))).all()
    # a date alone is local midnight; text with blanks around it is trimmed
    got = parse_times(pa.array([" 2022-03-10 ", "2022.03.10 08:00:00"]))
    assert got.tolist() == [1646841600000.0, 1646870400000.0]


def test_integer_magnitudes_and_timestamp_columns() -> None:
    s = 1646870400
    ints = pa.array([s, s * 1000, s * 10**6, s * 10**9, 20220310080000, 2**63 - 1], pa.int64())
    got = parse_times(ints)
    assert got[:5].tolist() == [s * 1000.0] * 5 and got[5] > 4e12  # INT64_MAX: far in the future (range check)
    naive = pa.array([s], pa.int64()).cast(pa.timestamp("s"))  # naive: local time
    assert parse_times(naive).tolist() == [(s - 8 * 3600) * 1000.0]
    assert parse_times(pa.array([s * 1000], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))).tolist() == [s * 1000.0]


def test_custom_format_checks_the_calendar() -> None:
    got = parse_times(
        pa.array(["10.03.2022 08:00:00", "30.02.2022 08:00:00", "2022-03-10 08:00:00"]), "%d.%m.%Y %H:%M:%S"
    )
    assert got[0] == 1646870400000.0 and np.isnan(got[1]) and got[2] == 1646870400000.0  # built-ins still apply


def test_civil_arithmetic_against_the_standard_library() -> None:
    rng = np.random.default_rng(1)
    ordinal = rng.integers(dt.date(1900, 1, 1).toordinal(), dt.date(2200, 12, 31).toordinal(), 5000)
    dates = [dt.date.fromordinal(int(o)) for o in ordinal]
    y, m, d = (np.array([getattr(x, k) for x in dates], np.int64) for k in ("year", "month", "day"))
    assert np.array_equal(days_from_civil(y, m, d), ordinal - dt.date(1970, 1, 1).toordinal())
    is14, ms = compact_ms(np.array([20240229120000.0, 20230229120000.0, 1646870400.0]))
    assert is14.tolist() == [True, True, False] and ms[0] == 1709179200000.0 and np.isnan(ms[1])


def test_the_compiled_integer_reading_names_the_same_instants() -> None:
    """integer_time_s (the typed files' rules) reads integers by magnitude like parse_times, in seconds."""
    from truckcarbon.core.months import LOCAL_OFFSET_S
    from truckcarbon.ingest.times import civil_s, integer_time_s

    instant = 1646870400  # 2022-03-10 00:00:00 UTC = 08:00 in Beijing
    assert civil_s(20220310080000) == instant + LOCAL_OFFSET_S  # local seconds of the compact form
    for value in (instant, instant * 1000 + 999, instant * 10**6 + 5, instant * 10**9 + 7, 20220310080000):
        assert integer_time_s(value, LOCAL_OFFSET_S) == instant, value
    assert civil_s(20230229120000) == integer_time_s(20230229120000, LOCAL_OFFSET_S) == -(1 << 62)  # no Feb 29
    assert civil_s(20220310240000) == -(1 << 62)  # no 24:00
    for value in (1646870400, 20240229120000, 20220310080000):
        ms = parse_times(pa.array([value]))[0]
        assert integer_time_s(value, LOCAL_OFFSET_S) == ms // 1000
