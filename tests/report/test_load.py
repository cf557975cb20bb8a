"""The report's model: the run folder is read once for every language; what is missing is kept, not raised."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from truckcarbon.core import runfolder
from truckcarbon.core.runfolder import Missing, OutputError, RunFolder
from truckcarbon.report import build_report
from truckcarbon.report.load import ANALYSIS_TABLES, FORECAST_TABLES, Noted, SectionError, load_report_data, merged


def test_every_table_is_read_once_for_both_languages(
    small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: Counter[str] = Counter()
    read_table, parse_manifest = pq.read_table, runfolder.parse_manifest_file

    def counted_table(path: Any, *args: Any, **kwargs: Any) -> Any:
        reads[Path(path).relative_to(small_run).as_posix()] += 1
        return read_table(path, *args, **kwargs)

    def counted_manifest(path: Path) -> Any:
        reads[path.name] += 1
        return parse_manifest(path)

    monkeypatch.setattr(pq, "read_table", counted_table)
    monkeypatch.setattr(runfolder, "parse_manifest_file", counted_manifest)
    summary = build_report(small_run, tmp_path / "report", ("zh", "en"))
    assert set(summary.paths) == {"zh", "en"} and all(e is None for e in summary.sections.values())
    expected = {f"analysis/{n}.parquet" for n in ANALYSIS_TABLES} | {f"forecast/{n}.parquet" for n in FORECAST_TABLES}
    absent = {p for p in expected if not (small_run / p).exists()}  # an inventory without activity: no intervals
    assert absent == {f"analysis/{n}_intervals.parquet" for n in ("national", "national_annual", "city")}
    assert set(reads) == expected - absent | {"manifest.json"}
    assert set(reads.values()) == {1}, reads


def test_what_cannot_be_read_is_kept_with_the_reason(small_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "analysis" / "top_cities.parquet").unlink()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    del manifest["months"]
    del manifest["runs"][-1]["quality"]["pings"]
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    data = load_report_data(RunFolder(run))
    assert isinstance(data.tables["analysis/top_cities"], OutputError)
    with pytest.raises(SectionError, match=r"top_cities\.parquet is missing \(run `truckcarbon analyze --run"):
        data.rows("analysis", "top_cities")
    assert len(data.rows("analysis", "national_annual")) == 5  # 2019..2023
    assert data.peak["horizon_months"] == 12 and data.peak_path == run / "forecast" / "peak.json"
    assert data.quality.value is not None and data.quality.value.pings is None
    assert [str(m) for m in data.quality.missing] == ["manifest.json runs[-1].quality.pings: absent"]
    assert data.months.value == {} and [str(m) for m in data.months.missing] == ["manifest.json months: absent"]
    assert data.formula.value == "co2 = km x rate / 100 x ef" and data.formula.missing == ()
    assert [i.path for i in data.inputs.value] == ["p.parquet"] and not data.simulated_world
    assert {r["factor_id"] for r in data.emission_factors} and {r["year"] for r in data.published} >= {2018, 2023}


def test_merged_notices_keep_their_first_order_once() -> None:
    a, b, c = (Missing("manifest.json", k, "absent") for k in ("a", "b", "c"))
    assert merged(Noted(1, (a, b)), Noted(2, (b, c)), Noted(3)) == [a, b, c]
    assert merged() == []
