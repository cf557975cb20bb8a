"""A run killed with SIGKILL leaves the old run byte for byte or the new one complete, never a mix.

The killed runs are subprocesses: ``TRUCKCARBON_FAULT=<point>`` makes one kill itself at a named
point (:mod:`truckcarbon.core.faults`), and a last test kills runs at random times. Every case starts
from a copy of the same old run (months 2022-01 and 2022-02, plus an analysis file) and reruns
2022-02 and 2022-03 into it (an incremental run: 2022-01 is kept).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.core import rerun
from truckcarbon.core.errors import BusyError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.pipeline import run_pipeline

OLD_MONTHS = ["2022-01", "2022-02"]
NEW_MONTHS = ["2022-02", "2022-03"]
ALL_MONTHS = ["2022-01", "2022-02", "2022-03"]

# The rerun as a subprocess; argv: pings, vehicles, out, "exchange" or "fallback" (no RENAME_EXCHANGE).
RERUN = f"""
import sys
from pathlib import Path
from truckcarbon.core import rerun
from truckcarbon.pipeline import run_pipeline
if sys.argv[4] == "fallback":
    rerun._exchange = lambda a, b: False
run_pipeline(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), months={NEW_MONTHS!r})
"""


def _inputs(root: Path) -> tuple[Path, Path]:
    """Three trucks driving in Beijing and Hebei three days of each month: one pings file per month."""
    for month in ALL_MONTHS:
        year, mo = map(int, month.split("-"))
        rows: dict[str, list[float]] = {"vehicle_id": [], "ts": [], "lon": [], "lat": [], "speed_kmh": []}
        for vehicle in (1, 2, 3):
            for day in (3, 10, 17):
                start = int(dt.datetime(year, mo, day, tzinfo=dt.UTC).timestamp())
                for k in range(60):
                    rows["vehicle_id"].append(vehicle)
                    rows["ts"].append(start + 30 * k)
                    rows["lon"].append(116.20 + 0.005 * k + 0.01 * vehicle)
                    rows["lat"].append(39.90 - 0.004 * k * (vehicle == 3))
                    rows["speed_kmh"].append(60.0)
        folder = root / "pings" / f"month={month}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table(rows), folder / "part-0.parquet")
    vehicles = root / "vehicles.csv"
    vehicles.write_text(
        "vehicle_id,plate,emission_standard\n1,京A11111,China V\n2,京A22222,China VI\n3,冀B33333,China IV\n",
        encoding="utf-8",
    )
    return root / "pings", vehicles


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crash")
    pings, vehicles = _inputs(root / "in")
    old = root / "old" / "run"
    run_pipeline(pings, vehicles, old, months=OLD_MONTHS)
    (old / "analysis").mkdir()
    (old / "analysis" / "note.csv").write_text("kept by every run\n", encoding="utf-8")
    new = root / "new" / "run"
    shutil.copytree(old, new)
    run_pipeline(pings, vehicles, new, months=NEW_MONTHS)
    return {"pings": pings, "vehicles": vehicles, "old": old, "new": new}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under ``folder``, by relative path."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = None if p.is_dir() else p.read_bytes()
    return out


def _manifest(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return data


def state(folder: Path, setup: dict[str, Path]) -> str:
    """``old`` (the old run byte for byte) or ``new`` (the rerun complete); fails on anything else."""
    if folder.is_dir() and snapshot(folder) == snapshot(setup["old"]):
        return "old"
    assert folder.is_dir(), f"{folder} is gone"
    manifest, old_manifest = _manifest(folder), _manifest(setup["old"])
    runs, old_runs = manifest["runs"], old_manifest["runs"]
    assert runs[: len(old_runs)] == old_runs and len(runs) > len(old_runs) and runs[-1]["months"] == NEW_MONTHS
    assert runs[-1]["run_id"] != old_runs[-1]["run_id"]
    assert sorted(manifest["months"]) == ALL_MONTHS
    for sub in ("inventory", "activity"):
        assert sorted(p.name for p in (folder / sub).iterdir()) == [f"{m}.parquet" for m in ALL_MONTHS]
        for m in ALL_MONTHS:
            got, want = pq.read_table(folder / sub / f"{m}.parquet"), pq.read_table(setup["new"] / sub / f"{m}.parquet")
            assert got.equals(want), (sub, m)
        # The month the rerun did not compute is the old run's file, untouched.
        assert (folder / sub / "2022-01.parquet").read_bytes() == (setup["old"] / sub / "2022-01.parquet").read_bytes()
    assert (folder / "analysis" / "note.csv").read_bytes() == (setup["old"] / "analysis" / "note.csv").read_bytes()
    with duckdb.connect(str(folder / "truckcarbon.duckdb"), read_only=True) as db:
        (n,) = db.execute("SELECT count(*) FROM inventory").fetchone()  # type: ignore[misc]
    assert n == pq.read_table(folder / "inventory").num_rows
    assert (folder / "quarantine").is_dir() and not list(folder.rglob("*.part"))
    return "new"


def leftovers(folder: Path) -> list[str]:
    """Staging, work and old folders beside ``folder`` and work folders inside it."""
    beside = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.") and p.is_dir()]
    inside = [p.name for p in folder.glob("_work-*")] if folder.is_dir() else []
    return beside + inside


def _killed_rerun(
    setup: dict[str, Path], out: Path, fault: str | None, swap: str = "exchange"
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TRUCKCARBON_FAULT": fault or ""}
    args = [sys.executable, "-c", RERUN, str(setup["pings"]), str(setup["vehicles"]), str(out), swap]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _fresh_copy(setup: dict[str, Path], tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(setup["old"], out)
    assert snapshot(out) == snapshot(setup["old"])
    return out


def _next_run_cleans_up(setup: dict[str, Path], out: Path) -> None:
    run_pipeline(setup["pings"], setup["vehicles"], out, months=NEW_MONTHS)
    assert state(out, setup) == "new"
    assert leftovers(out) == []


@pytest.mark.parametrize(
    ("fault", "swap", "expected"),
    [
        ("staged", "exchange", "old"),
        ("reading", "exchange", "old"),
        ("month_written", "exchange", "old"),
        ("database", "exchange", "old"),
        ("quarantine", "exchange", "old"),
        ("before_swap", "exchange", "old"),
        ("after_swap", "exchange", "new"),
        ("between_renames", "fallback", "old"),
        ("after_swap", "fallback", "new"),
    ],
)
def test_a_run_killed_at_a_named_point(
    setup: dict[str, Path], tmp_path: Path, fault: str, swap: str, expected: str
) -> None:
    out = _fresh_copy(setup, tmp_path)
    proc = _killed_rerun(setup, out, fault, swap)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    # A reader first applies the recovery rule (the fallback swap killed between its renames left no RUN).
    RunFolder.open(out)
    assert state(out, setup) == expected
    # The killed run could not clean up (but for the recovered fallback swap): the next run does.
    assert bool(leftovers(out)) == (fault != "between_renames")
    _next_run_cleans_up(setup, out)


@pytest.mark.slow
def test_runs_killed_at_random_times(setup: dict[str, Path], tmp_path: Path) -> None:
    # How long an uninterrupted rerun takes in a fresh process (it also must complete).
    out = _fresh_copy(setup, tmp_path / "timed")
    started = time.perf_counter()
    proc = _killed_rerun(setup, out, None)
    _, err = proc.communicate(timeout=120)
    took = time.perf_counter() - started
    assert proc.returncode == 0, err.decode()
    assert state(out, setup) == "new" and leftovers(out) == []
    rng = random.Random(20261202)
    seen = []
    for k in range(5):
        out = _fresh_copy(setup, tmp_path / f"k{k}")
        delay = rng.uniform(0.1, 1.05 * took)  # from the start-up to past the end
        proc = _killed_rerun(setup, out, None, swap=rng.choice(["exchange", "fallback"]))
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=120)
        RunFolder.open(out)
        seen.append((round(delay, 2), state(out, setup)))
        _next_run_cleans_up(setup, out)
    print(f"a rerun takes {took:.2f} s; killed after (s), state:", seen)


def test_a_fresh_folder_killed_before_the_swap_is_absent_and_after_it_complete(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "fresh" / "run"
    proc = _killed_rerun(setup, out, "before_swap")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    run_pipeline(setup["pings"], setup["vehicles"], out, months=NEW_MONTHS)
    assert leftovers(out) == [] and sorted(_manifest(out)["months"]) == NEW_MONTHS


def test_the_fallback_swap_without_rename_exchange(
    setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rerun, "_exchange", lambda a, b: False)
    out = _fresh_copy(setup, tmp_path)
    run_pipeline(setup["pings"], setup["vehicles"], out, months=NEW_MONTHS)
    assert state(out, setup) == "new" and leftovers(out) == []


def test_a_second_run_into_the_same_folder_is_refused(setup: dict[str, Path], tmp_path: Path) -> None:
    out = _fresh_copy(setup, tmp_path)
    before = snapshot(out)
    with RunFolder(out).lock():  # as a run holds it
        with pytest.raises(BusyError, match="in use by another truckcarbon process"):
            run_pipeline(setup["pings"], setup["vehicles"], out, months=NEW_MONTHS)
        args = ["run", "--pings", str(setup["pings"]), "--vehicles", str(setup["vehicles"]), "--out", str(out)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "in use by another truckcarbon process" in result.output
        # Commands writing into the folder wait for the run to finish too.
        result = CliRunner().invoke(app, ["analyze", "--run", str(out)])
        assert result.exit_code == 2 and f"pid {os.getpid()}" in result.output
    assert snapshot(out) == before and leftovers(out) == []


def test_stale_folders_of_killed_runs_are_removed_by_the_next_run(setup: dict[str, Path], tmp_path: Path) -> None:
    out = _fresh_copy(setup, tmp_path)
    token = "20260101T000000-0123abcd"
    (out / "_work-1a2b3c4d" / "activity").mkdir(parents=True)  # the work folder of an older version
    (out / "_work-1a2b3c4d" / "activity" / "part-00000.parquet").write_bytes(b"spill")
    for kind in ("staging", "work", "old"):
        (tmp_path / f".run.{kind}-{token}").mkdir()
        (tmp_path / f".run.{kind}-{token}" / "x").write_bytes(b"left by a killed run")
    other = tmp_path / ".run.staging-not-a-token"  # not a name a run makes: left alone
    other.mkdir()
    run_pipeline(setup["pings"], setup["vehicles"], out, months=NEW_MONTHS)
    assert state(out, setup) == "new"
    assert leftovers(out) == [other.name]
