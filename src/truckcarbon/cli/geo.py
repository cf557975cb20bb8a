"""Geography commands: ``cities`` (list, search and export China's prefecture-level units), ``locate``
(the city and province of every point of a file) and ``index build`` (the city locator's index, built into
the cache ahead of first use)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from truckcarbon.cli.common import CrsOption, console, err_console, friendly, progress_columns


@friendly
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


@friendly
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
    start = time.perf_counter()
    with Progress(*progress_columns("locating"), console=err_console, transient=True) as progress:
        task = progress.add_task("locate", total=total)
        summary = locate_file(
            input, out, locator, lon_col=lon_col, lat_col=lat_col, on_batch=lambda n: progress.advance(task, n)
        )
    secs = time.perf_counter() - start
    console.print(
        f"wrote [bold]{out}[/]: {summary.rows:,} rows, {summary.located:,} located, "
        f"{summary.outside:,} outside every mainland unit, {summary.invalid:,} invalid ({secs:.1f} s)"
    )


@friendly
def index_build(
    crs: CrsOption = "wgs84",
    include_all: Annotated[bool, typer.Option("--all", help="Index Hong Kong, Macau and Taiwan too.")] = False,
    force: Annotated[bool, typer.Option(help="Rebuild even when a cached index exists.")] = False,
) -> None:
    """Build the locator index into the cache (done automatically on first use)."""
    import shutil

    from truckcarbon.core.settings import cache_dir
    from truckcarbon.geo.cache import get_index, index_cache_path
    from truckcarbon.geo.index import parse_crs

    path = index_cache_path(parse_crs(crs), not include_all, cache_dir())
    if force and path.exists():
        shutil.rmtree(path)
    start = time.perf_counter()
    index = get_index(crs, mainland_only=not include_all, progress=True)
    console.print(
        f"index {path} ready in {time.perf_counter() - start:.1f} s: {index.nbytes / 2**20:.0f} MiB, "
        f"{len(index.arrays['adcodes'])} units, {len(index.arrays['ref']):,} border leaves"
    )
