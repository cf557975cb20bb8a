"""``truckcarbon analyze``: every analysis of a run, written as Parquet and CSV under ``RUN/analysis/``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from truckcarbon.analysis.methods import method_tables
from truckcarbon.analysis.places import (
    MAJOR_CITIES,
    city_standard_period,
    cluster_groups,
    group_monthly,
    standard_shares,
    yearly_monthly_mean,
)
from truckcarbon.analysis.rankings import read_gdp, registration_vs_operating, sample_gdp_path, top_cities
from truckcarbon.analysis.tables import RunTables
from truckcarbon.analysis.trends import national_annual, national_monthly, seasonal_profile
from truckcarbon.analysis.uncertainty import inventory_intervals
from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.emissions.montecarlo import UncertaintySettings


@dataclass
class AnalysisSummary:
    """Tables written (name -> rows) and where; what of the run folder was missing (e.g. a month's file)."""

    out: Path
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)


def analyze(
    run: Path,
    gdp: Path | None = None,
    top_n: int = 10,
    progress: Callable[[str], None] | None = None,
    groups: Mapping[str, Sequence[int]] | None = None,
    uncertainty: UncertaintySettings | None = UncertaintySettings(),  # noqa: B008 (frozen: shared safely)
) -> AnalysisSummary:
    """Write every analysis of a run folder to ``run/analysis/``.

    Tables: ``national_annual``, ``national_monthly`` (YoY, New Year months,
    shocks), ``seasonal_profile``, ``major_cities_monthly`` and
    ``major_cities_yearly``, ``clusters_monthly`` and ``clusters_yearly``,
    ``standard_shares``, ``city_standard_period``, ``top_cities`` (with GDP
    when ``gdp`` is given), ``registration_vs_operating_province`` and
    ``_city``; with ``groups`` (id -> city adcodes) also ``groups_monthly`` and
    ``groups_yearly``; the methods side by side and the pollutants
    (:mod:`truckcarbon.analysis.methods`: ``methods_national_monthly``,
    ``methods_city_annual``, ``pollutants_national_annual``,
    ``pollutants_city_annual``); with ``uncertainty`` (None: left out) the 90% intervals
    ``inventory_intervals``, ``city_intervals``, ``national_intervals`` and
    ``national_annual_intervals``
    (:mod:`truckcarbon.analysis.uncertainty`); plus ``analysis.json`` listing them.
    """
    started = time.perf_counter()
    say = progress or (lambda _: None)
    folder = RunFolder.open(run)
    with folder.lock(exclusive=False), RunTables.of(folder) as tables:  # not while a run is replacing the folder
        return _analyze(folder, tables, gdp, top_n, say, groups, uncertainty, started)


def _analyze(
    folder: RunFolder,
    tables: RunTables,
    gdp: Path | None,
    top_n: int,
    say: Callable[[str], None],
    groups: Mapping[str, Sequence[int]] | None,
    uncertainty: UncertaintySettings | None,
    started: float,
) -> AnalysisSummary:
    gdp_table = read_gdp(gdp) if gdp is not None else None
    out = folder.analysis
    out.mkdir(parents=True, exist_ok=True)
    summary = AnalysisSummary(out)
    with folder.collect() as missed:
        folder.check_months("inventory")  # months the manifest names that the inventory lacks
    summary.missing = [str(m) for m in missed]
    major = group_monthly(tables, {k: [v] for k, v in MAJOR_CITIES.items()})
    clusters = group_monthly(tables, cluster_groups())
    makers: dict[str, Callable[[], pa.Table]] = {
        "national_annual": lambda: national_annual(tables),
        "national_monthly": lambda: national_monthly(tables),
        "seasonal_profile": lambda: seasonal_profile(tables),
        "major_cities_monthly": lambda: major,
        "major_cities_yearly": lambda: yearly_monthly_mean(tables, major),
        "clusters_monthly": lambda: clusters,
        "clusters_yearly": lambda: yearly_monthly_mean(tables, clusters),
        "standard_shares": lambda: standard_shares(tables),
        "city_standard_period": lambda: city_standard_period(tables),
        "top_cities": lambda: top_cities(tables, gdp_table, top_n),
        "registration_vs_operating_province": lambda: registration_vs_operating(tables, "province"),
        "registration_vs_operating_city": lambda: registration_vs_operating(tables, "city"),
    }
    if groups:
        own = group_monthly(tables, groups)
        makers["groups_monthly"] = lambda: own
        makers["groups_yearly"] = lambda: yearly_monthly_mean(tables, own)
    for name, make in makers.items():
        say(name)
        table = make()
        folder.write_analysis(name, table)
        summary.tables[name] = table.num_rows
    index: dict[str, object] = {"tables": summary.tables, "gdp": _source_name(gdp), "top_n": top_n}
    say("methods and pollutants")
    try:
        for name, table in method_tables(folder, tables).items():
            folder.write_analysis(name, table)
            summary.tables[name] = table.num_rows
    except InputError as exc:  # an inventory without the methods' columns (written by an older truckcarbon)
        summary.missing.append(f"methods and pollutants: {exc}")
    if uncertainty is not None and not folder.month_files("activity"):
        summary.missing.append(f"{folder.activity}: no activity rows, which the 90% intervals are drawn over")
    elif uncertainty is not None:
        intervals = inventory_intervals(folder, uncertainty, say)
        made = {"inventory": intervals.inventory, "city": intervals.city, "national": intervals.national,
                "national_annual": intervals.national_annual}  # fmt: skip
        for name, table in made.items():
            summary.tables[f"{name}_intervals"] = table.num_rows
        index["uncertainty"] = {
            "draws": uncertainty.draws, "seed": uncertainty.seed, "bootstrap": uncertainty.bootstrap,
            "unknown_full_share": list(uncertainty.unknown_full_share),
            "factor_errors": f"{intervals.gauge_trucks} gauge trucks" if intervals.gauge_trucks
            else f"log-normal, sigma {uncertainty.fallback_sigma}",
            "unobserved_km_unweighted": intervals.unobserved_km,
        }  # fmt: skip
    summary.seconds = time.perf_counter() - started
    folder.write_json("analysis", "analysis", index)
    return summary


def _source_name(gdp: Path | None) -> str | None:
    """How analysis.json names the GDP table: the bundled sample by its package path (the same on every
    machine), a user's table by the path given."""
    if gdp is None:
        return None
    return "truckcarbon/data/sample_gdp_2022.csv" if gdp == sample_gdp_path() else str(gdp)
