"""Simulation commands: ``simulate`` (a truck fleet's pings, vehicles and exact ground truth) and
``calibrate`` (a simulated world's truth against published figures)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from truckcarbon.cli.common import console, err_console, friendly, month_range, progress_columns


@friendly
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (pings/, vehicles.parquet, truth.parquet).")],
    preset: Annotated[str, typer.Option(help="Base configuration: demo (small, all years) or bench (large).")] = "demo",
    trucks: Annotated[int | None, typer.Option(help="Number of sampled trucks.")] = None,
    months: Annotated[str | None, typer.Option(help="Month range START:END, e.g. 2018-01:2023-12.")] = None,
    interval_s: Annotated[int | None, typer.Option("--interval-s", help="Seconds between fixes while driving.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same world).")] = None,
    clean: Annotated[bool, typer.Option("--clean", help="No GPS noise or other defects.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty output folder.")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (the data do not depend on it).")] = os.cpu_count()
    or 1,
    id_format: Annotated[
        str | None,
        typer.Option(help="Write vehicle ids as text, e.g. '0139{:08d}' (12-digit terminal phones); default integers."),
    ] = None,
    geometry: Annotated[
        str | None,
        typer.Option(
            help="straight (default: straight lines between fixes, i.i.d. noise) or road (curved roads at 1 s, "
            "lights and idling, receivers with correlated heavy-tailed noise and multipath)."
        ),
    ] = None,
    gps_noise_m: Annotated[
        float | None, typer.Option("--gps-noise-m", help="Position noise sd in metres (default 5).")
    ] = None,
    parked_interval_s: Annotated[
        int | None, typer.Option("--parked-interval-s", help="Seconds between fixes while parked.")
    ] = None,
) -> None:
    """Simulate a truck fleet: pings with defects, vehicles and exact ground truth."""
    from truckcarbon.sim.config import preset as make_preset
    from truckcarbon.sim.defects import DefectRates
    from truckcarbon.sim.run import simulate as run_simulation

    start, end = month_range(months) if months is not None else (None, None)
    config = make_preset(
        preset,
        trucks=trucks,
        start_month=start,
        end_month=end,
        interval_s=interval_s,
        seed=seed,
        defects=DefectRates(0, 0, 0, 0, 0, 0, 0) if clean else None,
        id_format=id_format,
        geometry=geometry,
        parked_interval_s=parked_interval_s,
    )
    if gps_noise_m is not None:
        config = replace(config, defects=replace(config.defects, gps_noise_m=gps_noise_m))
    config.validate()
    n_months = len(config.months())
    with Progress(*progress_columns(), console=err_console, transient=True) as progress:
        task = progress.add_task("simulating", total=n_months)

        def on_month(label: str, pings: int) -> None:
            progress.update(task, advance=1, description=f"simulated {label} ({pings:,} pings)")

        summary = run_simulation(out, config, overwrite=overwrite, workers=workers, on_month=on_month)
    console.print(
        f"wrote [bold]{out}[/]: {summary.trucks:,} trucks, {summary.months} months, {summary.pings:,} pings, "
        f"{summary.truth_rows:,} truth rows in {summary.seconds:.1f} s "
        f"({summary.pings / max(summary.seconds, 1e-9) / 1e6:.2f} M pings/s)"
    )


@friendly
def calibrate(
    check: Annotated[bool, typer.Option("--check", help="Compare the world with the published figures.")] = False,
    world: Annotated[
        Path | None, typer.Option(help="A folder written by `truckcarbon simulate` (default: the demo world, cached).")
    ] = None,
) -> None:
    """Published figures against a simulated world's truth; exit code 1 when a check fails."""
    from truckcarbon.core.errors import InputError
    from truckcarbon.sim.calibration import default_world, run_checks

    if not check:
        raise InputError("nothing to do: pass --check (automatic tuning of the world is not available)")
    if world is None:
        world = default_world(
            workers=os.cpu_count() or 1,
            on_simulate=lambda p: console.print(f"simulating the default world into {p} (once)"),
        )
    checks = run_checks(world)
    view = Table(title=f"published vs simulated ({world})")
    for col in ("check", "published", "simulated", ""):
        view.add_column(col)
    for c in checks:
        view.add_row(c.name, c.published, c.simulated, "[green]ok[/]" if c.ok else "[red]off[/]")
    console.print(view)
    passed = sum(c.ok for c in checks)
    console.print(f"{passed} of {len(checks)} checks within tolerance")
    if passed < len(checks):
        raise typer.Exit(code=1)
