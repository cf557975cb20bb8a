"""The pings dataset as the simulator writes it: schema, partitioning, Parquet layout and part files.

``OUT/pings/month=YYYY-MM/part-GGG-NNNNN.parquet`` (:func:`month_folder`,
:class:`PartWriter`): one Hive partition per local month; in it, each group of
trucks (:mod:`truckcarbon.sim.workers`) writes parts ``NNNNN`` of at most
``rows_per_file`` rows, its trucks one after another. The columns are
:data:`PING_SCHEMA` (the pings contract, :data:`truckcarbon.core.schemas.PINGS`),
written with the encodings of :data:`PING_WRITER_OPTIONS` (:func:`write_pings`).
Vehicle ids are integers, or text by a configuration's ``id_format``
(:func:`text_ids`, which the vehicles and truth tables use too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.months import month_label
from truckcarbon.core.schemas import LOAD_STATES, PINGS

LOAD_NAMES = pa.array(LOAD_STATES)  # load codes 0, 1, 2 index this
# The channels a configuration may leave out (written as nulls then).
OPTIONAL_CHANNELS = ("load_state", "odometer_km", "fuel_level_l", "acc_on")
# The pings contract (:data:`truckcarbon.core.schemas.PINGS`) as the simulator writes it: integer ids (text
# with ``id_format``), the driving channels never null.
PING_SCHEMA = pa.schema(
    [PINGS.column("vehicle_id").field().with_type(pa.int64())]
    + [PINGS.column(name).field().with_nullable(False) for name in ("ts", "lon", "lat", "speed_kmh")]
    + [PINGS.column(name).field() for name in OPTIONAL_CHANNELS]
)

# How ping files are written (:func:`write_pings`), chosen for the work of writing and of reading back:
# - columns that are never null are REQUIRED: no definition levels to write and decode (a quarter of the
#   writer's work);
# - vehicle ids (long runs) and times (steps of about 30 s) are delta-encoded (DELTA_BINARY_PACKED),
#   which packs them as tightly as a compressor would and decodes faster;
# - coordinates are noise to any codec: stored plain;
# - speed, odometer and fuel level, whose values repeat, are LZ4-compressed (LZ4_RAW), the fastest codec
#   to decode.
# Against plain columns with snappy (the previous layout) files are 17% smaller and Arrow decodes them
# in less than half the time.
PING_ENCODING = {"vehicle_id": "DELTA_BINARY_PACKED", "ts": "DELTA_BINARY_PACKED"}
PING_COMPRESSION = {
    name: "lz4" if name in ("speed_kmh", "odometer_km", "fuel_level_l", "acc_on") else "none"
    for name in PING_SCHEMA.names
}
# Values the Parquet writer encodes at a time (its default, 1024, costs about 10% more work per row
# on contiguous columns; pages still close at the default 1 MB).
PING_WRITE_BATCH = 2**16


# Writer options of ping files (pq.write_table, pq.ParquetWriter); see PING_ENCODING.
PING_WRITER_OPTIONS: dict[str, Any] = {
    "use_dictionary": ["load_state"],
    "column_encoding": PING_ENCODING,
    "write_statistics": ["vehicle_id", "ts"],  # what readers prune and check order by
    "compression": PING_COMPRESSION,
    "write_batch_size": PING_WRITE_BATCH,
}


def month_folder(out: Path, month: int) -> Path:
    """The partition folder of local month ``month`` (year * 12 + month - 1) in the output folder ``out``."""
    return out / "pings" / f"month={month_label(month)}"


def text_ids(table: pa.Table, id_format: str, dictionary: bool = False) -> pa.Table:
    """``table`` with its integer ``vehicle_id`` written as text by ``id_format`` (dictionary-encoded when
    ``dictionary``: a vehicle's pings repeat its id)."""
    ids = table["vehicle_id"].combine_chunks()
    if len(ids) == 0:
        return table.set_column(table.schema.get_field_index("vehicle_id"), "vehicle_id", pa.array([], pa.string()))
    encoded = pc.dictionary_encode(ids)
    words = pa.array([id_format.format(v) for v in encoded.dictionary.to_pylist()], pa.string())
    column = pa.DictionaryArray.from_arrays(encoded.indices, words)
    if not dictionary:
        column = column.dictionary_decode()
    return table.set_column(
        table.schema.get_field_index("vehicle_id"), pa.field("vehicle_id", column.type, False), column
    )


def write_pings(table: pa.Table, path: Path) -> None:
    """Write a table of pings (:data:`PING_SCHEMA`, optional channels may be all null) as the simulator's
    Parquet layout (see :data:`PING_ENCODING`); a channel with no null is written REQUIRED."""
    fields = [
        f.with_nullable(False) if f.name in OPTIONAL_CHANNELS and table.column(f.name).null_count == 0 else f
        for f in table.schema
    ]
    if fields != list(table.schema):
        table = table.cast(pa.schema(fields))
    options = PING_WRITER_OPTIONS
    if not pa.types.is_integer(table.schema.field("vehicle_id").type):  # text ids: dictionary pages, not deltas
        encoding = {k: v for k, v in PING_ENCODING.items() if k != "vehicle_id"}
        options = {**options, "use_dictionary": ["load_state", "vehicle_id"], "column_encoding": encoding}
    pq.write_table(table, path, **options)


# The numpy type of each ping column (PING_SCHEMA; ts in epoch milliseconds, load_state the load code).
PING_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float32, np.int8, np.float64, np.float32, np.bool_)


@nb.njit(cache=True)
def _gather(rows, at, vid, t, lon, lat, speed, load, odo, fuel, acc, *out):  # type: ignore[no-untyped-def]
    """Rows ``rows`` of a truck's fixes into the part columns ``out`` (PING_DTYPES) from position ``at``."""
    for i in range(rows.shape[0]):
        r = rows[i]
        j = at + i
        out[0][j] = vid
        out[1][j] = t[r] * 1000  # s -> ms
        out[2][j] = lon[r]
        out[3][j] = lat[r]
        out[4][j] = speed[r]
        out[5][j] = load[r]
        out[6][j] = odo[r]
        out[7][j] = fuel[r]
        out[8][j] = acc[r]


class PartBuffer:
    """The pings of one part file, gathered truck by truck into contiguous columns.

    Parquet writes contiguous columns faster than a table of one small batch per
    truck, and writing the emitted rows straight into the columns spares a copy.
    """

    kept: ClassVar[list[PartBuffer]] = []  # this process's buffer, from task to task: new memory costs page faults

    def __init__(self, rows: int) -> None:
        self.rows = 0
        self.columns = [np.empty(rows + 2**17, dtype) for dtype in PING_DTYPES]

    @classmethod
    def reused(cls, rows: int) -> PartBuffer:
        """An empty buffer for parts of ``rows`` rows: the one this process used last when it is large enough."""
        if not cls.kept or cls.kept[0].columns[0].size < rows + 2**17:
            cls.kept[:] = [cls(rows)]
        cls.kept[0].rows = 0
        return cls.kept[0]

    @classmethod
    def release(cls) -> None:
        """Drop this process's kept buffer (at the end of a run)."""
        cls.kept.clear()

    def add(self, vid: int, emitted: npt.NDArray[np.int64], fixes: tuple[npt.NDArray[Any], ...]) -> None:
        """Append the ``emitted`` rows of a truck's ``fixes`` (time in s, lon, lat, speed, load, odometer, fuel,
        ignition)."""
        a, b = self.rows, self.rows + emitted.size
        if b > self.columns[0].size:
            self.columns = [np.concatenate([c[:a], np.empty(max(b, 2 * a) - a, c.dtype)]) for c in self.columns]
        _gather(emitted, a, vid, *fixes, *self.columns)
        self.rows = b

    def write(self, path: Path, left_out: tuple[str, ...], id_format: str) -> None:
        """Write the pings as a Parquet file (the channels ``left_out`` as nulls, ids as text by a non-empty
        ``id_format``); empty the buffer."""
        n = self.rows
        arrays = []
        for spec, column in zip(PING_SCHEMA, self.columns, strict=True):
            values = [None, pa.py_buffer(column[:n])]
            if pa.types.is_dictionary(spec.type):
                arrays.append(pa.DictionaryArray.from_buffers(spec.type, n, values, LOAD_NAMES))
            elif pa.types.is_boolean(spec.type):  # Arrow packs booleans in bits
                arrays.append(pa.array(column[:n], pa.bool_()))
            elif spec.name == "fuel_level_l" and np.isnan(column[:n]).any():  # trucks without a diesel tank
                arrays.append(pa.array(column[:n], spec.type, from_pandas=True))  # NaN: null (not reported)
            else:
                arrays.append(pa.Array.from_buffers(spec.type, n, values))
        for name in left_out:
            i = PING_SCHEMA.get_field_index(name)
            arrays[i] = pa.nulls(n, PING_SCHEMA.field(i).type)
        table = pa.Table.from_arrays(arrays, schema=PING_SCHEMA)
        if id_format:
            table = text_ids(table, id_format, dictionary=True)
        write_pings(table, path)
        self.rows = 0


class PartWriter:
    """One group's pings of one month, written as part files of at most ``rows_per_file`` rows (a truck's
    pings stay in one part: a part closes after the truck that filled it)."""

    def __init__(self, folder: Path, group: int, rows_per_file: int, left_out: tuple[str, ...], id_format: str):
        self.folder = folder
        self.group = group
        self.rows_per_file = rows_per_file
        self.left_out = left_out
        self.id_format = id_format
        self.parts = 0
        self.buffer = PartBuffer.reused(rows_per_file)

    def add(self, vid: int, emitted: npt.NDArray[np.int64], fixes: tuple[npt.NDArray[Any], ...]) -> None:
        """Append a truck's emitted rows (see :meth:`PartBuffer.add`); write the part once it is full."""
        self.buffer.add(vid, emitted, fixes)
        if self.buffer.rows >= self.rows_per_file:
            self.flush()

    def flush(self) -> None:
        """Write the rows gathered so far as the next part file (nothing when there are none)."""
        if self.buffer.rows:
            path = self.folder / f"part-{self.group:03d}-{self.parts:05d}.parquet"
            self.buffer.write(path, self.left_out, self.id_format)
            self.parts += 1
