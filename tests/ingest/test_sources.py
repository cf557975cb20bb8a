"""Input file hashes of the run manifest."""

from __future__ import annotations

import hashlib

import pytest

from truckcarbon.ingest.sources import bytes_digest, file_digest

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
