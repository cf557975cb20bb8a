"""Input files: discovery, formats by name, month folders, row estimates and the run manifest's digests."""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.files import bytes_digest, discover, estimated_rows, file_digest, file_kind, hive_month

# BLAKE3's published test vectors (github.com/BLAKE3-team/BLAKE3, test_vectors.json and README).
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


@pytest.mark.parametrize(("data", "want"), [(b"", EMPTY), (b"abc", ABC)])
def test_digests_are_blake3(tmp_path, data, want):
    f = tmp_path / "x.bin"
    f.write_bytes(data)
    assert file_digest(f) == bytes_digest(data) == f"blake3:{want}"


def test_a_file_read_in_pieces_hashes_as_a_whole(tmp_path):
    """Files larger than the read buffer (256 KiB) hash like their bytes at once; one changed byte shows."""
    data = bytearray(hashlib.shake_256(b"truckcarbon").digest(3_000_001))
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    whole = file_digest(f)
    assert whole == bytes_digest(bytes(data))
    data[2_000_000] ^= 1
    f.write_bytes(data)
    assert file_digest(f) != whole


def test_compressed_csv_is_discovered(tmp_path):
    (tmp_path / "a.csv.gz").write_bytes(b"")
    (tmp_path / "b.csv.zst").write_bytes(b"")
    (tmp_path / "c.csv.bz2").write_bytes(b"")
    assert [p.name for p in discover(tmp_path, "pings")] == ["a.csv.gz", "b.csv.zst"]
    with pytest.raises(InputError, match=re.escape(".csv, .csv.gz, .csv.zst")):
        discover(tmp_path / "c.csv.bz2", "pings")


def test_discover_walks_folders_in_path_order_and_skips_hidden_files(tmp_path):
    for rel in ("month=2022-02/b.parquet", "month=2022-01/z.CSV", "month=2022-01/.hidden.csv", "_SUCCESS.csv",
                "notes.txt", "x.PQ"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    got = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path, "pings")]
    assert got == ["month=2022-01/z.CSV", "month=2022-02/b.parquet", "x.PQ"]


def test_discover_names_what_is_missing(tmp_path):
    with pytest.raises(InputError, match=re.escape(f"pings: {tmp_path / 'nope'} does not exist")):
        discover(tmp_path / "nope", "pings")
    (tmp_path / "notes.txt").write_bytes(b"")
    with pytest.raises(
        InputError, match=re.escape(f"vehicles: no .parquet, .pq, .csv, .csv.gz or .csv.zst files under {tmp_path}")
    ):
        discover(tmp_path, "vehicles")


@pytest.mark.parametrize(
    ("name", "kind"),
    [("a.parquet", "parquet"), ("a.PQ", "parquet"), ("a.csv", "csv"), ("a.csv.GZ", "csv"), ("a.csv.zst", "csv"),
     ("a.gz", None), ("a.csv.bz2", None), ("parquet", None)],
)  # fmt: skip
def test_file_kind_by_name(tmp_path, name, kind):
    assert file_kind(tmp_path / name) == kind


def test_hive_month_is_the_innermost_month_folder(tmp_path):
    assert hive_month(tmp_path / "month=2022-03" / "part-0.parquet") == 2022 * 12 + 2
    assert hive_month(tmp_path / "month=2021-12" / "month=2022-01" / "p.csv") == 2022 * 12
    assert hive_month(tmp_path / "month=2022-3" / "p.csv") is None  # two-digit months only
    assert hive_month(tmp_path / "p.csv") is None


def test_estimated_rows_reads_parquet_footers_and_sizes_csv(tmp_path):
    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"a": list(range(1234))}), f)
    assert estimated_rows(f) == 1234
    c = tmp_path / "p.csv"
    c.write_bytes(b"x" * 4000)
    assert estimated_rows(c) == 100
    c.write_bytes(b"")
    assert estimated_rows(c) == 1  # never zero
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(InputError, match=re.escape(f"{bad}: not a readable Parquet file")):
        estimated_rows(bad)
