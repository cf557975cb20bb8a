"""The command tree: every command and group is listed, in order, and has its help; the version."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from truckcarbon import __version__
from truckcarbon.cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each

COMMANDS = ["cities", "locate", "simulate", "calibrate", "run", "quality", "analyze", "forecast", "report", "replay",
            "demo", "index", "gateway"]  # fmt: skip


def test_the_root_help_lists_every_command_in_order():
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "city-by-month CO2 inventory for China" in result.output
    lines = [line.strip("│ ").split(" ")[0] for line in result.output.splitlines()]
    assert [name for name in lines if name in COMMANDS] == COMMANDS


def test_no_arguments_show_the_help_and_version_prints_it():
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "cities" in result.output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"truckcarbon {__version__}"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "truckcarbon: heavy-truck GPS telematics"),
        (["cities"], "prefecture-level units"),
        (["locate"], "Add city_adcode and province_adcode"),
        (["index"], "Build and inspect the city locator index"),
        (["index", "build"], "Build the locator index into the cache"),
        (["simulate"], "Simulate a truck fleet"),
        (["calibrate"], "Published figures against a simulated world's truth"),
        (["run"], "Pings -> cleaned trajectories"),
        (["quality"], "data-quality report of a run"),
        (["analyze"], "Trends, seasonality, shocks"),
        (["forecast"], "Prophet forecast"),
        (["report"], "self-contained HTML"),
        (["gateway"], "A JT/T 808 gateway"),
        (["gateway", "terminals"], "Terminals bound to vehicles"),
        (["gateway", "terminals", "list"], "The terminals bound to vehicles"),
        (["gateway", "terminals", "release"], "Unbind terminals"),
        (["replay"], "Send a fleet's pings to a gateway"),
        (["demo"], "on a built-in example"),
    ],
)
def test_help_on_every_command(args, text):
    result = runner.invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and text in result.output
