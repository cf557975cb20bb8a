"""The checks every decoded location report passes before it may enter the pings dataset.

A report that fails is still acknowledged (the terminal would otherwise send it
again and again) but goes to the quarantine dataset with the first reason that
applies, never to the pings. The ranges are those of the pings schema
(:data:`truckcarbon.core.schemas.PINGS`: coordinates in range, speed 0..250 km/h,
odometer and fuel >= 0; ingest also refuses (0, 0)) plus what only JT/T 808 can
get wrong:

========================= =====================================================
reason                    when
========================= =====================================================
bad_coordinates           latitude outside -90..90 or longitude outside -180..180
zero_fix                  latitude and longitude both 0
time_too_old              older than ``max_age_s`` before the server clock
                          (blind-area uploads come late: the default is 90 days)
time_in_future            more than ``max_future_s`` after the server clock
bad_speed                 above ``max_speed_kmh`` (a WORD of 0.1 km/h reaches 6553.5)
bad_odometer              item 0x01 above ``max_odometer_km``
bad_fuel                  item 0x02 above ``max_fuel_l``
reserved_load_bits        status bits 8-9 = 10 (reserved)
encrypted_coordinates     status bit 5: coordinates encrypted by a plug-in
bad_vehicle_id            the record's vehicle id does not fit the dataset's
========================= =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from truckcarbon.core.schemas import PINGS


def _range(name: str) -> tuple[float, float]:
    column = PINGS.column(name)
    low, high = column.low, column.high
    return (-float("inf") if low is None else low, float("inf") if high is None else high)


LAT, LON, SPEED = _range("lat"), _range("lon"), _range("speed_kmh")

# Reason codes as stored in the write-ahead log (0: a valid report); the order is part of the log format.
QUARANTINE_REASONS = (
    "",
    "bad_coordinates",
    "zero_fix",
    "time_too_old",
    "time_in_future",
    "bad_speed",
    "bad_odometer",
    "bad_fuel",
    "reserved_load_bits",
    "encrypted_coordinates",
    "bad_vehicle_id",
)
(
    OK,
    BAD_COORDINATES,
    ZERO_FIX,
    TIME_TOO_OLD,
    TIME_IN_FUTURE,
    BAD_SPEED,
    BAD_ODOMETER,
    BAD_FUEL,
    RESERVED_LOAD_BITS,
    ENCRYPTED_COORDINATES,
    BAD_VEHICLE_ID,
) = range(len(QUARANTINE_REASONS))
STATUS_ENCRYPTED = 1 << 5


@dataclass(frozen=True)
class Limits:
    """Valid ranges of a report; ``max_age_s`` 0 accepts any past time (replaying history)."""

    max_age_s: float = 90 * 86400.0
    max_future_s: float = 900.0
    max_speed_kmh: float = SPEED[1]
    max_odometer_km: float = 9_999_999.0
    max_fuel_l: float = 5000.0


def check(values: tuple[int, float, float, float, int, float, float], now_ms: int, limits: Limits) -> int:
    """The quarantine reason code of a report from :func:`~truckcarbon.jt808.codec.location_values` (0: valid)."""
    ts_ms, lon, lat, speed, status, odometer, fuel = values
    if not (LAT[0] <= lat <= LAT[1] and LON[0] <= lon <= LON[1]):
        return BAD_COORDINATES
    if lat == 0.0 and lon == 0.0:
        return ZERO_FIX
    if limits.max_age_s > 0 and ts_ms < now_ms - limits.max_age_s * 1000:
        return TIME_TOO_OLD
    if ts_ms > now_ms + limits.max_future_s * 1000:
        return TIME_IN_FUTURE
    if speed > limits.max_speed_kmh:
        return BAD_SPEED
    if odometer > limits.max_odometer_km:  # NaN (absent) passes
        return BAD_ODOMETER
    if fuel > limits.max_fuel_l:
        return BAD_FUEL
    if (status >> 8) & 0b11 == 0b10:
        return RESERVED_LOAD_BITS
    if status & STATUS_ENCRYPTED:
        return ENCRYPTED_COORDINATES
    return OK
