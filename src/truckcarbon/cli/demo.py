"""The ``demo`` command: simulate a small world, run every stage on it and print where the results are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from truckcarbon.cli.common import console, friendly, month_range


@friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo outputs.")] = Path("demo_out"),
    trucks: Annotated[int | None, typer.Option(help="Trucks of the demo world (default: the demo preset's).")] = None,
    months: Annotated[str | None, typer.Option(help="Months of the demo world, START:END.")] = None,
) -> None:
    """Run what truckcarbon can do so far on a built-in example and print where the results are."""
    from truckcarbon.demo import run_demo

    overrides: dict[str, object] = {"trucks": trucks}
    if months is not None:
        overrides["start_month"], overrides["end_month"] = month_range(months)
    summary_path = run_demo(out, console=console, **overrides)
    console.print(f"\n[bold green]demo summary:[/] {summary_path.resolve()}")
    for page in sorted((out / "report").glob("report.*.*")):
        console.print(f"[bold green]report:[/] {page.resolve()}")
