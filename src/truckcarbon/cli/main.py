"""The ``truckcarbon`` command: the Typer app and the command tree.

Each command lives in the module of its group (:mod:`.geo`, :mod:`.simulate`,
:mod:`.run`, :mod:`.analyze`, :mod:`.gateway`, :mod:`.demo`); what they share
(consoles, error handling, progress bars) is in :mod:`.common`. This module only
registers them, in the order ``truckcarbon --help`` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from truckcarbon import __version__
from truckcarbon.cli import analyze, demo, gateway, geo, run, simulate
from truckcarbon.cli.common import console

app = typer.Typer(
    help="truckcarbon: heavy-truck GPS telematics to a city-by-month CO2 inventory for China.",
    no_args_is_help=True,
    add_completion=False,
)
index_app = typer.Typer(help="Build and inspect the city locator index.", no_args_is_help=True)
gateway_app = typer.Typer(
    help="A JT/T 808 gateway (serves when no sub-command is given); `gateway terminals` manages the bindings.",
    invoke_without_command=True,
    no_args_is_help=False,
)
terminals_app = typer.Typer(
    help="Terminals bound to vehicles: list them; release one (a replaced or reset terminal) so it may register.",
    no_args_is_help=True,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"truckcarbon {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """truckcarbon command line."""


for command in (
    geo.cities,
    geo.locate,
    simulate.simulate,
    simulate.calibrate,
    run.run,
    run.quality,
    analyze.analyze,
    analyze.forecast,
    analyze.report,
    gateway.replay,
    demo.demo,
):
    app.command()(command)

index_app.command("build")(geo.index_build)
app.add_typer(index_app, name="index")

gateway_app.callback()(gateway.gateway)
terminals_app.command("list")(gateway.gateway_terminals_list)
terminals_app.command("release")(gateway.gateway_terminals_release)
gateway_app.add_typer(terminals_app, name="terminals")
app.add_typer(gateway_app, name="gateway")

__all__ = ["app"]
