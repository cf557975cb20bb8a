"""The built-in demo: what ``make demo`` runs.

It grows with the system. Today it

1. builds the city locator index, drives a truck along the Beijing-Guangzhou
   corridor (straight legs between provincial capitals, a WGS-84 fix every 30 s
   at 80 km/h), locates every fix, splits every ping-to-ping segment at city
   borders, and writes the kilometres per city;
2. simulates the demo world (preset ``demo``: 2018-01..2023-12) and summarises
   its ground truth: fleet kilometres per year (expanded by the weights) and the
   published figures against the world (:mod:`truckcarbon.sim.calibration`).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console

from truckcarbon.core.files import atomic_path, atomic_write_text
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.geo.locator import CityLocator
from truckcarbon.geo.reference import cities

# WGS-84 waypoints: Beijing, Shijiazhuang, Zhengzhou, Wuhan, Changsha, Guangzhou (city centres).
CORRIDOR = [
    (116.397, 39.909),
    (114.515, 38.042),
    (113.625, 34.747),
    (114.305, 30.593),
    (112.939, 28.228),
    (113.264, 23.129),
]
SPEED_KMH = 80.0
INTERVAL_S = 30.0


def corridor_pings() -> tuple[np.ndarray, np.ndarray]:
    """Fixes along the corridor's straight legs, one per ``INTERVAL_S`` at ``SPEED_KMH``."""
    from truckcarbon.geo.distance import haversine_km

    step_km = SPEED_KMH * INTERVAL_S / 3600.0
    lons, lats = [], []
    for (x0, y0), (x1, y1) in itertools.pairwise(CORRIDOR):
        n = max(1, int(np.ceil(haversine_km(x0, y0, x1, y1) / step_km)))
        t = np.arange(n) / n
        lons.append(x0 + (x1 - x0) * t)
        lats.append(y0 + (y1 - y0) * t)
    lons.append(np.array([CORRIDOR[-1][0]]))
    lats.append(np.array([CORRIDOR[-1][1]]))
    return np.concatenate(lons), np.concatenate(lats)


def run_demo(out: Path, console: Console | None = None, **world_overrides: object) -> Path:
    """Run the demo into ``out`` and return the path of its summary.

    ``world_overrides`` replace fields of the ``demo`` simulation preset (e.g.
    ``trucks=10`` for a quick run).
    """
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    console.print("[bold]1/8[/] city locator index (built once, then cached)")
    locator = CityLocator("wgs84", progress=True)
    console.print(f"     ready in {time.perf_counter() - t0:.1f} s, {locator.nbytes / 2**20:.0f} MiB")

    console.print("[bold]2/8[/] a truck on the Beijing-Guangzhou corridor")
    lon, lat = corridor_pings()
    codes = locator.locate(lon, lat)
    pings = pa.table({"seq": np.arange(lon.size), "lon": lon, "lat": lat, "city_adcode": codes})
    with atomic_path(out / "corridor_pings.parquet") as tmp:
        pq.write_table(pings, tmp)

    console.print("[bold]3/8[/] kilometres per city from border-exact segment splits")
    split = locator.split_segments(lon[:-1], lat[:-1], lon[1:], lat[1:])
    per = pa.table({"city_adcode": split.city_adcode, "distance_km": split.distance_km})
    per = per.group_by("city_adcode").aggregate([("distance_km", "sum")]).rename_columns(["city_adcode", "distance_km"])
    names = cities().select(["city_adcode", "name_zh", "name_en", "province_name_zh"])
    per = per.join(names, "city_adcode").sort_by([("distance_km", "descending")])
    per = per.set_column(per.schema.get_field_index("distance_km"), "distance_km", pc.round(per["distance_km"], 3))
    with atomic_path(out / "km_by_city.csv") as tmp:
        pacsv.write_csv(per, tmp)

    total = float(np.sum(split.distance_km))
    lines = [
        "# truckcarbon demo",
        "",
        f"A truck drives Beijing -> Guangzhou: {lon.size:,} WGS-84 fixes, {total:,.1f} km, "
        f"through {per.num_rows} prefecture-level cities.",
        "",
        "| city | 城市 | province | km |",
        "|---|---|---|---:|",
    ]
    for row in per.to_pylist():
        lines.append(f"| {row['name_en']} | {row['name_zh']} | {row['province_name_zh']} | {row['distance_km']:.1f} |")
    lines += ["", "Files: `corridor_pings.parquet` (fixes with city), `km_by_city.csv`."]
    console.print(f"     {total:,.1f} km in {per.num_rows} cities")

    console.print("[bold]4/8[/] the simulated demo world (pings, vehicles, ground truth)")
    lines += simulate_demo_world(out / "world", console, **world_overrides)
    console.print("[bold]5/8[/] the accounting pipeline on the demo world (pings -> inventory)")
    lines += run_pipeline_on_world(out / "world", out / "run", console)
    console.print("[bold]6/8[/] analyses of the inventory (trends, shocks, cities, clusters, rankings, exports)")
    lines += analyse_run(out / "run", console)
    console.print("[bold]7/8[/] forecast of the national series (Prophet, baselines, backtest, peak)")
    lines += forecast_demo(out / "run", console)
    console.print("[bold]8/8[/] the report (HTML, Chinese and English, offline)")
    from truckcarbon.report import build_report

    report = build_report(out / "run", out / "report", pdf=True)
    made = sum(e is None for e in report.sections.values())
    console.print(f"     {made} of {len(report.sections)} sections in {report.seconds:.1f} s")
    if report.pdf_error:
        console.print(f"     PDF not made: {report.pdf_error}")
    files_made = [*report.paths.items(), *report.pdfs.items()]
    lines += ["", "## Report", "", *[f"- {lg}: `{p.relative_to(out)}`" for lg, p in files_made]]
    summary = out / "summary.md"
    atomic_write_text(summary, "\n".join(lines) + "\n")
    console.print(f"     done in {time.perf_counter() - t0:.1f} s")
    return summary


def simulate_demo_world(world_dir: Path, console: Console, **overrides: object) -> list[str]:
    """Simulate the demo preset into ``world_dir`` and return Markdown lines summarising its truth."""
    from truckcarbon.sim.calibration import run_checks
    from truckcarbon.sim.config import preset
    from truckcarbon.sim.run import simulate

    config = preset("demo", **overrides)
    summary = simulate(world_dir, config, overwrite=True, workers=os.cpu_count() or 1)
    console.print(
        f"     {summary.trucks} trucks, {summary.months} months, {summary.pings:,} pings in {summary.seconds:.0f} s"
    )
    truth = pq.read_table(world_dir / "truth.parquet")
    vehicles = pq.read_table(world_dir / "vehicles.parquet", columns=["vehicle_id", "weight"])
    t = truth.join(vehicles, "vehicle_id")
    km_w = pc.multiply(t["distance_km"], t["weight"])
    t = t.append_column("fleet_km", km_w).append_column("year", pc.utf8_slice_codeunits(t["month"], 0, 4))
    by_year = t.group_by("year").aggregate([("fleet_km", "sum")]).sort_by("year")
    lines = [
        "",
        "## The simulated demo world",
        "",
        f"{summary.trucks} sampled trucks standing for the national diesel heavy fleet, {summary.months} months, "
        f"{summary.pings:,} pings with defects (`world/pings/`), exact truth in `world/truth.parquet`.",
        "",
        "| year | fleet distance (10^9 km, expanded) |",
        "|---|---:|",
    ]
    for year, km in zip(by_year["year"].to_pylist(), by_year["fleet_km_sum"].to_pylist(), strict=True):
        lines.append(f"| {year} | {km / 1e9:.1f} |")
    checks = run_checks(world_dir)
    lines += ["", "| published figure | published | this world | within tolerance |", "|---|---:|---:|:---:|"]
    lines += [f"| {c.name} | {c.published} | {c.simulated} | {'yes' if c.ok else 'no'} |" for c in checks]
    passed = sum(c.ok for c in checks)
    lines += ["", f"{passed} of {len(checks)} published figures within tolerance (`truckcarbon calibrate --check`)."]
    console.print(f"     {passed} of {len(checks)} published figures within tolerance")
    return lines


def run_pipeline_on_world(world_dir: Path, run_dir: Path, console: Console) -> list[str]:
    """Run the pipeline on a simulated world and return Markdown lines comparing it with the truth."""
    from truckcarbon.pipeline import run_pipeline

    summary = run_pipeline(world_dir / "pings", world_dir / "vehicles.parquet", run_dir)
    console.print(
        f"     {summary.pings_read:,} pings, {summary.pings_quarantined:,} quarantined, "
        f"{len(summary.months)} months in {summary.seconds:.0f} s"
    )
    folder = RunFolder.open(run_dir)
    inv = folder.read_inventory(["month", "view", "co2_t"])
    inv = inv.filter(pc.equal(inv["view"], "operating"))
    inv = inv.append_column("year", pc.utf8_slice_codeunits(inv["month"], 0, 4))
    run_year = dict(
        zip(
            *inv.group_by("year").aggregate([("co2_t", "sum")]).select(["year", "co2_t_sum"]).to_pydict().values(),
            strict=True,
        )
    )
    truth = pq.read_table(world_dir / "truth.parquet", columns=["vehicle_id", "month", "city_adcode", "co2_kg"])
    truth = truth.filter(pc.not_equal(truth["city_adcode"], 0))
    truth = truth.join(pq.read_table(world_dir / "vehicles.parquet", columns=["vehicle_id", "weight"]), "vehicle_id")
    truth = truth.append_column("t", pc.divide(pc.multiply(truth["co2_kg"], truth["weight"]), 1000.0))
    truth = truth.append_column("year", pc.utf8_slice_codeunits(truth["month"], 0, 4))
    truth_year = dict(
        zip(
            *truth.group_by("year").aggregate([("t", "sum")]).select(["year", "t_sum"]).to_pydict().values(),
            strict=True,
        )
    )
    lines = [
        "",
        "## The accounting pipeline on the demo world",
        "",
        f"`truckcarbon run` read {summary.pings_read:,} pings, quarantined {summary.pings_quarantined:,} "
        f"(`run/quarantine/`), and wrote the inventories to `run/inventory/` and `run/truckcarbon.duckdb`.",
        "",
        "| year | CO2 from the pings (10^8 t) | ground truth (10^8 t) | difference |",
        "|---|---:|---:|---:|",
    ]
    for year in sorted(truth_year):
        got, want = run_year.get(year, 0.0), truth_year[year]
        lines.append(f"| {year} | {got / 1e8:.3f} | {want / 1e8:.3f} | {got / want - 1:+.3%} |")
    console.print(f"     inventory written to {folder.inventory}")
    return lines


def analyse_run(run_dir: Path, console: Console) -> list[str]:
    """Run every analysis on a run folder and return Markdown lines with its headline findings."""
    from truckcarbon.analysis import analyze
    from truckcarbon.analysis.rankings import sample_gdp_path
    from truckcarbon.analysis.trends import shocks_in

    summary = analyze(run_dir, gdp=sample_gdp_path())
    console.print(f"     {len(summary.tables)} tables in {summary.seconds:.1f} s -> {summary.out}")
    folder = RunFolder.open(run_dir)
    shocks = shocks_in(folder.read_analysis("national_monthly"))
    top = folder.read_analysis("top_cities").to_pylist()
    last_year = max(r["year"] for r in top)
    gdp_year = 2022  # the sample GDP table's year
    leaders = ", ".join(f"{r['name_en']} ({r['name_zh']})" for r in top if r["year"] == last_year and r["rank"] <= 3)
    intensity = [
        f"{r['name_en']} {r['t_co2_per_100m_yuan']:.0f} t"
        for r in top
        if r["year"] == gdp_year and r["t_co2_per_100m_yuan"] is not None
    ]
    exporters = folder.read_analysis("registration_vs_operating_province").to_pylist()[:3]
    years = folder.read_analysis("national_annual_intervals").to_pylist()
    methods = folder.read_analysis("methods_national_monthly").to_pylist()
    pollutants = folder.read_analysis("pollutants_national_annual").to_pylist()
    full = [r for r in years if r["year"] == last_year]
    interval = (
        f"- National CO2 {last_year}: {full[0]['co2_t'] / 1e8:.3f} x 10^8 t, 90% interval "
        f"{full[0]['co2_t_p05'] / 1e8:.3f}-{full[0]['co2_t_p95'] / 1e8:.3f} (1,000 Monte Carlo draws: factors, "
        "unknown loads, a bootstrap of the trucks, unobserved km; `run/analysis/*_intervals`)."
        if full else "- No national interval was drawn."
    )  # fmt: skip
    in_year = [r for r in methods if r["month"].startswith(str(last_year))]
    report_t, copert_t = (sum(r[f"co2_t_{m}"] for r in in_year) for m in ("report", "copert"))
    nox = [r for r in pollutants if r["year"] == last_year]
    console.print("     " + interval[2:].split(" (")[0])
    return [
        "",
        "## Analyses (`run/analysis/`)",
        "",
        interval,
        f"- The methods side by side in {last_year}: COPERT's speed curves give "
        f"{(copert_t / report_t - 1) if report_t else 0:+.1%} against the source report's method "
        "(`methods_national_monthly`, `methods_city_annual`).",
        (
            f"- Hot-exhaust NOx in {last_year}: {nox[0]['nox_t'] / 1e4:,.1f} x 10^4 t, PM2.5 {nox[0]['pm25_t']:,.0f} t "
            "(`pollutants_national_annual`)."
            if nox
            else "- No pollutant table."
        ),
        f"- Months far from their seasonal expectation (shocks): {', '.join(shocks) or 'none'}.",
        f"- Largest operating emitters in {last_year}: {leaders}.",
        f"- Truck CO2 per 亿元 of GDP in {gdp_year} (top-10 cities found in the sample GDP table "
        "`data/sample_gdp_2022.csv`): " + (", ".join(intensity) or "none of the top cities is in the sample") + ".",
        "- Largest net exporters of truck CO2 (registration above operating): "
        + ", ".join(
            f"{r['name_en']} (ratio {r['ratio']:.2f})"
            if r["ratio"] is not None
            else f"{r['name_en']} (no operating CO2)"
            for r in exporters
        )
        + ".",
    ]


def forecast_demo(run_dir: Path, console: Console) -> list[str]:
    """Forecast a run's national series and return Markdown lines with the backtest and the peak assessment."""
    from truckcarbon.core.errors import InputError
    from truckcarbon.forecast import forecast_run

    try:
        summary = forecast_run(run_dir)
    except InputError as exc:  # e.g. a short demo world (--months)
        console.print(f"     skipped: {exc}")
        return ["", "## Forecast", "", f"Not made: {exc}."]
    console.print(f"     done in {summary.seconds:.1f} s -> {summary.out}")
    bt = RunFolder.open(run_dir).read_forecast("backtest")
    means: dict[str, list[float]] = {}
    for model, mape in zip(bt["model"].to_pylist(), bt["mape"].to_pylist(), strict=True):
        means.setdefault(model, []).append(mape)
    peak = summary.peak
    share = peak.get("share_of_paths_peaked")
    return [
        "",
        "## Forecast (`run/forecast/`)",
        "",
        f"Prophet, 36 months ahead with 80% and 95% intervals. Peak year of history + forecast: "
        f"{peak['peak_year']} ({'history' if peak['peak_in_history'] else 'forecast'}); "
        f"share of simulated paths that have already peaked: {share:.0%}."
        if share is not None
        else "",
        "",
        "| model | backtest MAPE (mean over horizons 1-12) |",
        "|---|---:|",
        *[f"| {m} | {float(np.mean(v)):.1%} |" for m, v in sorted(means.items())],
    ]
