"""Run commands: ``run`` (pings and vehicles to a run folder: trajectories, km by city and month, CO2,
inventories) and ``quality`` (the data-quality report of a run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from truckcarbon.cli.common import console, err_console, friendly, progress_columns


@friendly
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
    with Progress(*progress_columns(), console=err_console, transient=True) as progress:
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


@friendly
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
