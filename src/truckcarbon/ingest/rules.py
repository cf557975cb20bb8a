"""What a plausible ping is, beyond its columns' types: the time window, the value ranges, the axes.

:class:`IngestRules` holds the extra time format and the window of plausible
times (by default from 2000-01-01 local time to one day after the run's clock);
:data:`REQUIRED` and :data:`OPTIONAL_FLOAT` are the required columns and the
ranges of the optional numeric channels, read from the pings schema
(:data:`truckcarbon.core.schemas.PINGS`); :func:`check_axes` refuses a file
whose longitudes and latitudes are swapped. Both validation paths
(:mod:`.pings`, :mod:`.typed`) apply them.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import LOCAL_OFFSET_S
from truckcarbon.core.schemas import PINGS

REQUIRED = PINGS.required
OPTIONAL_FLOAT = {
    name: (float(PINGS.column(name).low or 0.0), float(PINGS.column(name).high or np.inf))
    for name in ("speed_kmh", "odometer_km", "fuel_level_l")
}

EARLIEST = "2000-01-01"

# How exports spell the ignition (ACC) state: JT/T 808 status bit 0 as a number, a boolean, or words.
ACC_ON_WORDS = ("1", "true", "t", "yes", "y", "on", "accon", "开", "开启", "打开", "点火", "acc开", "是")
ACC_OFF_WORDS = ("0", "false", "f", "no", "n", "off", "accoff", "关", "关闭", "熄火", "acc关", "否")


def acc_codes(arr: pa.Array) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """The ignition state of each value: 1 on, 0 off, -1 not given; and where a given value is none of
    the spellings (:data:`ACC_ON_WORDS`, :data:`ACC_OFF_WORDS`; case, spaces and underscores ignored)."""
    n = len(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_boolean(arr.type):
        on = np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), bool)
        codes = np.where(np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool), -1, on.astype(np.int8))
        return codes.astype(np.int8), np.zeros(n, bool)
    text = pc.utf8_lower(pc.replace_substring_regex(pc.cast(arr, pa.string()), r"[\s_]+", ""))
    if pa.types.is_floating(arr.type):  # 1.0 and 0.0 from a float column
        text = pc.replace_substring_regex(text, r"\.0+$", "")
    on = np.asarray(pc.is_in(text, value_set=pa.array(ACC_ON_WORDS)).to_numpy(zero_copy_only=False), bool)
    off = np.asarray(pc.is_in(text, value_set=pa.array(ACC_OFF_WORDS)).to_numpy(zero_copy_only=False), bool)
    present = np.asarray(pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False), bool)
    codes = np.where(on, 1, np.where(off, 0, -1)).astype(np.int8)
    return codes, present & ~on & ~off


def _local_epoch_s(day: str, what: str) -> int:
    try:
        d = dt.datetime.strptime(day.strip(), "%Y-%m-%d")
    except ValueError:
        raise InputError(f"{what} must be a date YYYY-MM-DD, not {day!r}") from None
    return int(d.replace(tzinfo=dt.UTC).timestamp()) - LOCAL_OFFSET_S


@dataclass(frozen=True)
class IngestRules:
    """How ping values are read: an extra time format and the plausible window of times.

    ``start_s`` and ``end_s`` are epoch seconds ([start, end)); by default from
    2000-01-01 local time to one day after the clock of the run.
    """

    ts_format: str = ""
    start_s: int = field(default_factory=lambda: _local_epoch_s(EARLIEST, "time_min"))
    end_s: int = field(default_factory=lambda: int(time.time()) + 86400)

    @classmethod
    def from_settings(cls, ts_format: str = "", time_min: str = "", time_max: str = "") -> IngestRules:
        """From the configuration's ``ts_format``, ``time_min`` and ``time_max`` (dates; empty: defaults)."""
        start = _local_epoch_s(time_min or EARLIEST, "time_min")
        end = _local_epoch_s(time_max, "time_max") + 86400 if time_max else int(time.time()) + 86400
        if end <= start:
            raise InputError(f"time_max ({time_max}) must be after time_min ({time_min or EARLIEST})")
        return cls(ts_format, start, end)

    def window_text(self) -> str:
        """The window as local dates, for messages."""
        tz = dt.timezone(dt.timedelta(seconds=LOCAL_OFFSET_S))
        lo = dt.datetime.fromtimestamp(self.start_s, tz).strftime("%Y-%m-%d %H:%M")
        hi = dt.datetime.fromtimestamp(self.end_s, tz).strftime("%Y-%m-%d %H:%M")
        return f"[{lo}, {hi}) local time"


AXES_SAMPLE = 20_000


def check_axes(lon: npt.NDArray[Any], lat: npt.NDArray[Any], source: str) -> None:
    """Refuse a file whose longitudes and latitudes are swapped (judged on up to the first 20,000 rows).

    Swapped means: most finite rows have a latitude beyond +-90 but a longitude
    within it, or sit in China only when read the other way round (latitudes of
    73-136, longitudes of 18-54).
    """
    x, y = lon[:AXES_SAMPLE], lat[:AXES_SAMPLE]
    finite = np.isfinite(x) & np.isfinite(y) & ~((x == 0) & (y == 0))
    n = int(finite.sum())
    if n == 0:
        return
    x, y = x[finite], y[finite]
    # China's extent: longitudes 73.5-135.1, latitudes 18.1-53.6 (mainland and Hainan).
    swapped = ((np.abs(y) > 90) & (np.abs(x) <= 90)) | ((y >= 73) & (y <= 136) & (x >= 18) & (x <= 54))
    china = (x >= 73) & (x <= 136) & (y >= 18) & (y <= 54)
    if swapped.sum() > 0.5 * n and swapped.sum() > china.sum():
        i = int(np.flatnonzero(swapped)[0])
        raise InputError(
            f"{source}: column lat looks like a longitude and lon like a latitude ({int(swapped.sum())} of the "
            f"first {n} fixes, e.g. lon={x[i]:g}, lat={y[i]:g}); the columns are swapped: map them with "
            "--columns lon=lat,lat=lon (or fix the export)"
        )


__all__ = ["AXES_SAMPLE", "EARLIEST", "OPTIONAL_FLOAT", "REQUIRED", "IngestRules", "check_axes"]
