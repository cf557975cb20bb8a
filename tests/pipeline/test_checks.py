"""What a run says about its inputs: refusals of empty or wholly set-aside pings, warnings about many set aside."""

from __future__ import annotations

from typing import Any

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.quarantine import IngestCounts
from truckcarbon.ingest.rules import IngestRules
from truckcarbon.ingest.vehicles import VehicleCounts
from truckcarbon.pipeline.checks import input_warnings, refuse_empty_input


def _pings(path: str, rows: int, kept: int, **quarantined: int) -> dict[str, Any]:
    return {"role": "pings", "path": path, "rows": rows, "kept": kept, "quarantined": quarantined}


def test_pings_without_a_row_or_with_every_row_set_aside_are_refused() -> None:
    rules = IngestRules()
    with pytest.raises(InputError, match=r"pings: /d/p\.csv holds no data row"):
        refuse_empty_input([_pings("/d/p.csv", 0, 0)], IngestCounts(), rules)
    counts = IngestCounts(rows=10, kept=0, quarantined={"bad_time": 7, "zero_fix": 3})
    entries = [_pings("/d/a/p1.csv", 5, 0), _pings("/d/a/p2.csv", 5, 0)]
    with pytest.raises(InputError) as err:
        refuse_empty_input(entries, counts, rules)
    text = str(err.value)
    assert "all 10 rows of 2 files under /d/a were set aside (bad_time 7, zero_fix 3)" in text
    assert "--ts-format" in text  # the advice for the most frequent reason
    refuse_empty_input(entries, IngestCounts(rows=10, kept=1), rules)  # one row kept: the run goes on


def test_a_file_with_more_than_the_share_set_aside_is_warned_about_in_its_entry() -> None:
    loud = _pings("/d/a.csv", 100, 90, zero_fix=10)
    quiet = _pings("/d/b.csv", 100, 96, zero_fix=4)
    vehicles = {"role": "vehicles", "path": "/d/v.csv"}
    counts = VehicleCounts(rows=4, kept=4, identical_duplicates=1, conflicting_ids=["A", "B"])
    warnings = input_warnings([loud, quiet, vehicles], counts, max_share=0.05)
    assert loud["warning"].startswith("10 of its 100 rows (10.0%, more than 5%) were set aside (zero_fix 10)")
    assert loud["warning"].endswith("; 90 kept")
    assert "warning" not in quiet  # 4% is below the share
    assert "1 repeated identical row(s) kept once" in vehicles["warning"]
    assert "2 id(s) given twice with different values (A, B)" in vehicles["warning"]
    assert warnings == [f"/d/a.csv: {loud['warning']}", f"/d/v.csv: {vehicles['warning']}"]
