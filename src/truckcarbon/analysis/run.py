"""``truckcarbon analyze``: every analysis of a run, written as Parquet and CSV under ``RUN/analysis/``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.analysis.inventory import read_inventory
from truckcarbon.analysis.places import (
    MAJOR_CITIES,
    city_standard_period,
    cluster_groups,
    group_monthly,
    standard_shares,
    yearly_monthly_mean,
)
from truckcarbon.analysis.rankings import read_gdp, registration_vs_operating, top_cities
from truckcarbon.analysis.trends import national_annual, national_monthly, seasonal_profile
from truckcarbon.core.files import atomic_path, atomic_write_text
from truckcarbon.core.runfolder import RunFolder


@dataclass
class AnalysisSummary:
    """Tables written (name -> rows) and where; what of the run folder was missing (e.g. a month's file)."""

    out: Path
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)


def write_table(table: pa.Table, folder: Path, name: str) -> None:
    """``name.parquet`` and ``name.csv`` (UTF-8), each written atomically."""
    with atomic_path(folder / f"{name}.parquet") as tmp:
        pq.write_table(table, tmp)
    with atomic_path(folder / f"{name}.csv") as tmp:
        pacsv.write_csv(table, tmp)


def analyze(
    run: Path,
    gdp: Path | None = None,
    top_n: int = 10,
    progress: Callable[[str], None] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
) -> AnalysisSummary:
    """Write every analysis of a run folder to ``run/analysis/``.

    Tables: ``national_annual``, ``national_monthly`` (YoY, New Year months,
    shocks), ``seasonal_profile``, ``major_cities_monthly`` and
    ``major_cities_yearly``, ``clusters_monthly`` and ``clusters_yearly``,
    ``standard_shares``, ``city_standard_period``, ``top_cities`` (with GDP
    when ``gdp`` is given), ``registration_vs_operating_province`` and
    ``_city``; with ``groups`` (id -> city adcodes) also ``groups_monthly`` and
    ``groups_yearly``; plus ``analysis.json`` listing them.
    """
    started = time.perf_counter()
    say = progress or (lambda _: None)
    folder = RunFolder.open(run)
    with folder.lock(exclusive=False):  # not while a run is replacing the folder
        return _analyze(folder, gdp, top_n, say, groups, started)


def _analyze(
    folder: RunFolder,
    gdp: Path | None,
    top_n: int,
    say: Callable[[str], None],
    groups: Mapping[str, Sequence[int]] | None,
    started: float,
) -> AnalysisSummary:
    inventory = read_inventory(folder)
    gdp_table = read_gdp(gdp) if gdp is not None else None
    out = folder.analysis
    out.mkdir(parents=True, exist_ok=True)
    summary = AnalysisSummary(out)
    with folder.collect() as missed:
        folder.check_months("inventory")  # months the manifest names that the inventory lacks
    summary.missing = [str(m) for m in missed]
    major = group_monthly(inventory, {k: [v] for k, v in MAJOR_CITIES.items()})
    clusters = group_monthly(inventory, cluster_groups())
    tables: dict[str, Callable[[], pa.Table]] = {
        "national_annual": lambda: national_annual(inventory),
        "national_monthly": lambda: national_monthly(inventory),
        "seasonal_profile": lambda: seasonal_profile(inventory),
        "major_cities_monthly": lambda: major,
        "major_cities_yearly": lambda: yearly_monthly_mean(major),
        "clusters_monthly": lambda: clusters,
        "clusters_yearly": lambda: yearly_monthly_mean(clusters),
        "standard_shares": lambda: standard_shares(inventory),
        "city_standard_period": lambda: city_standard_period(inventory),
        "top_cities": lambda: top_cities(inventory, gdp_table, top_n),
        "registration_vs_operating_province": lambda: registration_vs_operating(inventory, "province"),
        "registration_vs_operating_city": lambda: registration_vs_operating(inventory, "city"),
    }
    if groups:
        own = group_monthly(inventory, groups)
        tables["groups_monthly"] = lambda: own
        tables["groups_yearly"] = lambda: yearly_monthly_mean(own)
    for name, make in tables.items():
        say(name)
        table = make()
        write_table(table, out, name)
        summary.tables[name] = table.num_rows
    summary.seconds = time.perf_counter() - started
    atomic_write_text(
        out / "analysis.json",
        json.dumps(
            {"tables": summary.tables, "gdp": str(gdp) if gdp else None, "top_n": top_n}, indent=1, ensure_ascii=False
        ),
    )
    return summary
