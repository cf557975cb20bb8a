"""What the commands share: errors become one line and an exit code (never a traceback), --months parsing."""

from __future__ import annotations

import errno

import pytest
import typer
from typer.testing import CliRunner

from truckcarbon.cli.common import EXIT_INPUT, EXIT_INTERNAL, friendly, month_range, progress_columns
from truckcarbon.core.errors import BusyError, InputError

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # help and tables on one line each


def _app(exc: BaseException | None) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @friendly
    def go(name: str = "x") -> None:
        """A command that fails with ``exc``."""
        if exc is not None:
            raise exc
        print(f"done {name}")

    return app


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (InputError("pings.csv: missing column(s) lat"), EXIT_INPUT, "error: pings.csv: missing column(s) lat"),
        (BusyError("run is locked by pid 7"), EXIT_INPUT, "error: run is locked by pid 7"),
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_INPUT, "error: OSError: [Errno 28] No space left"),
        (KeyError("oops"), EXIT_INTERNAL, "internal error: KeyError: 'oops' (set TRUCKCARBON_DEBUG=1"),
    ],
)
def test_errors_are_one_line_and_an_exit_code(monkeypatch, exc, code, message):
    monkeypatch.delenv("TRUCKCARBON_DEBUG", raising=False)
    result = runner.invoke(_app(exc), [], env=WIDE)
    assert (EXIT_INPUT, EXIT_INTERNAL) == (2, 3)
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output


def test_success_and_exits_pass_through_and_debug_shows_the_defect(monkeypatch):
    result = runner.invoke(_app(None), ["--name", "y"])
    assert result.exit_code == 0 and "done y" in result.output
    assert runner.invoke(_app(typer.Exit(code=1)), []).exit_code == 1  # a command's own verdict
    monkeypatch.setenv("TRUCKCARBON_DEBUG", "1")
    result = runner.invoke(_app(KeyError("oops")), [])
    assert isinstance(result.exception, KeyError)  # raised, for the traceback


def test_month_range():
    assert month_range("2018-01:2023-12") == ("2018-01", "2023-12")
    assert month_range(" 2022-05 : 2022-06 ") == ("2022-05", "2022-06")
    with pytest.raises(InputError, match=r"--months '2021-06': use START:END, e.g. 2018-01:2023-12"):
        month_range("2021-06")


def test_progress_columns_show_the_text_given():
    assert [type(c).__name__ for c in progress_columns()] == [
        "SpinnerColumn",
        "TextColumn",
        "BarColumn",
        "MofNCompleteColumn",
        "TimeElapsedColumn",
    ]
    assert progress_columns("locating")[1].text_format == "locating"


def test_every_error_class_of_ingest_and_cli_is_a_truckcarbon_error():
    import importlib
    import inspect
    import pkgutil

    import truckcarbon.cli
    import truckcarbon.ingest
    from truckcarbon.core.errors import TruckcarbonError

    modules = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for package in (truckcarbon.ingest, truckcarbon.cli)
        for info in pkgutil.iter_modules(package.__path__)
    ]
    assert {"truckcarbon.ingest.sources", "truckcarbon.cli.common"} <= {m.__name__ for m in modules}
    for module in modules:
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, BaseException):
                assert issubclass(obj, TruckcarbonError), f"{module.__name__}.{name}"
