"""Narrow columns for routed pings: each kernel-input column in the fewest bytes that give its values back exactly.

Input not sorted by vehicle is routed into partitions held in memory or spilled
(:mod:`truckcarbon.pipeline.engines.partitions`); its rows are kept in these
columns meanwhile. Each column of a batch (:data:`KERNEL_SCHEMA`) takes the first
of its codecs that holds every value of the batch exactly, else stays as it is:

========== ============================== ==============================================
codec      stored as                      holds
========== ============================== ==============================================
``key``    uint32, the key plus one       vehicle keys from -1 (no vehicle) to 2^32 - 2
``u32``    uint32                         whole seconds from 1970 to 2106
``micro``  int32, millionths              degrees given to 6 decimals (JT/T 808's DWORD)
``tenths`` uint16 / uint32, tenths        speed, odometer, fuel level to one decimal
                                          (JT/T 808's 1/10 km/h, 1/10 km, 1/10 L)
``absent`` a null column (no bytes)       a channel the batch does not report (NaN / -1)
========== ============================== ==============================================

A real terminal's export (JT/T 808 positions, 6-decimal coordinates, one-decimal
channels) narrows from 55 bytes a row to 29 or less; values of more precision
(noisy simulated coordinates, GCJ-02 converted back) stay 8 bytes. The codec of
each column is in its field's metadata; batches of different codecs have
different schemas (:func:`encode`, :func:`decode`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.pipeline.reading import KERNEL_SCHEMA

# Candidate codecs of each kernel-input column, tried in turn (none holds the batch: kept as it is).
CODECS: dict[str, tuple[str, ...]] = {
    "vehicle_id": ("key",),
    "t": ("u32",),
    "lon": ("micro",),
    "lat": ("micro",),
    "speed": ("tenths", "absent"),
    "load": ("absent",),
    "fuel": ("absent", "tenths"),
    "odometer": ("absent", "tenths"),
    "acc": ("absent",),
    "quarantine": ("absent",),
}
# (scale, stored type, the stored code of NaN) of the scaled codecs, by the column's own type.
_SCALED: dict[tuple[str, str], tuple[float, type[np.integer[Any]], int]] = {
    ("micro", "double"): (1e6, np.int32, np.iinfo(np.int32).min),
    ("tenths", "float"): (10.0, np.uint16, np.iinfo(np.uint16).max),
    ("tenths", "double"): (10.0, np.uint32, np.iinfo(np.uint32).max),
}
_U32_MAX = int(np.iinfo(np.uint32).max)


def encode(batch: pa.RecordBatch, fixed: Sequence[str] | None = None) -> pa.RecordBatch:
    """``batch`` (:data:`KERNEL_SCHEMA`) in narrow columns: :func:`decode` gives it back exactly.

    ``fixed``: the codec of each column, which must hold its values (:func:`recode`).
    """
    fields, arrays = [], []
    for i, (field, column) in enumerate(zip(KERNEL_SCHEMA, batch.columns, strict=True)):
        values = column.to_numpy()
        codec, stored = "plain", values
        for name in CODECS[field.name] if fixed is None else [fixed[i]]:
            narrowed = values if name == "plain" else _narrowed(name, values, str(field.type))
            if narrowed is not None:
                codec, stored = name, narrowed
                break
        else:
            if fixed is not None:
                raise ValueError(f"codec {fixed[i]} does not hold the values of {field.name}")
        array = pa.nulls(len(values)) if codec == "absent" else pa.array(stored)
        fields.append(pa.field(field.name, array.type, metadata={"codec": codec}))
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def widened(a: Sequence[str], b: Sequence[str]) -> tuple[str, ...]:
    """Codecs that hold the values of both sets: per column the same, else the one that is not ``absent``
    (which any codec holds: NaN and -1 have codes), else ``plain``."""
    return tuple(x if x == y or y == "absent" else y if x == "absent" else "plain" for x, y in zip(a, b, strict=True))


def recode(batch: pa.RecordBatch, target: Sequence[str]) -> pa.RecordBatch:
    """A narrow ``batch`` in the codecs ``target`` (from :func:`widened`: they hold its values)."""
    if codecs(batch.schema) == tuple(target):
        return batch
    wide = decode([batch])
    return encode(pa.record_batch([c.chunk(0) for c in wide.columns], schema=KERNEL_SCHEMA), target)


def codecs(schema: pa.Schema) -> tuple[str, ...]:
    """The codec of each column of a narrow schema (the key of its spill file)."""
    return tuple((f.metadata or {}).get(b"codec", b"plain").decode() for f in schema)


def decode(
    batches: Sequence[pa.RecordBatch],
    out: Sequence[npt.NDArray[Any]] | None = None,
    places: npt.NDArray[np.int64] | None = None,
) -> pa.Table:
    """Narrow ``batches`` (of any codecs) as one kernel-input table (:data:`KERNEL_SCHEMA`, one chunk per
    column), in ``out`` (one array per column, of at least their rows; fresh arrays when None).

    ``places``: where each row goes (a permutation of the rows), else they stay in order.
    """
    rows = sum(b.num_rows for b in batches)
    if out is None:
        out = [np.empty(rows, f.type.to_pandas_dtype()) for f in KERNEL_SCHEMA]
    columns = [o[:rows] for o in out]
    longest = max((b.num_rows for b in batches), default=0)
    staged = [np.empty(longest if places is not None else 0, c.dtype) for c in columns]
    at = 0
    for batch in batches:
        n = batch.num_rows
        for i, (field, codec) in enumerate(zip(KERNEL_SCHEMA, codecs(batch.schema), strict=True)):
            if places is None:
                _widen(codec, batch.column(i), str(field.type), columns[i][at : at + n])
            else:  # widened in order (a batch's rows), then put in place
                _widen(codec, batch.column(i), str(field.type), staged[i][:n])
                _place(staged[i][:n], places[at : at + n], columns[i])
        at += n
    return pa.Table.from_arrays([pa.array(c) for c in columns], schema=KERNEL_SCHEMA)


def decode_column(batches: Sequence[pa.RecordBatch], i: int, dest: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Column ``i`` of narrow ``batches`` into ``dest`` (its kernel-input type, their rows), in order."""
    at, kind = 0, str(KERNEL_SCHEMA.field(i).type)
    for batch in batches:
        _widen(codecs(batch.schema)[i], batch.column(i), kind, dest[at : at + batch.num_rows])
        at += batch.num_rows
    return dest


def vehicle_keys(batch: pa.RecordBatch) -> npt.NDArray[np.int64]:
    """The vehicle keys of a narrow batch (routing a spilled partition again)."""
    out = np.empty(batch.num_rows, np.int64)
    _widen(codecs(batch.schema)[0], batch.column(0), "int64", out)
    return out


def _narrowed(codec: str, values: npt.NDArray[Any], kind: str) -> npt.NDArray[Any] | None:
    """``values`` stored by ``codec``, or None when the codec does not hold them all exactly."""
    if codec == "absent":
        missing = _all_nan(values) if values.dtype.kind == "f" else _all_equal(values, -1)
        return values if bool(missing) else None
    if codec in ("key", "u32"):
        shift = 1 if codec == "key" else 0
        if values.size and (int(values.min()) + shift < 0 or int(values.max()) + shift > _U32_MAX):
            return None
        stored = values.astype(np.uint32)  # -1 wraps to 2^32 - 1, and 1 more to 0
        stored += np.uint32(shift)
        return stored
    scale, dtype, nan_code = _SCALED[(codec, kind)]
    info = np.iinfo(dtype)  # the NaN code is the type's least or greatest value: not a value's code
    lo, hi = (info.min + 1, info.max) if nan_code == info.min else (info.min, info.max - 1)
    out = np.empty(values.size, dtype)
    return out if _scale(values, scale, float(lo), float(hi), nan_code, kind == "float", out) else None


def _widen(codec: str, column: pa.Array, kind: str, dest: npt.NDArray[Any]) -> None:
    """Stored ``column`` back into ``dest`` (its kernel-input type)."""
    if codec == "absent":
        dest.fill(np.nan if dest.dtype.kind == "f" else -1)
    elif codec == "plain":
        dest[:] = column.to_numpy()
    elif codec in ("key", "u32"):
        np.subtract(column.to_numpy(), 1 if codec == "key" else 0, out=dest, dtype=np.int64)
    else:
        scale, _, nan_code = _SCALED[(codec, kind)]
        _unscale(column.to_numpy(), scale, nan_code, dest)


@nb.njit(cache=True, nogil=True)
def _all_nan(values):  # type: ignore[no-untyped-def]
    for v in values:  # noqa: SIM110 (a loop numba compiles, stopping at the first value)
        if v == v:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _all_equal(values, code):  # type: ignore[no-untyped-def]
    for v in values:  # noqa: SIM110
        if v != code:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _scale(values, scale, lo, hi, nan_code, single, out):  # type: ignore[no-untyped-def]
    """``out[i] = round(values[i] * scale)`` (NaN: ``nan_code``); False as soon as a value is not held
    exactly (outside [lo, hi], or not given back by ``code / scale``, in float32 when ``single``)."""
    for i in range(values.shape[0]):
        v = values[i]
        if v != v:
            out[i] = nan_code
            continue
        if v == 0 and math.copysign(1.0, v) < 0:
            return False  # -0.0 would come back as 0.0
        k = np.rint(np.float64(v) * scale)
        if not lo <= k <= hi:
            return False
        back = k / scale
        if (np.float32(back) != v) if single else (back != v):
            return False
        out[i] = k
    return True


@nb.njit(cache=True, nogil=True)
def _place(values, places, out):  # type: ignore[no-untyped-def]
    """``out[places] = values`` (a vehicle's rows come in runs: its run is written front to back)."""
    for i in range(values.shape[0]):
        out[places[i]] = values[i]


@nb.njit(cache=True, nogil=True)
def _unscale(codes, scale, nan_code, out):  # type: ignore[no-untyped-def]
    for i in range(codes.shape[0]):
        k = codes[i]
        out[i] = np.nan if k == nan_code else k / scale


__all__ = ["CODECS", "codecs", "decode", "decode_column", "encode", "recode", "vehicle_keys", "widened"]
