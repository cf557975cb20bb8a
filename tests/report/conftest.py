"""A small run with analysis and forecast outputs, and hand-made report models, shared by the report tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.analysis import analyze
from truckcarbon.core.runfolder import OutputError
from truckcarbon.forecast import forecast_run
from truckcarbon.forecast.models import future_months
from truckcarbon.report.load import Noted, ReportData

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
                "vehicles": [1] * len(rows), "distance_km": [1.0] * len(rows),
                "fuel_l": [r[5] * 1e4 / 2.6765 for r in rows],
                "co2_t": [r[5] * 1e4 for r in rows], "co2_t_unweighted": [r[5] for r in rows],
                # each method's litres (report's the inventory's) and the pollutants, from the same CO2
                "fuel_l_report": [r[5] * 1e4 / 2.6765 for r in rows],
                "fuel_l_copert": [r[5] * 1e4 / 2.6765 * 0.97 for r in rows],
                "fuel_l_measured": [r[5] * 1e4 / 2.6765 * 1.02 for r in rows],
                "nox_t": [r[5] * 30 for r in rows], "pm25_t": [r[5] * 0.5 for r in rows],
                "co_t": [r[5] * 8 for r in rows], "hc_t": [r[5] * 1 for r in rows],
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


@pytest.fixture
def make_data(tmp_path: Path) -> Callable[..., ReportData]:
    """``make_data(**fields)``: a report model of an empty run folder, with ``fields`` replaced."""
    run = tmp_path / "run"

    def make(**fields: Any) -> ReportData:
        base: dict[str, Any] = {
            "path": run,
            "manifest_path": run / "manifest.json",
            "tables": {},
            "peak_path": run / "forecast" / "peak.json",
            "peak": OutputError("peak.json is missing", "forecast/peak.json", "absent"),
            "quality": Noted(None),
            "months": Noted({}),
            "inputs": Noted([]),
            "formula": Noted(None),
            "simulated_world": False,
            "fuel_rates": [],
            "emission_factors": [],
            "published": [],
        }
        return ReportData(**{**base, **fields})

    return make
