"""The plausible window of times, the ranges read from the schema, and swapped axes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.rules import OPTIONAL_FLOAT, REQUIRED, IngestRules, check_axes


def test_required_columns_and_ranges_come_from_the_schema() -> None:
    assert REQUIRED == ("vehicle_id", "ts", "lon", "lat")
    assert {"speed_kmh": (0.0, 250.0), "odometer_km": (0.0, np.inf), "fuel_level_l": (0.0, np.inf)} == OPTIONAL_FLOAT


def test_the_window_is_local_dates() -> None:
    rules = IngestRules.from_settings(time_min="2022-03-01", time_max="2022-03-31")
    local = dt.timezone(dt.timedelta(hours=8))
    assert rules.start_s == int(dt.datetime(2022, 3, 1, tzinfo=local).timestamp())
    assert rules.end_s == int(dt.datetime(2022, 4, 1, tzinfo=local).timestamp())  # the end day included
    assert rules.window_text() == "[2022-03-01 00:00, 2022-04-01 00:00) local time"
    default = IngestRules()
    assert default.start_s == int(dt.datetime(2000, 1, 1, tzinfo=local).timestamp())
    assert default.end_s > dt.datetime.now(dt.UTC).timestamp() + 86000  # one day after the clock


def test_bad_window_settings_are_clear_errors() -> None:
    with pytest.raises(InputError, match="time_min must be a date YYYY-MM-DD, not '2022/03/01'"):
        IngestRules.from_settings(time_min="2022/03/01")
    with pytest.raises(InputError, match=r"time_max \(2021-01-01\) must be after time_min \(2022-01-01\)"):
        IngestRules.from_settings(time_min="2022-01-01", time_max="2021-01-01")


def test_swapped_axes_are_refused_and_chinas_coordinates_pass() -> None:
    lon = np.array([116.4, 121.5, 113.3, 0.0])
    lat = np.array([39.9, 31.2, 23.1, 0.0])
    check_axes(lon, lat, "p.csv")  # Beijing, Shanghai, Guangzhou and a (0, 0): fine
    with pytest.raises(InputError, match=r"p\.csv: column lat looks like a longitude .*3 of the first 3 fixes"):
        check_axes(lat, lon, "p.csv")
    check_axes(np.array([np.nan]), np.array([np.nan]), "p.csv")  # nothing to judge
    # beyond +-90 latitude with an in-range longitude: swapped, wherever it is
    with pytest.raises(InputError, match="--columns lon=lat,lat=lon"):
        check_axes(np.array([10.0, 20.0]), np.array([-150.0, 170.0]), "x")


def test_the_ignition_is_read_in_the_spellings_exports_use():
    import pyarrow as pa

    from truckcarbon.ingest.rules import acc_codes

    codes, bad = acc_codes(pa.array(["ACC开", " acc off ", "1", "0", "ON", "熄火", "点火", "ACC_ON", "x", None, ""]))
    assert codes.tolist() == [1, 0, 1, 0, 1, 0, 1, 1, -1, -1, -1]
    assert bad.tolist() == [False] * 8 + [True, False, False]  # only a given value that is no spelling
    codes, bad = acc_codes(pa.array([True, None, False]))
    assert codes.tolist() == [1, -1, 0] and not bad.any()
    codes, bad = acc_codes(pa.array([1.0, 0.0, 2.0]))
    assert codes.tolist() == [1, 0, -1] and bad.tolist() == [False, False, True]


def test_a_ping_whose_ignition_is_no_spelling_is_quarantined():
    import pyarrow as pa

    from truckcarbon.ingest.pings import validate_pings

    table = pa.table(
        {"vehicle_id": ["a", "a"], "ts": ["2022-03-01 08:00:00", "2022-03-01 08:00:30"], "lon": ["116.4", "116.41"],
         "lat": ["39.9", "39.9"], "acc_on": ["开", "maybe"]}
    )  # fmt: skip
    valid, quarantine, counts = validate_pings(table, "p.csv")
    assert valid["acc_on"].to_pylist() == [True]
    assert quarantine["reason"].to_pylist() == ["bad_optional_value"] and counts.kept == 1
