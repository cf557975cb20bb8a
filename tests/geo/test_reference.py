"""The shipped unit, province and cluster tables."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.geo.boundaries import read_units_index
from truckcarbon.geo.reference import cities, clusters, province_of, provinces, search_cities


def test_cities_table_matches_the_boundary_data():
    t = cities(include_non_mainland=True)
    assert t["city_adcode"].to_pylist() == read_units_index()["adcode"].to_pylist()
    assert cities().num_rows == 367
    non_mainland = t.filter(pc.invert(t["is_mainland"]))["city_adcode"].to_pylist()
    assert sorted(non_mainland) == [710000, 810000, 820000]
    for col in ("name_zh", "name_en", "name_pinyin", "kind"):
        assert t[col].null_count == 0
    assert pc.min(t["area_km2"]).as_py() > 0


def test_known_areas_and_names():
    t = {r["city_adcode"]: r for r in cities().to_pylist()}
    # Official areas: Beijing 16,410 km2, Tianjin 11,966 km2, Chongqing 82,400 km2 (Shanghai is
    # larger in the boundary data than its official 6,340 km2: its polygon takes in tidal flats).
    assert t[110100]["area_km2"] == pytest.approx(16410, rel=0.02)
    assert t[120100]["area_km2"] == pytest.approx(11966, rel=0.02)
    assert t[500000]["area_km2"] == pytest.approx(82400, rel=0.02)
    assert t[411100]["name_en"] == "Luohe"
    assert t[222400]["name_en"] == "Yanbian"
    assert t[429021]["kind"].startswith("province-administered")
    assert t[110100]["kind"] == "municipality"


def test_provinces():
    p = provinces()
    assert p.num_rows == 34
    abbr = p["abbreviation"].to_pylist()
    assert len(set(abbr)) == 34
    row = p.filter(pc.equal(p["province_adcode"], 370000)).to_pylist()[0]
    assert (row["abbreviation"], row["name_en"]) == ("鲁", "Shandong")


def test_clusters():
    c = clusters()
    sizes = {k: c.filter(pc.equal(c["cluster_id"], k)).num_rows for k in ("jjj", "yrd", "prd")}
    assert sizes == {"jjj": 13, "yrd": 27, "prd": 9}
    assert c["source"].null_count == 0
    prov = dict(zip(cities()["city_adcode"].to_pylist(), cities()["province_adcode"].to_pylist(), strict=True))
    members = {k: c.filter(pc.equal(c["cluster_id"], k))["city_adcode"].to_pylist() for k in sizes}
    assert all(code in prov for m in members.values() for code in m)
    assert {prov[x] for x in members["prd"]} == {440000}
    assert {prov[x] for x in members["jjj"]} == {110000, 120000, 130000}
    assert sum(prov[x] == 130000 for x in members["jjj"]) == 11
    assert {prov[x] for x in members["yrd"]} == {310000, 320000, 330000, 340000}


def test_search():
    assert search_cities("郑州")["city_adcode"].to_pylist() == [410100]
    assert search_cities("zhengzhou")["city_adcode"].to_pylist() == [410100]
    assert search_cities("410100")["city_adcode"].to_pylist() == [410100]
    assert search_cities("41").num_rows == 18  # Henan: 17 cities and Jiyuan
    assert search_cities("Hong Kong").num_rows == 0
    assert search_cities("Hong Kong", include_non_mainland=True).num_rows == 1
    with pytest.raises(InputError):
        search_cities("  ")


def test_province_of():
    assert province_of([410100, 999999, 500000]).to_pylist() == [410000, None, 500000]


def test_plate_prefixes_cover_every_mainland_unit_once():
    from truckcarbon.geo.reference import plate_prefixes

    p = plate_prefixes()
    assert set(p["city_adcode"].to_pylist()) == set(cities()["city_adcode"].to_pylist())
    owned = p.filter(pc.field("own_prefix"))["plate_prefix"].to_pylist()
    assert len(owned) == len(set(owned))
    assert all(len(x) == 2 for x in p["plate_prefix"].to_pylist())
    assert p["source"].null_count == 0


def test_city_from_plate():
    from truckcarbon.geo.reference import city_from_plate

    got = city_from_plate(
        ["鲁Q12345", "鲁A0001", "冀J88888", "京A12345", " 粤b12345", "新N1234", "XX123", None, "港A1"]
    )
    assert got.to_pylist() == [371300, 370100, 130900, 110100, 440300, 652900, None, None, None]
