"""Validate and normalise ping batches; rows that fail go to quarantine with a reason code.

The pings contract (what every engine and the trajectory kernel receive):

========== ======================= =========================================
column     type                    rule
========== ======================= =========================================
vehicle_id int64                   required, not null
ts         timestamp[ms, UTC]      required; integers are epoch seconds (or
                                   milliseconds when above 1e11); text and
                                   naive timestamps are Asia/Shanghai local
                                   time (JT/T 808 reports GMT+8)
lon, lat   float64 (degrees)       required, finite, in range, not (0, 0)
speed_kmh  float32                 optional, 0..250
load_state dictionary<string>      optional: empty, half, full
odometer_km, fuel_level_l          optional, >= 0
========== ======================= =========================================

Quarantined rows keep every original column as text plus ``reason``,
``source_file`` and ``source_row`` (1-based data row), so nothing is lost and
every rejection can be traced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import given, is_number_type, is_text, parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import LOCAL_OFFSET_S
from truckcarbon.emissions.factors import LoadState

REQUIRED = ("vehicle_id", "ts", "lon", "lat")
OPTIONAL_FLOAT = {"speed_kmh": (0.0, 250.0), "odometer_km": (0.0, np.inf), "fuel_level_l": (0.0, np.inf)}
LOAD_STATES = tuple(s.value for s in LoadState)
LOCAL_OFFSET_MS = LOCAL_OFFSET_S * 1000

# Reason codes, in the order they are checked (a row gets the first that applies).
REASONS = (
    "missing_vehicle_id",
    "bad_timestamp",
    "bad_coordinates",
    "zero_fix",
    "bad_optional_value",
    "unknown_vehicle",
)


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
            self.quarantined[k] += v


def _numeric(arr: pa.Array) -> np.ndarray:
    """float64 values, NaN where missing or not a number."""
    return parse_float64(arr)[0]


def _timestamps_ms(arr: pa.Array) -> np.ndarray:
    """Epoch milliseconds (UTC) as float64, NaN where missing or unparseable."""
    if pa.types.is_timestamp(arr.type):
        # Finer units are cut to the millisecond (an unsafe cast truncates; a safe one refuses the data).
        ms = pc.cast(pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False), pa.int64())
        out = np.asarray(ms.to_numpy(zero_copy_only=False), dtype=np.float64)
        return out if arr.type.tz else out - LOCAL_OFFSET_MS
    if is_number_type(arr):
        v = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.where(v > 1e11, v, v * 1000.0)
    if is_text(arr):
        text = pc.utf8_trim_whitespace(arr)
        v = _numeric(text)  # epoch seconds or milliseconds written as text
        out = np.where(v > 1e11, v, v * 1000.0)
        # ISO 8601 extras: a 'Z' for UTC and fractional seconds (kept to the millisecond).
        text = pc.replace_substring_regex(text, pattern=r"Z$", replacement="+0000")
        frac = pc.extract_regex(text, pattern=r"\.(?P<f>\d{1,9})")
        frac_ms = np.zeros(len(arr))
        if frac.null_count < len(arr):
            digits = pc.struct_field(frac, "f")
            scaled = pc.utf8_slice_codeunits(pc.binary_join_element_wise(digits, "000", ""), 0, 3)
            frac_ms = np.nan_to_num(_numeric(scaled), nan=0.0)
        text = pc.replace_substring_regex(text, pattern=r"\.\d{1,9}", replacement="")
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%z"):
            parsed = pc.strptime(text, format=fmt, unit="ms", error_is_null=True)
            ms = np.asarray(pc.cast(parsed, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.float64)
            local = not fmt.endswith("%z")
            fill = np.isnan(out) & ~np.isnan(ms)
            out[fill] = ms[fill] + frac_ms[fill] - (LOCAL_OFFSET_MS if local else 0)
        return out
    return np.full(len(arr), np.nan)


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
    known_vehicles: np.ndarray | None = None,
) -> tuple[pa.Table, pa.Table, IngestCounts]:
    """Split a batch into normalised valid rows and quarantined rows.

    Parameters
    ----------
    batch
        Rows of a pings file (any column types; text is parsed).
    source
        File name recorded in the quarantine and in error messages.
    first_row
        Number of data rows of the file before this batch (for ``source_row``).
    known_vehicles
        Sorted ids of the vehicles table; rows of other vehicles are quarantined
        (``unknown_vehicle``). None skips the check.

    Raises
    ------
    InputError
        When a required column is missing (a file-level error: nothing can be kept).
    """
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}. "
            f"Pings need {', '.join(REQUIRED)}."
        )
    n = table.num_rows
    reason = np.full(n, -1, np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason < 0) & mask] = code

    vid = _numeric(table.column("vehicle_id").combine_chunks())
    flag(~np.isfinite(vid) | (vid != np.floor(vid)), 0)
    ts = _timestamps_ms(table.column("ts").combine_chunks())
    flag(~np.isfinite(ts), 1)
    lon = _numeric(table.column("lon").combine_chunks())
    lat = _numeric(table.column("lat").combine_chunks())
    bad = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    flag(bad, 2)
    flag((lon == 0) & (lat == 0), 3)
    optional: dict[str, np.ndarray] = {}
    for name, (lo, hi) in OPTIONAL_FLOAT.items():
        if name in table.column_names:
            v = _numeric(table.column(name).combine_chunks())
            present = given(table.column(name).combine_chunks())
            flag(present & ~((v >= lo) & (v <= hi)), 4)
            optional[name] = v
    load = None
    if "load_state" in table.column_names:
        text = pc.cast(table.column("load_state").combine_chunks(), pa.string())
        idx = pc.index_in(pc.utf8_lower(text), value_set=pa.array(LOAD_STATES)).to_numpy(zero_copy_only=False)
        present = given(text)
        idx = np.where(present, np.asarray(idx, dtype=np.float64), np.nan)
        flag(present & np.isnan(idx), 4)
        load = idx

    if known_vehicles is not None and known_vehicles.size:
        ids = np.nan_to_num(vid, nan=0).astype(np.int64)
        pos = np.minimum(np.searchsorted(known_vehicles, ids), known_vehicles.size - 1)
        flag(known_vehicles[pos] != ids, 5)
    elif known_vehicles is not None:
        flag(np.ones(n, bool), 5)
    ok = reason < 0
    keep = np.flatnonzero(ok)
    cols: dict[str, pa.Array] = {
        "vehicle_id": pa.array(vid[keep].astype(np.int64)),
        "ts": pa.array(ts[keep].astype(np.int64)).cast(pa.timestamp("ms", tz="UTC")),
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


@dataclass(frozen=True)
class TypedPlan:
    """How :func:`validate_typed` reads a file whose columns have the contract's types."""

    columns: tuple[str, ...]  # the contract's columns present, in contract order
    ts_kind: int  # TS_TIMESTAMP or TS_INTEGER
    ts_mul: int  # timestamp value * ts_mul // ts_div = epoch microseconds
    ts_div: int
    ts_shift_us: int  # subtracted from the epoch microseconds (naive timestamps are local time)
    read_dictionary: tuple[str, ...]  # text columns read as dictionaries (load_state)


def typed_plan(schema: pa.Schema) -> TypedPlan | None:
    """The plan for a typed pings file, or None when a column has another type (text from CSV).

    Typed means: integer ``vehicle_id``; timestamp or integer ``ts``; numeric
    coordinates and channels; text or dictionary ``load_state``. Such files are
    validated by :func:`validate_typed` (the rules of :func:`validate_pings`,
    same reason codes, same order); other files take :func:`validate_pings`.
    """
    fields = {f.name: f.type for f in schema}
    if any(c not in fields for c in REQUIRED):
        return None

    def numeric(t: pa.DataType) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))

    if not pa.types.is_integer(fields["vehicle_id"]) or not all(numeric(fields[c]) for c in ("lon", "lat")):
        return None
    ts_type = fields["ts"]
    if pa.types.is_timestamp(ts_type):
        mul, div = _TS_UNIT_US[ts_type.unit]
        kind, shift = TS_TIMESTAMP, 0 if ts_type.tz else LOCAL_OFFSET_MS * 1000
    elif pa.types.is_integer(ts_type):
        kind, mul, div, shift = TS_INTEGER, 1, 1, 0
    else:
        return None
    if any(name in fields and not numeric(fields[name]) for name in OPTIONAL_FLOAT):
        return None
    load_type = fields.get("load_state")
    read_dictionary: tuple[str, ...] = ()
    if load_type is not None:
        value_type = load_type.value_type if pa.types.is_dictionary(load_type) else load_type
        if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
            return None
        read_dictionary = () if pa.types.is_dictionary(load_type) else ("load_state",)
    columns = tuple(c for c in PING_COLUMNS if c in fields)
    return TypedPlan(columns, kind, mul, div, shift, read_dictionary)


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
def _typed_rules(  # type: ignore[no-untyped-def]
    vid, vid_null, ts, ts_null, ts_kind, ts_mul, ts_div, ts_shift, lon, lat,
    speed, speed_null, fuel, fuel_null, odo, odo_null, load_idx, load_null, load_codes, known,
    t_out, speed_out, load_out, reason, counts,
):  # fmt: skip
    """One pass of the ingest rules over typed columns (see :func:`validate_typed`).

    Writes the epoch seconds, speed (0 when missing), load code and reason of
    each row (-1: kept) and counts the rows by reason.
    """
    n = vid.shape[0]
    have_speed = speed.shape[0] > 0
    have_fuel = fuel.shape[0] > 0
    have_odo = odo.shape[0] > 0
    have_load = load_idx.shape[0] > 0
    have_last = False
    last = 0
    last_ok = True
    for i in range(n):
        r = -1
        if vid_null.shape[0] > 0 and vid_null[i]:
            r = 0
        t = 0
        if ts_null.shape[0] > 0 and ts_null[i]:
            if r < 0:
                r = 1
        elif ts_kind == 0:
            us = ts[i] * ts_mul
            if ts_div != 1:  # nanoseconds (a division by a variable is slow: only where needed)
                us = _trunc_div(us, ts_div)
            t = _trunc_div(us - ts_shift, 1_000_000)
        else:
            t = ts[i] // 1000 if ts[i] > 100_000_000_000 else ts[i]
        t_out[i] = t
        x = lon[i]
        y = lat[i]
        if r < 0 and not (abs(x) <= 180.0 and abs(y) <= 90.0):  # NaN, infinite, missing or out of range
            r = 2
        if r < 0 and x == 0.0 and y == 0.0:
            r = 3
        v = 0.0
        if have_speed and not (speed_null.shape[0] > 0 and speed_null[i]):
            v = speed[i]
            if r < 0 and not (v >= 0.0 and v <= 250.0):
                r = 4
        speed_out[i] = v
        if r < 0 and have_fuel and not (fuel_null.shape[0] > 0 and fuel_null[i]) and not fuel[i] >= 0.0:
            r = 4
        if r < 0 and have_odo and not (odo_null.shape[0] > 0 and odo_null[i]) and not odo[i] >= 0.0:
            r = 4
        code = -1
        if have_load and not (load_null.shape[0] > 0 and load_null[i]):
            code = load_codes[load_idx[i]]
            if code == -2 and r < 0:
                r = 4
        load_out[i] = code
        if r < 0:
            v_id = vid[i]
            if not (have_last and v_id == last):
                j = np.searchsorted(known, v_id)
                last_ok = j < known.shape[0] and known[j] == v_id
                last = v_id
                have_last = True
            if not last_ok:
                r = 5
        reason[i] = r
        if r >= 0:
            counts[r] += 1


def validate_typed(
    batch: pa.RecordBatch, plan: TypedPlan, known_vehicles: npt.NDArray[np.int64]
) -> tuple[list[pa.Array], npt.NDArray[np.int8], npt.NDArray[np.int64]]:
    """Kernel input columns (:data:`KERNEL_COLUMNS`), reason per row (-1: kept) and counts by reason.

    The rules and reason codes of :func:`validate_pings`, in one compiled pass
    over columns of the contract's types (:func:`typed_plan`); rows of vehicles
    not in the sorted ``known_vehicles`` are ``unknown_vehicle``. Rows set aside
    stay in the columns (their reason says so): nothing is copied.
    """
    n = batch.num_rows
    col = {name: batch.column(name) for name in plan.columns}
    vid_arr = col["vehicle_id"]
    vid = _values(vid_arr, pa.int64(), 0, "vehicle_id")
    ts_arr = col["ts"]
    ts_raw = _values(ts_arr.cast(pa.int64()) if pa.types.is_timestamp(ts_arr.type) else ts_arr, pa.int64(), 0, "ts")
    lon = _values(col["lon"], pa.float64(), np.nan, "lon")
    lat = _values(col["lat"], pa.float64(), np.nan, "lat")
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
    t = np.empty(n, np.int64)
    speed = np.empty(n, np.float32)
    load = np.empty(n, np.int8)
    reason = np.empty(n, np.int8)
    counts = np.zeros(len(REASONS), np.int64)
    _typed_rules(  # type: ignore[call-arg]
        vid, _nulls(vid_arr), ts_raw, _nulls(ts_arr), plan.ts_kind, plan.ts_mul, plan.ts_div, plan.ts_shift_us,
        lon, lat, *optional["speed_kmh"], *optional["fuel_level_l"], *optional["odometer_km"],
        load_idx, load_null, load_codes, np.ascontiguousarray(known_vehicles, dtype=np.int64),
        t, speed, load, reason, counts,
    )  # fmt: skip
    fuel = optional["fuel_level_l"][0] if "fuel_level_l" in col else np.full(n, np.nan)
    odometer = optional["odometer_km"][0] if "odometer_km" in col else np.full(n, np.nan)
    columns = [pa.array(vid), pa.array(t), pa.array(lon), pa.array(lat), pa.array(speed), pa.array(load)]
    columns += [pa.array(fuel), pa.array(odometer)]
    return columns, reason, counts
