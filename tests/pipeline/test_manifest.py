"""The manifest a run writes last and the quality report read back from it, on hand-built counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import parse_month
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.ingest.quarantine import IngestCounts
from truckcarbon.ingest.vehicles import VehicleCounts
from truckcarbon.pipeline import PipelineConfig
from truckcarbon.pipeline.attribute import Tally
from truckcarbon.pipeline.manifest import new_run_id, quality_record, read_quality, write_manifest
from truckcarbon.pipeline.outputs import MonthTotals
from truckcarbon.trajectory.schema import GAP_BIN_SCHEMA


def _bins(month: str, rows: dict[str, tuple[int, float]]) -> pa.Table:
    """Segments by duration bin: (attributed segments, attributed km) per bin, nothing unobserved."""
    out = []
    for b, (n, km) in rows.items():
        out.append({"month": month, "gap_bin": b, "attributed_segments": n, "attributed_km": km})
        out[-1] |= {"unobserved_segments": 0, "unobserved_km": 0.0, "implausible_segments": 0, "implausible_km": 0.0}
    return pa.Table.from_pylist(out, schema=GAP_BIN_SCHEMA)


def _write(folder: RunFolder) -> dict[str, object]:
    previous = {"months": {"2022-01": {"run_id": "old", "fixes": {"kept": 1}}}, "runs": [{"run_id": "old"}]}
    tally = Tally(
        by_month={parse_month("2022-02"): np.array([5, 1, 0, 1, 0])},
        gap_bins=[_bins("2022-02", {"20min-1h": (1, 12.0), "<=20min": (40, 30.0)})],
    )
    ingest = IngestCounts(rows=9, kept=7, quarantined={"zero_fix": 2})
    vehicles = VehicleCounts(rows=2, kept=2, registration_from_plate=1)
    quality = quality_record(ingest, vehicles, 3, {"bridged_km": 1.25})
    totals = {"2022-02": MonthTotals(2, 42.0, 0.5, 0.1, 1, 3.0)}
    inputs = [{"role": "vehicles", "path": "v.csv", "hash": "blake3:00"}]
    write_manifest(folder, previous, "new", totals, tally, inputs, quality, PipelineConfig(), "embedded (DuckDB x)")
    data: dict[str, object] = json.loads(folder.manifest_path.read_text(encoding="utf-8"))
    return data


def test_the_manifest_adds_this_runs_months_and_entry_to_the_previous_ones(tmp_path: Path) -> None:
    manifest = _write(RunFolder(tmp_path))
    assert manifest["engine"] == "embedded (DuckDB x)"
    months = manifest["months"]
    assert isinstance(months, dict) and list(months) == ["2022-01", "2022-02"]  # the old month kept, in order
    feb = months["2022-02"]
    assert feb["run_id"] == "new" and feb["vehicles_active"] == 2 and feb["co2_t"] == 0.1
    assert feb["fixes"] == {"kept": 5, "duplicate": 1, "invalid": 0, "stuck": 1, "jump": 0}
    assert (feb["unobserved_gaps"], feb["unobserved_km_unweighted"]) == (1, 3.0)
    assert feb["segments_by_duration"]["20min-1h"]["attributed_km"] == 12.0
    runs = manifest["runs"]
    assert isinstance(runs, list) and [r["run_id"] for r in runs] == ["old", "new"]
    assert runs[-1]["months"] == ["2022-02"] and runs[-1]["config"]["threads"] == 2
    assert runs[-1]["quality"] == {
        "pings": {"read": 9, "kept": 7, "quarantined": {"zero_fix": 2}, "outside_months_asked": 3},
        "vehicles": {
            "read": 2,
            "kept": 2,
            "registration_from_plate": 1,
            "identical_duplicates": 0,
            "quarantined": VehicleCounts().quarantined,
        },
        "trajectories": {"bridged_km": 1.25},
    }
    factors = manifest["factor_tables"]
    assert isinstance(factors, dict) and all(v.startswith("blake3:") for v in factors.values())


def test_the_quality_report_reads_the_manifest_back(tmp_path: Path) -> None:
    _write(RunFolder(tmp_path))
    report = read_quality(tmp_path)
    rows = {r["month"]: r for r in report.fix_rows()}
    assert rows["2022-02"]["fixes"] == 7 and rows["2022-02"]["kept_share"] == pytest.approx(5 / 7)
    assert rows["2022-02"]["distance_km_unweighted"] == 42.0
    assert rows["2022-01"]["fixes"] == 1  # the old month, as written
    # Bins in their order (GAP_BIN_LABELS), not as written.
    assert [(r["bin"], r["attributed_segments"]) for r in report.duration_rows()] == [("<=20min", 40), ("20min-1h", 1)]
    assert report.quality is not None and report.quality.pings is not None and report.quality.pings.read == 9
    assert report.warnings() == []


def test_the_quality_report_of_a_folder_that_is_no_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is not a folder"):
        read_quality(tmp_path / "absent")
    with pytest.raises(InputError, match=re.escape("is not a run folder")):
        read_quality(tmp_path)


def test_run_ids_are_the_utc_time_and_a_random_suffix() -> None:
    first, second = new_run_id(), new_run_id()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", first) and first != second
