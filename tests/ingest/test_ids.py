"""Vehicle ids: text exactly as given, dense keys per run, every kind of column looked up alike."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.ids import CONFLICTING, MISSING, UNKNOWN, VehicleIds, id_text, key_order


def test_id_text_keeps_every_digit_and_refuses_floats() -> None:
    assert id_text(pa.array([" 013912345678 ", "", None, "鲁A12345"])).to_pylist() == [
        "013912345678", None, None, "鲁A12345"
    ]  # fmt: skip
    assert id_text(pa.array([12345678901234567, 12345678901234568])).to_pylist() == [
        "12345678901234567", "12345678901234568"
    ]  # fmt: skip
    assert id_text(pa.array([2**64 - 1], pa.uint64())).to_pylist() == ["18446744073709551615"]
    with pytest.raises(InputError, match="floating-point"):
        id_text(pa.array([1.0, 2.0]), "p.parquet: column vehicle_id")
    with pytest.raises(InputError, match="text or integers"):
        id_text(pa.array([True]))


def test_key_order_is_numeric_for_plain_integers_else_text() -> None:
    ints = pa.array(["10", "9", "-3", "100"])
    assert pa.array(ints).take(pa.array(key_order(ints))).to_pylist() == ["-3", "9", "10", "100"]
    mixed = pa.array(["10", "9", "09", "a"])  # "09" is not a plain integer: text order for all
    assert mixed.take(pa.array(key_order(mixed))).to_pylist() == ["09", "10", "9", "a"]


def test_lookups_from_every_column_kind() -> None:
    ids = VehicleIds.build(pa.array(["7", "013912345678", "鲁A12345"]), pa.array(["8", "京B00001"]))
    assert ids.keys(pa.array(["7", "013912345678", "13912345678", "鲁A12345", "京B00001", None, " "])).tolist() == [
        0, 1, UNKNOWN, 2, CONFLICTING, MISSING, MISSING
    ]  # fmt: skip
    assert ids.keys(pa.array([7, 8, 9, None], pa.int32())).tolist() == [0, CONFLICTING, UNKNOWN, MISSING]
    assert ids.keys(pa.array([2**63 + 1, 7], pa.uint64())).tolist() == [UNKNOWN, 0]
    enc = pa.array(["鲁A12345", None, "7", "x"]).dictionary_encode()
    assert ids.keys(enc).tolist() == [2, MISSING, 0, UNKNOWN]
    assert ids.text_of(np.array([2, 0])).to_pylist() == ["鲁A12345", "7"]
