"""The typed records of a manifest: what is parsed, what is noted as missing, the totals over months."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from truckcarbon.core.manifest_read import (
    MonthEntry,
    fix_totals,
    latest_run,
    parse_formula,
    parse_manifest_file,
    parse_months,
    parse_run,
)


class Notes:
    """A ``note`` callback that keeps every (key, why) it is given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, key: str, why: str) -> None:
        self.seen.append((key, why))


def _month(label: str, fixes: dict[str, int]) -> MonthEntry:
    return MonthEntry(label, "r", 1, 1.0, 0.0, 1.0, fixes)


def test_fix_totals_sum_each_outcome_over_the_months() -> None:
    months = {
        "2022-01": _month("2022-01", {"kept": 10, "duplicate": 2}),
        "2022-02": _month("2022-02", {"kept": 5, "jump": 1}),
        "2022-03": _month("2022-03", {}),
    }
    totals = fix_totals(months)
    assert totals == {"kept": 15, "duplicate": 2, "jump": 1}
    assert list(totals) == ["kept", "duplicate", "jump"]  # the order the outcomes first appear in
    assert fix_totals({}) == {}


def test_a_complete_run_entry_is_parsed_without_notices() -> None:
    run: dict[str, Any] = {
        "run_id": "r1",
        "months": ["2022-01"],
        "inputs": [{"role": "pings", "path": "p.parquet", "hash": "blake3:ab", "rows": 9, "kept": 8}],
        "quality": {
            "pings": {"read": 9, "kept": 8, "quarantined": {"bad_ts": 1}, "outside_months_asked": 0},
            "vehicles": {"read": 2, "kept": 2, "quarantined": {}},
            "trajectories": {"km": 12, "label": "text"},
        },
        "config": {"engine": "embedded"},
    }
    notes = Notes()
    entry = parse_run(run, notes)
    assert notes.seen == []
    assert entry.run_id == "r1" and entry.months == ["2022-01"] and entry.config == {"engine": "embedded"}
    assert entry.inputs[0].hash == "blake3:ab" and entry.inputs[0].rows == 9 and entry.inputs[0].kept == 8
    assert entry.quality is not None and entry.quality.pings is not None
    assert entry.quality.pings.quarantined == {"bad_ts": 1} and entry.quality.pings.other == {"outside_months_asked": 0}
    assert entry.quality.trajectories == {"km": 12.0}  # numbers only


def test_missing_and_mistyped_keys_are_noted_by_their_path() -> None:
    notes = Notes()
    manifest: dict[str, Any] = {"months": {"2022-01": {"co2_t": True, "fixes": {"kept": 2.0}}, "2022-02": 3}}
    months = parse_months(manifest, notes)
    assert list(months) == ["2022-01"] and months["2022-01"].co2_t is None  # a boolean is not a number
    assert months["2022-01"].fixes == {"kept": 2}
    assert ("months.2022-02", "not a mapping") in notes.seen
    assert ("months.*.run_id", "absent in 1 of 2 months (2022-01)") in notes.seen
    assert latest_run(manifest, notes) is None and ("runs", "absent") in notes.seen
    assert latest_run({"runs": []}, notes) is None and ("runs[-1]", "absent") in notes.seen
    assert parse_formula({"method": {"formula": 3}}, notes) is None
    assert ("method.formula", "not a string") in notes.seen


def test_the_manifest_file_is_absent_unreadable_or_an_object(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    assert parse_manifest_file(path) == (None, None)
    path.write_text("[1]", encoding="utf-8")
    assert parse_manifest_file(path) == (None, "not a JSON object")
    path.write_text("{", encoding="utf-8")
    data, why = parse_manifest_file(path)
    assert data is None and why is not None and why.startswith("not valid JSON")
    path.write_text('{"months": {}}', encoding="utf-8")
    assert parse_manifest_file(path) == ({"months": {}}, None)
