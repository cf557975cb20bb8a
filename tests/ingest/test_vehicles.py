"""The vehicles table: standards read in their written forms, registration from the plate, duplicates and
the quarantine."""

from __future__ import annotations

import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.vehicles import REASONS, standard_code, validate_vehicles, vehicle_ids


@pytest.mark.parametrize(
    ("text", "code"),
    [("China V", 2), ("国五", 2), ("V", 2), ("5", 2), ("china 5", 2), ("Euro VI", 3), ("国三", 0), (" IV ", 1),
     ("VII", -1), ("", -1), (None, -1)],
)  # fmt: skip
def test_standard_code(text, code):
    assert standard_code(text) == code


def test_vehicles_are_validated_and_the_rest_quarantined_with_reasons():
    table = pa.table(
        {
            "vehicle_id": ["b", "a", None, "c", "d", "d", "e", "e", "f"],
            "plate": ["京A1", "豫A2", "京A3", "京A4", "京A5", "京A6", "沪A7", "沪A7", "京A9"],
            "emission_standard": ["国五", "China VI", "V", "Euro 9", "V", "V", "IV", "IV", "V"],
            "weight": ["2", "", "1", "1", "1", "1", "1", "1", "-1"],
        }
    )
    vehicles, quarantine, counts = validate_vehicles(table, "v.csv")
    # kept in key (text) order: a, b, e (its identical repeat kept once)
    assert vehicles["vehicle_id"].to_pylist() == ["a", "b", "e"]
    assert vehicles["registration_city_adcode"].to_pylist() == [410100, 110100, 310100]  # from the plates
    assert vehicles["registration_source"].to_pylist() == ["plate"] * 3
    assert vehicles["standard_code"].to_pylist() == [3, 2, 1] and vehicles["weight"].to_pylist() == [1.0, 2.0, 1.0]
    got = sorted(zip(quarantine["source_row"].to_pylist(), quarantine["reason"].to_pylist(), strict=True))
    assert got == [
        (3, "missing_vehicle_id"),
        (4, "unknown_emission_standard"),
        (5, "duplicate_vehicle_id"),
        (6, "duplicate_vehicle_id"),
        (9, "bad_weight"),
    ]
    assert quarantine.column_names == ["vehicle_id", "plate", "emission_standard", "weight", "reason", "source_file",
                                       "source_row"]  # fmt: skip
    assert set(quarantine["source_file"].to_pylist()) == {"v.csv"}
    assert (counts.rows, counts.kept, counts.identical_duplicates, counts.conflicting_ids) == (9, 3, 1, ["d"])
    assert counts.quarantined == {**dict.fromkeys(REASONS, 0), "missing_vehicle_id": 1, "duplicate_vehicle_id": 2,
                                  "unknown_emission_standard": 1, "bad_weight": 1}  # fmt: skip
    ids = vehicle_ids(vehicles, counts)
    assert ids.keys(pa.array(["e", "a", "d", "zz"]), "x").tolist()[:2] == [2, 0]


def test_a_declared_city_wins_over_the_plate_and_an_unknown_one_is_set_aside():
    table = pa.table(
        {
            "vehicle_id": [1, 2],
            "plate": ["京A1", "京A2"],
            "emission_standard": ["V", "V"],
            "registration_city_adcode": [440100, 999999],
        }
    )
    vehicles, quarantine, counts = validate_vehicles(table, "v.parquet")
    assert vehicles["vehicle_id"].to_pylist() == ["1"] and vehicles["registration_city_adcode"].to_pylist() == [440100]
    assert vehicles["registration_source"].to_pylist() == ["table"]
    assert quarantine["reason"].to_pylist() == ["unknown_registration_city"] and counts.registration_from_plate == 0


def test_missing_columns_are_clear_errors():
    with pytest.raises(InputError, match=r"v\.csv: missing column\(s\) emission_standard"):
        validate_vehicles(pa.table({"vehicle_id": ["a"], "plate": ["京A1"]}), "v.csv")
    with pytest.raises(InputError, match="needs registration_city_adcode or plate"):
        validate_vehicles(pa.table({"vehicle_id": ["a"], "emission_standard": ["V"]}), "v.csv")
    # keyed by plate when there is no id column
    vehicles, _, _ = validate_vehicles(pa.table({"plate": ["京A1"], "emission_standard": ["V"]}), "v.csv")
    assert vehicles["vehicle_id"].to_pylist() == ["京A1"]


def test_vehicle_class_and_fuel_type_in_their_written_forms_and_the_unknown_ones_set_aside() -> None:
    table = pa.table({
        "vehicle_id": ["a", "b", "c", "d", "e", "f"],
        "emission_standard": ["国五"] * 6,
        "registration_city_adcode": pa.array([110100] * 6, pa.int32()),
        "vehicle_class": ["牵引车", "厢式货车", None, "tractor", "bicycle", ""],
        "fuel_type": ["LNG", "纯电动", "", "氢燃料电池", "柴油", "汽油"],
    })  # fmt: skip
    vehicles, quarantine, counts = validate_vehicles(table, "vehicles.csv")
    got = {r["vehicle_id"]: (r["class_code"], r["fuel_type"], r["fuel_code"]) for r in vehicles.to_pylist()}
    assert got == {"a": (0, "LNG", 1), "b": (1, "electric", 3), "c": (0, "diesel", 0), "d": (0, "hydrogen", 4)}
    assert dict(zip(quarantine["vehicle_id"].to_pylist(), quarantine["reason"].to_pylist(), strict=True)) == {
        "e": "unknown_vehicle_class", "f": "unknown_fuel_type"
    }  # fmt: skip
    assert counts.quarantined["unknown_fuel_type"] == 1 and counts.quarantined["unknown_vehicle_class"] == 1
