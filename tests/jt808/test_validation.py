"""The checks of a report: each reason, the first that applies, the limits that can be set."""

from __future__ import annotations

import pytest

from truckcarbon.jt808.validation import QUARANTINE_REASONS, Limits, check

NOW_MS = 1_700_000_000_000
NAN = float("nan")
GOOD = (NOW_MS - 60_000, 114.3, 30.5, 60.0, 0b10 | 0b11 << 8, 1000.0, 50.0)  # ts, lon, lat, speed, status, odo, fuel


def with_(**changes: float) -> tuple[int, float, float, float, int, float, float]:
    names = ("ts", "lon", "lat", "speed", "status", "odo", "fuel")
    values = dict(zip(names, GOOD, strict=True)) | changes
    return tuple(values[n] for n in names)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, ""),
        ({"odo": NAN, "fuel": NAN}, ""),  # absent items pass
        ({"lat": 90.000001}, "bad_coordinates"),
        ({"lon": -180.5}, "bad_coordinates"),
        ({"lat": 0.0, "lon": 0.0}, "zero_fix"),
        ({"lat": 95.0, "lon": 0.0, "speed": 9999.0}, "bad_coordinates"),  # the first reason that applies
        ({"ts": NOW_MS - 91 * 86400_000}, "time_too_old"),
        ({"ts": NOW_MS + 901_000}, "time_in_future"),
        ({"ts": NOW_MS + 899_000}, ""),
        ({"speed": 250.5}, "bad_speed"),
        ({"odo": 10_000_000.0}, "bad_odometer"),
        ({"fuel": 5000.1}, "bad_fuel"),
        ({"status": 0b10 << 8}, "reserved_load_bits"),
        ({"status": 0b100000}, "encrypted_coordinates"),
    ],
)
def test_each_reason(changes: dict[str, float], reason: str) -> None:
    assert QUARANTINE_REASONS[check(with_(**changes), NOW_MS, Limits())] == reason


def test_an_age_limit_of_zero_takes_any_past_time_and_limits_can_be_tightened() -> None:
    ancient = with_(ts=0)
    assert QUARANTINE_REASONS[check(ancient, NOW_MS, Limits())] == "time_too_old"
    assert check(ancient, NOW_MS, Limits(max_age_s=0)) == 0
    assert QUARANTINE_REASONS[check(GOOD, NOW_MS, Limits(max_speed_kmh=50.0))] == "bad_speed"
