"""CSV test data shared by the ingest tests: a small Chinese export and a reader of its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from truckcarbon.ingest.sources import SourceOptions, read_batches

HEADER_ZH = "车辆ID,GPS时间,经度,纬度,速度"
ROWS_ZH = ["京A12345,2022-03-10 08:00:00,116.3,39.9,60", "冀B00001,2022-03-10 08:00:30,116.31,39.91,0"]
WANT_ZH = [
    {"vehicle_id": "京A12345", "ts": "2022-03-10 08:00:00", "lon": "116.3", "lat": "39.9", "speed_kmh": "60"},
    {"vehicle_id": "冀B00001", "ts": "2022-03-10 08:00:30", "lon": "116.31", "lat": "39.91", "speed_kmh": "0"},
]


def read_rows(path: Path, **options: object) -> tuple[list[dict[str, object]], list[int], list[tuple[int, str, str]]]:
    """Rows, their source rows and the lines that are not rows."""
    batches, bad = read_batches(path, options=SourceOptions(**options))  # type: ignore[arg-type]
    rows: list[dict[str, object]] = []
    source: list[int] = []
    for b in batches:
        rows += b.table.to_pylist()
        source += b.source_rows(np.arange(b.table.num_rows, dtype=np.int64)).tolist()
    return rows, source, sorted(bad.lines)


def zh_text() -> str:
    return HEADER_ZH + "\n" + "\n".join(ROWS_ZH) + "\n"
