"""Reference tables of China's administrative units shipped with truckcarbon.

* :func:`cities`: every prefecture-level unit of the boundary data (see
  :mod:`truckcarbon.geo.boundaries`) with adcode, Chinese, English and pinyin
  names, kind, province, centroid, an inner point and area.
* :func:`provinces`: provincial-level units with English name and the
  one-character abbreviation used on number plates.
* :func:`clusters`: membership of the city clusters the analyses use, each row
  with its source.

Hong Kong, Macau and Taiwan are in the tables with ``is_mainland`` false. They
are left out of default accounting: the national telematics platform that the
method relies on covers mainland-registered heavy trucks only, and the source
report's inventory is mainland-only. Coordinates in the tables are WGS-84.
See ``src/truckcarbon/data/README.md`` for how each file was made.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from truckcarbon.core.errors import InputError

_CITY_TYPES = {
    "city_adcode": pa.int32(),
    "province_adcode": pa.int32(),
    "is_mainland": pa.bool_(),
    "centroid_lon": pa.float64(),
    "centroid_lat": pa.float64(),
    "inner_lon": pa.float64(),
    "inner_lat": pa.float64(),
    "area_km2": pa.float64(),
}


def _read(name: str, types: dict[str, pa.DataType]) -> pa.Table:
    path = files("truckcarbon.data").joinpath(name)
    with path.open("rb") as f:
        return pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(column_types=types))


@cache
def _all_cities() -> pa.Table:
    return _read("cities.csv", _CITY_TYPES)


def cities(include_non_mainland: bool = False) -> pa.Table:
    """Prefecture-level units, one row each, sorted by adcode.

    Parameters
    ----------
    include_non_mainland
        Also return Hong Kong, Macau and Taiwan (``is_mainland`` false).
    """
    t = _all_cities()
    return t if include_non_mainland else t.filter(pc.field("is_mainland"))


@cache
def provinces() -> pa.Table:
    """Provincial-level units: adcode, names, plate abbreviation, ``is_mainland``."""
    return _read("provinces.csv", {"province_adcode": pa.int32(), "is_mainland": pa.bool_()})


@cache
def clusters() -> pa.Table:
    """City-cluster membership: ``cluster_id``, names, ``city_adcode``, ``source``."""
    return _read("clusters.csv", {"city_adcode": pa.int32()})


def search_cities(query: str, include_non_mainland: bool = False) -> pa.Table:
    """Units whose adcode, province adcode, Chinese, English or pinyin name matches ``query``.

    A query of digits matches adcodes exactly or by prefix (``"41"`` lists Henan);
    other text matches names case-insensitively as a substring.
    """
    q = query.strip()
    if not q:
        raise InputError("empty search; give part of a name (郑州, zhengzhou) or an adcode (410100)")
    t = cities(include_non_mainland)
    if q.isdigit():
        code = pc.cast(t["city_adcode"], pa.string())
        return t.filter(pc.starts_with(code, q))
    low = q.lower()
    mask = pc.or_(
        pc.match_substring(t["name_zh"], q),
        pc.or_(
            pc.match_substring(pc.utf8_lower(t["name_en"]), low),
            pc.match_substring(pc.utf8_lower(t["name_pinyin"]), low),
        ),
    )
    mask = pc.or_(mask, pc.match_substring(t["province_name_zh"], q))
    return t.filter(mask)


def province_of(city_adcodes: pa.Array | list[int]) -> pa.Array:
    """Province adcode of each city adcode (null where the adcode is not a unit)."""
    t = _all_cities()
    idx = pc.index_in(pa.array(city_adcodes, pa.int32()), value_set=t["city_adcode"])
    return pc.take(t["province_adcode"], idx)


@cache
def plate_prefixes() -> pa.Table:
    """Plate prefixes (province abbreviation + issuing-office letter) of every mainland unit.

    Columns ``plate_prefix``, ``city_adcode``, ``city_name_zh``, ``own_prefix``,
    ``source``. A unit without letters of its own has rows with ``own_prefix``
    false naming the prefix its vehicles carry; every prefix maps back to one unit
    through its ``own_prefix`` row.
    """
    return _read("plate_prefixes.csv", {"city_adcode": pa.int32(), "own_prefix": pa.bool_()})


def city_from_plate(plates: pa.Array | list[str | None]) -> pa.Array:
    """Registration unit adcode from number plates (e.g. ``鲁Q12345`` -> 371300, Linyi).

    Uses the first two characters; null where the plate is missing or its prefix
    is not a mainland prefix (so that callers can count and report such rows).
    """
    t = plate_prefixes().filter(pc.field("own_prefix"))
    arr = pa.array(plates, pa.string()) if not isinstance(plates, pa.Array) else plates
    prefix = pc.utf8_upper(pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(arr), 0, 2))
    idx = pc.index_in(prefix, value_set=t["plate_prefix"])
    return pc.take(t["city_adcode"], idx)
