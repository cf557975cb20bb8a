"""The ``truckcarbon`` command."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

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
    """Turn truckcarbon's own errors into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TruckcarbonError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(code=2) from None

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
    str, typer.Option("--crs", help="Coordinate system of the input points: wgs84 (terminals) or gcj02 (web maps).")
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
    )
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
) -> None:
    """Pings -> cleaned trajectories -> km per vehicle, city and month -> CO2 -> inventories."""
    from truckcarbon.pipeline import PipelineConfig, run_pipeline

    settings = PipelineConfig.from_file(config) if config else PipelineConfig()
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
    view.add_row("pings kept", f"{summary.pings_kept:,}")
    view.add_row("pings quarantined", f"{summary.pings_quarantined:,} (see {out / 'quarantine'})")
    view.add_row("pings outside the months asked for", f"{summary.pings_outside_window:,}")
    view.add_row("vehicles kept / read", f"{summary.vehicles_kept:,} / {summary.vehicles_read:,}")
    view.add_row("distance (sample, km)", f"{summary.distance_km:,.0f}")
    view.add_row("CO2 (expanded, t)", f"{summary.co2_t:,.0f}")
    view.add_row(
        "time", f"{summary.seconds:.1f} s ({summary.pings_read / max(summary.seconds, 1e-9) / 1e6:.2f} M pings/s)"
    )
    console.print(view)
    console.print(f"inventory: {out / 'inventory'}  database: {out / 'truckcarbon.duckdb'}")


@app.command()
@_friendly
def quality(
    run_dir: Annotated[Path, typer.Option("--run", help="A run folder written by `truckcarbon run`.")],
) -> None:
    """Print the data-quality report of a run: fixes by cleaning rule per month, quarantine by reason."""
    from truckcarbon.pipeline.quality import read_quality

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
    console.print(view)
    latest = report.latest_run
    for section in ("pings", "vehicles"):
        info = latest.get(section, {})
        q = {k: v for k, v in info.get("quarantined", {}).items() if v}
        console.print(
            f"[bold]{section}[/]: read {info.get('read', 0):,}, kept {info.get('kept', 0):,}, "
            f"quarantined {sum(q.values()):,}" + (f" ({', '.join(f'{k}: {v:,}' for k, v in q.items())})" if q else "")
        )
    traj = latest.get("trajectories", {})
    if traj:
        console.print(
            f"[bold]trajectories[/]: out-of-order fixes {traj.get('out_of_order', 0):,.0f}, "
            f"gaps bridged +{traj.get('bridged_km', 0.0):,.1f} km, "
            f"unobserved {traj.get('unobserved_km', 0.0):,.1f} km "
            f"in {traj.get('unobserved_segments', 0):,.0f} segments, "
            f"fixes outside the mainland units {traj.get('fixes_outside_mainland', 0):,.0f}"
        )


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
    for lg, path in summary.paths.items():
        console.print(f"report ({lg}): [bold]{path.resolve()}[/]")


@app.command()
@_friendly
def gateway(
    data: Annotated[Path, typer.Option(help="Folder for the terminal registry, the write-ahead log and pings/.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7808,
    compact_s: Annotated[float, typer.Option(help="Seconds between compactions into pings/.")] = 5.0,
    max_frame: Annotated[int, typer.Option(help="Largest frame accepted, bytes.")] = 4096,
    idle_timeout_s: Annotated[float, typer.Option(help="Close connections silent this long.")] = 300.0,
    max_reports_per_s: Annotated[float, typer.Option(help="Reports per second per connection.")] = 20000.0,
    no_load_bits: Annotated[
        bool, typer.Option("--no-load-bits", help="Terminals do not report the load state (status bits 8-9).")
    ] = False,
    vehicles: Annotated[
        Path | None,
        typer.Option(
            help="Vehicles the platform knows (Parquet or CSV with plate and vehicle_id): "
            "a registration with another plate is refused (0x8100 result 2)."
        ),
    ] = None,
    terminals: Annotated[
        Path | None,
        typer.Option(help="Terminals the platform knows (text, one phone number per line): others get result 4."),
    ] = None,
    dedup_months: Annotated[int, typer.Option(help="Months whose (vehicle, time) keys stay in memory.")] = 2,
    partial_timeout_s: Annotated[
        float, typer.Option(help="Drop a sub-packaged message this long after its first piece if incomplete.")
    ] = 60.0,
    max_partial_messages: Annotated[
        int, typer.Option(help="Incomplete sub-packaged messages held per connection.")
    ] = 16,
) -> None:
    """A JT/T 808 gateway: registration, authentication, location reports acknowledged once durable."""
    from truckcarbon.jt808.gateway import GatewayConfig, known_terminals, known_vehicles, run_gateway

    run_gateway(
        GatewayConfig(
            host=host,
            port=port,
            data=data,
            max_frame=max_frame,
            idle_timeout_s=idle_timeout_s,
            max_reports_per_s=max_reports_per_s,
            compact_s=compact_s,
            load_bits=not no_load_bits,
            known_vehicles=None if vehicles is None else known_vehicles(vehicles),
            known_terminals=None if terminals is None else known_terminals(terminals),
            dedup_months=dedup_months,
            partial_timeout_s=partial_timeout_s,
            max_partial_messages=max_partial_messages,
        )
    )


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
) -> None:
    """Send a simulated fleet's pings to a gateway over JT/T 808 from many concurrent terminals."""
    from truckcarbon.jt808.replay import replay as run_replay

    summary = run_replay(pings, vehicles, to, terminals, speedup)
    console.print(
        f"{summary.terminals:,} terminals: sent {summary.sent:,}, acknowledged {summary.acked:,}, "
        f"refused {summary.failed:,}, skipped {summary.skipped:,} (bad coordinates) in {summary.seconds:.1f} s "
        f"({summary.acked / max(summary.seconds, 1e-9):,.0f} reports/s)"
    )


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
