"""Months as the inventory counts them: local calendar months of Asia/Shanghai (UTC+8).

A month is numbered ``year * 12 + month - 1`` (2018-01 is 24216) so that month
arithmetic is integer arithmetic; labels are ``YYYY-MM``. China has kept UTC+8
without daylight saving since 1991, so a fixed offset is exact for every period
the inventory covers; JT/T 808 terminals report their time in GMT+8 as well.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

from truckcarbon.core.errors import InputError

LOCAL_OFFSET_S = 8 * 3600
_EPOCH_MONTH = 1970 * 12


def month_number(year: int, month: int) -> int:
    """``year * 12 + month - 1``."""
    return year * 12 + month - 1


def parse_month(text: str) -> int:
    """'YYYY-MM' -> month number, with a clear error."""
    try:
        d = dt.datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise InputError(f"unknown month {text!r}; use YYYY-MM, e.g. 2018-01") from None
    if not 2000 <= d.year <= 2100:
        raise InputError(f"month {text!r} is outside 2000..2100")
    return month_number(d.year, d.month)


def month_label(m: int) -> str:
    """Month number -> 'YYYY-MM'."""
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def month_labels(months: npt.ArrayLike) -> list[str]:
    """Month numbers -> labels."""
    return [month_label(int(m)) for m in np.asarray(months).tolist()]


def month_start_utc_s(months: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """UTC epoch seconds at which each local month starts."""
    m = np.asarray(months, dtype=np.int64) - _EPOCH_MONTH
    starts = m.astype("datetime64[M]").astype("datetime64[s]").astype(np.int64)
    return np.asarray(starts - LOCAL_OFFSET_S, dtype=np.int64)


def month_bounds_utc(m: int) -> tuple[int, int]:
    """UTC epoch seconds of the start and end of local month ``m``."""
    start, end = month_start_utc_s([m, m + 1]).tolist()
    return int(start), int(end)


_TABLE_FIRST = 1970 * 12
_TABLE_STARTS = month_start_utc_s(np.arange(_TABLE_FIRST, 2200 * 12 + 1))  # 1970-01 .. 2200-01


def local_month(t_s: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Local month number of UTC epoch seconds (a binary search in a table of month starts)."""
    t = np.asarray(t_s, dtype=np.int64)
    months = np.searchsorted(_TABLE_STARTS, t, side="right") - 1 + _TABLE_FIRST
    outside = (t < _TABLE_STARTS[0]) | (t >= _TABLE_STARTS[-1])
    if np.any(outside):
        days = (t[outside] + LOCAL_OFFSET_S) // 86400
        months[outside] = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + _EPOCH_MONTH
    return np.asarray(months, dtype=np.int64)
