"""The ``truckcarbon`` command."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from truckcarbon import __version__
from truckcarbon.core.errors import TruckcarbonError

app = typer.Typer(
    help="truckcarbon: heavy-truck GPS telematics to a city-by-month CO2 inventory for China.",
    no_args_is_help=True,
    add_completion=False,
)
index_app = typer.Typer(help="Build and inspect the city locator index.", no_args_is_help=True)
app.add_typer(index_app, name="index")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn truckcarbon's own errors (and the machine's: disk, permissions) into a one-line message and exit
    code 2; anything else is an internal error, exit code 3, its traceback shown with TRUCKCARBON_DEBUG=1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except TruckcarbonError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=2) from None
        except (OSError, MemoryError) as exc:  # the machine's limits: disk full, permissions, memory
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}")
            raise typer.Exit(code=2) from None
        except Exception as exc:
            # A defect of truckcarbon, not of the input: one line, the traceback on request.
            if os.environ.get("TRUCKCARBON_DEBUG"):
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {exc} "
                "(set TRUCKCARBON_DEBUG=1 for the traceback, and please report it)"
            )
            raise typer.Exit(code=3) from None

    return wrapper


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


CrsOption = Annotated[
    str,
    typer.Option(
        "--crs", help="Coordinate system of the points: wgs84 (terminals), gcj02 (Amap, Tencent) or bd09 (Baidu)."
    ),
]


@app.command()
@_friendly
def cities(
    query: Annotated[
        str | None, typer.Argument(help="Name (郑州, zhengzhou) or adcode (prefix) to search for.")
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include Hong Kong, Macau and Taiwan (left out of default accounting).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Export to .csv, .parquet or .geojson (with boundaries).")
    ] = None,
    crs: CrsOption = "wgs84",
    simplify_m: Annotated[
        float, typer.Option("--simplify-m", help="GeoJSON only: simplify borders to this tolerance in metres.")
    ] = 0.0,
    limit: Annotated[int, typer.Option(help="Rows to print (export writes all).")] = 40,
) -> None:
    """List or search China's prefecture-level units; export them as CSV, Parquet or GeoJSON."""
    from truckcarbon.geo.reference import cities as all_cities
    from truckcarbon.geo.reference import search_cities

    table = search_cities(query, include_all) if query else all_cities(include_all)
    if out is not None:
        from truckcarbon.geo.export import write_table

        write_table(table, out, crs=crs, simplify_m=simplify_m)
        console.print(f"wrote {table.num_rows} units to [bold]{out}[/]")
        return
    view = Table(title=f"{table.num_rows} prefecture-level unit(s)")
    for col in ("city_adcode", "name_zh", "name_en", "kind", "province_name_zh", "area_km2"):
        view.add_column(col, justify="right" if col in ("city_adcode", "area_km2") else "left")
    for row in table.slice(0, limit).to_pylist():
        view.add_row(
            *(str(row[c]) for c in ("city_adcode", "name_zh", "name_en", "kind", "province_name_zh", "area_km2"))
        )
    console.print(view)
    if table.num_rows > limit:
        console.print(f"... {table.num_rows - limit} more; use --limit or --out")


@app.command()
@_friendly
def locate(
    input: Annotated[Path, typer.Argument(help="CSV or Parquet file with longitude/latitude columns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .csv or .parquet (by extension).")],
    crs: CrsOption = "wgs84",
    lon_col: Annotated[str, typer.Option(help="Longitude column.")] = "lon",
    lat_col: Annotated[str, typer.Option(help="Latitude column.")] = "lat",
) -> None:
    """Add city_adcode and province_adcode to every point of a file (streamed, any size)."""
    from truckcarbon.geo.io import count_rows, locate_file
    from truckcarbon.geo.locator import CityLocator

    locator = CityLocator(crs, progress=True)
    total = count_rows(input)
    columns = [SpinnerColumn(), TextColumn("locating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    start = time.perf_counter()
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("locate", total=total)
        summary = locate_file(
            input, out, locator, lon_col=lon_col, lat_col=lat_col, on_batch=lambda n: progress.advance(task, n)
        )
    secs = time.perf_counter() - start
    console.print(
        f"wrote [bold]{out}[/]: {summary.rows:,} rows, {summary.located:,} located, "
        f"{summary.outside:,} outside every mainland unit, {summary.invalid:,} invalid ({secs:.1f} s)"
    )


@index_app.command("build")
@_friendly
def index_build(
    crs: CrsOption = "wgs84",
    include_all: Annotated[bool, typer.Option("--all", help="Index Hong Kong, Macau and Taiwan too.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached index exists.")] = False,
) -> None:
    """Build the locator index into the cache (done automatically on first use)."""
    import shutil

    from truckcarbon.core.settings import cache_dir
    from truckcarbon.geo.locator import CRS, get_index, index_cache_path

    path = index_cache_path(CRS(crs), not include_all, cache_dir())
    if force and path.exists():
        shutil.rmtree(path)
    start = time.perf_counter()
    index = get_index(crs, mainland_only=not include_all, progress=True)
    console.print(
        f"index {path} ready in {time.perf_counter() - start:.1f} s: {index.nbytes / 2**20:.0f} MiB, "
        f"{len(index.arrays['adcodes'])} units, {len(index.arrays['ref']):,} border leaves"
    )


@app.command()
@_friendly
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
    from truckcarbon.core.errors import InputError
    from truckcarbon.sim.defects import DefectRates
    from truckcarbon.sim.run import preset as make_preset
    from truckcarbon.sim.run import simulate as run_simulation

    start = end = None
    if months is not None:
        if ":" not in months:
            raise InputError(f"--months {months!r}: use START:END, e.g. 2018-01:2023-12")
        start, end = (x.strip() for x in months.split(":", 1))
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
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("simulating", total=n_months)

        def on_month(label: str, pings: int) -> None:
            progress.update(task, advance=1, description=f"simulated {label} ({pings:,} pings)")

        summary = run_simulation(out, config, overwrite=overwrite, workers=workers, on_month=on_month)
    console.print(
        f"wrote [bold]{out}[/]: {summary.trucks:,} trucks, {summary.months} months, {summary.pings:,} pings, "
        f"{summary.truth_rows:,} truth rows in {summary.seconds:.1f} s "
        f"({summary.pings / max(summary.seconds, 1e-9) / 1e6:.2f} M pings/s)"
    )


@app.command()
@_friendly
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


def _progress_columns() -> list[ProgressColumn]:
    return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]


@app.command()
@_friendly
def run(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (inventory/, activity/, manifest.json, ...).")],
    vehicles: Annotated[Path, typer.Option(help="Vehicles table (Parquet or CSV).")],
    pings: Annotated[
        str | None,
        typer.Option(
            help="Pings file or folder (Parquet/CSV, e.g. a month=YYYY-MM dataset); with --engine spark also a URI "
            "(hdfs://, s3a://, file://)."
        ),
    ] = None,
    activity: Annotated[
        Path | None,
        typer.Option(help="A pre-aggregated activity table (vehicle_id, month, city_adcode, distance_km[, fuel_l])."),
    ] = None,
    months: Annotated[
        list[str] | None, typer.Option("--months", help="Months to (re)compute, YYYY-MM; repeat or comma-separate.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings (cleaning rules, emissions, partitions).")] = None,
    engine: Annotated[str, typer.Option(help="embedded (DuckDB, this machine) or spark (PySpark).")] = "embedded",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (local[2], spark://host:7077, yarn, k8s://...).")
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="Header mapping, file header = contract column, e.g. '车辆ID=vehicle_id,GPS时间=ts,经度=lon,纬度=lat' "
            "(common Chinese headers are recognised without it; docs/inputs.md lists them)."
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="CSV encoding: utf-8, utf-8-sig, gbk, gb18030 (default: detected from the bytes)."),
    ] = None,
    crs: Annotated[
        str | None,
        typer.Option("--crs", help="Datum of the coordinates: wgs84 (terminals), gcj02 (Amap, Tencent), bd09 (Baidu)."),
    ] = None,
    ts_format: Annotated[
        str | None, typer.Option(help="An extra strptime format for ts, e.g. '%d.%m.%Y %H:%M:%S' (naive = GMT+8).")
    ] = None,
    time_min: Annotated[
        str | None, typer.Option(help="Fixes before this local date (YYYY-MM-DD) are set aside (default 2000-01-01).")
    ] = None,
    time_max: Annotated[
        str | None, typer.Option(help="Fixes after this local date are set aside (default: one day after now).")
    ] = None,
) -> None:
    """Pings -> cleaned trajectories -> km per vehicle, city and month -> CO2 -> inventories.

    \b
    Pings: a Parquet or CSV file (.csv, .csv.gz, .csv.zst; UTF-8, UTF-8 with BOM or GBK/GB18030) or a folder
    of them, with a vehicle id, a time and lon/lat, e.g.
        vehicle_id,ts,lon,lat,speed_kmh
        鲁A12345,2022/03/10 08:00:00,117.0012,36.6512,52
        013912345678,2022-03-10T08:00:30+08:00,117.0031,36.6515,55
    Chinese headers (车辆ID/车牌号/终端手机号, GPS时间/定位时间, 经度, 纬度, 速度, ...) are recognised.
    \b
    ids: text or integers, kept exactly (leading zeros too): geolife-000, 鲁A12345, 013912345678
    times: 1646870400 (epoch s), 1646870400000 (ms), 1646870400000000 (us), 20220310080000,
           2022-03-10 08:00:00, 2022-03-10T08:00:00+08:00, 2022-03-10T00:00:00Z, 2022/3/10 8:00
           (no offset = Asia/Shanghai local time; impossible dates such as 2022-02-30 are set aside)
    Vehicles: vehicle_id, emission_standard (China V, 国五, V, 5) and a plate (鲁A12345) or
    registration_city_adcode (370100); optional weight.
    """
    import dataclasses

    from truckcarbon.pipeline import PipelineConfig, run_pipeline

    settings = PipelineConfig.from_file(config) if config else PipelineConfig()
    overrides: dict[str, object] = {}
    if columns is not None:
        from truckcarbon.ingest.columns import parse_column_map

        overrides["columns"] = {**settings.columns, **parse_column_map(columns)}
    for name, value in (
        ("encoding", encoding),
        ("crs", crs),
        ("ts_format", ts_format),
        ("time_min", time_min),
        ("time_max", time_max),
    ):
        if value is not None:
            overrides[name] = value
    if overrides:
        settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
        settings.validate()
    wanted = [m.strip() for item in months or [] for m in item.split(",") if m.strip()] or None
    with Progress(*_progress_columns(), console=err_console, transient=True) as progress:
        tasks: dict[str, object] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        summary = run_pipeline(
            pings if pings is None or "://" in pings else Path(pings),
            vehicles,
            out,
            wanted,
            settings,
            activity=activity,
            progress=on_progress,
            engine=engine,
            spark_master=spark_master,
        )
    view = Table(title=f"run {out}", show_header=False)
    view.add_row(
        "months", f"{len(summary.months)} ({summary.months[0]} .. {summary.months[-1]})" if summary.months else "0"
    )
    view.add_row("pings read", f"{summary.pings_read:,}")
    view.add_row("pings set aside at ingest", f"{summary.pings_quarantined:,} (see {out / 'quarantine'})")
    view.add_row("pings outside the months asked for", f"{summary.pings_outside_window:,}")
    view.add_row("fixes set aside by cleaning", f"{summary.fixes_cleaned:,} (truckcarbon quality --run {out})")
    view.add_row("fixes used for the inventory", f"{summary.fixes_used:,}")
    view.add_row("vehicles kept / read", f"{summary.vehicles_kept:,} / {summary.vehicles_read:,}")
    view.add_row("distance (sample, km)", f"{summary.distance_km:,.0f}")
    view.add_row("CO2 (expanded, t)", f"{summary.co2_t:,.0f}")
    view.add_row(
        "time", f"{summary.seconds:.1f} s ({summary.pings_read / max(summary.seconds, 1e-9) / 1e6:.2f} M pings/s)"
    )
    console.print(view)
    for warning in summary.warnings:
        err_console.print(f"[bold yellow]warning:[/] {warning}")
    console.print(f"inventory: {out / 'inventory'}  database: {out / 'truckcarbon.duckdb'}")


@app.command()
@_friendly
def quality(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder written by `truckcarbon run`.")],
) -> None:
    """Print the data-quality report of a run: fixes by cleaning rule per month, quarantine by reason."""
    from truckcarbon.pipeline.manifest import read_quality

    report = read_quality(run_dir)
    rows = report.fix_rows()
    view = Table(title="fixes by cleaning rule (per month)")
    names = ["month", "fixes", "kept", "duplicate", "invalid", "stuck", "jump", "kept_share", "distance_km_unweighted"]
    for header in ("month", "fixes", "kept", "dup.", "invalid", "stuck", "jump", "kept %", "km (sample)"):
        view.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        view.add_row(
            r["month"],
            *(f"{r.get(n, 0):,}" for n in names[1:7]),
            f"{r['kept_share']:.2%}",
            f"{r['distance_km_unweighted']:,.0f}",
        )
    if rows:
        console.print(view)
    latest = report.quality
    parts = {"pings": latest.pings, "vehicles": latest.vehicles} if latest is not None else {}
    for section, counts in parts.items():
        if counts is None:
            continue
        q = {k: v for k, v in counts.quarantined.items() if v}
        read, kept = ("?" if n is None else f"{n:,}" for n in (counts.read, counts.kept))
        console.print(
            f"[bold]{section}[/]: read {read}, kept {kept}, "
            f"quarantined {sum(q.values()):,}" + (f" ({', '.join(f'{k}: {v:,}' for k, v in q.items())})" if q else "")
        )
    traj = latest.trajectories if latest is not None else {}
    if traj:
        console.print(
            f"[bold]trajectories[/]: out-of-order fixes {traj.get('out_of_order', 0):,.0f}, "
            f"bridging added {traj.get('bridged_km', 0.0):,.1f} km over straight lines, "
            f"unobserved (not attributed) {traj.get('unobserved_km', 0.0):,.1f} km "
            f"in {traj.get('unobserved_segments', 0):,.0f} gaps, "
            f"implausible motion (above max_vehicle_kmh, excluded) {traj.get('implausible_speed_km', 0.0):,.1f} km "
            f"in {traj.get('implausible_speed_segments', 0):,.0f} segments, "
            f"fixes outside the mainland units {traj.get('fixes_outside_mainland', 0):,.0f}"
        )
    durations = report.duration_rows()
    if durations:
        view = Table(title="kept segments by duration (gaps: above 20 min)")
        for header in ("duration", "attributed", "km", "unobserved", "km (straight line)", "implausible", "km"):
            view.add_column(header, justify="right", no_wrap=True)
        for r in durations:
            view.add_row(
                r["bin"],
                *(
                    f"{r.get(f'{kind}_{what}', 0):,.0f}" if what == "segments" else f"{r.get(f'{kind}_{what}', 0):,.1f}"
                    for kind in ("attributed", "unobserved", "implausible")
                    for what in ("segments", "km")
                ),
            )
        console.print(view)
    for warning in report.warnings():
        err_console.print(f"[bold yellow]warning:[/] {warning}")
    for notice in report.missing:
        err_console.print(f"[yellow]not in the run folder:[/] {notice}")


@app.command()
@_friendly
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
) -> None:
    """Trends, seasonality, shocks, cities, clusters, standards, rankings, registration vs operating."""
    from truckcarbon.analysis import analyze as run_analysis
    from truckcarbon.core.errors import InputError

    groups: dict[str, list[int]] = {}
    for item in group or []:
        name, _, codes = item.partition("=")
        try:
            groups[name.strip()] = [int(c) for c in codes.split(",") if c.strip()]
        except ValueError:
            raise InputError(f"--group {item!r}: use NAME=ADCODE,ADCODE, e.g. hub=410100,410300") from None
        if not name.strip() or not groups[name.strip()]:
            raise InputError(f"--group {item!r}: use NAME=ADCODE,ADCODE, e.g. hub=410100,410300")
    with Progress(*_progress_columns(), console=err_console, transient=True) as progress:
        task = progress.add_task("analysing", total=12 + 2 * bool(groups))
        summary = run_analysis(
            run_dir,
            gdp,
            top,
            progress=lambda name: progress.update(task, advance=1, description=name),
            groups=groups or None,
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


@app.command()
@_friendly
def forecast(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder written by `truckcarbon run`.")],
    horizon: Annotated[int, typer.Option(help="Months ahead.")] = 36,
) -> None:
    """Prophet forecast with 80/95% intervals, baselines, rolling-origin backtest and peak assessment."""
    from truckcarbon.forecast import forecast_run

    with Progress(*_progress_columns(), console=err_console, transient=True) as progress:
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


@app.command()
@_friendly
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
    with Progress(*_progress_columns(), console=err_console, transient=True) as progress:
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


gateway_app = typer.Typer(
    help="A JT/T 808 gateway (serves when no sub-command is given); `gateway terminals` manages the bindings.",
    invoke_without_command=True,
    no_args_is_help=False,
)
terminals_app = typer.Typer(
    help="Terminals bound to vehicles: list them; release one (a replaced or reset terminal) so it may register.",
    no_args_is_help=True,
)
gateway_app.add_typer(terminals_app, name="terminals")
app.add_typer(gateway_app, name="gateway")


@gateway_app.callback()
@_friendly
def gateway(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(help="Folder for the terminal registry, the write-ahead log, pings/, quarantine/.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7808,
    compact_s: Annotated[float, typer.Option(help="Seconds between compactions into pings/.")] = 5.0,
    max_frame: Annotated[int, typer.Option(help="Largest frame accepted, bytes.")] = 4096,
    idle_timeout_s: Annotated[
        float, typer.Option(help="Close connections without a complete frame this long.")
    ] = 300.0,
    auth_timeout_s: Annotated[float, typer.Option(help="Close connections not authenticated this long.")] = 30.0,
    frame_timeout_s: Annotated[
        float, typer.Option(help="Close connections whose frame is not complete this long.")
    ] = 10.0,
    max_reports_per_s: Annotated[float, typer.Option(help="Reports per second per connection.")] = 20000.0,
    max_connections: Annotated[
        int, typer.Option(help="Connections at once (also kept below the open-file limit).")
    ] = 10000,
    max_connections_per_address: Annotated[int, typer.Option(help="Connections at once from one address.")] = 256,
    max_preauth_bytes: Annotated[
        int, typer.Option(help="Frame bytes a connection may send before authenticating.")
    ] = 16384,
    max_age_days: Annotated[
        float, typer.Option(help="Quarantine reports older than this (blind-area uploads come late); 0: any age.")
    ] = 90.0,
    max_future_s: Annotated[float, typer.Option(help="Quarantine reports this far ahead of the server clock.")] = 900.0,
    load_sensing: Annotated[
        str,
        typer.Option(
            help="Status bits 8-9 = 00 mean empty for: listed (terminals marked load-sensor in --terminals), "
            "all, or none (the load state is never taken from the status)."
        ),
    ] = "listed",
    no_load_bits: Annotated[bool, typer.Option("--no-load-bits", help="The same as --load-sensing none.")] = False,
    vehicles: Annotated[
        Path | None,
        typer.Option(
            help="Vehicles the platform knows (Parquet or CSV with plate and vehicle_id): "
            "a registration with another plate is refused (0x8100 result 2)."
        ),
    ] = None,
    terminals: Annotated[
        Path | None,
        typer.Option(
            help="Terminals the platform knows (text: a phone number per line, optionally followed by "
            "load-sensor): others get result 4."
        ),
    ] = None,
    dedup_months: Annotated[int, typer.Option(help="Months whose (vehicle, time) keys stay in memory.")] = 2,
    partial_timeout_s: Annotated[
        float, typer.Option(help="Drop a sub-packaged message this long after its first piece if incomplete.")
    ] = 60.0,
    max_partial_messages: Annotated[
        int, typer.Option(help="Incomplete sub-packaged messages held per connection.")
    ] = 16,
    max_partial_bytes: Annotated[int, typer.Option(help="Sub-package bytes held per connection.")] = 1048576,
    max_partial_bytes_total: Annotated[
        int, typer.Option(help="Sub-package bytes held over all connections.")
    ] = 67108864,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics (Prometheus), /healthz and /readyz on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics endpoint.")] = "127.0.0.1",
) -> None:
    """A JT/T 808 gateway: registration, authentication, location reports acknowledged once durable."""
    if ctx.invoked_subcommand is not None:
        return
    from truckcarbon.core.errors import InputError
    from truckcarbon.jt808.gateway import GatewayConfig, known_vehicles, read_terminal_list, run_gateway
    from truckcarbon.jt808.validation import Limits

    if data is None:
        raise InputError("--data is required: the folder for the registry, the log and the datasets")
    if load_sensing not in ("listed", "all", "none"):
        raise InputError(f"--load-sensing {load_sensing!r}: use listed, all or none")
    listed = None if terminals is None else read_terminal_list(terminals)
    run_gateway(
        GatewayConfig(
            host=host,
            port=port,
            data=data,
            max_frame=max_frame,
            idle_timeout_s=idle_timeout_s,
            auth_timeout_s=auth_timeout_s,
            frame_timeout_s=frame_timeout_s,
            max_reports_per_s=max_reports_per_s,
            compact_s=compact_s,
            load_sensing="none" if no_load_bits else load_sensing,
            load_sensors=frozenset() if listed is None else listed.load_sensors,
            known_vehicles=None if vehicles is None else known_vehicles(vehicles),
            known_terminals=None if listed is None else listed.phones,
            dedup_months=dedup_months,
            partial_timeout_s=partial_timeout_s,
            max_partial_messages=max_partial_messages,
            max_partial_bytes=max_partial_bytes,
            max_partial_bytes_total=max_partial_bytes_total,
            max_connections=max_connections,
            max_connections_per_address=max_connections_per_address,
            max_preauth_bytes=max_preauth_bytes,
            limits=Limits(max_age_s=max_age_days * 86400.0, max_future_s=max_future_s),
            metrics_host=metrics_host,
            metrics_port=metrics_port,
        )
    )


@terminals_app.command("list")
@_friendly
def gateway_terminals_list(
    data: Annotated[Path, typer.Option(help="The gateway's --data folder.")],
) -> None:
    """The terminals bound to vehicles (phone, vehicle id, plate, terminal id; never a code)."""
    import datetime as dt

    from truckcarbon.jt808.registry import read_bindings

    rows = read_bindings(data)
    table = Table("phone", "vehicle id", "plate", "terminal id", "registered (UTC)", "release")
    for r in rows:
        when = "" if r["registered_at"] is None else dt.datetime.fromtimestamp(r["registered_at"], dt.UTC)
        table.add_row(r["phone"], str(r["vehicle_id"]), r["plate"], r["terminal_id"], str(when)[:19],
                      "pending" if r["release_pending"] else "")  # fmt: skip
    console.print(table)
    console.print(f"{len(rows):,} terminals bound")


@terminals_app.command("release")
@_friendly
def gateway_terminals_release(
    phones: Annotated[list[str], typer.Argument(help="Terminal phone numbers to release.")],
    data: Annotated[Path, typer.Option(help="The gateway's --data folder.")],
) -> None:
    """Unbind terminals: their vehicle and plate are free, the terminal (or its replacement) may register again.

    The running gateway carries it out within a second (and closes the terminal's
    connection), a stopped one when it next starts.
    """
    from truckcarbon.jt808.registry import queue_release

    path = queue_release(data, phones)
    console.print(f"release of {', '.join(phones)} queued ({path.name}); the gateway applies it within a second")


@app.command()
@_friendly
def replay(
    pings: Annotated[Path, typer.Option(help="Pings dataset written by `truckcarbon simulate`.")],
    vehicles: Annotated[Path, typer.Option(help="Its vehicles table.")],
    to: Annotated[str, typer.Option(help="Gateway HOST:PORT.")],
    terminals: Annotated[int, typer.Option(help="Terminals connected at once.")] = 100,
    speedup: Annotated[
        float, typer.Option(help="Replay at this multiple of real time (0: as fast as possible).")
    ] = 0.0,
    acked_out: Annotated[
        Path | None, typer.Option(help="Write the acknowledged (vehicle_id, ts_ms) pairs to this CSV file.")
    ] = None,
    codes: Annotated[
        Path | None,
        typer.Option(help="Keep the terminals' authentication codes in this file (to replay again later)."),
    ] = None,
    reconnect_s: Annotated[float, typer.Option(help="Give up after the gateway is unreachable this long.")] = 60.0,
) -> None:
    """Send a fleet's pings to a gateway over JT/T 808 from many concurrent terminals (reconnecting as needed)."""
    from truckcarbon.jt808.replay import replay as run_replay

    summary = run_replay(pings, vehicles, to, terminals, speedup, acked_out, codes, reconnect_s)
    console.print(
        f"{summary.terminals:,} terminals: sent {summary.sent:,}, acknowledged {summary.acked:,}, "
        f"resent {summary.resent:,} ({summary.reconnects:,} reconnections), refused {summary.refused:,}, "
        f"given up {summary.unsent:,}, skipped {summary.skipped:,} (bad coordinates) in {summary.seconds:.1f} s "
        f"({summary.acked / max(summary.seconds, 1e-9):,.0f} reports/s)"
    )
    if summary.failed:
        raise typer.Exit(code=1)


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo outputs.")] = Path("demo_out"),
    trucks: Annotated[int | None, typer.Option(help="Trucks of the demo world (default: the demo preset's).")] = None,
    months: Annotated[str | None, typer.Option(help="Months of the demo world, START:END.")] = None,
) -> None:
    """Run what truckcarbon can do so far on a built-in example and print where the results are."""
    from truckcarbon.core.errors import InputError
    from truckcarbon.demo import run_demo

    overrides: dict[str, object] = {"trucks": trucks}
    if months is not None:
        if ":" not in months:
            raise InputError(f"--months {months!r}: use START:END, e.g. 2018-01:2023-12")
        overrides["start_month"], overrides["end_month"] = (x.strip() for x in months.split(":", 1))
    summary_path = run_demo(out, console=console, **overrides)
    console.print(f"\n[bold green]demo summary:[/] {summary_path.resolve()}")
    for page in sorted((out / "report").glob("report.*.*")):
        console.print(f"[bold green]report:[/] {page.resolve()}")
