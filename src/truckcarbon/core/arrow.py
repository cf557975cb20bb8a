"""Reading numbers out of Arrow columns whatever their type (CSV text included)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:nan|inf|infinity))$"


def is_text(arr: pa.Array) -> bool:
    return bool(pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type))


def is_number_type(arr: pa.Array) -> bool:
    return bool(pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type))


def given(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """True where a value is given: not null and, for text, not blank."""
    valid = arr.is_valid()
    if is_text(arr):
        valid = pc.and_(valid, pc.not_equal(pc.utf8_trim_whitespace(arr), ""))
    return np.asarray(pc.fill_null(valid, False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_float64(arr: pa.Array) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Values as float64 (NaN where missing or unreadable) and where a given value was not a number.

    Number columns are cast; text is trimmed and read as a decimal number
    (``nan`` and ``inf`` included); other types are unreadable everywhere.
    """
    if is_number_type(arr):
        values = np.asarray(pc.fill_null(pc.cast(arr, pa.float64()), np.nan).to_numpy(), dtype=np.float64)
        return values, np.zeros(len(arr), bool)
    present = given(arr)
    if not is_text(arr):
        return np.full(len(arr), np.nan), present
    text = pc.utf8_trim_whitespace(arr)
    ok = np.asarray(pc.fill_null(pc.match_substring_regex(text, _NUMBER), False).to_numpy(zero_copy_only=False), bool)
    values = pc.cast(pc.if_else(pa.array(ok), text, None), pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64), present & ~ok
