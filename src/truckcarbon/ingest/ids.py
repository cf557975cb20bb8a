"""Vehicle ids: text exactly as given, mapped once per run to dense integer keys for the kernels.

An id is the text of the value: a text column's value with surrounding blanks
trimmed (``鲁A12345``, ``013912345678`` with its leading zero, ``geolife-000``),
an integer column's value in decimal (``12345678901234567``, exact at any
width). A floating-point id column is refused: above 2^53 distinct ids collide.

:class:`VehicleIds` holds the ids of a run's vehicles table in key order (key =
position). Keys follow the ids' numeric order when every id is a plain integer
(so a file sorted by integer id is sorted by key), else their text order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.errors import InputError

UNKNOWN = -1  # key of an id that is not in the vehicles table
CONFLICTING = -2  # key of an id the vehicles table gives twice with different attributes
MISSING = -3  # key of a missing (null or blank) id

_PLAIN_INT = r"^-?(0|[1-9][0-9]{0,18})$"
_INT64_MAX = np.iinfo(np.int64).max


def id_text(arr: pa.Array | pa.ChunkedArray, where: str = "vehicle_id") -> pa.Array:
    """Ids as text (null where missing or blank), exactly as given; a clear error for a column of another kind.

    ``where`` names the file and column in the error.
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_integer(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        raise InputError(
            f"{where} is a {t} column: ids written as floating-point numbers are not exact (17-digit ids "
            "collide); export the ids as text or integers"
        )
    raise InputError(f"{where} is a {t} column; vehicle ids must be text or integers")


def _plain_ints(text: pa.Array) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Where each id is a plain integer that fits int64 (no sign but '-', no leading zero), and its value."""
    plain = np.asarray(
        pc.fill_null(pc.match_substring_regex(text, _PLAIN_INT), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    values = np.zeros(len(text), np.int64)
    if plain.any():
        idx = np.flatnonzero(plain)
        as_float = np.asarray(pc.cast(text.take(pa.array(idx)), pa.float64()).to_numpy(), dtype=np.float64)
        fits = np.abs(as_float) < 9.2e18  # 19-digit values beyond int64 are not plain (kept as text)
        plain[idx[~fits]] = False
        good = idx[fits]
        values[good] = np.asarray(pc.cast(text.take(pa.array(good)), pa.int64()).to_numpy(), dtype=np.int64)
    return plain, values


def key_order(ids: pa.Array) -> npt.NDArray[np.int64]:
    """The order of distinct, non-null ids that makes their keys: numeric when all are plain integers, else text."""
    plain, values = _plain_ints(ids)
    if len(ids) and plain.all():
        return np.argsort(values, kind="stable").astype(np.int64)
    return np.asarray(pc.sort_indices(ids).to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class VehicleIds:
    """The ids of a run's vehicles in key order, with lookups from ping id columns to keys."""

    ids: pa.Array  # string, position = key
    int_ids: npt.NDArray[np.int64]  # the ids that are plain integers, sorted
    int_keys: npt.NDArray[np.int64]  # their keys
    conflicting: pa.Array  # string: ids quarantined as conflicting duplicates
    conflicting_ints: npt.NDArray[np.int64]  # those of them that are plain integers, sorted
    # Integer ids in a dense range: the key of id ``dense_lo + i`` is ``dense[i]`` (-1 unknown, -2 conflicting),
    # one load per row instead of a binary search (rows of many vehicles interleaved, as a time-ordered dump).
    dense_lo: int = 0
    dense: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def build(cls, ids: pa.Array, conflicting: pa.Array | None = None) -> VehicleIds:
        """From the ids in key order (distinct, not null) and the conflicting ids set aside."""
        plain, values = _plain_ints(ids)
        pos = np.flatnonzero(plain)
        order = np.argsort(values[pos], kind="stable")
        bad = conflicting if conflicting is not None else pa.array([], pa.string())
        bad_plain, bad_values = _plain_ints(bad)
        int_ids = np.ascontiguousarray(values[pos][order])
        int_keys = np.ascontiguousarray(pos[order].astype(np.int64))
        conflicting_ints = np.sort(bad_values[bad_plain])
        dense_lo, dense = _dense_table(int_ids, int_keys, conflicting_ints)
        return cls(ids=ids, int_ids=int_ids, int_keys=int_keys, conflicting=bad, conflicting_ints=conflicting_ints,
                   dense_lo=dense_lo, dense=dense)  # fmt: skip

    def __len__(self) -> int:
        return len(self.ids)

    def keys(self, column: pa.Array | pa.ChunkedArray, where: str = "vehicle_id") -> npt.NDArray[np.int64]:
        """Key of each value of a pings id column: >= 0, or UNKNOWN, CONFLICTING, MISSING."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if pa.types.is_integer(column.type):
            return self.int_keys_of(column)
        if pa.types.is_dictionary(column.type):
            # Look the (few) distinct values up once, then take by index.
            per_value = self.keys(column.dictionary, where)
            idx = np.asarray(pc.fill_null(column.indices, 0).to_numpy(), dtype=np.int64)
            out = per_value[idx] if per_value.size else np.full(len(column), MISSING, np.int64)
            if column.null_count:
                out[np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)] = MISSING
            return out
        text = id_text(column, where)
        found = np.asarray(pc.fill_null(pc.index_in(text, value_set=self.ids), UNKNOWN).to_numpy(), dtype=np.int64)
        if len(self.conflicting):
            clash = np.asarray(
                pc.fill_null(pc.is_in(text, value_set=self.conflicting), False).to_numpy(zero_copy_only=False), bool
            )
            found[clash] = CONFLICTING
        found[np.asarray(text.is_null().to_numpy(zero_copy_only=False), bool)] = MISSING
        return found

    def int_keys_of(self, column: pa.Array) -> npt.NDArray[np.int64]:
        """Keys of an integer column (nulls MISSING)."""
        if pa.types.is_unsigned_integer(column.type) and len(column) and pc.max(column).as_py() > _INT64_MAX:
            # Beyond int64: only as text can they match.
            return self.keys(pc.cast(column, pa.string()))
        v = np.asarray(pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(), dtype=np.int64)
        out = lookup_ints(v, self.int_ids, self.int_keys, self.conflicting_ints)
        if column.null_count:
            out[np.asarray(column.is_null().to_numpy(zero_copy_only=False), bool)] = MISSING
        return out

    def text_of(self, keys: npt.NDArray[np.int64]) -> pa.Array:
        """The ids of ``keys`` (all >= 0)."""
        return self.ids.take(pa.array(keys))


DENSE_SLACK = 1 << 20  # a dense table may hold this many more entries than 4 per known id


def _dense_table(
    int_ids: npt.NDArray[np.int64], int_keys: npt.NDArray[np.int64], conflicting_ints: npt.NDArray[np.int64]
) -> tuple[int, npt.NDArray[np.int64]]:
    """(lowest id, key per id from it) when the integer ids span at most 4 per id plus :data:`DENSE_SLACK`;
    else (0, empty): ids such as phone numbers are looked up by binary search."""
    if int_ids.size == 0 or int(int_ids[-1]) - int(int_ids[0]) >= 4 * int_ids.size + DENSE_SLACK:
        return 0, np.zeros(0, np.int64)
    lo = int(int_ids[0])
    table = np.full(int(int_ids[-1]) - lo + 1, -1, np.int64)
    inside = conflicting_ints[(conflicting_ints >= lo) & (conflicting_ints <= int(int_ids[-1]))]
    table[inside - lo] = -2
    table[int_ids - lo] = int_keys
    return lo, table


def lookup_ints(
    v: npt.NDArray[np.int64],
    int_ids: npt.NDArray[np.int64],
    int_keys: npt.NDArray[np.int64],
    conflicting_ints: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Keys of integer ids (UNKNOWN or CONFLICTING where not a vehicle)."""
    if int_ids.size == 0:
        out = np.full(v.size, UNKNOWN, np.int64)
    else:
        pos = np.minimum(np.searchsorted(int_ids, v), int_ids.size - 1)
        out = np.where(int_ids[pos] == v, int_keys[pos], UNKNOWN)
    if conflicting_ints.size:
        out[(out == UNKNOWN) & np.isin(v, conflicting_ints)] = CONFLICTING
    return out


__all__ = ["CONFLICTING", "MISSING", "UNKNOWN", "VehicleIds", "id_text", "key_order", "lookup_ints"]
