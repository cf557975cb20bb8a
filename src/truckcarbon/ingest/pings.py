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

import numpy as np
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
        ms = pc.cast(pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz)), pa.int64())
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
    quarantine = table.take(pa.array(bad_rows)) if bad_rows.size else table.slice(0, 0)
    quarantine = pa.table({name: pc.cast(quarantine.column(name), pa.string()) for name in quarantine.column_names})
    quarantine = quarantine.append_column("reason", pa.array([REASONS[r] for r in reason[bad_rows]], pa.string()))
    quarantine = quarantine.append_column("source_file", pa.array([source] * bad_rows.size, pa.string()))
    quarantine = quarantine.append_column("source_row", pa.array(bad_rows + first_row + 1, pa.int64()))
    counts = IngestCounts(rows=n, kept=int(keep.size))
    for code, name in enumerate(REASONS):
        counts.quarantined[name] = int((reason == code).sum())
    return valid, quarantine, counts


# ---------------------------------------------------------------------------
# Typed fast path: the same rules as SQL, evaluated by DuckDB while it reads
# ---------------------------------------------------------------------------

KERNEL_COLUMNS = ("vehicle_id", "t", "lon", "lat", "speed", "load", "fuel", "odometer")


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def typed_select(schema: pa.Schema) -> str | None:
    """SQL select list giving kernel inputs, ``reason`` and ``source_row`` for a typed pings file.

    The rules are those of :func:`validate_pings` (same reason codes, same
    order), written for columns that already have the contract's types:
    integer ``vehicle_id``, timestamp or integer ``ts``, numeric coordinates
    and channels, text or dictionary ``load_state``. Returns None when a column
    has another type (e.g. text from CSV): such files take the general path.
    The unknown-vehicle rule is applied afterwards by the caller.
    """
    fields = {f.name: f.type for f in schema}
    if any(c not in fields for c in REQUIRED):
        return None

    def numeric(t: pa.DataType) -> bool:
        return bool(pa.types.is_integer(t) or pa.types.is_floating(t))

    if not pa.types.is_integer(fields["vehicle_id"]) or not all(numeric(fields[c]) for c in ("lon", "lat")):
        return None
    ts_type = fields["ts"]
    ts = quote_identifier("ts")
    if pa.types.is_timestamp(ts_type):
        # epoch_us: DuckDB's cheapest way to the epoch (epoch_ms costs a conversion more).
        us = f"epoch_us({ts})" if ts_type.tz else f"(epoch_us({ts}) - {LOCAL_OFFSET_MS * 1000})"
        seconds = f"{us} // 1000000"
    elif pa.types.is_integer(ts_type):
        seconds = f"(CASE WHEN {ts} > 100000000000 THEN {ts} // 1000 ELSE {ts} END)"
    else:
        return None
    for name in OPTIONAL_FLOAT:
        if name in fields and not numeric(fields[name]):
            return None
    load_type = fields.get("load_state")
    if load_type is not None:
        value_type = load_type.value_type if pa.types.is_dictionary(load_type) else load_type
        if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
            return None
    lon, lat = quote_identifier("lon") + "::DOUBLE", quote_identifier("lat") + "::DOUBLE"
    bad_optional = []
    for name, (lo, hi) in OPTIONAL_FLOAT.items():
        if name in fields:
            v = quote_identifier(name) + "::DOUBLE"
            upper = f" OR {v} > {hi}" if np.isfinite(hi) else ""
            bad_optional.append(f"({v} IS NOT NULL AND (isnan({v}) OR {v} < {lo}{upper}))")
    if load_type is not None:
        ls = quote_identifier("load_state") + "::VARCHAR"
        exact = " ".join(f"WHEN {ls} = '{s}' THEN {i}" for i, s in enumerate(LOAD_STATES))
        folded = " ".join(f"WHEN lower({ls}) = '{s}' THEN {i}" for i, s in enumerate(LOAD_STATES))
        # Exact names first (the usual case, cheap), then blank and other letter cases.
        load = f"(CASE WHEN {ls} IS NULL THEN -1 {exact} WHEN trim({ls}) = '' THEN -1 {folded} ELSE -2 END)"
        bad_optional.append(f"({load} = -2)")
    else:
        load = "-1"
    reason = f"""(CASE
        WHEN {quote_identifier("vehicle_id")} IS NULL THEN 0
        WHEN {ts} IS NULL THEN 1
        WHEN {lon} IS NULL OR {lat} IS NULL OR NOT isfinite({lon}) OR NOT isfinite({lat})
             OR abs({lon}) > 180 OR abs({lat}) > 90 THEN 2
        WHEN {lon} = 0 AND {lat} = 0 THEN 3
        {"WHEN " + " OR ".join(bad_optional) + " THEN 4" if bad_optional else ""}
        ELSE -1 END)::TINYINT"""

    def channel(name: str, fill: str, cast: str) -> str:
        return f"coalesce({quote_identifier(name)}::{cast}, {fill})" if name in fields else f"{fill}::{cast}"

    return ", ".join(
        [
            f"coalesce({quote_identifier('vehicle_id')}::BIGINT, 0) AS vehicle_id",
            f"coalesce({seconds}, 0)::BIGINT AS t",
            f"coalesce({lon}, 'nan'::DOUBLE) AS lon",
            f"coalesce({lat}, 'nan'::DOUBLE) AS lat",
            f"{channel('speed_kmh', '0', 'FLOAT')} AS speed",
            f"({load})::TINYINT AS load",
            f"{channel('fuel_level_l', chr(39) + 'nan' + chr(39), 'DOUBLE')} AS fuel",
            f"{channel('odometer_km', chr(39) + 'nan' + chr(39), 'DOUBLE')} AS odometer",
            f"{reason} AS reason",
            "file_row_number + 1 AS source_row",
        ]
    )
