"""The benchmark scripts run (tiny sizes; their timings are never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # benchmark smoke tests


@pytest.mark.parametrize(
    "args",
    [
        ["bench_locate.py", "--points", "200000", "--baseline-points", "300", "--repeat", "1"],
        ["bench_simulate.py", "--trucks", "4", "--months", "2023-03:2023-03", "--workers", "1"],
        ["bench_pipeline.py", "--pings", "60000", "--naive-sample", "5000", "--data", "{tmp}", "--repeat", "2"],
        ["bench_forecast.py", "--months", "60", "--horizon", "12", "--paths", "100"],
        ["bench_engines.py", "--pings", "40000", "--data", "{tmp}"],
        ["bench_kernels.py", "--pings", "30000", "--data", "{tmp}", "--repeat", "2"],
        ["fuzz_gateway.py", "--seconds", "3", "--connections", "4"],
        ["bench_gateway.py", "--terminals", "50", "--reports", "5", "--batch", "10", "--workers", "2"],
    ],
    ids=["locate", "simulate", "pipeline", "forecast", "engines", "kernels", "fuzz-gateway", "gateway"],
)
def test_benchmark_runs(args, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio" in result.stdout


def test_the_spill_benchmark_runs(tmp_path):
    from truckcarbon.sim.config import SimConfig
    from truckcarbon.sim.run import simulate

    simulate(tmp_path / "world", SimConfig(trucks=4, start_month="2023-03", end_month="2023-03", interval_s=300))
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_spill.py"), "--world", str(tmp_path / "world"),
         "--rounds", "1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio" in result.stdout and "identical inventories: True" in result.stdout
