"""A pre-aggregated activity table: read as kernel activity rows, or refused at its first bad value."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.activity import read_activity
from truckcarbon.ingest.ids import VehicleIds
from truckcarbon.ingest.vehicles import validate_vehicles, vehicle_ids
from truckcarbon.trajectory.schema import ACTIVITY_COLUMNS, SPEED_COLUMNS


def _ids() -> VehicleIds:
    table = pa.table(
        {"vehicle_id": ["鲁A1", "鲁A2"], "plate": ["鲁A12345", "鲁A54321"], "emission_standard": ["V", "VI"]}
    )
    vehicles, _, counts = validate_vehicles(table, "vehicles")
    return vehicle_ids(vehicles, counts)


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_become_kernel_activity_of_unknown_load(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "a.csv",
        "vehicle_id,month,city_adcode,distance_km,fuel_l\n鲁A2,2022-03,370100,120.5,40\n鲁A1, 2022-3 ,0,7,\n",
    )
    table = read_activity(path, _ids())
    assert tuple(table.column_names) == tuple(c for c in ACTIVITY_COLUMNS if c not in SPEED_COLUMNS)
    rows = table.to_pylist()
    assert [(r["vehicle_id"], r["month"], r["city_adcode"], r["distance_km"]) for r in rows] == [
        (1, "2022-03", 370100, 120.5),  # the run's key of 鲁A2 (its row in the vehicles table)
        (0, "2022-03", 0, 7.0),  # outside the mainland; the month written as YYYY-MM
    ]
    assert [r["distance_km_unknown_load"] for r in rows] == [120.5, 7.0]
    assert all(r["distance_km_empty"] == r["distance_km_half"] == r["distance_km_full"] == 0 for r in rows)
    # Measured fuel where given, over the km it covers.
    assert [(r["fuel_measured_l"], r["distance_km_fuel_measured"]) for r in rows] == [(40.0, 120.5), (0.0, 0.0)]
    assert table["gps_noise_m"].null_count == 2 and table["fix_interval_s"].null_count == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("鲁A9,2022-03,370100,1,", "row 1, column vehicle_id: '鲁A9' is not a vehicle of the vehicles table"),
        ("鲁A1,2022-03,370199,1,", "row 1, column city_adcode: 370199.0 is not a mainland unit adcode"),
        ("鲁A1,2022-03,370100,-1,", "row 1, column distance_km: -1.0 is not a distance >= 0"),
        ("鲁A1,2022-03,370100,x,", "row 1, column distance_km: nan is not a distance >= 0"),
        ("鲁A1,2022-13,370100,1,", "row 1, column month: unknown month '2022-13'"),
        ("鲁A1,2022-03,370100,1,-2", "row 1, column fuel_l: not a fuel quantity >= 0"),
    ],
)
def test_a_bad_value_is_refused_naming_its_row_and_column(tmp_path: Path, row: str, message: str) -> None:
    path = _csv(tmp_path / "a.csv", f"vehicle_id,month,city_adcode,distance_km,fuel_l\n{row}\n")
    with pytest.raises(InputError) as err:
        read_activity(path, _ids())
    assert str(err.value).startswith(f"{path}: {message}")


def test_a_missing_column_names_the_columns_needed(tmp_path: Path) -> None:
    path = _csv(tmp_path / "a.csv", "vehicle_id,month,distance_km\n鲁A1,2022-03,1\n")
    with pytest.raises(InputError, match="missing column city_adcode; activity needs vehicle_id, month, city_adcode"):
        read_activity(path, _ids())
