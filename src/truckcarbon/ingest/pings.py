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
                                   window (:class:`.rules.IngestRules`)
lon, lat   float64 (degrees)       required, finite, in range, not (0, 0)
speed_kmh  float32                 optional, 0..250
load_state dictionary<string>      optional: empty, half, full
odometer_km, fuel_level_l          optional, >= 0
acc_on     bool                    optional: the ignition (ACC), JT/T 808
                                   status bit 0; 1/0, true/false, on/off,
                                   开/关, 点火/熄火 (:func:`.rules.acc_codes`)
========== ======================= =========================================

Quarantined rows keep every original column as text plus ``reason``,
``source_file`` and ``source_row`` (1-based data row), so nothing is lost and
every rejection can be traced. A file whose latitudes look like longitudes (the
columns swapped) is refused as a whole (:func:`.rules.check_axes`).

Rows of any column types (CSV text included) are validated here
(:func:`validate_pings`); files whose columns already have the contract's types
take the compiled path of :mod:`.typed` (same rules, same reason codes).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import given, parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.schemas import LOAD_STATES
from truckcarbon.ingest.ids import CONFLICTING, MISSING, UNKNOWN, VehicleIds, id_text
from truckcarbon.ingest.quarantine import (
    R_BAD_TIME,
    R_COORDS,
    R_DUPLICATE,
    R_MISSING_ID,
    R_OPTIONAL,
    R_TIME_RANGE,
    R_UNKNOWN,
    R_ZERO,
    REASONS,
    IngestCounts,
    quarantine_table,
)
from truckcarbon.ingest.rules import OPTIONAL_FLOAT, REQUIRED, IngestRules, acc_codes, check_axes
from truckcarbon.ingest.times import parse_times


def _numeric(arr: pa.Array) -> np.ndarray:
    """float64 values, NaN where missing or not a number."""
    return parse_float64(arr)[0]


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
    acc = None
    if "acc_on" in table.column_names:
        acc, acc_bad = acc_codes(table.column("acc_on").combine_chunks())
        flag(acc_bad, R_OPTIONAL)
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
    if acc is not None:
        ak = acc[keep]
        cols["acc_on"] = pa.array(ak == 1, pa.bool_(), mask=ak < 0)
    valid = pa.table(cols)

    bad_rows = np.flatnonzero(~ok)
    taken = table.take(pa.array(bad_rows)) if bad_rows.size else table.slice(0, 0)
    quarantine = quarantine_table(taken, reason[bad_rows], source, bad_rows + first_row + 1)
    counts = IngestCounts(rows=n, kept=int(keep.size))
    for code, name in enumerate(REASONS):
        counts.quarantined[name] = int((reason == code).sum())
    return valid, quarantine, counts


__all__ = ["validate_pings"]
