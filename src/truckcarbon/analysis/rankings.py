"""Top cities by operating CO2 with GDP intensity, and registration versus operating emissions.

GDP table (user supplied; CSV or Parquet): one row per city and year with
``city`` (adcode, or a Chinese/English/pinyin name that matches one unit),
``year`` and ``gdp_100m_yuan`` (GDP in 亿元, 100 million yuan; ``gdp`` is read
as the same). An optional ``unit`` column must say 亿元. Unknown names,
ambiguous names, duplicate city-years and values that look like another unit
(万元 or 元) are errors that list the rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.analysis.tables import RunTables
from truckcarbon.core.arrow import parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.geo.reference import cities
from truckcarbon.ingest.sources import read_table

# The largest prefecture-level GDP is about 5e4 亿元 (Shanghai, 2023); the smallest above 10.
GDP_PLAUSIBLE_100M_YUAN = (1.0, 2.0e5)


def _city_lookup() -> dict[str, int]:
    """Name (zh with and without its suffix, en, pinyin, lower case) or adcode text -> adcode; ambiguous -> -1."""
    out: dict[str, int] = {}

    def put(key: str, code: int) -> None:
        k = key.strip().lower()
        if not k:
            return
        out[k] = code if out.get(k, code) == code else -1

    for row in cities().to_pylist():
        code = int(row["city_adcode"])
        put(str(code), code)
        for name in (row["name_zh"], row["name_en"], row["name_pinyin"]):
            put(str(name), code)
        zh = str(row["name_zh"])
        for suffix in ("市", "地区", "自治州", "盟"):
            if zh.endswith(suffix) and len(zh) > len(suffix) + 1:
                put(zh[: -len(suffix)], code)
    return out


def sample_gdp_path() -> Path:
    """The shipped sample GDP table (2022, 31 cities; see ``data/README.md``)."""
    from importlib.resources import files

    return Path(str(files("truckcarbon.data").joinpath("sample_gdp_2022.csv")))


def read_gdp(path: Path) -> pa.Table:
    """Validated GDP table: ``city_adcode``, ``year``, ``gdp_100m_yuan`` (see the module docstring)."""
    table = read_table(path, "GDP table")
    names = table.column_names
    value_col = "gdp_100m_yuan" if "gdp_100m_yuan" in names else "gdp" if "gdp" in names else None
    missing = [c for c in ("city", "year") if c not in names] + ([] if value_col else ["gdp_100m_yuan"])
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; a GDP table has city, year, gdp_100m_yuan")
    problems: list[str] = []
    if "unit" in names:
        units = pc.cast(table["unit"], pa.string()).to_pylist()
        for i, u in enumerate(units):
            if u is not None and str(u).strip() not in ("亿元", "100 million yuan", "100m yuan"):
                problems.append(f"row {i + 1}: unit {u!r}; give GDP in 亿元 (100 million yuan)")
    lookup = _city_lookup()
    city_text = pc.cast(table["city"], pa.string()).to_pylist()
    years, _ = parse_float64(table["year"].combine_chunks())
    values, _ = parse_float64(table[value_col].combine_chunks())
    codes: list[int] = []
    seen: dict[tuple[int, int], int] = {}
    lo, hi = GDP_PLAUSIBLE_100M_YUAN
    for i, text in enumerate(city_text):
        row = i + 1
        code = lookup.get(str(text).strip().lower(), 0) if text is not None else 0
        if code == 0:
            problems.append(f"row {row}: city {text!r} is not a mainland prefecture-level unit (name or adcode)")
        elif code == -1:
            problems.append(f"row {row}: city {text!r} matches several units; use the adcode")
        y = years[i]
        if not (np.isfinite(y) and 1990 <= y <= 2100 and y == int(y)):
            problems.append(f"row {row}: year {y!r} is not a year")
        v = values[i]
        if not np.isfinite(v) or v <= 0:
            problems.append(f"row {row}: GDP {v!r} is not a positive number")
        elif v > hi:
            guess = "元" if v > 1e9 else "万元"
            problems.append(f"row {row}: GDP {v:,.0f} is too large for 亿元 (is it in {guess}?); convert to 亿元")
        elif v < lo:
            problems.append(f"row {row}: GDP {v} is too small for 亿元 (is it in 万亿元?); convert to 亿元")
        if code > 0 and np.isfinite(y):
            key = (code, int(y))
            if key in seen:
                problems.append(f"row {row}: duplicate of row {seen[key]} (city {code}, year {int(y)})")
            else:
                seen[key] = row
        codes.append(code)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(f"{path}: {len(problems)} problem(s) in the GDP table:\n  {shown}{more}")
    return pa.table(
        {
            "city_adcode": pa.array(codes, pa.int32()),
            "year": pa.array(years.astype(np.int32)),
            "gdp_100m_yuan": pa.array(values),
        }
    )


def top_cities(tables: RunTables, gdp: pa.Table | None = None, n: int = 10) -> pa.Table:
    """Top ``n`` cities per year by operating CO2, with GDP and t CO2 per 亿元 where GDP is known.

    Cities without GDP for that year are kept, with ``gdp_status`` ``missing``.
    """
    gdp = (
        gdp
        if gdp is not None
        else pa.table(
            {
                "city_adcode": pa.array([], pa.int32()),
                "year": pa.array([], pa.int32()),
                "gdp_100m_yuan": pa.array([], pa.float64()),
            }
        )
    )
    return tables.sql(
        """
        WITH yearly AS (
            SELECT CAST(substr(month, 1, 4) AS INTEGER) AS year, city_adcode, sum(co2_t) AS co2_t,
                   count(DISTINCT month) AS months
            FROM inv WHERE view = 'operating' GROUP BY ALL
        ),
        ranked AS (SELECT *, row_number() OVER (PARTITION BY year ORDER BY co2_t DESC, city_adcode) AS rank FROM yearly)
        SELECT r.year, r.rank, r.city_adcode, c.name_zh, c.name_en, c.province_name_zh, r.months, r.co2_t,
               g.gdp_100m_yuan, r.co2_t / g.gdp_100m_yuan AS t_co2_per_100m_yuan,
               CASE WHEN g.gdp_100m_yuan IS NULL THEN 'missing' ELSE 'ok' END AS gdp_status
        FROM ranked r JOIN cities c USING (city_adcode)
        LEFT JOIN gdp g ON g.city_adcode = r.city_adcode AND g.year = r.year
        WHERE r.rank <= ?
        ORDER BY r.year, r.rank
        """,
        [n],
        gdp=gdp,
    )


def registration_vs_operating(tables: RunTables, level: str = "province", year: int | None = None) -> pa.Table:
    """Both views' CO2 by province or city, their ratio and who exports or receives emissions.

    ``ratio`` = registration / operating: above 1 the place's trucks emit more
    elsewhere than trucks emit in it (an **exporter**), below 1 a **receiver**.
    ``year`` restricts to one year (default: all months of the run).
    """
    if level not in ("province", "city"):
        raise InputError(f"level must be 'province' or 'city', not {level!r}")
    key = "province_adcode" if level == "province" else "city_adcode"
    names = (
        "JOIN provinces n ON n.province_adcode = t.adcode"
        if level == "province"
        else "JOIN cities n ON n.city_adcode = t.adcode"
    )
    where = "" if year is None else f"WHERE substr(month, 1, 4) = '{int(year):04d}'"
    return tables.sql(
        f"""
        WITH t AS (
            SELECT {key} AS adcode,
                   sum(co2_t) FILTER (WHERE view = 'operating') AS operating_co2_t,
                   sum(co2_t) FILTER (WHERE view = 'registration') AS registration_co2_t
            FROM inv {where} GROUP BY {key}
        )
        SELECT t.adcode, n.name_zh, n.name_en, coalesce(operating_co2_t, 0) AS operating_co2_t,
               coalesce(registration_co2_t, 0) AS registration_co2_t,
               CASE WHEN coalesce(operating_co2_t, 0) > 0
                    THEN coalesce(registration_co2_t, 0) / operating_co2_t END AS ratio,
               coalesce(registration_co2_t, 0) - coalesce(operating_co2_t, 0) AS net_export_t,
               CASE WHEN coalesce(registration_co2_t, 0) > coalesce(operating_co2_t, 0) THEN 'exporter'
                    WHEN coalesce(registration_co2_t, 0) < coalesce(operating_co2_t, 0) THEN 'receiver'
                    ELSE 'balanced' END AS role
        FROM t {names}
        ORDER BY net_export_t DESC
        """
    )


__all__ = ["read_gdp", "registration_vs_operating", "sample_gdp_path", "top_cities"]
