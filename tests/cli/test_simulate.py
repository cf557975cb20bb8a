"""The simulation commands: simulate (its options and refusals) and calibrate (its verdict as exit code)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.sim import calibration
from truckcarbon.sim.calibration import Check

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_simulate_command(tmp_path):
    out = tmp_path / "w"
    args = ["simulate", "--out", str(out), "--trucks", "5", "--months", "2021-06:2021-06", "--interval-s", "120"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 trucks" in result.output and (out / "manifest.json").exists()
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite", "--clean"]).exit_code == 0
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--months", "2021-06"])
    assert bad.exit_code == 2 and "START:END" in bad.output
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--trucks", "-3"])
    assert bad.exit_code == 2 and "positive" in bad.output
    bad = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--preset", "huge"])
    assert bad.exit_code == 2 and "unknown preset" in bad.output


def test_calibrate_check_on_a_world(tmp_path):
    out = tmp_path / "w"
    args = ["simulate", "--out", str(out), "--trucks", "30", "--months", "2022-05:2022-06", "--interval-s", "600"]
    assert runner.invoke(app, [*args, "--workers", "1"]).exit_code == 0
    checks = calibration.run_checks(out)  # the verdicts, independently of the command
    passed = sum(c.ok for c in checks)
    result = runner.invoke(app, ["calibrate", "--check", "--world", str(out)], env=WIDE)
    assert result.exit_code == (0 if passed == len(checks) else 1), result.output
    assert "China V share of 2022-06 CO2" in result.output and "checks within tolerance" in result.output
    assert f"{passed} of {len(checks)} checks within tolerance" in result.output
    nothing = runner.invoke(app, ["calibrate"])
    assert nothing.exit_code == 2 and "nothing to do: pass --check" in nothing.output
    missing = runner.invoke(app, ["calibrate", "--check", "--world", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "truckcarbon simulate" in missing.output
    assert "Traceback" not in missing.output + nothing.output


@pytest.mark.parametrize(
    ("oks", "code", "verdict"),
    [((True, True), 0, "2 of 2 checks within tolerance"), ((True, False), 1, "1 of 2 checks within tolerance")],
)
def test_calibrate_exits_1_exactly_when_a_check_is_off(tmp_path, monkeypatch, oks, code, verdict):
    checks = [Check(f"check {i}", "1.00", "1.01" if ok else "2.00", ok) for i, ok in enumerate(oks)]
    monkeypatch.setattr(calibration, "run_checks", lambda world: checks)
    result = runner.invoke(app, ["calibrate", "--check", "--world", str(tmp_path)], env=WIDE)
    assert result.exit_code == code, result.output
    assert verdict in result.output and ("off" in result.output) == (code == 1)


def test_simulate_help():
    result = runner.invoke(app, ["simulate", "--help"], env=WIDE)
    assert result.exit_code == 0 and "--months" in result.output and "--id-format" in result.output
