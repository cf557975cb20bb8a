"""Column names of real exports mapped to the contract names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.columns import (
    ALIASES,
    CONTRACT,
    PINGS_COLUMNS,
    VEHICLES_COLUMNS,
    alias_table,
    column_map_from_table,
    map_columns,
    normalise_header,
    parse_column_map,
)
from truckcarbon.ingest.typed import PING_COLUMNS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "inputs.md"


# ---------------------------------------------------------------- the alias table


def test_contract_names_are_the_ingest_contract() -> None:
    assert set(PINGS_COLUMNS) == set(PING_COLUMNS)
    assert set(CONTRACT) == set(ALIASES) == {"pings", "vehicles"}
    assert set(ALIASES["pings"]) == set(PINGS_COLUMNS)
    assert set(ALIASES["vehicles"]) == set(VEHICLES_COLUMNS)


@pytest.mark.parametrize("kind", ["pings", "vehicles"])
def test_every_alias_reads_as_one_column_only(kind: str) -> None:
    """No header is an alias of two columns of a kind, nor a (normalised) contract name."""
    seen: dict[str, str] = {normalise_header(c): c for c in CONTRACT[kind]}
    for target, _, alias in alias_table(kind):
        key = normalise_header(alias)
        assert seen.setdefault(key, target) == target, (alias, target, seen[key])


@pytest.mark.parametrize("kind", ["pings", "vehicles"])
def test_the_docs_list_every_alias(kind: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [alias for _, _, alias in alias_table(kind) if f"`{alias}`" not in text]
    assert not missing


# ---------------------------------------------------------------- built-in aliases


def test_chinese_platform_headers_map_to_the_pings_contract() -> None:
    names = ["车辆ID", "GPS时间", "经度", "纬度", "速度(km/h)", "载重状态", "总里程", "剩余油量", "备注"]
    assert map_columns(names, kind="pings") == {
        "车辆ID": "vehicle_id",
        "GPS时间": "ts",
        "经度": "lon",
        "纬度": "lat",
        "速度(km/h)": "speed_kmh",
        "载重状态": "load_state",
        "总里程": "odometer_km",
        "剩余油量": "fuel_level_l",
    }


def test_english_variants_map_to_the_pings_contract() -> None:
    names = ["vid", "gps_time", "lng", "latitude", "speed"]
    assert map_columns(names) == {
        "vid": "vehicle_id",
        "gps_time": "ts",
        "lng": "lon",
        "latitude": "lat",
        "speed": "speed_kmh",
    }


def test_headers_compare_without_case_spaces_bom_or_full_width_forms() -> None:
    names = ["\ufeff Vehicle ID ", "GPS Time", "LNG", "Latitude", "速度（KM/H）", "TS_extra"]
    assert map_columns(names) == {
        "\ufeff Vehicle ID ": "vehicle_id",
        "GPS Time": "ts",
        "LNG": "lon",
        "Latitude": "lat",
        "速度（KM/H）": "speed_kmh",
    }


def test_contract_names_in_the_file_win_over_aliases() -> None:
    names = ["vehicle_id", "ts", "lon", "lat", "GPS时间", "经度", "车牌号"]
    assert map_columns(names) == {}


def test_a_plate_is_the_pings_vehicle_id_only_without_an_id_column() -> None:
    assert map_columns(["车牌号", "GPS时间", "经度", "纬度"])["车牌号"] == "vehicle_id"
    with_id = map_columns(["车牌号", "终端手机号", "GPS时间", "经度", "纬度"])
    assert with_id["终端手机号"] == "vehicle_id" and "车牌号" not in with_id


def test_a_plate_in_a_vehicles_file_is_the_plate() -> None:
    names = ["车辆编号", "车牌号码", "排放阶段", "注册城市代码", "权重"]
    assert map_columns(names, kind="vehicles") == {
        "车辆编号": "vehicle_id",
        "车牌号码": "plate",
        "排放阶段": "emission_standard",
        "注册城市代码": "registration_city_adcode",
        "权重": "weight",
    }


def test_the_fix_time_wins_over_a_report_time() -> None:
    assert map_columns(["vid", "上报时间", "定位时间", "经度", "纬度"])["定位时间"] == "ts"


def test_no_aliases_without_a_kind() -> None:
    assert map_columns(["车辆ID", "time", "city"], kind=None) == {}
    assert map_columns(["车辆ID", "time"], {"车辆ID": "id_of_vehicle"}, kind=None) == {"车辆ID": "id_of_vehicle"}


def test_two_columns_of_one_tier_are_refused_with_what_to_do() -> None:
    with pytest.raises(InputError) as err:
        map_columns(["车辆ID", "设备号", "GPS时间", "经度", "纬度"], source="p.csv")
    msg = str(err.value)
    assert msg.startswith("p.csv: ") and "车辆ID and 设备号" in msg and "--columns 车辆ID=vehicle_id" in msg
    with pytest.raises(InputError, match="速度 and GPS速度 could each be speed_kmh"):
        map_columns(["vid", "ts", "lon", "lat", "速度", "GPS速度"])


def test_a_header_written_twice_is_refused() -> None:
    with pytest.raises(InputError, match=re.escape("p.csv: the header has column 经度 more than once")):
        map_columns(["vid", "ts", "经度", "经度", "lat"], source="p.csv")


# ---------------------------------------------------------------- the user's mapping


def test_the_users_mapping_wins_over_the_aliases() -> None:
    names = ["车辆ID", "车牌号", "GPS时间", "时间", "经度", "纬度"]
    got = map_columns(names, {"车牌号": "vehicle_id", "时间": "ts"})
    assert got == {"车牌号": "vehicle_id", "时间": "ts", "经度": "lon", "纬度": "lat"}


def test_the_users_headers_compare_like_the_files() -> None:
    assert map_columns([" 终端ID ", "t"], {"终端id": "vehicle_id", "T": "ts"}) == {" 终端ID ": "vehicle_id", "t": "ts"}


def test_a_users_column_the_file_lacks_is_refused() -> None:
    with pytest.raises(InputError) as err:
        map_columns(["vid", "ts", "lon", "lat"], {"车辆ID": "vehicle_id"}, source="p.csv")
    msg = str(err.value)
    assert msg.startswith("p.csv: ") and "车辆ID" in msg and "vid, ts, lon, lat" in msg and "correct or remove" in msg


def test_a_users_name_that_is_not_a_contract_column_is_refused() -> None:
    with pytest.raises(InputError, match=r"'vehicleid', which is not a pings column; the pings columns are vehicle_id"):
        map_columns(["车辆ID"], {"车辆ID": "vehicleid"})


def test_a_users_mapping_onto_a_column_the_file_has_is_refused() -> None:
    with pytest.raises(InputError, match=r"from 车牌号, but the file has a column vehicle_id too"):
        map_columns(["vehicle_id", "车牌号", "ts", "lon", "lat"], {"车牌号": "vehicle_id"})


def test_a_user_mapping_naming_the_contract_name_itself_is_kept() -> None:
    assert map_columns(["vehicle_id", "ts"], {"vehicle_id": "vehicle_id"}) == {}


# ---------------------------------------------------------------- --columns and [columns]


def test_parse_column_map() -> None:
    assert parse_column_map("车辆ID=vehicle_id, GPS时间 = ts,") == {"车辆ID": "vehicle_id", "GPS时间": "ts"}
    assert parse_column_map("车辆ID＝vehicle_id，经度=lon") == {"车辆ID": "vehicle_id", "经度": "lon"}
    assert parse_column_map("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("车辆ID", "'车辆ID' has no '='; write SOURCE=COLUMN"),
        ("=vehicle_id", "needs a source header and a column name"),
        ("车辆ID=", "needs a source header and a column name"),
        ("a=ts,a=lon", "a is mapped twice"),
        ("a=ts,b=ts", "both a and b are mapped to ts"),
    ],
)
def test_parse_column_map_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)) as err:
        parse_column_map(text)
    assert str(err.value).startswith("--columns: ")


def test_column_map_from_table() -> None:
    assert column_map_from_table({"车辆ID": "vehicle_id", " 经度 ": "lon"}) == {"车辆ID": "vehicle_id", "经度": "lon"}
    with pytest.raises(InputError, match=r"\[columns\]: must be a table"):
        column_map_from_table(["车辆ID"])
    with pytest.raises(InputError, match="both must be text"):
        column_map_from_table({"车辆ID": 3})
