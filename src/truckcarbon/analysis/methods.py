"""The emission methods side by side, and the pollutants, by month, year and city (the operating view).

Every inventory row carries each method's litres (``fuel_l_report``,
``fuel_l_copert``, ``fuel_l_measured``: :mod:`truckcarbon.emissions.method`) whichever
method gave its ``fuel_l``, and its NOx, PM2.5, CO and HC. These tables sum them:

- ``methods_national_monthly``: per month, each method's litres and CO2 (the run's CO2
  per litre, its ``co2_t`` over ``fuel_l``), and copert's and measured's difference
  from report;
- ``methods_city_annual``: the same per city and year;
- ``pollutants_national_annual`` and ``pollutants_city_annual``: NOx, PM2.5, CO and HC
  (t) with CO2, per year (and city).

An inventory written before these columns existed lacks them: :func:`method_tables`
then raises :class:`~truckcarbon.core.errors.InputError` naming them.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.runfolder import RunFolder

METHOD_COLUMNS: Final = ("fuel_l_report", "fuel_l_copert", "fuel_l_measured")
POLLUTANT_COLUMNS: Final = ("nox_t", "pm25_t", "co_t", "hc_t")
COLUMNS: Final = ("month", "view", "city_adcode", "fuel_l", "co2_t", *METHOD_COLUMNS, *POLLUTANT_COLUMNS)


def _sums(tables: RunTables, inventory: pa.Table, keys: str, period: str) -> pa.Table:
    """Each method's litres and CO2 and the pollutants summed by ``keys`` (the operating view)."""
    methods = ", ".join(f"sum({c}) AS {c}" for c in METHOD_COLUMNS)
    co2 = ", ".join(f"sum({c}) * any_value(ef) AS co2_t_{c.removeprefix('fuel_l_')}" for c in METHOD_COLUMNS)
    pollutants = ", ".join(f"sum({c}) AS {c}" for c in POLLUTANT_COLUMNS)
    return tables.sql(
        f"""
        WITH ef AS (SELECT coalesce(sum(co2_t) / nullif(sum(fuel_l), 0), 0) AS ef FROM minv WHERE view = 'operating')
        SELECT {period} {keys}, sum(co2_t) AS co2_t, {methods}, {co2}, {pollutants}
        FROM minv, ef WHERE view = 'operating' AND city_adcode <> 0 GROUP BY ALL ORDER BY ALL""",
        minv=inventory,
    )


def _named(tables: RunTables, t: pa.Table) -> pa.Table:
    """``t`` with each city's Chinese and English names (its rows' order kept)."""
    return tables.sql(
        "SELECT t.*, c.name_zh, c.name_en FROM t LEFT JOIN cities c USING (city_adcode) ORDER BY t.year, t.city_adcode",
        t=t,
    )


def _with_differences(t: pa.Table) -> pa.Table:
    """``copert_vs_report`` and ``measured_vs_report``: each method's litres over report's, less 1."""
    report = t["fuel_l_report"].to_pylist()
    for name in ("copert", "measured"):
        values = t[f"fuel_l_{name}"].to_pylist()
        t = t.append_column(
            f"{name}_vs_report", pa.array([v / r - 1.0 if r else None for v, r in zip(values, report, strict=True)])
        )
    return t


def method_tables(folder: RunFolder, tables: RunTables) -> dict[str, pa.Table]:
    """The four tables of the module docstring, from the run's inventory (queried on ``tables``' connection)."""
    inventory = folder.read_inventory(COLUMNS)
    year = "CAST(substr(month, 1, 4) AS INTEGER) AS year"
    national_monthly = _with_differences(_sums(tables, inventory, "", "month"))
    city_annual = _named(tables, _with_differences(_sums(tables, inventory, ", city_adcode", year)))
    national_annual = _sums(tables, inventory, "", year)
    names = ["year", "city_adcode", "name_zh", "name_en"]
    city_pollutants = city_annual.select([*names, "co2_t", *POLLUTANT_COLUMNS])
    keep = ["month", "co2_t", *METHOD_COLUMNS, *(f"co2_t_{c.removeprefix('fuel_l_')}" for c in METHOD_COLUMNS),
            "copert_vs_report", "measured_vs_report"]  # fmt: skip
    return {
        "methods_national_monthly": national_monthly.select(keep),
        "methods_city_annual": city_annual.select([*names, *keep[1:]]),
        "pollutants_national_annual": national_annual.select(["year", "co2_t", *POLLUTANT_COLUMNS]),
        "pollutants_city_annual": city_pollutants,
    }


__all__ = ["COLUMNS", "METHOD_COLUMNS", "POLLUTANT_COLUMNS", "method_tables"]
