"""What every command of the ``truckcarbon`` command line shares.

The consoles (results on standard output, progress, warnings and errors on
standard error), :func:`friendly`, the wrapper that turns truckcarbon's own errors
into a one-line message and an exit code instead of a traceback, the progress bar
columns, option types used by several commands (:data:`CrsOption`) and the
parsing of option values that several commands take (:func:`month_range`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

from truckcarbon.core.errors import InputError, TruckcarbonError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

# Exit codes: 0 done, 1 a check or a replay failed (the command's own verdict), 2 unusable input or a
# limit of the machine, 3 an internal error.
EXIT_INPUT = 2
EXIT_INTERNAL = 3

P = ParamSpec("P")
R = TypeVar("R")


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn truckcarbon's own errors (and the machine's: disk, permissions) into a one-line message and exit
    code 2; anything else is an internal error, exit code 3, its traceback shown with TRUCKCARBON_DEBUG=1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except TruckcarbonError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")  # "[emissions] ..." kept
            raise typer.Exit(code=EXIT_INPUT) from None
        except (OSError, MemoryError) as exc:  # the machine's limits: disk full, permissions, memory
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}")
            raise typer.Exit(code=EXIT_INPUT) from None
        except Exception as exc:
            # A defect of truckcarbon, not of the input: one line, the traceback on request.
            if os.environ.get("TRUCKCARBON_DEBUG"):
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                "(set TRUCKCARBON_DEBUG=1 for the traceback, and please report it)"
            )
            raise typer.Exit(code=EXIT_INTERNAL) from None

    return wrapper


def progress_columns(text: str = "{task.description}") -> list[ProgressColumn]:
    """The columns of every progress bar: spinner, ``text``, bar, done of total, time elapsed."""
    return [SpinnerColumn(), TextColumn(text), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]


def month_range(text: str) -> tuple[str, str]:
    """The START and END of a ``--months START:END`` value (each stripped; checked by the caller)."""
    if ":" not in text:
        raise InputError(f"--months {text!r}: use START:END, e.g. 2018-01:2023-12")
    start, end = text.split(":", 1)
    return start.strip(), end.strip()


CrsOption = Annotated[
    str,
    typer.Option(
        "--crs", help="Coordinate system of the points: wgs84 (terminals), gcj02 (Amap, Tencent) or bd09 (Baidu)."
    ),
]

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "CrsOption",
    "console",
    "err_console",
    "friendly",
    "month_range",
    "progress_columns",
]
