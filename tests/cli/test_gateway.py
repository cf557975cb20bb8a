"""The JT/T 808 commands: gateway, its terminal bindings and replay; what each refuses."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def test_terminals_list_and_release_on_a_data_folder(tmp_path):
    result = runner.invoke(app, ["gateway", "terminals", "list", "--data", str(tmp_path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "0 terminals bound" in result.output and "phone" in result.output
    result = runner.invoke(app, ["gateway", "terminals", "release", "13912345678", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "no gateway data folder (no terminals.json): give the gateway's --data" in result.output
    (tmp_path / "terminals.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(app, ["gateway", "terminals", "release", "13912345678", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "release of 13912345678 queued" in result.output
    (queued,) = (tmp_path / "operator").glob("release-*.json")
    assert json.loads(queued.read_text(encoding="utf-8")) == {"phones": ["13912345678"]}
    result = runner.invoke(app, ["gateway", "terminals", "release", "139-1", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "give terminal phone numbers (up to 20 digits): 139-1" in result.output


def test_gateway_and_replay_refuse_missing_inputs(tmp_path):
    result = runner.invoke(app, ["gateway", "--port", "1"], env=WIDE)
    assert result.exit_code == 2 and "--data is required" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["gateway", "--data", str(tmp_path), "--load-sensing", "some"], env=WIDE)
    assert result.exit_code == 2 and "--load-sensing 'some': use listed, all or none" in result.output
    args = ["replay", "--pings", str(tmp_path / "p"), "--vehicles", str(tmp_path / "v"), "--to", "127.0.0.1:1"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 2 and "replay needs existing --pings and --vehicles" in result.output


def test_gateway_help():
    cases = [
        (["gateway"], "--max-frame"),
        (["gateway", "terminals", "release"], "Terminal phone numbers to release"),
        (["replay"], "--speedup"),
    ]
    for args, option in cases:
        result = runner.invoke(app, [*args, "--help"], env=WIDE)
        assert result.exit_code == 0 and option in result.output, args
