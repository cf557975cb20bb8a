"""The report's model of a run folder: everything the sections show, read once for every language.

:func:`load_report_data` reads the run folder through
:class:`~truckcarbon.core.runfolder.RunFolder` into a :class:`ReportData`: the rows of
every analysis and forecast table the sections use (or why a table could not be
read), ``forecast/peak.json``, the manifest's records (quality, months, inputs,
method formula), each with the notices its reading recorded, and the shipped tables
the report cites (fuel rates, emission factors, published national totals). The sections
(:mod:`truckcarbon.report.sections`) render from this model only; a table that could
not be read becomes the error of the sections that need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Generic, TypeVar

import pyarrow.csv as pacsv

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.core.manifest_read import InputEntry, MonthEntry, Quality
from truckcarbon.core.runfolder import Missing, OutputError, RunFolder

T = TypeVar("T")

Row = dict[str, Any]

# The tables the sections read, by output.
ANALYSIS_TABLES = (
    "national_annual",
    "national_monthly",
    "major_cities_monthly",
    "major_cities_yearly",
    "clusters_monthly",
    "standard_shares",
    "city_standard_period",
    "top_cities",
    "registration_vs_operating_province",
    "registration_vs_operating_city",
    "methods_national_monthly",
    "methods_city_annual",
    "pollutants_national_annual",
    "pollutants_city_annual",
    "national_intervals",
    "national_annual_intervals",
    "city_intervals",
)
FORECAST_TABLES = ("forecast", "backtest")


class SectionError(TruckcarbonError):
    """A section could not be made (its message says which input and why)."""


@dataclass(frozen=True)
class Noted(Generic[T]):
    """A record of the manifest and the notices (what it lacked) recorded while it was read."""

    value: T
    missing: tuple[Missing, ...] = ()


@dataclass(frozen=True)
class ReportData:
    """A run folder as the report shows it (see the module)."""

    path: Path  # the run folder as given (pages and hints name it)
    manifest_path: Path
    tables: dict[str, list[Row] | OutputError]  # "analysis/NAME" or "forecast/NAME" -> rows, or why not read
    peak_path: Path
    peak: Any  # forecast/peak.json parsed, or the OutputError saying why it could not be read
    quality: Noted[Quality | None]
    months: Noted[dict[str, MonthEntry]]
    inputs: Noted[list[InputEntry]]
    formula: Noted[str | None]
    simulated_world: bool
    fuel_rates: list[Row]  # data/factors/fuel_rates.csv
    emission_factors: list[Row]  # data/factors/emission_factors.csv
    published: list[Row]  # data/published_national_annual.csv

    def rows(self, output: str, name: str) -> list[Row]:
        """The rows of ``output/name.parquet``; :class:`SectionError` when it could not be read."""
        got = self.tables[f"{output}/{name}"]
        if isinstance(got, OutputError):
            raise SectionError(str(got))
        return got


def merged(*records: Noted[Any]) -> list[Missing]:
    """The notices of ``records``, each once, in order (as one reader reading them in turn would record them)."""
    out: list[Missing] = []
    for record in records:
        out += [m for m in record.missing if m not in out]
    return out


def load_report_data(folder: RunFolder) -> ReportData:
    """Read everything the report shows from ``folder`` (each table once)."""
    tables: dict[str, list[Row] | OutputError] = {}
    for output, names in (("analysis", ANALYSIS_TABLES), ("forecast", FORECAST_TABLES)):
        for name in names:
            try:
                tables[f"{output}/{name}"] = folder.read_table(output, name).to_pylist()
            except OutputError as exc:
                tables[f"{output}/{name}"] = exc
    try:
        peak: Any = folder.read_json("forecast", "peak")
    except OutputError as exc:
        peak = exc
    inputs = _noted(folder, folder.inputs)
    return ReportData(
        path=folder.path,
        manifest_path=folder.manifest_path,
        tables=tables,
        peak_path=folder.json_path("forecast", "peak"),
        peak=peak,
        quality=_noted(folder, folder.quality),
        months=_noted(folder, folder.months),
        inputs=inputs,
        formula=_noted(folder, folder.method_formula),
        simulated_world=_simulated_world(inputs.value),
        fuel_rates=_shipped("factors", "fuel_rates.csv"),
        emission_factors=_shipped("factors", "emission_factors.csv"),
        published=_shipped("published_national_annual.csv"),
    )


def _shipped(*parts: str) -> list[Row]:
    """The rows of a table shipped in ``truckcarbon.data``."""
    with files("truckcarbon.data").joinpath(*parts).open("rb") as f:
        rows: list[Row] = pacsv.read_csv(f).to_pylist()
    return rows


def _noted(folder: RunFolder, read: Callable[[], T]) -> Noted[T]:
    with folder.collect() as missed:
        value = read()
    return Noted(value, tuple(missed))


def _simulated_world(inputs: list[InputEntry]) -> bool:
    """True when the run's pings come from a world written by ``truckcarbon simulate``."""
    for item in inputs:
        for parent in list(Path(item.path or "").parents)[:4]:
            world = parent / "manifest.json"
            if world.exists():
                try:
                    if "simulator" in str(json.loads(world.read_text(encoding="utf-8")).get("generator", "")):
                        return True
                except json.JSONDecodeError:
                    continue
    return False


__all__ = ["ReportData", "SectionError", "load_report_data", "merged"]
