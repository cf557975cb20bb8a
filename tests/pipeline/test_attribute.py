"""The attribution step of both engines on hand-built fixes: km against our own haversine, months kept,
vehicles attached, what the kernels counted merged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import parse_month
from truckcarbon.geo.locator import CityLocator
from truckcarbon.ingest.vehicles import validate_vehicles
from truckcarbon.pipeline import PipelineConfig
from truckcarbon.pipeline.attribute import STATS, SpillBuffer, Tally, attach_vehicles, attribute
from truckcarbon.pipeline.reading import KERNEL_SCHEMA
from truckcarbon.trajectory.schema import GAP_SCHEMA, KEPT, QUARANTINED

R_KM = 6371.0088
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _haversine_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat[:-1]), np.radians(lat[1:])
    dp, dl = p2 - p1, np.radians(lon[1:] - lon[:-1])
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R_KM * np.arcsin(np.sqrt(a))


def _vehicles() -> pa.Table:
    table = pa.table(
        {
            "vehicle_id": ["truck-a", "truck-b"],
            "plate": ["京A11111", "冀B22222"],
            "emission_standard": ["China V", "China VI"],
            "weight": [2.0, 1.0],
        }
    )
    vehicles, _, _ = validate_vehicles(table, "vehicles")
    return vehicles


def _trip(key: int, t0: int, n: int = 40, lat: float = 39.93) -> tuple[pa.Table, np.ndarray]:
    """Kernel inputs of a truck driving east in central Beijing, a fix every 30 s (about 0.5 km); its lon."""
    lon = 116.28 + 0.006 * np.arange(n)
    columns = {
        "vehicle_id": pa.array(np.full(n, key, np.int64)),
        "t": pa.array(t0 + 30 * np.arange(n, dtype=np.int64)),
        "lon": pa.array(lon),
        "lat": pa.array(np.full(n, lat)),
        "speed": pa.array(np.full(n, 60.0, np.float32)),
        "load": pa.array(np.full(n, -1, np.int8)),
        "fuel": pa.array(np.full(n, np.nan)),
        "odometer": pa.array(np.full(n, np.nan)),
        "acc": pa.array(np.full(n, -1, np.int8)),
        "quarantine": pa.array(np.full(n, -1, np.int8)),
    }
    return pa.table(columns, schema=KERNEL_SCHEMA), lon


def _local(y: int, mo: int, d: int, h: int, mi: int) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).timestamp())


def test_whole_vehicles_are_attributed_and_spilled_with_their_attributes(
    tmp_path: Path, wgs_locator: CityLocator
) -> None:
    a, lon = _trip(0, _local(2022, 3, 10, 9, 0))
    b, _ = _trip(1, _local(2022, 3, 11, 9, 0), lat=39.91)
    km = float(_haversine_km(lon, np.full(lon.size, 39.93)).sum())
    tally = attribute([pa.concat_tables([a, b])], 7, wgs_locator, _vehicles(), None, PipelineConfig(), tmp_path)
    rows = sorted(pq.read_table(tmp_path / "part-000007.parquet").to_pylist(), key=lambda r: r["vehicle_key"])
    assert [(r["vehicle_id"], r["vehicle_key"], r["month"], r["city_adcode"]) for r in rows] == [
        ("truck-a", 0, "2022-03", 110100),
        ("truck-b", 1, "2022-03", 110100),
    ]
    assert rows[0]["distance_km"] == pytest.approx(km, rel=1e-9)
    assert [(r["emission_standard"], r["weight"], r["registration_city_adcode"]) for r in rows] == [
        ("China V", 2.0, 110100),
        ("China VI", 1.0, 130200),  # 冀B: Tangshan, from the plate
    ]
    assert {r["method"] for r in rows} == {"unknown_load"}  # no load state reported
    # Fixes by rule: every fix of both trucks kept, in March only.
    assert list(tally.by_month) == [parse_month("2022-03")]
    counts = tally.by_month[parse_month("2022-03")]
    assert counts.shape == (QUARANTINED,) and counts[KEPT] == 80 and counts.sum() == 80
    assert set(tally.stats) == set(STATS) and tally.stats["unobserved_km"] == 0.0


def test_only_the_months_asked_for_are_kept(tmp_path: Path, wgs_locator: CityLocator) -> None:
    """A trip across midnight at the end of February: its km split between the months; one month kept alone."""
    trip, lon = _trip(0, _local(2022, 2, 28, 23, 50))
    km = float(_haversine_km(lon, np.full(lon.size, 39.93)).sum())
    config = PipelineConfig()
    for sub in ("both", "march"):
        (tmp_path / sub).mkdir()
    both = attribute([trip], 0, wgs_locator, _vehicles(), None, config, tmp_path / "both")
    by_month = {
        r["month"]: r["distance_km"] for r in pq.read_table(tmp_path / "both" / "part-000000.parquet").to_pylist()
    }
    assert set(by_month) == {"2022-02", "2022-03"} and sum(by_month.values()) == pytest.approx(km, rel=1e-9)
    # 10 minutes (20 of the 39 segments) before midnight: about half the km in February.
    assert by_month["2022-02"] == pytest.approx(km * 20 / 39, rel=1e-6)
    march = attribute([trip], 0, wgs_locator, _vehicles(), {parse_month("2022-03")}, config, tmp_path / "march")
    rows = pq.read_table(tmp_path / "march" / "part-000000.parquet").to_pylist()
    assert [(r["month"], r["distance_km"]) for r in rows] == [("2022-03", pytest.approx(by_month["2022-03"]))]
    assert list(march.by_month) == [parse_month("2022-03")] and set(both.by_month) == {
        parse_month("2022-02"),
        parse_month("2022-03"),
    }


def test_a_spill_buffer_writes_the_same_rows_when_flushed(tmp_path: Path, wgs_locator: CityLocator) -> None:
    trip, _ = _trip(1, _local(2022, 3, 10, 9, 0))
    vehicles, config = _vehicles(), PipelineConfig()
    (tmp_path / "direct").mkdir()
    attribute([trip], 4, wgs_locator, vehicles, None, config, tmp_path / "direct")
    held = SpillBuffer(tmp_path / "held", vehicles, config)
    (tmp_path / "held").mkdir()
    attribute([trip], 4, wgs_locator, vehicles, None, config, tmp_path / "held", held)
    assert not list((tmp_path / "held").iterdir())  # fewer rows than SPILL_ROWS: held
    held.flush()
    assert [p.name for p in (tmp_path / "held").iterdir()] == ["part-000001.parquet"]
    direct = pq.read_table(tmp_path / "direct" / "part-000004.parquet")
    assert pq.read_table(tmp_path / "held" / "part-000001.parquet").equals(direct)


def test_tallies_sum_counts_statistics_and_gaps() -> None:
    def gaps(vehicle: int, km: float) -> pa.Table:
        row = {"vehicle_id": vehicle, "month": "2022-03", "from_city_adcode": 110100, "to_city_adcode": 130600}
        row |= {"gaps": 1, "unobserved_km": km, "gap_hours": 5.0, "odometer_gaps": 0, "odometer_km": 0.0}
        return pa.Table.from_pylist([row], schema=GAP_SCHEMA)

    m = parse_month("2022-03")
    total = Tally()
    total.add(Tally({m: np.array([3, 1, 0, 0, 0])}, {"bridged_km": 1.5}, [gaps(0, 10.0)]))
    total.add(Tally({m: np.array([2, 0, 1, 0, 0]), m + 1: np.array([1, 0, 0, 0, 0])}, {"bridged_km": 2.0}))
    total.add(Tally(gaps=[gaps(0, 5.0), gaps(1, 7.0)]))
    assert total.by_month[m].tolist() == [5, 1, 1, 0, 0] and total.by_month[m + 1].tolist() == [1, 0, 0, 0, 0]
    assert total.stats["bridged_km"] == 3.5 and total.stats["unobserved_km"] == 0.0
    summed = total.gaps_table().to_pylist()
    assert [(r["vehicle_id"], r["gaps"], r["unobserved_km"], r["gap_hours"]) for r in summed] == [
        (0, 2, 15.0, 10.0),
        (1, 1, 7.0, 5.0),
    ]
    assert Tally().gaps_table().schema == GAP_SCHEMA and Tally().gap_bins_table().num_rows == 0


def test_activity_of_a_vehicle_not_in_the_table_is_refused() -> None:
    activity = pa.table({"vehicle_id": pa.array([0, 2], pa.int64()), "month": ["2022-03", "2022-03"]})
    with pytest.raises(InputError, match="not in the vehicles table"):
        attach_vehicles(activity, _vehicles(), PipelineConfig())
