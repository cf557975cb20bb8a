"""The typed fast path: the ingest rules in one compiled pass, on columns that have the contract's types.

A Parquet file whose columns are already typed (integer or text ids, timestamp
or integer times, numeric coordinates and channels, text load states) needs no
text parsing: :func:`typed_plan` says how to read it and :func:`validate_typed`
applies the rules of :func:`truckcarbon.ingest.pings.validate_pings` (same
reason codes, same order) in one pass of the compiled :func:`_typed_rules`,
giving the kernel input columns (:data:`KERNEL_COLUMNS`) without a copy of the
rows set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import LOCAL_OFFSET_S
from truckcarbon.core.schemas import LOAD_STATES
from truckcarbon.ingest.ids import VehicleIds
from truckcarbon.ingest.quarantine import REASONS
from truckcarbon.ingest.rules import OPTIONAL_FLOAT, REQUIRED, IngestRules, acc_codes, check_axes
from truckcarbon.ingest.times import integer_time_s

# Each kernel input column and the pings column it comes from, in the kernel's order.
KERNEL_SOURCES = {
    "vehicle_id": "vehicle_id",
    "t": "ts",
    "lon": "lon",
    "lat": "lat",
    "speed": "speed_kmh",
    "load": "load_state",
    "fuel": "fuel_level_l",
    "odometer": "odometer_km",
    "acc": "acc_on",
}
KERNEL_COLUMNS = tuple(KERNEL_SOURCES)
PING_COLUMNS = tuple(KERNEL_SOURCES.values())  # the pings columns, in the kernel's order
LOCAL_OFFSET_US = LOCAL_OFFSET_S * 1_000_000
# The ranges of the optional channels, constants of the compiled rules.
SPEED_LOW, SPEED_HIGH = OPTIONAL_FLOAT["speed_kmh"]
FUEL_LOW = OPTIONAL_FLOAT["fuel_level_l"][0]
ODOMETER_LOW = OPTIONAL_FLOAT["odometer_km"][0]
_TS_UNIT_US = {"s": (1_000_000, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}
TS_TIMESTAMP, TS_INTEGER = 0, 1
ID_INTEGER, ID_TEXT = 0, 1


@dataclass(frozen=True)
class TypedPlan:
    """How :func:`validate_typed` reads a file whose columns have the contract's types."""

    columns: tuple[str, ...]  # the pings columns present, in the kernel's order (:data:`PING_COLUMNS`)
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
    numeric coordinates and channels; text or dictionary ``load_state``; boolean ``acc_on``. Such
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
        kind, shift = TS_TIMESTAMP, 0 if ts_type.tz else LOCAL_OFFSET_US
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
    if "acc_on" in fields and not pa.types.is_boolean(fields["acc_on"]):
        return None  # 0/1 or words: the general path reads them
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
def _typed_rules(  # type: ignore[no-untyped-def]
    vid, vid_null, id_kind, int_ids, int_keys, conflicting_ints, dense_lo, dense,
    ts, ts_null, ts_kind, ts_mul, ts_div, ts_shift, t_start, t_end, lon, lat,
    speed, speed_null, fuel, fuel_null, odo, odo_null, load_idx, load_null, load_codes,
    key_out, t_out, speed_out, load_out, reason, counts,
):  # fmt: skip
    """One pass of the ingest rules over typed columns (see :func:`validate_typed`).

    ``vid`` holds integer ids (``id_kind`` 0: looked up in the sorted
    ``int_ids``, whose keys are ``int_keys``; in ``dense`` from ``dense_lo`` when
    given: see :class:`~truckcarbon.ingest.ids.VehicleIds`) or keys already looked up (1: < 0
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
    n_dense = dense.shape[0]
    dense_hi = dense_lo + n_dense - 1
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
            t = integer_time_s(ts[i], LOCAL_OFFSET_S)
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
            if r < 0 and not (v >= SPEED_LOW and v <= SPEED_HIGH):
                r = 5
        speed_out[i] = v
        if r < 0 and have_fuel and not (fuel_null.shape[0] > 0 and fuel_null[i]) and not fuel[i] >= FUEL_LOW:
            r = 5
        if r < 0 and have_odo and not (odo_null.shape[0] > 0 and odo_null[i]) and not odo[i] >= ODOMETER_LOW:
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
                if n_dense > 0 and dense_lo <= v_id <= dense_hi:
                    last_key = dense[v_id - dense_lo]
                else:
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
        vid, vid_null, plan.id_kind, ids.int_ids, ids.int_keys, ids.conflicting_ints, ids.dense_lo, ids.dense,
        ts_raw, _nulls(ts_arr), plan.ts_kind, plan.ts_mul, plan.ts_div, plan.ts_shift_us,
        rules.start_s, rules.end_s, lon, lat,
        *optional["speed_kmh"], *optional["fuel_level_l"], *optional["odometer_km"],
        load_idx, load_null, load_codes, key, t, speed, load, reason, counts,
    )  # fmt: skip
    fuel = optional["fuel_level_l"][0] if "fuel_level_l" in col else np.full(n, np.nan)
    odometer = optional["odometer_km"][0] if "odometer_km" in col else np.full(n, np.nan)
    columns = [pa.array(key), pa.array(t), pa.array(lon), pa.array(lat), pa.array(speed), pa.array(load)]
    acc = acc_codes(col["acc_on"])[0] if "acc_on" in col else np.full(n, -1, np.int8)
    columns += [pa.array(fuel), pa.array(odometer), pa.array(acc)]
    return columns, reason, counts


__all__ = ["KERNEL_COLUMNS", "KERNEL_SOURCES", "PING_COLUMNS", "TypedPlan", "typed_plan", "validate_typed"]
