"""CO2 of hand-built trips equals a hand computation of the report's formula.

Expected values are computed here from first principles: our own haversine,
the published rates read from the factor CSV, Shapely on the boundary polygons
for where a border lies. Nothing is copied from the code under test.
"""

from __future__ import annotations

import csv
import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from truckcarbon.core.errors import InputError
from truckcarbon.geo.boundaries import load_unit_geometries
from truckcarbon.pipeline import PipelineConfig, run_pipeline

R_KM = 6371.0088
EF = 2.6765  # kg CO2 per litre of diesel, the source report's value
LOCAL = 8 * 3600
BEIJING_INNER = (116.40, 39.93)  # Dongcheng, well inside Beijing (GCJ-02 and WGS-84 alike)


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(a))


def published_rate(standard: str, load: str, speed: int = 60) -> float:
    text = files("truckcarbon.data").joinpath("factors", "fuel_rates.csv").read_text(encoding="utf-8")
    for row in csv.DictReader(text.splitlines()):
        key = (row["emission_standard"], row["load_state"], int(row["reference_speed_kmh"]))
        if key == (standard, load, speed):
            return float(row["fuel_rate_l_per_100km"])
    raise KeyError((standard, load))


def local_epoch(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> int:
    import datetime as dt

    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.UTC).timestamp()) - LOCAL


def straight_trip(n: int = 40, step_deg: float = 0.006, t0: int | None = None) -> dict[str, np.ndarray]:
    """A truck driving east in central Beijing, one fix every 30 s (about 0.5 km, 61 km/h)."""
    t0 = t0 if t0 is not None else local_epoch(2022, 3, 10, 9, 0)
    lon = BEIJING_INNER[0] + step_deg * np.arange(n) - step_deg * n / 2
    lat = np.full(n, BEIJING_INNER[1])
    return {"t": t0 + 30 * np.arange(n), "lon": lon, "lat": lat}


def trip_km(trip: dict[str, np.ndarray]) -> float:
    x, y = trip["lon"], trip["lat"]
    return sum(haversine(x[i], y[i], x[i + 1], y[i + 1]) for i in range(x.size - 1))


def write_world(
    tmp: Path, rows: list[dict[str, object]], standards: dict[int, str], plates: dict[int, str] | None = None
) -> tuple[Path, Path]:
    pings = tmp / "pings.parquet"
    table = pa.Table.from_pylist(rows)
    ts = pa.array([int(str(r["ts"])) * 1000 for r in rows], pa.timestamp("ms", "UTC"))
    table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
    pq.write_table(table, pings)
    vehicles = tmp / "vehicles.csv"
    lines = ["vehicle_id,plate,emission_standard,weight"]
    for vid, std in standards.items():
        lines.append(f"{vid},{(plates or {}).get(vid, '京A12345')},{std},2.5")
    vehicles.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pings, vehicles


def rows_of(vid: int, trip: dict[str, np.ndarray], **channels: np.ndarray | list[object]) -> list[dict[str, object]]:
    out = []
    for i in range(trip["t"].size):
        row: dict[str, object] = {
            "vehicle_id": vid,
            "ts": int(trip["t"][i]),
            "lon": float(trip["lon"][i]),
            "lat": float(trip["lat"][i]),
            "speed_kmh": 60.0,
        }
        for name, values in channels.items():
            row[name] = values[i]
        out.append(row)
    return out


def activity(run: Path) -> pa.Table:
    return pq.read_table(run / "activity")


def test_known_load_states_use_each_states_rate(tmp_path: Path) -> None:
    trip = straight_trip()
    n = trip["t"].size
    # State of a segment = the state reported at its end fix: first half empty, then full.
    load = ["empty"] * (n // 2) + ["full"] * (n - n // 2)
    pings, vehicles = write_world(tmp_path, rows_of(1, trip, load_state=load), {1: "China V"})
    run_pipeline(pings, vehicles, tmp_path / "run")
    x, y = trip["lon"], trip["lat"]
    km_empty = sum(haversine(x[i], y[i], x[i + 1], y[i + 1]) for i in range(0, n // 2 - 1))
    km_full = sum(haversine(x[i], y[i], x[i + 1], y[i + 1]) for i in range(n // 2 - 1, n - 1))
    fuel = km_empty * published_rate("China V", "empty") / 100 + km_full * published_rate("China V", "full") / 100
    a = activity(tmp_path / "run").to_pylist()
    assert len(a) == 1 and a[0]["city_adcode"] == 110100
    assert a[0]["method"] == "load_state"
    assert a[0]["distance_km"] == pytest.approx(km_empty + km_full, rel=1e-9)
    assert a[0]["co2_kg"] == pytest.approx(fuel * EF, rel=1e-9)
    inv = pq.read_table(tmp_path / "run" / "inventory").to_pylist()
    for view in ("operating", "registration"):
        (row,) = [r for r in inv if r["view"] == view]
        assert row["co2_t_unweighted"] == pytest.approx(fuel * EF / 1000, rel=1e-9)
        assert row["co2_t"] == pytest.approx(2.5 * fuel * EF / 1000, rel=1e-9)  # weight 2.5
        assert row["vehicles"] == 1 and row["emission_standard"] == "China V"
        assert row["province_adcode"] == 110000


def test_unknown_load_uses_the_reports_weights(tmp_path: Path) -> None:
    trip = straight_trip()
    pings, vehicles = write_world(tmp_path, rows_of(7, trip), {7: "国四"})
    run_pipeline(pings, vehicles, tmp_path / "run")
    rate = 0.4 * published_rate("China IV", "empty") + 0.6 * published_rate("China IV", "full")
    (row,) = activity(tmp_path / "run").to_pylist()
    assert row["method"] == "unknown_load" and row["emission_standard"] == "China IV"
    assert row["co2_kg"] == pytest.approx(trip_km(trip) * rate / 100 * EF, rel=1e-9)


def test_measured_fuel_with_a_refuel(tmp_path: Path) -> None:
    trip = straight_trip(n=60)
    n = trip["t"].size
    # The gauge falls 0.2 L per fix, the truck refuels (+300 L) at fix 30.
    level = 400.0 - 0.2 * np.arange(n)
    level[30:] += 300.0
    pings, vehicles = write_world(tmp_path, rows_of(3, trip, fuel_level_l=level), {3: "China VI"})
    measured = PipelineConfig.from_dict({"emissions": {"method": "measured"}})
    run_pipeline(pings, vehicles, tmp_path / "run", config=measured)
    (row,) = activity(tmp_path / "run").to_pylist()
    assert row["method"] == "measured_fuel"
    # 58 segments measured at 0.2 L; the refuel segment's fuel comes from the report rate.
    x, y = trip["lon"], trip["lat"]
    refuel_km = haversine(x[29], y[29], x[30], y[30])
    rate = 0.4 * published_rate("China VI", "empty") + 0.6 * published_rate("China VI", "full")
    expected_l = 58 * 0.2 + refuel_km * rate / 100
    assert row["fuel_l"] == pytest.approx(expected_l, rel=1e-9)
    assert row["co2_kg"] == pytest.approx(expected_l * EF, rel=1e-9)
    # The report method (the default) ignores the gauge; the gauge path's fuel is still on the row.
    run_pipeline(pings, vehicles, tmp_path / "report")
    (row,) = activity(tmp_path / "report").to_pylist()
    assert row["method"] == "unknown_load"
    assert row["fuel_l"] == pytest.approx(trip_km(trip) * rate / 100, rel=1e-9) == row["fuel_l_report"]
    assert row["fuel_l_measured"] == pytest.approx(expected_l, rel=1e-9)
    # The old setting is refused with what replaces it.
    with pytest.raises(InputError, match='method = "measured"'):
        PipelineConfig.from_dict({"emissions": {"fuel_source": "auto"}})


def _border_crossing() -> tuple[tuple[float, float], tuple[float, float], int, int, float]:
    """Two points 0.02 deg apart on either side of a Beijing border, and the crossing's parameter."""
    geoms = load_unit_geometries([110100])
    beijing = geoms[110100]
    ring = np.asarray(shapely.get_coordinates(shapely.boundary(beijing)))
    from truckcarbon.geo.locator import CityLocator

    loc = CityLocator("gcj02")
    for vx, vy in ring[:: max(1, ring.shape[0] // 400)]:
        p, q = (vx - 0.014, vy), (vx + 0.006, vy)  # the border 70% of the way, after midnight
        a, b = loc.locate(np.array([p[0], q[0]]), np.array([p[1], q[1]])).tolist()
        if a != b and a > 0 and b > 0 and (a // 10000 == 11) != (b // 10000 == 11):
            line = shapely.LineString([p, q])
            inside = shapely.intersection(line, beijing)
            if inside.geom_type != "LineString":
                continue  # the line crosses the border more than once: pick a simpler vertex
            coords = shapely.get_coordinates(inside)
            if a // 10000 == 11:
                u = float(np.max(np.abs(coords[:, 0] - p[0])) / 0.02)
            else:
                u = float(1 - np.max(np.abs(coords[:, 0] - q[0])) / 0.02)
            return p, q, int(a), int(b), u
    raise AssertionError("no simple Beijing border crossing found")


def test_border_crossing_at_midnight_at_month_end(tmp_path: Path) -> None:
    p, q, city_p, city_q, u = _border_crossing()
    t_p = local_epoch(2022, 1, 31, 23, 59, 0)
    t_q = t_p + 120  # the month ends half-way: 2022-02-01 00:00:00 local
    rows = [
        {"vehicle_id": 5, "ts": t_p, "lon": p[0], "lat": p[1], "speed_kmh": 60.0},
        {"vehicle_id": 5, "ts": t_q, "lon": q[0], "lat": q[1], "speed_kmh": 60.0},
    ]
    pings, vehicles = write_world(tmp_path, rows, {5: "China V"})
    run_pipeline(pings, vehicles, tmp_path / "run", config=PipelineConfig(crs="gcj02"))
    d = haversine(p[0], p[1], q[0], q[1])
    expected = {}
    for month, lo, hi in (("2022-01", 0.0, 0.5), ("2022-02", 0.5, 1.0)):
        in_p = max(0.0, min(hi, u) - lo)
        in_q = max(0.0, hi - max(lo, u))
        for city, share in ((city_p, in_p), (city_q, in_q)):
            if share > 0:
                expected[(month, city)] = d * share
    got = {(r["month"], r["city_adcode"]): r["distance_km"] for r in activity(tmp_path / "run").to_pylist()}
    assert set(got) == set(expected)
    for key, km in expected.items():
        assert got[key] == pytest.approx(km, rel=1e-6, abs=1e-6)
    rate = 0.4 * published_rate("China V", "empty") + 0.6 * published_rate("China V", "full")
    inv = pq.read_table(tmp_path / "run" / "inventory").to_pylist()
    jan = sum(r["co2_t_unweighted"] for r in inv if r["month"] == "2022-01" and r["view"] == "operating")
    assert jan * 1000 == pytest.approx(d * 0.5 * rate / 100 * EF, rel=1e-6)
    # Registration view: everything in the plate's city (京A -> Beijing), both months.
    reg = [r for r in inv if r["view"] == "registration"]
    assert {r["city_adcode"] // 10000 for r in reg} == {11}
    assert sum(r["co2_t_unweighted"] for r in reg) * 1000 == pytest.approx(d * rate / 100 * EF, rel=1e-6)
