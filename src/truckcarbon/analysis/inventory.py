"""Reading a run's inventory for analysis, with a clear error when it is not one."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.schemas import INVENTORY

# The inventory columns the analyses read (of :data:`truckcarbon.core.schemas.INVENTORY`).
INVENTORY_COLUMNS = tuple(
    c
    for c in INVENTORY.names
    if c in {"month", "view", "city_adcode", "province_adcode", "emission_standard", "vehicles", "distance_km",
             "fuel_l", "co2_t", "co2_t_unweighted"}
)  # fmt: skip


def read_inventory(run: Path | RunFolder) -> pa.Table:
    """The inventory of a run folder (``RUN/inventory/*.parquet``) as one table."""
    folder = run if isinstance(run, RunFolder) else RunFolder.open(run)
    files = folder.month_files("inventory")
    if not files:
        raise InputError(
            f"{folder.path}: no inventory (expected {folder.inventory}/YYYY-MM.parquet); run `truckcarbon run` first"
        )
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
    check_inventory(table, str(folder.inventory))
    return table


def check_inventory(table: pa.Table, source: str) -> None:
    """Raise :class:`InputError` naming the missing columns of an inventory table."""
    missing = [c for c in INVENTORY_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{source}: not an inventory, missing column(s) {', '.join(missing)}")


def connect(inventory: pa.Table) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the inventory as table ``inv`` (and cities, provinces, clusters)."""
    from truckcarbon.geo.reference import cities, clusters, provinces

    con = duckdb.connect()
    for name, table in (
        ("inv", inventory),
        ("cities", cities(include_non_mainland=False)),
        ("provinces", provinces()),
        ("clusters", clusters()),
    ):
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
    return con
