"""The quarantine's layout and the pings' reason codes and counts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from truckcarbon.ingest.quarantine import LINE_REASONS, REASONS, IngestCounts, quarantine_table


def test_reasons_are_distinct_and_lines_have_their_own() -> None:
    assert len(set(REASONS)) == len(REASONS) and REASONS[0] == "missing_vehicle_id"
    assert set(LINE_REASONS) == {"malformed_line", "unterminated_quote"} and not set(LINE_REASONS) & set(REASONS)


def test_the_quarantine_keeps_every_column_as_text_then_reason_file_and_row() -> None:
    rows = pa.table({"vehicle_id": [7, None], "lon": [116.5, float("nan")], "ts": ["t1", "t2"]})
    q = quarantine_table(rows, np.array([1, 3], np.int8), "in/p.csv", np.array([4, 9], np.int64))
    assert q.column_names == ["vehicle_id", "lon", "ts", "reason", "source_file", "source_row"]
    common = {"source_file": "in/p.csv"}
    assert q.to_pylist() == [
        {"vehicle_id": "7", "lon": "116.5", "ts": "t1", "reason": "bad_time", **common, "source_row": 4},
        {"vehicle_id": None, "lon": "nan", "ts": "t2", "reason": "bad_coordinates", **common, "source_row": 9},
    ]
    assert all(q.schema.field(c).type == pa.string() for c in ("vehicle_id", "lon", "ts", "reason", "source_file"))
    other = quarantine_table(rows.slice(0, 1), np.array([1]), "v.csv", np.array([1]), ("a", "b"))
    assert other["reason"].to_pylist() == ["b"]
    empty = quarantine_table(rows.slice(0, 0), np.array([], np.int8), "p.csv", np.array([], np.int64))
    assert empty.num_rows == 0 and empty.column_names == q.column_names


def test_counts_add_up_by_reason() -> None:
    a = IngestCounts(10, 7, {**dict.fromkeys(REASONS, 0), "bad_time": 3})
    b = IngestCounts(5, 4, {**dict.fromkeys(REASONS, 0), "bad_time": 1})
    b.quarantined["malformed_line"] = 0
    a.add(b)
    assert (a.rows, a.kept, a.quarantined["bad_time"], a.quarantined["malformed_line"]) == (15, 11, 4, 0)
    assert IngestCounts().quarantined == dict.fromkeys(REASONS, 0)
