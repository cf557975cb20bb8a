"""A run folder whose manifest lacks keys (or is of an older version, or is unreadable): every reader
renders what it can, says what is missing, and never stops with a traceback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from truckcarbon.cli.main import app


def _copy(small_run: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], Any] | None) -> Path:
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    shutil.rmtree(run / "report", ignore_errors=True)
    if edit is not None:
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        edit(manifest)
        (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # no traceback
    return result


def _drop_months_and_quality(m: dict[str, Any]) -> None:
    del m["months"]
    del m["runs"][-1]["quality"]


def test_report_renders_the_rest_and_names_the_missing_keys(small_run: Path, tmp_path: Path) -> None:
    run = _copy(small_run, tmp_path, _drop_months_and_quality)
    result = _invoke("report", "--run", str(run), "--no-pdf", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "section quality not made" in result.output
    assert "manifest.json months: absent" in result.output
    assert "manifest.json runs[-1].quality: absent" in result.output
    page = (run / "report" / "report.en.html").read_text(encoding="utf-8")
    assert "runs[-1].quality: absent" in page and page.count("This section could not be made") == 1
    assert "fig-national-annual" in page and "fig-forecast" in page  # the other sections are there


def test_a_section_made_without_some_keys_lists_them(small_run: Path, tmp_path: Path) -> None:
    def older(m: dict[str, Any]) -> None:
        del m["runs"][-1]["quality"]["pings"]
        m["months"] = {"2019-01": {"co2_t": 1.0}, "2019-02": {"co2_t": 2.0, "fixes": "many"}}  # no fix counts
        del m["method"]

    run = _copy(small_run, tmp_path, older)
    result = _invoke("report", "--run", str(run), "--no-pdf", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "section quality made without" in result.output
    assert "runs[-1].quality.pings: absent" in result.output
    assert "months.*.fixes: absent in 1 of 2 months (2019-01)" in result.output
    assert "section method made without: manifest.json method: absent" in result.output
    page = (run / "report" / "report.en.html").read_text(encoding="utf-8")
    assert "Incomplete: not in the run folder" in page and "This section could not be made" not in page
    # The quality section still has the vehicles' counts, without the pings' it lacks.
    assert "<td>vehicles kept / read</td><td>2 / 2</td>" in page and "<td>pings read</td>" not in page


def test_older_unreadable_or_absent_manifests(small_run: Path, tmp_path: Path) -> None:
    # A manifest of an older version: another hash key, no quality, no months.
    run = _copy(small_run, tmp_path / "older", None)
    (run / "manifest.json").write_text(
        json.dumps({"generator": "truckcarbon 0.0.1", "runs": [{"inputs": [{"path": "p.parquet", "sha256": "ab"}]}]}),
        encoding="utf-8",
    )
    result = _invoke("report", "--run", str(run), "--no-pdf", "--lang", "en")
    assert result.exit_code == 0, result.output
    assert "runs[-1].inputs[0].role: absent" in result.output and "section quality not made" in result.output
    # Not JSON at all.
    (run / "manifest.json").write_text("{not json", encoding="utf-8")
    result = _invoke("report", "--run", str(run), "--no-pdf", "--lang", "en")
    assert result.exit_code == 0 and "manifest.json: not valid JSON" in result.output
    result = _invoke("quality", "--run", str(run))
    assert result.exit_code == 2 and "not valid JSON" in result.output
    # No manifest: the sections from analysis/ and forecast/ still render.
    (run / "manifest.json").unlink()
    result = _invoke("report", "--run", str(run), "--no-pdf", "--lang", "en")
    assert result.exit_code == 0 and "section quality not made: manifest.json: absent" in result.output
    # Nothing to render at all.
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke("report", "--run", str(empty), "--no-pdf")
    assert result.exit_code == 2 and "is not a run folder" in result.output


def test_quality_command_without_keys(small_run: Path, tmp_path: Path) -> None:
    run = _copy(small_run, tmp_path / "a", lambda m: m.pop("months"))
    result = _invoke("quality", "--run", str(run))
    assert result.exit_code == 0, result.output
    assert "pings: read 10, kept 9" in result.output and "zero_fix: 1" in result.output
    assert "not in the run folder: manifest.json months: absent" in result.output
    run = _copy(small_run, tmp_path / "b", lambda m: m["runs"][-1]["quality"]["pings"].pop("read"))
    result = _invoke("quality", "--run", str(run))
    assert result.exit_code == 0 and "pings: read ?, kept 9" in result.output
    assert "runs[-1].quality.pings.read: absent" in result.output
    run = _copy(small_run, tmp_path / "c", _drop_months_and_quality)
    result = _invoke("quality", "--run", str(run))
    assert result.exit_code == 2 and "holds no quality record" in result.output
    (run / "manifest.json").unlink()
    result = _invoke("quality", "--run", str(run))
    assert result.exit_code == 2 and "is not a run folder" in result.output


def test_analyze_and_forecast_without_keys(small_run: Path, tmp_path: Path) -> None:
    run = _copy(small_run, tmp_path, _drop_months_and_quality)
    result = _invoke("analyze", "--run", str(run))
    assert result.exit_code == 0, result.output
    assert "manifest.json months: absent" in result.output
    result = _invoke("forecast", "--run", str(run), "--horizon", "12")
    assert result.exit_code == 0, result.output
    assert "peak year" in result.output
    # The manifest names a month whose inventory file is gone: analyze says so and analyses the rest.
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["months"] = {"2023-12": {"vehicles_active": 3}, "2024-01": {"vehicles_active": 3}}
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = _invoke("analyze", "--run", str(run))
    assert result.exit_code == 0, result.output
    assert "inventory/2024-01.parquet: absent (the manifest names the month)" in result.output
    assert "2023-12.parquet" not in result.output
