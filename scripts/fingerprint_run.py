"""Fingerprint a demo or run folder, to prove that a change leaves every output as it was.

    python scripts/fingerprint_run.py demo_out > before.txt
    # ... change the code, run `truckcarbon demo --out demo_out` again ...
    python scripts/fingerprint_run.py demo_out > after.txt
    diff before.txt after.txt

One line per file: its path in the folder and a digest. Parquet and CSV files are
digested by their bytes and, separately, by their table content with the folder's own path
replaced (so a byte difference
that is only metadata shows as such). JSON files (manifests) are digested after the keys
that change from run to run (run ids, clocks, durations, absolute paths) are removed.
The DuckDB file, lock files, PDFs and HTML (which carry the time they were made) are
digested by the tables or text they hold where that is stable, and otherwise listed only.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

VOLATILE = re.compile(r"(run_id|_at$|^at$|time|seconds|elapsed|started|finished|created|duration_s|wall|_s$|pid|host)")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _table_digest(table: pa.Table, root: str) -> str:
    for i, field in enumerate(table.schema):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            column = pc.replace_substring(table.column(i).cast(pa.string()), root, "<RUN>")
            table = table.set_column(i, field.name, column)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return _digest(sink.getvalue().to_pybytes())


def _clean(obj: Any, root: str) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v, root) for k, v in sorted(obj.items()) if not VOLATILE.search(k)}
    if isinstance(obj, list):
        return [_clean(v, root) for v in obj]
    if isinstance(obj, str):
        return obj.replace(root, "<RUN>")
    return obj


def fingerprint(folder: Path) -> list[str]:
    root = str(folder.resolve())
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if ".run.lock" in rel or rel.endswith((".lock", ".pdf")):
            lines.append(f"{rel} (listed)")
        elif path.suffix == ".parquet":
            lines.append(f"{rel} bytes={_digest(path.read_bytes())} table={_table_digest(pq.read_table(path), root)}")
        elif path.suffix == ".csv":
            table = pacsv.read_csv(path)
            lines.append(f"{rel} bytes={_digest(path.read_bytes())} table={_table_digest(table, root)}")
        elif path.suffix == ".json":
            data = _clean(json.loads(path.read_text(encoding="utf-8")), root)
            lines.append(f"{rel} json={_digest(json.dumps(data, sort_keys=True).encode())}")
        elif path.suffix == ".duckdb":
            lines.append(f"{rel} (listed)")
        else:
            text = path.read_bytes().replace(root.encode(), b"<RUN>")
            lines.append(f"{rel} bytes={_digest(text)}")
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python scripts/fingerprint_run.py RUN_OR_DEMO_FOLDER")
    print("\n".join(fingerprint(Path(sys.argv[1]))))
