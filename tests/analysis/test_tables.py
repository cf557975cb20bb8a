"""RunTables: the run's inventory in one DuckDB (the columns the analyses read), and per-query tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.analysis.tables import INVENTORY_COLUMNS, RunTables
from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.core.schemas import INVENTORY


def test_a_run_folder_gives_the_inventory_columns_the_analyses_read(two_years: pa.Table, tmp_path: Path) -> None:
    assert set(INVENTORY_COLUMNS) <= set(INVENTORY.names) and "method" not in INVENTORY_COLUMNS
    folder = RunFolder(tmp_path)
    (tmp_path / "inventory").mkdir()
    pq.write_table(two_years, folder.month_file("inventory", "2021-01"))
    with RunTables.of(folder) as tables:
        columns = tables.sql("SELECT column_name FROM duckdb_columns() WHERE table_name = 'inv'")
        assert tuple(columns["column_name"].to_pylist()) == INVENTORY_COLUMNS
        (rows,) = tables.sql("SELECT count(*) AS n FROM inv")["n"].to_pylist()
        assert rows == two_years.num_rows
        (mainland,) = tables.sql("SELECT count(*) AS n FROM cities")["n"].to_pylist()
        assert mainland > 300  # the prefecture-level units of the mainland
    pq.write_table(two_years.drop_columns(["co2_t"]), folder.month_file("inventory", "2021-01"))
    with pytest.raises(InputError, match=r"not an inventory, missing column\(s\) co2_t"):
        RunTables.of(folder)
    with pytest.raises(InputError, match="no inventory"):
        RunTables.of(RunFolder(tmp_path / "empty"))


def test_tables_given_to_one_query_are_gone_after_it(tables: RunTables) -> None:
    extra = pa.table({"city_adcode": pa.array([110100], pa.int32()), "label": ["capital"]})
    joined = tables.sql(
        "SELECT x.label, sum(i.co2_t) AS co2_t FROM inv i JOIN extra x USING (city_adcode) "
        "WHERE i.view = ? AND i.month = '2021-01' GROUP BY x.label",
        ["operating"],
        extra=extra,
    ).to_pylist()
    assert joined == [{"label": "capital", "co2_t": 40.0}]  # Beijing: 10 (China V) + 30 (China VI)
    with pytest.raises(duckdb.CatalogException):
        tables.sql("SELECT * FROM extra")


def test_leaving_the_block_closes_the_connection(two_years: pa.Table) -> None:
    with RunTables(two_years) as tables:
        pass
    with pytest.raises(duckdb.ConnectionException):
        tables.sql("SELECT 1")
