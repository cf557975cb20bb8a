"""Timestamps in the forms real exports use, parsed exactly: an impossible date is refused, never rolled over.

Accepted (a column may mix them):

========================= ============================== ==========================================
form                      example                        read as
========================= ============================== ==========================================
epoch seconds             ``1646870400``, ``1646870400.5`` UTC
epoch milliseconds        ``1646870400000``              UTC (13 digits, from 1e11)
epoch microseconds        ``1646870400000000``           UTC (from 1e14)
epoch nanoseconds         ``1646870400000000000``        UTC (from 1e17)
compact local time        ``20220310080000``             YYYYMMDDHHMMSS, 14 digits, Asia/Shanghai
ISO 8601                  ``2022-03-10T08:00:00+08:00``  with ``Z`` or an offset: that offset;
                          ``2022-03-10 08:00:00.250``    without: Asia/Shanghai (JT/T 808's GMT+8)
slashes or dots           ``2022/03/10 08:00:00``,       Asia/Shanghai; month, day and hour may
                          ``2022/3/10 8:00``             have one digit; seconds optional
a date alone              ``2022-03-10``                 local midnight
========================= ============================== ==========================================

``ts_format`` (``--ts-format``) adds one ``strptime`` format (e.g. ``%d.%m.%Y %H:%M:%S``) tried before
the forms above; values it reads are checked by Python's ``datetime`` (no rollover either).

Values come out as epoch milliseconds (float64, NaN where the value is not a time
in any accepted form or names an impossible date such as ``2022-02-30`` or ``25:00``).

The calendar arithmetic (days from a civil date, whether fields name a real time) is written once,
compiled, and serves both the column-at-a-time readers here and the compiled rules of typed files
(:mod:`.typed`), which read integer times one value at a time with :func:`integer_time_s` and
:func:`civil_s` (the same forms, in seconds).
"""

from __future__ import annotations

import datetime as dt

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import is_number_type, is_text, parse_float64
from truckcarbon.core.months import LOCAL_OFFSET_S

LOCAL_OFFSET_MS = LOCAL_OFFSET_S * 1000
_DATE_TIME = (
    r"^(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:(?:[T ]+|T)(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)


@nb.njit(cache=True, nogil=True)
def _days(y, m, d):  # type: ignore[no-untyped-def]
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    yy = y - 1 if m <= 2 else y
    era = yy // 400
    yoe = yy - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@nb.njit(cache=True, nogil=True)
def _real(y, mo, d, h, mi, s):  # type: ignore[no-untyped-def]
    """Whether the fields name a real date and time of day (no 2022-02-30, no 24:00, no :60)."""
    if mo < 1 or mo > 12 or d < 1 or h < 0 or h > 23 or mi < 0 or mi > 59 or s < 0 or s > 59:
        return False
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    days_in = 31
    if mo == 2:
        days_in = 29 if leap else 28
    elif mo == 4 or mo == 6 or mo == 9 or mo == 11:
        days_in = 30
    return d <= days_in


@nb.njit(cache=True, nogil=True)
def _days_all(y, m, d):  # type: ignore[no-untyped-def]
    out = np.empty(y.shape[0], np.int64)
    for i in range(y.shape[0]):
        out[i] = _days(y[i], m[i], d[i])
    return out


@nb.njit(cache=True, nogil=True)
def _real_all(y, mo, d, h, mi, s):  # type: ignore[no-untyped-def]
    out = np.empty(y.shape[0], np.bool_)
    for i in range(y.shape[0]):
        out[i] = _real(y[i], mo[i], d[i], h[i], mi[i], s[i])
    return out


def _int64s(*arrays: npt.NDArray[np.int64]) -> list[npt.NDArray[np.int64]]:
    return [np.ascontiguousarray(a, dtype=np.int64) for a in arrays]


def days_from_civil(
    y: npt.NDArray[np.int64], m: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm)."""
    return np.asarray(_days_all(*_int64s(y, m, d)), dtype=np.int64)


def valid_civil(
    y: npt.NDArray[np.int64],
    mo: npt.NDArray[np.int64],
    d: npt.NDArray[np.int64],
    h: npt.NDArray[np.int64],
    mi: npt.NDArray[np.int64],
    s: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """True where the fields name a real date and time of day (no 2022-02-30, no 24:00, no :60)."""
    return np.asarray(_real_all(*_int64s(y, mo, d, h, mi, s)), dtype=np.bool_)


def _ints(parts: pa.StructArray, name: str, default: int) -> npt.NDArray[np.int64]:
    field = pc.struct_field(parts, name)
    text = pc.if_else(pc.equal(field, ""), pa.scalar(None, pa.string()), field)
    return np.asarray(pc.fill_null(pc.cast(text, pa.int64()), default).to_numpy(), dtype=np.int64)


def _fields_ms(parts: pa.StructArray, matched: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Epoch ms of regex matches (NaN where unmatched or impossible)."""
    out = np.full(len(parts), np.nan)
    if not matched.any():
        return out
    names = {f.name for f in parts.type}
    y, mo, d = (_ints(parts, k, 0) for k in ("y", "mo", "d"))
    h, mi, s = (_ints(parts, k, 0) for k in ("h", "mi", "s"))
    ok = matched & valid_civil(y, mo, d, h, mi, s)
    ms = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s).astype(np.float64) * 1000.0
    if "f" in names:
        frac = pc.struct_field(parts, "f")
        scaled = pc.utf8_slice_codeunits(pc.binary_join_element_wise(frac, "000", ""), 0, 3)
        ms += np.nan_to_num(parse_float64(scaled)[0], nan=0.0)
    offset = np.full(len(parts), float(LOCAL_OFFSET_MS))
    if "tz" in names:
        # The few distinct zone designators are read once each.
        zones = pc.dictionary_encode(pc.struct_field(parts, "tz"))
        per_zone = np.array([_zone_ms(z) for z in zones.dictionary.to_pylist()] + [float(LOCAL_OFFSET_MS)])
        idx = np.asarray(pc.fill_null(zones.indices, len(zones.dictionary)).to_numpy(), dtype=np.int64)
        offset = per_zone[idx]
        ok &= ~np.isnan(offset)
    out[ok] = ms[ok] - offset[ok]
    return out


def _zone_ms(z: str | None) -> float:
    """Offset in ms east of UTC of a zone designator (``Z``, ``+08:00``, ``+0800``, ``-05``); NaN when
    impossible; the local offset when there is none."""
    if not z:
        return float(LOCAL_OFFSET_MS)
    if z in ("Z", "z", "UTC"):
        return 0.0
    digits = z[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        return float("nan")
    return (-1.0 if z[0] == "-" else 1.0) * (hours * 3600 + minutes * 60) * 1000.0


def _match(text: pa.Array, pattern: str) -> tuple[pa.StructArray, npt.NDArray[np.bool_]]:
    """Regex fields of each value (null structs where unmatched) and where it matched."""
    parts = pc.extract_regex(text, pattern=pattern)
    return parts, np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def epoch_to_ms(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Epoch numbers by magnitude: seconds below 1e11, milliseconds below 1e14, microseconds below 1e17,
    else nanoseconds."""
    a = np.abs(v)
    return np.where(a < 1e11, v * 1000.0, np.where(a < 1e14, v, np.where(a < 1e17, v / 1000.0, v / 1e6)))


def compact_ms(v: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """(is a 14-digit YYYYMMDDHHMMSS integer, its epoch ms as local time; NaN where impossible)."""
    is14 = (v >= 1e13) & (v < 1e14) & (v == np.floor(v))
    out = np.full(v.size, np.nan)
    if is14.any():
        x = v[is14].astype(np.int64)
        y, rest = np.divmod(x, 10**10)
        mo, rest = np.divmod(rest, 10**8)
        d, rest = np.divmod(rest, 10**6)
        h, rest = np.divmod(rest, 10**4)
        mi, s = np.divmod(rest, 100)
        ok = valid_civil(y, mo, d, h, mi, s)
        ms = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s).astype(np.float64) * 1000.0
        out[np.flatnonzero(is14)[ok]] = ms[ok] - LOCAL_OFFSET_MS
    return is14, out


@nb.njit(cache=True, nogil=True)
def civil_s(v):  # type: ignore[no-untyped-def]
    """Local epoch seconds of a YYYYMMDDHHMMSS integer; -2^62 when it names no real time."""
    y = v // 10_000_000_000
    mo = (v // 100_000_000) % 100
    d = (v // 1_000_000) % 100
    h = (v // 10_000) % 100
    mi = (v // 100) % 100
    s = v % 100
    if not _real(y, mo, d, h, mi, s):
        return -(1 << 62)
    return _days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s


@nb.njit(cache=True, nogil=True)
def integer_time_s(v, local_offset_s):  # type: ignore[no-untyped-def]
    """Epoch seconds of an integer time (:mod:`.times`: by magnitude; 14 digits are YYYYMMDDHHMMSS local)."""
    a = -v if v < 0 else v
    if a < 100_000_000_000:
        return v
    if a < 100_000_000_000_000:
        if v >= 10_000_000_000_000:
            c = civil_s(v)
            return c if c == -(1 << 62) else c - local_offset_s
        return v // 1000
    if a < 100_000_000_000_000_000:
        return v // 1_000_000
    return v // 1_000_000_000


def _numbers_ms(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    is14, compact = compact_ms(v)
    return np.where(is14, compact, epoch_to_ms(v))


def _custom_ms(text: pa.Array, fmt: str) -> npt.NDArray[np.float64]:
    """Epoch ms of values in a strptime format (naive values are local time), NaN where they do not fit."""
    out = np.full(len(text), np.nan)
    values = text.to_pylist()
    cache: dict[str, float] = {}
    for i, s in enumerate(values):
        if s is None:
            continue
        got = cache.get(s)
        if got is None:
            try:
                parsed = dt.datetime.strptime(s, fmt)
            except ValueError:
                got = np.nan
            else:
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=dt.timezone(dt.timedelta(seconds=LOCAL_OFFSET_S)))
                got = parsed.timestamp() * 1000.0
            if len(cache) < 1 << 20:
                cache[s] = got
        out[i] = got
    return out


def parse_times(arr: pa.Array | pa.ChunkedArray, ts_format: str | None = None) -> npt.NDArray[np.float64]:
    """Epoch milliseconds (UTC) of a timestamp column of any type; NaN where missing or not a time."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type):
        # Finer units are cut to the millisecond (an unsafe cast truncates; a safe one refuses the data).
        ms = pc.cast(pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False), pa.int64())
        out = np.asarray(pc.fill_null(pc.cast(ms, pa.float64()), np.nan).to_numpy(), dtype=np.float64)
        return out if arr.type.tz else out - LOCAL_OFFSET_MS
    if is_number_type(arr):
        # Unsafe: integers beyond 2^53 lose their last digits, and are far outside any plausible time anyway.
        v = np.asarray(pc.fill_null(pc.cast(arr, pa.float64(), safe=False), np.nan).to_numpy(), dtype=np.float64)
        return _numbers_ms(v)
    if not is_text(arr):
        return np.full(len(arr), np.nan)
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    out = np.full(len(text), np.nan)
    todo = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if ts_format:
        got = _custom_ms(text, ts_format)
        out = np.where(np.isnan(got), out, got)
        todo &= np.isnan(got)
    if todo.any():
        v = parse_float64(text)[0]
        numeric = todo & ~np.isnan(v) & np.isfinite(v)
        out[numeric] = _numbers_ms(v[numeric])
        todo &= ~numeric
    if todo.any():
        idx = np.flatnonzero(todo)
        sub = text.take(pa.array(idx))
        parts, matched = _match(sub, _DATE_TIME)
        out[idx] = _fields_ms(parts, matched)
    return out


__all__ = ["civil_s", "compact_ms", "days_from_civil", "epoch_to_ms", "integer_time_s", "parse_times", "valid_civil"]
