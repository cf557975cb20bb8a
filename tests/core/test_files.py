"""Crash-safe writing: the target appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from truckcarbon.core.files import atomic_path, atomic_write_text


def test_a_written_file_appears_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(target, "城市 ok\n")
    assert target.read_text(encoding="utf-8") == "城市 ok\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_the_temporary_is_hidden_beside_the_target(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "t.parquet") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".t.parquet.") and tmp.name.endswith(".part")
        tmp.write_bytes(b"x")
    assert (tmp_path / "t.parquet").read_bytes() == b"x"
