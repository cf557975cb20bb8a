"""The tables every analysis queries, in one in-memory DuckDB shared by all the analyses of a run.

:class:`RunTables` copies a run's inventory (the columns of :data:`INVENTORY_COLUMNS`)
into DuckDB once, as table ``inv``, beside the reference tables ``cities`` (mainland
prefecture-level units), ``provinces`` and ``clusters``. Each analysis function takes
the :class:`RunTables` and runs its SQL on it with :meth:`RunTables.sql`, which can
bring further Arrow tables into one query (a group's members, a GDP table) by name.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.schemas import INVENTORY

# The inventory columns the analyses read (of :data:`truckcarbon.core.schemas.INVENTORY`).
INVENTORY_COLUMNS = tuple(
    c
    for c in INVENTORY.names
    if c in {"month", "view", "city_adcode", "province_adcode", "emission_standard", "vehicles", "distance_km",
             "fuel_l", "co2_t", "co2_t_unweighted"}
)  # fmt: skip


class RunTables:
    """One DuckDB connection over a run's inventory (table ``inv``) and the reference tables.

    Use it as a context manager (the connection is closed on leaving) or call :meth:`close`.
    """

    def __init__(self, inventory: pa.Table) -> None:
        from truckcarbon.geo.reference import cities, clusters, provinces

        # One thread: the analyses' float sums then add in a fixed order (a rerun writes the same bytes); the
        # tables are a run's inventory, small enough that one core is not the limit.
        self.con = duckdb.connect(config={"threads": 1})
        for name, table in (
            ("inv", inventory),
            ("cities", cities(include_non_mainland=False)),
            ("provinces", provinces()),
            ("clusters", clusters()),
        ):
            self.con.register(f"{name}_arrow", table)
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
            self.con.unregister(f"{name}_arrow")

    @classmethod
    def of(cls, folder: RunFolder) -> RunTables:
        """The tables of a run folder (its inventory; :class:`InputError` when it has none)."""
        return cls(folder.read_inventory(INVENTORY_COLUMNS))

    def sql(self, query: str, params: list[Any] | None = None, **tables: pa.Table) -> pa.Table:
        """The result of ``query`` as an Arrow table; ``tables`` are visible to it under their names."""
        for name, table in tables.items():
            self.con.register(name, table)
        try:
            return self.con.sql(query, params=params).to_arrow_table()
        finally:
            for name in tables:
                self.con.unregister(name)

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> RunTables:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["INVENTORY_COLUMNS", "RunTables"]
