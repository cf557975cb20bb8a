"""Input files: which files an input is, their format, their month folder and their digests.

A pings or vehicles input is one file or a folder (searched recursively, e.g. a
``month=YYYY-MM`` partitioned dataset) of Parquet (``.parquet``, ``.pq``) and CSV
(``.csv``, ``.csv.gz``, ``.csv.zst``) files; :func:`discover` lists them (files
whose names start with ``.`` or ``_`` are left out) and :func:`file_kind` tells
their format by name. :func:`file_digest` and :func:`bytes_digest` give the
BLAKE3 digests the run manifest records; :func:`estimated_rows` sizes a file
for progress bars and planning without reading its data.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import blake3
import pyarrow as pa
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".csv.zst")
_HIVE_MONTH = re.compile(r"month=(\d{4})-(\d{2})")
DIGEST_PREFIX = "blake3:"


def file_kind(path: Path) -> str | None:
    """``"parquet"`` or ``"csv"`` by the file's name (see :data:`PARQUET`, :data:`CSV`), else None."""
    name = path.name.lower()
    if name.endswith(PARQUET):
        return "parquet"
    if name.endswith(CSV):
        return "csv"
    return None


def discover(path: Path, what: str) -> list[Path]:
    """The data files of an input, sorted by path; a clear error when there are none."""
    if not path.exists():
        raise InputError(f"{what}: {path} does not exist")
    if path.is_file():
        if file_kind(path) is None:
            raise InputError(
                f"{what}: {path} is neither Parquet (.parquet, .pq) nor CSV (.csv, .csv.gz, .csv.zst); "
                "rename it if it is one of them"
            )
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and file_kind(p) and not p.name.startswith((".", "_")))
    if not files:
        raise InputError(f"{what}: no .parquet, .pq, .csv, .csv.gz or .csv.zst files under {path}")
    return files


def hive_month(path: Path) -> int | None:
    """Month number of a ``month=YYYY-MM`` folder in the path, if any."""
    m = None
    for part in path.parts:
        hit = _HIVE_MONTH.fullmatch(part)
        if hit:
            m = int(hit.group(1)) * 12 + int(hit.group(2)) - 1
    return m


def file_digest(path: Path) -> str:
    """``blake3:<hex>`` of a file's bytes (BLAKE3, 256 bits).

    A cryptographic hash like SHA-256, at about twice its speed on inputs of
    gigabytes (the manifest hashes every input file of a run).
    """
    with path.open("rb") as f:
        # blake3's stubs declare digest(length=...), not hashlib's protocol; the object is a hashlib-style hash.
        return DIGEST_PREFIX + hashlib.file_digest(f, blake3.blake3).hexdigest()  # type: ignore[arg-type]


def bytes_digest(data: bytes) -> str:
    """``blake3:<hex>`` of ``data`` (see :func:`file_digest`)."""
    return DIGEST_PREFIX + blake3.blake3(data).hexdigest()


def estimated_rows(path: Path) -> int:
    """Rows of a Parquet file (from its footer) or an estimate for CSV (bytes / 40)."""
    if file_kind(path) == "parquet":
        try:
            return int(pq.read_metadata(path).num_rows)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}); re-export or remove it") from None
    return max(1, path.stat().st_size // 40)


__all__ = [
    "CSV",
    "DIGEST_PREFIX",
    "PARQUET",
    "bytes_digest",
    "discover",
    "estimated_rows",
    "file_digest",
    "file_kind",
    "hive_month",
]
