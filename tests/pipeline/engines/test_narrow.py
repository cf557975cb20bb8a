"""Narrow columns of routed pings: every value given back bit for bit, in fewer bytes where the values allow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.pipeline.engines import narrow
from truckcarbon.pipeline.engines.partitions import Partitions
from truckcarbon.pipeline.reading import KERNEL_SCHEMA

ROWS = 300


def _batch(rng: np.random.Generator, kind: dict[str, str], n: int = ROWS) -> pa.RecordBatch:
    """A kernel-input batch whose columns are of the given kinds: ``exact`` (values a terminal reports: 6-decimal
    degrees, one-decimal channels), ``noisy`` (full precision), ``missing`` (NaN / -1) or ``odd`` (values no
    narrow codec holds: -0.0, huge, negative)."""

    def real(name: str, lo: float, hi: float, decimals: int, dtype: type = np.float64) -> np.ndarray:
        k = kind.get(name, "exact")
        x = rng.uniform(lo, hi, n)
        if k == "exact":
            x = np.round(x * 10**decimals) / 10**decimals
        elif k == "missing":
            x[:] = np.nan
        elif k == "odd":
            x[0], x[1], x[2] = -0.0, 1e12, -3.5
        x = x.astype(dtype)
        x[rng.random(n) < 0.05] = np.nan if k != "odd" else x[3]
        return x

    def code(name: str) -> np.ndarray:
        return np.full(n, -1, np.int8) if kind.get(name) == "missing" else rng.integers(-1, 3, n).astype(np.int8)

    vid = rng.integers(-1, 5000, n) if kind.get("vehicle_id") != "odd" else rng.integers(-(2**62), 2**62, n)
    t = rng.integers(946_684_800, 1_900_000_000, n)
    if kind.get("t") == "odd":
        t[0] = -5
    columns = [vid, t, real("lon", 73, 135, 6), real("lat", 18, 53, 6), real("speed", 0, 120, 1, np.float32)]
    columns += [code("load"), real("fuel", 0, 400, 1), real("odometer", 0, 2e6, 1), code("acc"), code("quarantine")]
    return pa.RecordBatch.from_arrays([pa.array(c) for c in columns], schema=KERNEL_SCHEMA)


def _bits(table: pa.Table | pa.RecordBatch) -> list[bytes]:
    """Every column's values as raw bytes (NaN and -0.0 compared bit for bit)."""
    return [np.ascontiguousarray(table.column(i).to_numpy()).tobytes() for i in range(table.num_columns)]


KINDS = st.sampled_from(["exact", "noisy", "missing", "odd"])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kinds=st.dictionaries(st.sampled_from(KERNEL_SCHEMA.names), KINDS))
def test_decode_gives_back_every_value_bit_for_bit(seed: int, kinds: dict[str, str]) -> None:
    rng = np.random.default_rng(seed)
    batches = [_batch(rng, kinds), _batch(rng, {}), _batch(rng, {"lon": "noisy", "fuel": "missing"})]
    encoded = [narrow.encode(b) for b in batches]
    assert _bits(narrow.decode(encoded)) == _bits(pa.Table.from_batches(batches))
    out = [np.empty(2 * ROWS * len(batches), f.type.to_pandas_dtype()) for f in KERNEL_SCHEMA]  # larger buffers
    decoded = narrow.decode(encoded, out)
    assert decoded.num_rows == ROWS * len(batches) and _bits(decoded) == _bits(pa.Table.from_batches(batches))
    np.testing.assert_array_equal(narrow.vehicle_keys(encoded[0]), batches[0].column(0).to_numpy())
    # In the codecs that hold them all (one spill file): the same values.
    both = narrow.codecs(encoded[0].schema)
    for e in encoded[1:]:
        both = narrow.widened(both, narrow.codecs(e.schema))
    recoded = [narrow.recode(e, both) for e in encoded]
    assert {narrow.codecs(r.schema) for r in recoded} == {both}
    assert _bits(narrow.decode(recoded)) == _bits(pa.Table.from_batches(batches))


def test_a_terminals_values_narrow_to_29_bytes_of_55_and_full_precision_stays() -> None:
    rng = np.random.default_rng(1)
    exact = narrow.encode(_batch(rng, {}, 10_000))
    assert narrow.codecs(exact.schema) == (
        "key", "u32", "micro", "micro", "tenths", "plain", "tenths", "tenths", "plain", "plain",
    )  # fmt: skip
    wide = sum(f.type.bit_width // 8 for f in KERNEL_SCHEMA)  # 55 bytes a row
    assert exact.nbytes / exact.num_rows == 29 and wide == 55
    missing = narrow.encode(_batch(rng, {"fuel": "missing", "load": "missing", "acc": "missing"}, 10_000))
    assert [c for c in narrow.codecs(missing.schema) if c == "absent"] == ["absent"] * 3
    noisy = narrow.encode(_batch(rng, {k: "noisy" for k in ("lon", "lat", "speed")}, 10_000))
    assert narrow.codecs(noisy.schema)[2:5] == ("plain", "plain", "plain")
    odd = narrow.encode(_batch(rng, {k: "odd" for k in ("vehicle_id", "t", "lon", "fuel")}, 10_000))
    assert narrow.codecs(odd.schema)[:3] == ("plain", "plain", "plain") and narrow.codecs(odd.schema)[6] == "plain"


@pytest.mark.parametrize("value", [-0.0, 2.5e-7, 180.0000005])
def test_a_coordinate_not_given_to_six_decimals_keeps_its_eight_bytes(value: float) -> None:
    rng = np.random.default_rng(2)
    batch = _batch(rng, {})
    lon = batch.column(2).to_numpy().copy()
    lon[7] = value
    batch = batch.set_column(2, "lon", pa.array(lon))
    encoded = narrow.encode(batch)
    assert narrow.codecs(encoded.schema)[2] == "plain"
    assert _bits(narrow.decode([encoded])) == _bits(batch)


@pytest.mark.parametrize(("memory_kib", "expected"), [(0, 40_000), (600, 40_000), (600, 4_000), (1 << 20, 40_000)])
def test_partitions_hold_within_the_budget_and_give_back_every_row_in_order(
    tmp_path: Path, memory_kib: int, expected: int
) -> None:
    """Nothing spilled, everything spilled, or some held: the held bytes never pass the budget (an input
    larger than estimated spills held partitions as it goes), and the partitions give back every row once,
    each vehicle's rows in the input's order."""
    rng = np.random.default_rng(memory_kib + expected)
    parts = Partitions(8, tmp_path, 10_000, "lz4", memory_bytes=memory_kib << 10, rows_expected=expected)
    batches = []
    for k in range(10):
        batch = _batch(rng, {"lon": "noisy"} if k % 3 == 0 else {}, 4_000)  # codecs widen now and then
        t = pa.array(np.arange(k * 4_000, (k + 1) * 4_000, dtype=np.int64))  # the input's row number
        batch = batch.set_column(1, "t", t)
        batches.append(batch)
        parts.add_routed(parts.route(batch))
        assert parts.held_bytes <= parts.memory_bytes
    parts.close()
    # Each loaded table copied at once: the thread's buffers are reused by the next one.
    loaded = [pa.Table.from_pydict(load().to_pydict(), schema=KERNEL_SCHEMA) for load in parts.each()]
    assert not parts.held and parts.held_bytes == 0
    if memory_kib == 0:
        assert parts.spilled > 0 and len(loaded) == 8
    elif memory_kib == 1 << 20:
        assert parts.spilled == 0
    else:
        assert parts.spilled > 0 and parts.sinks and len(parts.sinks) < 8
    got = pa.concat_tables(loaded)
    want = pa.Table.from_batches(batches)
    assert _bits(got.sort_by("t")) == _bits(want)  # every row once, every value as it was
    vid, t = got["vehicle_id"].to_numpy(), got["t"].to_numpy()
    for v in np.unique(vid):
        assert np.all(np.diff(t[vid == v]) > 0)  # a vehicle's rows in the input's order
