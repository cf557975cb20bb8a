"""Commands on a run folder's results: ``analyze`` (trends, cities, clusters, rankings, ...),
``forecast`` (Prophet forecast, backtest, peak assessment) and ``report`` (HTML and PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from truckcarbon.cli.common import console, err_console, friendly, progress_columns


@friendly
def analyze(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder written by `truckcarbon run`.")],
    gdp: Annotated[
        Path | None, typer.Option(help="GDP table (city, year, gdp_100m_yuan in 亿元) for CO2 per GDP.")
    ] = None,
    top: Annotated[int, typer.Option(help="Cities per year in the ranking.")] = 10,
    group: Annotated[
        list[str] | None,
        typer.Option(help="A group of your own, NAME=ADCODE,ADCODE,... (repeat for more groups)."),
    ] = None,
    draws: Annotated[
        int, typer.Option(help="Monte Carlo draws of the 90% intervals (10-100000; 0: no intervals).")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the draws (the same seed, the same intervals).")] = 20240601,
) -> None:
    """Trends, seasonality, shocks, cities, clusters, standards, rankings, registration vs operating, and the
    90% intervals of the inventory (a Monte Carlo over factors, unknown loads, weights and unobserved km)."""
    from truckcarbon.analysis import analyze as run_analysis
    from truckcarbon.core.errors import InputError
    from truckcarbon.emissions.montecarlo import UncertaintySettings

    uncertainty = UncertaintySettings(draws=draws, seed=seed) if draws else None
    if uncertainty is not None:
        uncertainty.validate()

    groups: dict[str, list[int]] = {}
    for item in group or []:
        name, _, codes = item.partition("=")
        try:
            groups[name.strip()] = [int(c) for c in codes.split(",") if c.strip()]
        except ValueError:
            raise InputError(f"--group {item!r}: use NAME=ADCODE,ADCODE, e.g. hub=410100,410300") from None
        if not name.strip() or not groups[name.strip()]:
            raise InputError(f"--group {item!r}: use NAME=ADCODE,ADCODE, e.g. hub=410100,410300")
    with Progress(*progress_columns(), console=err_console, transient=True) as progress:
        task = progress.add_task("analysing", total=13 + 2 * bool(groups) + (1 + months(run_dir)) * bool(draws))
        summary = run_analysis(
            run_dir,
            gdp,
            top,
            progress=lambda name: progress.update(task, advance=1, description=name),
            groups=groups or None,
            uncertainty=uncertainty,
        )
    view = Table(title=f"analysis of {run_dir} ({summary.seconds:.1f} s)")
    view.add_column("table")
    view.add_column("rows", justify="right")
    for name, rows in summary.tables.items():
        view.add_row(name, f"{rows:,}")
    console.print(view)
    console.print(f"written to {summary.out} (Parquet and CSV)")
    for notice in summary.missing:
        err_console.print(f"[yellow]not in the run folder:[/] {notice}")


def months(run_dir: Path) -> int:
    """The run folder's activity months (the intervals' progress steps)."""
    return len(list((run_dir / "activity").glob("*.parquet")))


@friendly
def forecast(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder written by `truckcarbon run`.")],
    horizon: Annotated[int, typer.Option(help="Months ahead.")] = 36,
) -> None:
    """Prophet forecast with 80/95% intervals, baselines, rolling-origin backtest and peak assessment."""
    from truckcarbon.forecast import forecast_run

    with Progress(*progress_columns(), console=err_console, transient=True) as progress:
        task = progress.add_task("forecast", total=2)
        summary = forecast_run(
            run_dir, horizon, progress=lambda name: progress.update(task, advance=1, description=name)
        )
    peak = summary.peak
    share = peak.get("share_of_paths_peaked")
    console.print(
        f"peak year (history + forecast): [bold]{peak['peak_year']}[/]"
        f" ({'in the history' if peak['peak_in_history'] else 'in the forecast'}); "
        f"share of simulated paths that have already peaked: {share:.0%}"
        if share is not None
        else f"peak year: {peak['peak_year']}"
    )
    console.print(f"written to {summary.out} in {summary.seconds:.1f} s (forecast, backtest, peak.json)")
    for notice in summary.missing:
        err_console.print(f"[yellow]not in the run folder:[/] {notice}")


@friendly
def report(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder (with analysis/ and forecast/).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default RUN/report).")] = None,
    lang: Annotated[str, typer.Option(help="zh, en or both.")] = "both",
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF (needs Chromium).")] = True,
) -> None:
    """The report: figures, maps and tables as self-contained HTML (no network needed to view it) and PDF."""
    from truckcarbon.core.errors import InputError
    from truckcarbon.report import build_report
    from truckcarbon.report.i18n import LANGS

    langs = LANGS if lang == "both" else tuple(x for x in LANGS if x == lang)
    if not langs:
        raise InputError(f"--lang {lang!r}: use zh, en or both")
    with Progress(*progress_columns(), console=err_console, transient=True) as progress:
        progress.add_task("writing the report", total=None)
        summary = build_report(run_dir, out, langs, pdf=pdf)
    if summary.pdf_error:
        err_console.print(f"[yellow]PDF not made:[/] {summary.pdf_error}")
    for lg, path in summary.pdfs.items():
        console.print(f"report PDF ({lg}): [bold]{path.resolve()}[/]")
    for key, error in summary.sections.items():
        if error:
            err_console.print(f"[yellow]section {key} not made:[/] {error}")
    for key, notes in summary.notes.items():
        err_console.print(f"[yellow]section {key} made without:[/] {'; '.join(notes)}")
    for lg, path in summary.paths.items():
        console.print(f"report ({lg}): [bold]{path.resolve()}[/]")
