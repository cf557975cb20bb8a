"""The lock of a run folder, its crash-safe rerun swap and the recovery rule (core/rerun.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truckcarbon.core import rerun
from truckcarbon.core.errors import BusyError, InputError
from truckcarbon.core.runfolder import RunFolder


def test_lock_and_recovery_rule(tmp_path: Path) -> None:
    run = tmp_path / "run"
    folder = RunFolder(run)
    with folder.lock(), pytest.raises(BusyError), RunFolder(run).lock():
        pass
    # A fallback swap killed between its renames: no RUN, the old run beside it.
    old = tmp_path / ".run.old-20260101T000000-0123abcd"
    old.mkdir()
    (old / "manifest.json").write_text("{}", encoding="utf-8")
    staging = tmp_path / ".run.staging-20260101T000000-0123abcd"
    staging.mkdir()
    RunFolder.open(run)
    assert (run / "manifest.json").exists() and not old.exists() and not staging.exists()
    # Beside an existing RUN, an old folder is the previous run of a completed swap: removed.
    old.mkdir()
    with folder.lock():
        folder.recover()
    assert not old.exists() and (run / "manifest.json").exists()


def test_a_shared_lock_refuses_a_run_and_names_its_pid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    busy = pytest.raises(BusyError, match="in use by another truckcarbon process")
    with RunFolder(run).lock(exclusive=False), RunFolder(run).lock(exclusive=False), busy, RunFolder(run).lock():
        pass
    busy = pytest.raises(BusyError, match=r"a run \(pid \d+\) is writing")
    with RunFolder(run).lock(), busy, RunFolder(run).lock(exclusive=False):
        pass
    with RunFolder(tmp_path / "absent").lock(exclusive=False):  # nothing to protect: no lock file made
        assert not (tmp_path / ".absent.lock").exists()


def _old_run(run: Path) -> None:
    (run / "inventory").mkdir(parents=True)
    (run / "inventory" / "2022-01.parquet").write_bytes(b"january")
    (run / "analysis").mkdir()
    (run / "analysis" / "note.csv").write_bytes(b"kept")
    (run / "quarantine").mkdir()
    (run / "quarantine" / "x.parquet").write_bytes(b"rewritten by every run")
    (run / "truckcarbon.duckdb").write_bytes(b"rebuilt by every run")
    (run / "inventory" / ".2022-02.parquet.0123.part").write_bytes(b"a temporary")
    (run / "manifest.json").write_text("{}", encoding="utf-8")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("exchange", [True, False], ids=["rename-exchange", "fallback"])
def test_a_rerun_stages_what_it_keeps_and_swaps_it_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:
        monkeypatch.setattr(rerun, "_exchange", lambda a, b: False)
    run = tmp_path / "run"
    _old_run(run)
    with RunFolder(run).rerun() as stage:
        assert stage.path.parent == tmp_path and stage.path.name.startswith(".run.staging-")
        assert stage.work.is_dir() and stage.work.name.startswith(".run.work-")
        # Kept: the other months and the derived outputs (hard links); not the database, quarantine, temporaries.
        assert _files(stage.path) == {
            "analysis/note.csv": b"kept",
            "inventory/2022-01.parquet": b"january",
            "manifest.json": b"{}",
        }
        assert (stage.path / "inventory" / "2022-01.parquet").stat().st_ino == (
            run / "inventory" / "2022-01.parquet"
        ).stat().st_ino
        (stage.path / "inventory" / "2022-02.parquet").write_bytes(b"february")
        (stage.path / "manifest.json").unlink()  # replaced, never written into: the old file keeps its bytes
        (stage.path / "manifest.json").write_text('{"runs": []}', encoding="utf-8")
        assert (run / "manifest.json").read_text(encoding="utf-8") == "{}"
        stage.commit()
    assert _files(run) == {
        "analysis/note.csv": b"kept",
        "inventory/2022-01.parquet": b"january",
        "inventory/2022-02.parquet": b"february",
        "manifest.json": b'{"runs": []}',
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]  # no staging, work or old folder


def test_a_failed_rerun_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _old_run(run)
    before = _files(run)
    with pytest.raises(RuntimeError, match="stopped"), RunFolder(run).rerun() as stage:
        (stage.path / "inventory" / "2022-02.parquet").write_bytes(b"half written")
        raise RuntimeError("stopped")
    assert _files(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]
    (run / "manifest.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON object"), RunFolder(run).rerun():
        pass  # an unreadable manifest stops the run before any work
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="is not a folder"), RunFolder(tmp_path / "file").rerun():
        pass


def test_a_fresh_folder_is_one_rename(tmp_path: Path) -> None:
    run = tmp_path / "new" / "run"
    with RunFolder(run).rerun() as stage:
        assert _files(stage.path) == {}
        (stage.path / "manifest.json").write_text(json.dumps({"months": {}}), encoding="utf-8")
        stage.commit()
    assert _files(run) == {"manifest.json": b'{"months": {}}'}


def test_only_names_a_run_makes_are_recovered(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "_work-1a2b3c4d").mkdir()
    token = "20260101T000000-0123abcd"
    for kind in ("staging", "work", "old"):
        (tmp_path / f".run.{kind}-{token}").mkdir()
    (tmp_path / ".run.staging-not-a-token").mkdir()
    (tmp_path / ".other.staging-20260101T000000-0123abcd").mkdir()  # another run folder's
    assert [p.name for p in rerun.stale(run, "old")] == [f".run.old-{token}"]
    rerun.recover(run)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.staging-20260101T000000-0123abcd",
        ".run.staging-not-a-token",
        "run",
    ]
    assert list(run.iterdir()) == []
