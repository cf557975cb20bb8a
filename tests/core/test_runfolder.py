"""RunFolder: the layout, the tolerant manifest accessors, the lock and the recovery rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truckcarbon.core.errors import BusyError, InputError
from truckcarbon.core.runfolder import OUTPUTS, Missing, RunFolder


def test_layout() -> None:
    folder = RunFolder(Path("r"))
    assert folder.inventory == Path("r/inventory") and folder.database == Path("r/truckcarbon.duckdb")
    assert folder.month_file("activity", "2022-03") == Path("r/activity/2022-03.parquet")
    assert {o.name for o in OUTPUTS} >= {"inventory", "activity", "quarantine", "analysis", "forecast", "report"}
    with pytest.raises(KeyError):
        folder.month_file("quarantine", "2022-03")
    with pytest.raises(KeyError):
        folder.output("nope")


def test_accessors_tolerate_missing_and_wrong_keys(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.months() == {} and folder.quality() is None and folder.inputs() == []
    assert folder.missing[0].source == "manifest.json" and folder.missing[0].why.startswith("absent")
    manifest = {
        "months": {"2022-01": {"run_id": "a", "vehicles_active": 2, "co2_t": 1.5, "fixes": {"kept": 3, "x": "y"}}},
        "runs": [{"inputs": [{"role": "pings", "path": "p", "hash": None}, 7], "quality": {"pings": {"read": "ten"}}}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    folder = RunFolder(tmp_path)
    with folder.collect() as missed:
        months = folder.months()
    assert months["2022-01"].fixes == {"kept": 3} and months["2022-01"].distance_km_unweighted is None
    assert Missing("manifest.json", "months.*.distance_km_unweighted", "absent in 1 of 1 months (2022-01)") in missed
    q = folder.quality()
    assert q is not None and q.vehicles is None and q.pings is not None and q.pings.read is None
    assert q.pings.quarantined == {} and q.trajectories == {}
    notes = {str(m) for m in folder.missing}
    assert "manifest.json runs[-1].quality.pings.read: not a whole number" in notes
    assert "manifest.json runs[-1].quality.vehicles: absent" in notes
    assert [i.path for i in folder.inputs()] == ["p"]
    assert "manifest.json runs[-1].inputs[1]: not a mapping" in {str(m) for m in folder.missing}
    assert folder.method_formula() is None
    # The writer side refuses an unreadable manifest instead of dropping the folder's history.
    (tmp_path / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON object"):
        RunFolder(tmp_path).manifest_data()
    assert RunFolder(tmp_path).months() == {}


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
