"""Validate and normalise ping batches; rows that fail go to quarantine with a reason code.

The pings contract (:data:`truckcarbon.core.schemas.PINGS`; what every engine and the trajectory kernel
receive):

========== ======================= =========================================
column     type                    rule
========== ======================= =========================================
vehicle_id text or integer         required, kept exactly as given; mapped to
                                   the run's dense key (:mod:`.ids`)
ts         any time form           required; :mod:`.times` lists the forms
                                   (epoch s/ms/us/ns, ISO 8601, slashes,
                                   YYYYMMDDHHMMSS, ``--ts-format``); naive
                                   times are Asia/Shanghai local time (JT/T
                                   808 reports GMT+8); within the plausible
                                   window (:class:`IngestRules`)
lon, lat   float64 (degrees)       required, finite, in range, not (0, 0)
speed_kmh  float32                 optional, 0..250
load_state dictionary<string>      optional: empty, half, full
odometer_km, fuel_level_l          optional, >= 0
========== ======================= =========================================

Quarantined rows keep every original column as text plus ``reason``,
``source_file`` and ``source_row`` (1-based data row), so nothing is lost and
every rejection can be traced. A file whose latitudes look like longitudes (the
columns swapped) is refused as a whole (:func:`check_axes`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import given, parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import LOCAL_OFFSET_S
from truckcarbon.core.schemas import LOAD_STATES, PINGS
from truckcarbon.ingest.ids import CONFLICTING, MISSING, UNKNOWN, VehicleIds, id_text
from truckcarbon.ingest.times import parse_times

REQUIRED = PINGS.required
OPTIONAL_FLOAT = {
    name: (float(PINGS.column(name).low or 0.0), float(PINGS.column(name).high or np.inf))
    for name in ("speed_kmh", "odometer_km", "fuel_level_l")
}
LOCAL_OFFSET_MS = LOCAL_OFFSET_S * 1000

# Reason codes, in the order they are checked (a row gets the first that applies).
REASONS = (
    "missing_vehicle_id",
    "bad_time",
    "time_out_of_range",
    "bad_coordinates",
    "zero_fix",
    "bad_optional_value",
    "duplicate_vehicle_id",
    "unknown_vehicle",
)
(R_MISSING_ID, R_BAD_TIME, R_TIME_RANGE, R_COORDS, R_ZERO, R_OPTIONAL, R_DUPLICATE, R_UNKNOWN) = range(len(REASONS))
# Reasons of whole lines that could not be read as rows (CSV), counted beside REASONS.
LINE_REASONS = ("malformed_line", "unterminated_quote")

EARLIEST = "2000-01-01"


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


@dataclass
class IngestCounts:
    """Rows read, kept and quarantined (by reason)."""

    rows: int = 0
    kept: int = 0
    quarantined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def add(self, other: IngestCounts) -> None:
        self.rows += other.rows
        self.kept += other.kept
        for k, v in other.quarantined.items():
            self.quarantined[k] = self.quarantined.get(k, 0) + v


def _numeric(arr: pa.Array) -> np.ndarray:
    """float64 values, NaN where missing or not a number."""
    return parse_float64(arr)[0]


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


def quarantine_table(
    rows: pa.Table, reasons: npt.NDArray[np.integer[Any]], source: str, source_rows: npt.NDArray[np.int64]
) -> pa.Table:
    """Rows set aside as the quarantine keeps them: every original column as text, then ``reason`` (the
    name of each code in :data:`REASONS`), ``source_file`` and ``source_row`` (1-based data row)."""
    out = {name: pc.cast(rows.column(name), pa.string()) for name in rows.column_names}
    out["reason"] = pa.array(np.asarray(REASONS)[reasons], pa.string())
    out["source_file"] = pa.array([source] * rows.num_rows, pa.string())
    out["source_row"] = pa.array(source_rows, pa.int64())
    return pa.table(out)


def validate_pings(
    batch: pa.RecordBatch | pa.Table,
    source: str,
    first_row: int = 0,
    ids: VehicleIds | None = None,
    rules: IngestRules | None = None,
) -> tuple[pa.Table, pa.Table, IngestCounts]:
    """Split a batch into normalised valid rows and quarantined rows.

    Parameters
    ----------
    batch
        Rows of a pings file (any column types; text is parsed), columns already
        named as the contract names them (see :mod:`.columns`).
    source
        File name recorded in the quarantine and in error messages.
    first_row
        Number of data rows of the file before this batch (for ``source_row``).
    ids
        The run's vehicles; rows of other vehicles are quarantined
        (``unknown_vehicle``, or ``duplicate_vehicle_id`` for an id the vehicles
        table gives twice with different attributes). None skips the check (the
        keys are then per batch).
    rules
        Time format and plausible window (default :class:`IngestRules`).

    Returns the valid rows (``vehicle_id`` as text, ``vehicle_key`` the run's
    key, ``ts`` UTC milliseconds, the channels), the quarantine and the counts.

    Raises
    ------
    InputError
        When a required column is missing, the id column is of the wrong kind, or
        the coordinates are swapped (file-level errors: nothing can be kept).
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    rules = rules or IngestRules()
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}. "
            f"Pings need {', '.join(REQUIRED)} (map other headers with --columns, e.g. 车辆ID=vehicle_id)."
        )
    n = table.num_rows
    reason = np.full(n, -1, np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason < 0) & mask] = code

    vid_col = table.column("vehicle_id").combine_chunks()
    text = id_text(vid_col, f"{source}: column vehicle_id")
    if ids is not None:
        keys = ids.keys(vid_col, f"{source}: column vehicle_id")
    else:
        encoded = pc.dictionary_encode(text)
        keys = np.asarray(pc.fill_null(encoded.indices, MISSING).to_numpy(), dtype=np.int64)
    flag(keys == MISSING, R_MISSING_ID)
    ts = parse_times(table.column("ts"), rules.ts_format or None)
    flag(~np.isfinite(ts), R_BAD_TIME)
    seconds = np.floor_divide(np.nan_to_num(ts, nan=0.0), 1000.0)
    flag((seconds < rules.start_s) | (seconds >= rules.end_s), R_TIME_RANGE)
    lon = _numeric(table.column("lon").combine_chunks())
    lat = _numeric(table.column("lat").combine_chunks())
    check_axes(lon, lat, source)
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    flag(bad, R_COORDS)
    flag((lon == 0) & (lat == 0), R_ZERO)
    optional: dict[str, np.ndarray] = {}
    for name, (lo, hi) in OPTIONAL_FLOAT.items():
        if name in table.column_names:
            v = _numeric(table.column(name).combine_chunks())
            present = given(table.column(name).combine_chunks())
            flag(present & ~((v >= lo) & (v <= hi)), R_OPTIONAL)
            optional[name] = v
    load = None
    if "load_state" in table.column_names:
        load_text = pc.cast(table.column("load_state").combine_chunks(), pa.string())
        idx = pc.index_in(pc.utf8_lower(load_text), value_set=pa.array(LOAD_STATES)).to_numpy(zero_copy_only=False)
        present = given(load_text)
        idx = np.where(present, np.asarray(idx, dtype=np.float64), np.nan)
        flag(present & np.isnan(idx), R_OPTIONAL)
        load = idx
    if ids is not None:
        flag(keys == CONFLICTING, R_DUPLICATE)
        flag(keys == UNKNOWN, R_UNKNOWN)
    ok = reason < 0
    keep = np.flatnonzero(ok)
    take = pa.array(keep)
    cols: dict[str, pa.Array] = {
        "vehicle_id": text.take(take),
        "vehicle_key": pa.array(keys[keep]),
        "ts": pa.array(np.floor(ts[keep]).astype(np.int64)).cast(pa.timestamp("ms", tz="UTC")),
        "lon": pa.array(lon[keep]),
        "lat": pa.array(lat[keep]),
    }
    for name, v in optional.items():
        vals = v[keep]
        cols[name] = pa.array(vals.astype(np.float32 if name == "speed_kmh" else np.float64), mask=np.isnan(vals))
    if load is not None:
        li = load[keep]
        indices = pa.array(np.nan_to_num(li, nan=0).astype(np.int8), mask=np.isnan(li))
        cols["load_state"] = pa.DictionaryArray.from_arrays(indices, pa.array(LOAD_STATES))
    valid = pa.table(cols)

    bad_rows = np.flatnonzero(~ok)
    taken = table.take(pa.array(bad_rows)) if bad_rows.size else table.slice(0, 0)
    quarantine = quarantine_table(taken, reason[bad_rows], source, bad_rows + first_row + 1)
    counts = IngestCounts(rows=n, kept=int(keep.size))
    for code, name in enumerate(REASONS):
        counts.quarantined[name] = int((reason == code).sum())
    return valid, quarantine, counts


# ---------------------------------------------------------------------------
# Typed fast path: the same rules, compiled, on columns that already have the contract's types
# ---------------------------------------------------------------------------

KERNEL_COLUMNS = ("vehicle_id", "t", "lon", "lat", "speed", "load", "fuel", "odometer")
PING_COLUMNS = ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "fuel_level_l", "odometer_km")
_TS_UNIT_US = {"s": (1_000_000, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}
TS_TIMESTAMP, TS_INTEGER = 0, 1
ID_INTEGER, ID_TEXT = 0, 1


@dataclass(frozen=True)
class TypedPlan:
    """How :func:`validate_typed` reads a file whose columns have the contract's types."""

    columns: tuple[str, ...]  # the contract's columns present, in contract order
    ts_kind: int  # TS_TIMESTAMP or TS_INTEGER
    ts_mul: int  # timestamp value * ts_mul // ts_div = epoch microseconds
    ts_div: int
    ts_shift_us: int  # subtracted from the epoch microseconds (naive timestamps are local time)
    read_dictionary: tuple[str, ...]  # text columns read as dictionaries (load_state, text ids)
    id_kind: int = ID_INTEGER  # ID_INTEGER or ID_TEXT


def _is_text_type(t: pa.DataType) -> bool:
    value = t.value_type if pa.types.is_dictionary(t) else t
    return bool(pa.types.is_string(value) or pa.types.is_large_string(value))


def typed_plan(schema: pa.Schema) -> TypedPlan | None:
    """The plan for a typed pings file, or None when a column has another type (text from CSV).

    Typed means: integer or text ``vehicle_id``; timestamp or integer ``ts``;
    numeric coordinates and channels; text or dictionary ``load_state``. Such
    files are validated by :func:`validate_typed` (the rules of
    :func:`validate_pings`, same reason codes, same order); other files take
    :func:`validate_pings`.
    """
    fields = {f.name: f.type for f in schema}
    if any(c not in fields for c in REQUIRED):
        return None

    def numeric(t: pa.DataType) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))

    id_type = fields["vehicle_id"]
    read_dictionary: list[str] = []
    if pa.types.is_integer(id_type) and not (pa.types.is_uint64(id_type)):
        id_kind = ID_INTEGER
    elif _is_text_type(id_type):
        id_kind = ID_TEXT
        if not pa.types.is_dictionary(id_type):
            read_dictionary.append("vehicle_id")
    else:
        return None
    if not all(numeric(fields[c]) for c in ("lon", "lat")):
        return None
    ts_type = fields["ts"]
    if pa.types.is_timestamp(ts_type):
        mul, div = _TS_UNIT_US[ts_type.unit]
        kind, shift = TS_TIMESTAMP, 0 if ts_type.tz else LOCAL_OFFSET_MS * 1000
    elif pa.types.is_integer(ts_type) and not pa.types.is_uint64(ts_type):
        kind, mul, div, shift = TS_INTEGER, 1, 1, 0
    else:
        return None
    if any(name in fields and not numeric(fields[name]) for name in OPTIONAL_FLOAT):
        return None
    load_type = fields.get("load_state")
    if load_type is not None:
        if not _is_text_type(load_type):
            return None
        if not pa.types.is_dictionary(load_type):
            read_dictionary.append("load_state")
    columns = tuple(c for c in PING_COLUMNS if c in fields)
    return TypedPlan(columns, kind, mul, div, shift, tuple(read_dictionary), id_kind)


_LOAD_CODES: dict[tuple[str | None, ...], npt.NDArray[np.int8]] = {}


def _load_codes(dictionary: pa.Array) -> npt.NDArray[np.int8]:
    """Load code of each dictionary value: 0..2 for a state (exact, else any letter case), -1 blank or
    missing, -2 not a state. Small dictionaries (the usual few states) are looked up once."""
    if len(dictionary) > 16:
        return _compute_load_codes(dictionary)
    key = tuple(dictionary.to_pylist())
    codes = _LOAD_CODES.get(key)
    if codes is None:
        if len(_LOAD_CODES) >= 256:  # bounded: files whose row groups each spell the states differently
            _LOAD_CODES.clear()
        codes = _LOAD_CODES.setdefault(key, _compute_load_codes(dictionary))
    return codes


def _compute_load_codes(dictionary: pa.Array) -> npt.NDArray[np.int8]:
    text = pc.cast(dictionary, pa.string())
    states = pa.array(LOAD_STATES)

    def position(values: pa.Array, missing: int) -> npt.NDArray[np.int64]:
        return np.asarray(pc.fill_null(pc.index_in(values, value_set=states), missing).to_numpy(), dtype=np.int64)

    exact, folded = position(text, -9), position(pc.utf8_lower(text), -2)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True).to_numpy(zero_copy_only=False)
    return np.where(exact >= 0, exact, np.where(blank, -1, folded)).astype(np.int8)


_NO_MASK = np.zeros(0, np.bool_)


def _nulls(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """True where ``arr`` is null; an empty array when nothing is."""
    if arr.null_count == 0:
        return _NO_MASK
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _values(arr: pa.Array, dtype: pa.DataType, fill: float, name: str) -> npt.NDArray[Any]:
    """``arr`` (column ``name``) as a numpy array of ``dtype`` (zero copy when it already is), nulls as ``fill``.

    Raises InputError naming the column when a value does not fit ``dtype``.
    """
    if arr.type != dtype:
        try:
            arr = pc.cast(arr, dtype)
        except pa.ArrowInvalid as exc:
            raise InputError(f"column {name}: a value does not fit {dtype} ({exc}); convert the column") from None
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar(fill, dtype))
    return np.asarray(arr.to_numpy(zero_copy_only=False))


@nb.njit(cache=True, nogil=True)
def _trunc_div(a, b):  # type: ignore[no-untyped-def]
    """Integer division rounding toward zero (SQL's, not Python's floor)."""
    return a // b if a >= 0 else -((-a) // b)


@nb.njit(cache=True, nogil=True)
def _civil_s(v):  # type: ignore[no-untyped-def]
    """Local epoch seconds of a YYYYMMDDHHMMSS integer; -2^62 when it names no real time."""
    y = v // 10_000_000_000
    mo = (v // 100_000_000) % 100
    d = (v // 1_000_000) % 100
    h = (v // 10_000) % 100
    mi = (v // 100) % 100
    s = v % 100
    if mo < 1 or mo > 12 or h > 23 or mi > 59 or s > 59 or d < 1:
        return -(1 << 62)
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    days_in = 31
    if mo == 2:
        days_in = 29 if leap else 28
    elif mo == 4 or mo == 6 or mo == 9 or mo == 11:
        days_in = 30
    if d > days_in:
        return -(1 << 62)
    yy = y - 1 if mo <= 2 else y
    era = yy // 400
    yoe = yy - era * 400
    mp = (mo + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + s


@nb.njit(cache=True, nogil=True)
def _integer_time_s(v, local_offset_s):  # type: ignore[no-untyped-def]
    """Epoch seconds of an integer time (:mod:`.times`: by magnitude; 14 digits are YYYYMMDDHHMMSS local)."""
    a = -v if v < 0 else v
    if a < 100_000_000_000:
        return v
    if a < 100_000_000_000_000:
        if v >= 10_000_000_000_000:
            c = _civil_s(v)
            return c if c == -(1 << 62) else c - local_offset_s
        return v // 1000
    if a < 100_000_000_000_000_000:
        return v // 1_000_000
    return v // 1_000_000_000


@nb.njit(cache=True, nogil=True)
def _typed_rules(  # type: ignore[no-untyped-def]
    vid, vid_null, id_kind, int_ids, int_keys, conflicting_ints,
    ts, ts_null, ts_kind, ts_mul, ts_div, ts_shift, t_start, t_end, lon, lat,
    speed, speed_null, fuel, fuel_null, odo, odo_null, load_idx, load_null, load_codes,
    key_out, t_out, speed_out, load_out, reason, counts,
):  # fmt: skip
    """One pass of the ingest rules over typed columns (see :func:`validate_typed`).

    ``vid`` holds integer ids (``id_kind`` 0: looked up in the sorted
    ``int_ids``, whose keys are ``int_keys``) or keys already looked up (1: < 0
    for unknown, conflicting, missing). Writes the vehicle key, epoch seconds,
    speed (0 when missing), load code and reason of each row (-1: kept) and
    counts the rows by reason.
    """
    n = vid.shape[0]
    have_speed = speed.shape[0] > 0
    have_fuel = fuel.shape[0] > 0
    have_odo = odo.shape[0] > 0
    have_load = load_idx.shape[0] > 0
    n_known = int_ids.shape[0]
    have_last = False
    last = 0
    last_key = -1
    bad_time = -(1 << 62)
    ts_limit = 9_000_000_000_000_000_000 // ts_mul
    for i in range(n):
        r = -1
        key = -1
        if vid_null.shape[0] > 0 and vid_null[i]:
            r = 0
        elif id_kind == 1:
            key = vid[i]
            if key == -3:
                r = 0
        t = 0
        if ts_null.shape[0] > 0 and ts_null[i]:
            if r < 0:
                r = 1
        elif ts_kind == 0 and ts_mul > 1 and (ts[i] > ts_limit or ts[i] < -ts_limit):
            t = bad_time  # would overflow in microseconds: far outside any plausible time
        elif ts_kind == 0:
            us = ts[i] * ts_mul
            if ts_div != 1:  # nanoseconds (a division by a variable is slow: only where needed)
                us = _trunc_div(us, ts_div)
            t = _trunc_div(us - ts_shift, 1_000_000)
        else:
            t = _integer_time_s(ts[i], 28800)
            if t == bad_time and r < 0:
                r = 1
        t_out[i] = t
        if r < 0 and (t < t_start or t >= t_end):
            r = 2
        x = lon[i]
        y = lat[i]
        if r < 0 and not (abs(x) <= 180.0 and abs(y) <= 90.0):  # NaN, infinite, missing or out of range
            r = 3
        if r < 0 and x == 0.0 and y == 0.0:
            r = 4
        v = 0.0
        if have_speed and not (speed_null.shape[0] > 0 and speed_null[i]):
            v = speed[i]
            if r < 0 and not (v >= 0.0 and v <= 250.0):
                r = 5
        speed_out[i] = v
        if r < 0 and have_fuel and not (fuel_null.shape[0] > 0 and fuel_null[i]) and not fuel[i] >= 0.0:
            r = 5
        if r < 0 and have_odo and not (odo_null.shape[0] > 0 and odo_null[i]) and not odo[i] >= 0.0:
            r = 5
        code = -1
        if have_load and not (load_null.shape[0] > 0 and load_null[i]):
            code = load_codes[load_idx[i]]
            if code == -2 and r < 0:
                r = 5
        load_out[i] = code
        if id_kind == 0 and not (vid_null.shape[0] > 0 and vid_null[i]):
            v_id = vid[i]
            if not (have_last and v_id == last):
                j = np.searchsorted(int_ids, v_id)
                last_key = int_keys[j] if j < n_known and int_ids[j] == v_id else -1
                if last_key == -1 and conflicting_ints.shape[0] > 0:
                    c = np.searchsorted(conflicting_ints, v_id)
                    if c < conflicting_ints.shape[0] and conflicting_ints[c] == v_id:
                        last_key = -2
                last = v_id
                have_last = True
            key = last_key
        if r < 0 and key == -2:
            r = 6
        if r < 0 and key < 0:
            r = 7
        key_out[i] = key
        reason[i] = r
        if r >= 0:
            counts[r] += 1


def validate_typed(
    batch: pa.RecordBatch, plan: TypedPlan, ids: VehicleIds, rules: IngestRules | None = None, source: str = ""
) -> tuple[list[pa.Array], npt.NDArray[np.int8], npt.NDArray[np.int64]]:
    """Kernel input columns (:data:`KERNEL_COLUMNS`, the vehicle as its key), reason per row (-1: kept) and
    counts by reason.

    The rules and reason codes of :func:`validate_pings`, in one compiled pass
    over columns of the contract's types (:func:`typed_plan`). Rows set aside
    stay in the columns (their reason says so): nothing is copied.
    """
    rules = rules or IngestRules()
    n = batch.num_rows
    col = {name: batch.column(name) for name in plan.columns}
    vid_arr = col["vehicle_id"]
    if plan.id_kind == ID_TEXT:
        vid = ids.keys(vid_arr, f"{source}: column vehicle_id")
        vid_null = _NO_MASK
    else:
        vid = _values(vid_arr, pa.int64(), 0, "vehicle_id")
        vid_null = _nulls(vid_arr)
    ts_arr = col["ts"]
    ts_raw = _values(ts_arr.cast(pa.int64()) if pa.types.is_timestamp(ts_arr.type) else ts_arr, pa.int64(), 0, "ts")
    lon = _values(col["lon"], pa.float64(), np.nan, "lon")
    lat = _values(col["lat"], pa.float64(), np.nan, "lat")
    check_axes(lon, lat, source or "pings")
    empty = np.zeros(0, np.float64)
    optional = {}
    for name in ("speed_kmh", "fuel_level_l", "odometer_km"):
        if name not in col:
            optional[name] = (empty, _NO_MASK)
            continue
        # Speed is kept as float32 (the rules widen each value exactly): a float32 column needs no cast.
        want = pa.float32() if name == "speed_kmh" and col[name].type == pa.float32() else pa.float64()
        optional[name] = (_values(col[name], want, np.nan, name), _nulls(col[name]))
    if "load_state" in col:
        load_arr = col["load_state"]
        if not pa.types.is_dictionary(load_arr.type):
            load_arr = load_arr.dictionary_encode()
        load_idx = _values(load_arr.indices, pa.int32(), 0, "load_state")
        load_null, load_codes = _nulls(load_arr), _load_codes(load_arr.dictionary)
    else:
        load_idx, load_null, load_codes = np.zeros(0, np.int32), _NO_MASK, np.zeros(0, np.int8)
    key = np.empty(n, np.int64)
    t = np.empty(n, np.int64)
    speed = np.empty(n, np.float32)
    load = np.empty(n, np.int8)
    reason = np.empty(n, np.int8)
    counts = np.zeros(len(REASONS), np.int64)
    _typed_rules(  # type: ignore[call-arg]
        vid, vid_null, plan.id_kind, ids.int_ids, ids.int_keys, ids.conflicting_ints,
        ts_raw, _nulls(ts_arr), plan.ts_kind, plan.ts_mul, plan.ts_div, plan.ts_shift_us,
        rules.start_s, rules.end_s, lon, lat,
        *optional["speed_kmh"], *optional["fuel_level_l"], *optional["odometer_km"],
        load_idx, load_null, load_codes, key, t, speed, load, reason, counts,
    )  # fmt: skip
    fuel = optional["fuel_level_l"][0] if "fuel_level_l" in col else np.full(n, np.nan)
    odometer = optional["odometer_km"][0] if "odometer_km" in col else np.full(n, np.nan)
    columns = [pa.array(key), pa.array(t), pa.array(lon), pa.array(lat), pa.array(speed), pa.array(load)]
    columns += [pa.array(fuel), pa.array(odometer)]
    return columns, reason, counts


__all__ = [
    "LINE_REASONS",
    "REASONS",
    "IngestCounts",
    "IngestRules",
    "TypedPlan",
    "check_axes",
    "quarantine_table",
    "typed_plan",
    "validate_pings",
    "validate_typed",
]
