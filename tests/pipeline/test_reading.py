"""Pass 1 of the embedded engine: the time window of the fixes a run needs, sortedness hints, typed and text
files taking the same rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.months import parse_month
from truckcarbon.pipeline import run_pipeline
from truckcarbon.pipeline.reading import in_window, vehicle_sorted_hint, window_bounds

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _local_start(year: int, month: int) -> int:
    """UTC epoch seconds of a month's first instant in Asia/Shanghai."""
    return int(dt.datetime(year, month, 1, tzinfo=SHANGHAI).timestamp())


def test_the_window_is_the_months_widened_by_the_context_and_merged_when_they_touch() -> None:
    day = 86_400
    assert window_bounds(None, day) is None and in_window(np.array([0]), None) is None
    months = {parse_month("2022-01"), parse_month("2022-02"), parse_month("2022-05")}
    bounds = window_bounds(months, day)
    assert bounds is not None
    # January and February touch: one interval; May alone.
    expected = [
        _local_start(2022, 1) - day,
        _local_start(2022, 3) + day,
        _local_start(2022, 5) - day,
        _local_start(2022, 6) + day,
    ]
    assert bounds.tolist() == expected
    t = np.array([expected[0] - 1, expected[0], expected[1] - 1, expected[1], expected[2], expected[3] + 5])
    assert in_window(t, bounds).tolist() == [False, True, True, False, True, False]  # type: ignore[union-attr]
    # Two months a month apart with a context of 20 days: the windows overlap and merge.
    apart = window_bounds({parse_month("2022-01"), parse_month("2022-03")}, 20 * day)
    assert apart is not None and apart.tolist() == [_local_start(2022, 1) - 20 * day, _local_start(2022, 4) + 20 * day]


def _ids_file(path: Path, groups: list[list[int]]) -> Path:
    """A Parquet file with one row group per list of vehicle ids."""
    schema = pa.schema([("vehicle_id", pa.int64()), ("ts", pa.int64())])
    with pq.ParquetWriter(path, schema) as w:
        for ids in groups:
            w.write_table(pa.table({"vehicle_id": ids, "ts": list(range(len(ids)))}, schema=schema))
    return path


def test_the_sorted_hint_follows_the_row_groups_statistics_across_files(tmp_path: Path) -> None:
    a = _ids_file(tmp_path / "a.parquet", [[1, 1, 2], [2, 3]])
    b = _ids_file(tmp_path / "b.parquet", [[3, 5], [7, 9]])
    assert vehicle_sorted_hint([a, b])  # row groups overlap only at their ends
    assert not vehicle_sorted_hint([b, a])  # b's last vehicle is after a's first
    c = _ids_file(tmp_path / "c.parquet", [[4, 6], [5, 8]])
    assert not vehicle_sorted_hint([c])  # the second row group starts before the first ends
    assert not vehicle_sorted_hint([a], numeric_keys=False)  # integer ids, keys in text order: no hint
    csv = tmp_path / "p.csv"
    csv.write_text("vehicle_id,ts\n1,0\n", encoding="utf-8")
    assert not vehicle_sorted_hint([csv])


def test_typed_parquet_and_text_csv_take_the_same_rules(tmp_path: Path) -> None:
    rows = {
        "vehicle_id": [1, None, 1, 1, 1, 1, 1, 1, 9, 1],
        "ts": [1646092800 + 30 * i for i in range(10)],
        "lon": [116.30, 116.31, None, float("nan"), 0.0, 200.0, 116.33, 116.34, 116.35, 116.36],
        "lat": [39.90, 39.90, 39.90, 39.90, 0.0, 39.9, 39.90, 39.90, 39.90, 39.90],
        "speed_kmh": [60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 300.0, None, 60.0, float("nan")],
        "load_state": ["full", "full", "full", "full", "full", "full", "full", "FULL", "full", "loaded"],
        "fuel_level_l": [300.0, 300.0, 300.0, 300.0, 300.0, 300.0, 300.0, -1.0, 300.0, 300.0],
    }
    typed = pa.table(rows)
    typed = typed.set_column(1, "ts", pa.array([t * 1000 for t in rows["ts"]], pa.timestamp("ms", "UTC")))
    pq.write_table(typed, tmp_path / "p.parquet")
    pacsv.write_csv(typed, tmp_path / "p.csv")
    vehicles = tmp_path / "v.csv"
    vehicles.write_text("vehicle_id,plate,emission_standard\n1,京A11111,China V\n", encoding="utf-8")
    results = {}
    for name in ("p.parquet", "p.csv"):
        out = tmp_path / f"run-{name}"
        summary = run_pipeline(tmp_path / name, vehicles, out)
        q = pq.read_table(out / "quarantine" / "pings").sort_by("source_row")
        results[name] = (
            summary.quality["pings"],
            list(zip(q["source_row"].to_pylist(), q["reason"].to_pylist(), strict=True)),
        )
        # The original values travel with each row set aside, from the SQL rules or from the vehicle lookup.
        original = {r["source_row"]: r for r in q.to_pylist()}
        assert original[2]["vehicle_id"] is None and float(original[2]["lon"]) == 116.31
        assert original[3]["lon"] is None and float(original[3]["lat"]) == 39.9
        assert original[9]["vehicle_id"] == "9" and float(original[9]["lon"]) == 116.35
        assert original[10]["load_state"] == "loaded"
    assert results["p.parquet"] == results["p.csv"]
    counts, reasons = results["p.parquet"]
    assert reasons == [
        (2, "missing_vehicle_id"),
        (3, "bad_coordinates"),
        (4, "bad_coordinates"),
        (5, "zero_fix"),
        (6, "bad_coordinates"),
        (7, "bad_optional_value"),
        (8, "bad_optional_value"),
        (9, "unknown_vehicle"),
        (10, "bad_optional_value"),
    ]
    assert counts["kept"] == 1

    # The same rows as three files read by one query: each row set aside names its own file and row.
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, (lo, hi) in enumerate(((0, 4), (4, 7), (7, 10))):
        pq.write_table(typed.slice(lo, hi - lo), folder / f"part-{k}.parquet")
    summary = run_pipeline(folder, vehicles, tmp_path / "run-parts")
    q = pq.read_table(tmp_path / "run-parts" / "quarantine" / "pings").to_pylist()
    placed = sorted((Path(r["source_file"]).name, r["source_row"], r["reason"]) for r in q)
    first_rows = {"part-0.parquet": 0, "part-1.parquet": 4, "part-2.parquet": 7}
    assert sorted((first_rows[f] + row, reason) for f, row, reason in placed) == reasons
    assert {f for f, _, _ in placed} == set(first_rows)
    assert summary.quality["pings"] == counts
    original = {(Path(r["source_file"]).name, r["source_row"]): r for r in q}
    assert original[("part-2.parquet", 2)]["vehicle_id"] == "9"  # unknown vehicle: read again from its file
    assert original[("part-2.parquet", 3)]["load_state"] == "loaded"
