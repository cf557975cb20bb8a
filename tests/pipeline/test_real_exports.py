"""Files shaped like real platform and fleet exports, each built here: read correctly or refused clearly.

Each test asserts exact counts and reasons; kilometres are checked against the haversine of the fixes
(computed here), never against numbers taken from the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.core.errors import InputError
from truckcarbon.geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from truckcarbon.pipeline import run_pipeline

T0 = 1646870400  # 2022-03-10 08:00:00 local (00:00 UTC)


def _track(n: int = 40, lon0: float = 117.00, lat0: float = 36.65, step_s: int = 30) -> list[tuple[int, float, float]]:
    """A truck in Jinan driving east at about 60 km/h: (epoch s, lon, lat)."""
    dlon = 0.5 / (111.32 * math.cos(math.radians(lat0)))  # 0.5 km per 30 s
    return [(T0 + i * step_s, lon0 + i * dlon, lat0) for i in range(n)]


def _haversine_km(lon: np.ndarray, lat: np.ndarray) -> float:
    r = 6371.0088
    p1, p2 = np.radians(lat[:-1]), np.radians(lat[1:])
    dp, dl = p2 - p1, np.radians(lon[1:] - lon[:-1])
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return float(np.sum(2 * r * np.arcsin(np.sqrt(a))))


def _vehicles(path: Path, ids: list[str], plates: list[str] | None = None) -> Path:
    plates = plates or ["鲁A12345"] * len(ids)
    lines = ["vehicle_id,plate,emission_standard"] + [f"{v},{p},国五" for v, p in zip(ids, plates, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _activity(run: Path) -> pa.Table:
    return pq.read_table(run / "activity")


def _quarantine(run: Path) -> list[dict[str, object]]:
    folder = run / "quarantine" / "pings"
    return pq.read_table(folder).to_pylist() if folder.exists() else []


# ------------------------------------------------------------------ identifiers


def test_text_plate_and_phone_ids_are_kept_exactly(tmp_path: Path) -> None:
    ids = ["geolife-000", "鲁A12345", "013912345678", "12345678901234567", "12345678901234568"]
    rows = ["vehicle_id,ts,lon,lat"]
    for k, v in enumerate(ids):
        rows += [f"{v},{t},{x:.6f},{y + 0.01 * k:.6f}" for t, x, y in _track()]
    pings = tmp_path / "pings.csv"
    pings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ids), tmp_path / "run")
    act = _activity(tmp_path / "run")
    assert sorted(set(act["vehicle_id"].to_pylist())) == sorted(ids)  # leading zero and 17 digits kept
    assert summary.pings_read == 5 * 40 and summary.pings_quarantined == 0
    per_vehicle: dict[str, float] = {}
    for r in act.to_pylist():
        per_vehicle[r["vehicle_id"]] = per_vehicle.get(r["vehicle_id"], 0.0) + r["distance_km"]
    t = np.array(_track())
    want = _haversine_km(t[:, 1], t[:, 2])
    # the two 17-digit ids differ by one: they must not collide (a float64 cast would merge them)
    assert all(per_vehicle[v] == pytest.approx(want, rel=1e-3) for v in ids)


def test_text_ids_in_parquet_and_integer_ids_against_text_vehicles(tmp_path: Path) -> None:
    track = _track()
    pings = tmp_path / "pings.parquet"
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array(["013912345678"] * 40 + ["7"] * 40).dictionary_encode(),
                "ts": pa.array([t for t, _, _ in track] * 2, pa.int64()),
                "lon": [x for _, x, _ in track] * 2,
                "lat": [y for _, _, y in track] * 2,
            }
        ),
        pings,
    )
    vehicles = _vehicles(tmp_path / "v.csv", ["013912345678", "7"])
    run_pipeline(pings, vehicles, tmp_path / "run")
    assert sorted(set(_activity(tmp_path / "run")["vehicle_id"].to_pylist())) == ["013912345678", "7"]
    # an integer pings column matches the vehicles' text "7", never "07"
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([7] * 40, pa.int64()),
                "ts": pa.array([t for t, _, _ in track], pa.int64()),
                "lon": [x for _, x, _ in track],
                "lat": [y for _, _, y in track],
            }
        ),
        pings,
    )
    run_pipeline(pings, _vehicles(tmp_path / "v2.csv", ["07", "7"]), tmp_path / "run2")
    assert set(_activity(tmp_path / "run2")["vehicle_id"].to_pylist()) == {"7"}


def test_a_floating_point_id_column_is_refused_clearly(tmp_path: Path) -> None:
    track = _track(5)
    pings = tmp_path / "pings.parquet"
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([1.2345678901234568e16] * 5),
                "ts": [t for t, _, _ in track],
                "lon": [x for _, x, _ in track],
                "lat": [y for _, _, y in track],
            }
        ),
        pings,
    )
    with pytest.raises(InputError, match=r"column vehicle_id is a double column.*text or integers") as err:
        run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), tmp_path / "run")
    assert str(pings) in str(err.value)


def test_duplicate_vehicle_rows(tmp_path: Path) -> None:
    vehicles = tmp_path / "v.csv"
    vehicles.write_text(
        "vehicle_id,plate,emission_standard\n"
        "A1,鲁A12345,国五\n"
        "A1,鲁A12345,国五\n"  # identical: kept once
        "B2,鲁A22222,国五\n"
        "B2,鲁A22222,国六\n"  # conflicting: both set aside
        "C3,鲁A33333,国四\n",
        encoding="utf-8",
    )
    rows = ["vehicle_id,ts,lon,lat"]
    for v in ("A1", "B2", "C3", "D4"):
        rows += [f"{v},{t},{x:.6f},{y:.6f}" for t, x, y in _track(10)]
    pings = tmp_path / "p.csv"
    pings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = run_pipeline(pings, vehicles, tmp_path / "run")
    assert summary.vehicles_read == 5 and summary.vehicles_kept == 2
    assert summary.quality["pings"]["quarantined"]["duplicate_vehicle_id"] == 10
    assert summary.quality["pings"]["quarantined"]["unknown_vehicle"] == 10
    assert set(_activity(tmp_path / "run")["vehicle_id"].to_pylist()) == {"A1", "C3"}
    vq = pq.read_table(tmp_path / "run" / "quarantine" / "vehicles").to_pylist()
    assert [(r["vehicle_id"], r["reason"], r["source_row"]) for r in vq] == [
        ("B2", "duplicate_vehicle_id", 3),
        ("B2", "duplicate_vehicle_id", 4),
    ]
    assert any("1 repeated identical row(s) kept once" in w for w in summary.warnings)
    assert any("B2" in w and "duplicate_vehicle_id" in w for w in summary.warnings)
    reasons = {(r["vehicle_id"], r["reason"]) for r in _quarantine(tmp_path / "run")}
    assert reasons == {("B2", "duplicate_vehicle_id"), ("D4", "unknown_vehicle")}


# ------------------------------------------------------------------ time


TIMES = [
    # (text in the file, epoch s it names or None when it must be set aside, reason)
    ("2022/03/10 08:00:00", T0, None),
    ("20220310080030", T0 + 30, None),
    ("2022-03-10T08:01:00+08:00", T0 + 60, None),
    ("2022-03-10T00:01:30Z", T0 + 90, None),
    ("1646870520", T0 + 120, None),
    ("1646870550000", T0 + 150, None),
    ("1646870580000000", T0 + 180, None),
    ("2022/3/10 8:03:30", T0 + 210, None),
    ("2022-03-10 08:04:00.500", T0 + 240, None),
    ("2022-02-30 08:00:00", None, "bad_time"),
    ("2022-03-10 25:00:00", None, "bad_time"),
    ("20220230080000", None, "bad_time"),
    ("yesterday", None, "bad_time"),
    ("1970-01-01 08:00:00", None, "time_out_of_range"),
    ("2100-01-01 08:00:00", None, "time_out_of_range"),
    ("9223372036854775807", None, "time_out_of_range"),
    ("0", None, "time_out_of_range"),
]


def test_every_time_form_is_read_or_set_aside_with_its_reason(tmp_path: Path) -> None:
    lines = ["vehicle_id,ts,lon,lat"]
    for k, (text, _, _) in enumerate(TIMES):
        lines.append(f"1,{text},{117.0 + 0.001 * k:.4f},36.65")
    pings = tmp_path / "p.csv"
    pings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), tmp_path / "run")
    q = {int(r["source_row"]): r["reason"] for r in _quarantine(tmp_path / "run")}
    want = {k + 1: reason for k, (_, _, reason) in enumerate(TIMES) if reason is not None}
    assert q == want
    assert summary.quality["pings"]["quarantined"]["bad_time"] == 4
    assert summary.quality["pings"]["quarantined"]["time_out_of_range"] == 4
    # Only 2022-03 was produced (no 1970 or 2100 inventory) and the kept fixes are exactly those listed.
    assert sorted(p.name for p in (tmp_path / "run" / "inventory").glob("*.parquet")) == ["2022-03.parquet"]
    assert summary.fixes_used == sum(1 for _, t, _ in TIMES if t is not None)


def test_typed_parquet_times_are_checked_the_same_way(tmp_path: Path) -> None:
    values = [T0, T0 + 30, 20220310080100, 20220230080000, (T0 + 90) * 1000, 2**63 - 1, 0, 4102444800]
    pings = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([1] * len(values), pa.int64()),
                "ts": pa.array(values, pa.int64()),
                "lon": [117.0 + 0.001 * k for k in range(len(values))],
                "lat": [36.65] * len(values),
            }
        ),
        pings,
    )
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), tmp_path / "run")
    q = {int(r["source_row"]): r["reason"] for r in _quarantine(tmp_path / "run")}
    assert q == {4: "bad_time", 6: "time_out_of_range", 7: "time_out_of_range", 8: "time_out_of_range"}
    assert summary.fixes_used == 4


def test_custom_time_format_and_window_settings(tmp_path: Path) -> None:
    lines = ["vehicle_id,ts,lon,lat", "1,10.03.2022 08:00:00,117.0,36.65", "1,31.02.2022 08:00:00,117.001,36.65"]
    lines += ["1,10.03.2022 08:00:30,117.005,36.65", "1,2019-06-01 08:00:00,117.01,36.65"]
    pings = tmp_path / "p.csv"
    pings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["run", "--pings", str(pings), "--vehicles", str(_vehicles(tmp_path / "v.csv", ["1"])), "--out",
         str(tmp_path / "run"), "--ts-format", "%d.%m.%Y %H:%M:%S", "--time-min", "2020-01-01"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    q = {int(r["source_row"]): r["reason"] for r in _quarantine(tmp_path / "run")}
    assert q == {2: "bad_time", 4: "time_out_of_range"}


# ------------------------------------------------------------------ refusals


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("vehicle_id,ts,lon,lat\n", encoding="utf-8"), "holds no data row"),
        (
            lambda p: pq.write_table(
                pa.table(
                    {
                        "vehicle_id": pa.array([], pa.int64()),
                        "ts": pa.array([], pa.int64()),
                        "lon": pa.array([], pa.float64()),
                        "lat": pa.array([], pa.float64()),
                    }
                ),
                p,
            ),
            "holds no data row",
        ),
        (
            lambda p: p.write_text(
                "vehicle_id,ts,lon,lat\n" + "".join(f"9,{t},{x},{y}\n" for t, x, y in _track(8)), encoding="utf-8"
            ),
            "all 8 rows",
        ),
        (
            lambda p: p.write_text(
                "vehicle_id,ts,lon,lat\n" + "".join(f"1,{t},{y},{x}\n" for t, x, y in _track(8)), encoding="utf-8"
            ),
            "lat looks like a longitude",
        ),
    ],
    ids=["header-only-csv", "zero-row-parquet", "all-rows-rejected", "swapped-coordinates"],
)
def test_clear_refusals_exit_2_without_traceback(tmp_path: Path, make: object, message: str) -> None:
    suffix = ".parquet" if "write_table" in make.__code__.co_names else ".csv"  # type: ignore[attr-defined]
    pings = tmp_path / f"pings{suffix}"
    make(pings)  # type: ignore[operator]
    vehicles = _vehicles(tmp_path / "v.csv", ["1"])
    code, output = _cli(["run", "--pings", str(pings), "--vehicles", str(vehicles), "--out", str(tmp_path / "run")])
    assert code == 2, output
    text = " ".join(output.split())
    assert message in text and "pings" in text and "Traceback" not in output
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_a_file_with_many_rows_set_aside_is_flagged_loudly(tmp_path: Path) -> None:
    lines = ["vehicle_id,ts,lon,lat"] + [f"1,{t},{x:.6f},{y}" for t, x, y in _track(30)]
    lines += [f"1,not-a-time,{117.5},{36.6}" for _ in range(3)]  # 3 of 33: 9% > 5%
    pings = tmp_path / "p.csv"
    pings.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), tmp_path / "run")
    assert len(summary.warnings) == 1 and "3 of its 33 rows (9.1%, more than 5%)" in summary.warnings[0]
    import json

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    entry = next(e for e in manifest["runs"][-1]["inputs"] if e["role"] == "pings")
    assert entry["rows"] == 33 and entry["kept"] == 30 and entry["quarantined"] == {"bad_time": 3}
    assert "more than 5%" in entry["warning"]


# ------------------------------------------------------------------ datums


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_web_map_datums_give_the_wgs84_result(tmp_path: Path, datum: str) -> None:
    # A track across the Jinan (370100) / Tai'an (370900) border, south of Jinan.
    track = [(T0 + 30 * i, 117.05, 36.45 - 0.004 * i) for i in range(60)]
    t = np.array(track)
    lon, lat = (wgs84_to_gcj02 if datum == "gcj02" else wgs84_to_bd09)(t[:, 1], t[:, 2])

    def write(path: Path, xs: np.ndarray, ys: np.ndarray) -> Path:
        lines = ["vehicle_id,ts,lon,lat"] + [
            f"1,{int(a)},{x:.9f},{y:.9f}" for a, x, y in zip(t[:, 0], xs, ys, strict=True)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    vehicles = _vehicles(tmp_path / "v.csv", ["1"])
    run_pipeline(write(tmp_path / "w.csv", t[:, 1], t[:, 2]), vehicles, tmp_path / "w")
    code, out = _cli(["run", "--pings", str(write(tmp_path / "m.csv", lon, lat)), "--vehicles", str(vehicles),
                      "--out", str(tmp_path / "m"), "--crs", datum])  # fmt: skip
    assert code == 0, out

    def by_city(run: Path) -> dict[int, float]:
        return {r["city_adcode"]: r["distance_km"] for r in _activity(run).to_pylist()}

    w, m = by_city(tmp_path / "w"), by_city(tmp_path / "m")
    assert set(w) == set(m) and len(w) == 2
    for city in w:  # the datum's offset shifts the border crossing by at most a few metres
        assert m[city] == pytest.approx(w[city], abs=0.05)


def test_a_world_with_text_ids_gives_the_inventory_of_integer_ids(tmp_path: Path) -> None:
    """The simulator's phone-number ids (leading zero, dictionary-encoded text) against the same world with
    integer ids: the same inventory, and the activity rows carry the ids exactly as written."""
    from truckcarbon.sim.config import SimConfig
    from truckcarbon.sim.run import simulate

    base = SimConfig(trucks=12, start_month="2022-03", end_month="2022-03", seed=7)
    simulate(tmp_path / "wi", base, workers=1)
    simulate(tmp_path / "wt", SimConfig(**{**base.__dict__, "id_format": "0139{:08d}"}), workers=1)
    for w in ("wi", "wt"):
        run_pipeline(tmp_path / w / "pings", tmp_path / w / "vehicles.parquet", tmp_path / f"{w}-run")
    inv_i = pq.read_table(tmp_path / "wi-run" / "inventory").to_pylist()
    inv_t = pq.read_table(tmp_path / "wt-run" / "inventory").to_pylist()
    assert inv_i == inv_t and len(inv_i) > 10
    ids = set(_activity(tmp_path / "wt-run")["vehicle_id"].to_pylist())
    truth_ids = set(pq.read_table(tmp_path / "wt" / "truth.parquet")["vehicle_id"].to_pylist())
    assert ids <= truth_ids and all(len(v) == 12 and v.startswith("0139") for v in ids)


# ------------------------------------------------------------------ gaps and mixed-mode traces


def _write_track(path: Path, rows: list[tuple[int, float, float]], vid: str = "1") -> Path:
    lines = ["vehicle_id,ts,lon,lat"] + [f"{vid},{t},{x:.7f},{y:.7f}" for t, x, y in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_multi_day_gap_is_unobserved_displacement_not_driving_between(tmp_path: Path) -> None:
    beijing = _track(20, 116.40, 39.90)  # inside Beijing (110100)
    t_end = beijing[-1][0]
    shanghai = [(t_end + 3 * 86400 + 30 * i, 121.47 + 0.005 * i, 31.23) for i in range(20)]  # 3 days later
    pings = _write_track(tmp_path / "p.csv", beijing + shanghai)
    run = tmp_path / "run"
    run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), run)
    act = _activity(run).to_pylist()
    assert {r["city_adcode"] for r in act} == {110100, 310100}  # nothing in Hebei, Shandong, Jiangsu, ...
    b, s = np.array(beijing), np.array(shanghai)
    by_city = {r["city_adcode"]: r["distance_km"] for r in act}
    assert by_city[110100] == pytest.approx(_haversine_km(b[:, 1], b[:, 2]), rel=1e-6)
    assert by_city[310100] == pytest.approx(_haversine_km(s[:, 1], s[:, 2]), rel=1e-6)
    gaps = pq.read_table(run / "unobserved").to_pylist()
    chord = _haversine_km(np.array([b[-1, 1], s[0, 1]]), np.array([b[-1, 2], s[0, 2]]))
    assert len(gaps) == 1
    g = gaps[0]
    assert (g["vehicle_id"], g["month"], g["from_city_adcode"], g["to_city_adcode"], g["gaps"]) == (
        "1", "2022-03", 110100, 310100, 1
    )  # fmt: skip
    assert g["unobserved_km"] == pytest.approx(chord, rel=1e-6) and g["gap_hours"] == pytest.approx(72.0)
    code, out = _cli(["quality", "--run", str(run)])
    assert code == 0 and "1d-7d" in out and "unobserved" in out


def test_a_mixed_mode_trace_excludes_the_train(tmp_path: Path) -> None:
    drive1 = _track(40, 117.00, 36.65)  # 60 km/h
    t1, x1, y1 = drive1[-1]
    step = 2.5 / (111.32 * math.cos(math.radians(y1)))  # 2.5 km per 30 s: 300 km/h
    train = [(t1 + 30 * (i + 1), x1 + step * (i + 1), y1) for i in range(20)]
    t2, x2, y2 = train[-1]
    drive2 = [(t2 + 30 * (i + 1), x2 + (x1 - drive1[-2][1]) * (i + 1), y2) for i in range(40)]
    run = tmp_path / "run"
    run_pipeline(_write_track(tmp_path / "p.csv", drive1 + train + drive2), _vehicles(tmp_path / "v.csv", ["1"]), run)
    import json

    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    traj = manifest["runs"][-1]["quality"]["trajectories"]
    assert traj["implausible_speed_segments"] == 20 and traj["unobserved_segments"] == 0
    path = np.array(drive1[-1:] + train)
    assert traj["implausible_speed_km"] == pytest.approx(_haversine_km(path[:, 1], path[:, 2]), rel=1e-6)
    d1, d2 = np.array(drive1), np.array(train[-1:] + drive2)  # leaving the train's last fix at 60 km/h: driving
    driven = _haversine_km(d1[:, 1], d1[:, 2]) + _haversine_km(d2[:, 1], d2[:, 2])
    assert sum(r["distance_km"] for r in _activity(run).to_pylist()) == pytest.approx(driven, rel=1e-6)


# ------------------------------------------------------------------ headers, encodings, quoting


def test_a_gbk_export_with_chinese_headers_and_a_column_mapping(tmp_path: Path) -> None:
    """A platform export as Chinese Excel saves it: GBK, Chinese headers (one recognised only through
    --columns), plates as ids, slashes in the times."""
    rows = ["车牌号码,定位时间,经度,纬度,行驶速度"]
    rows += [f"鲁A12345,{_local(t)},{x:.6f},{y:.6f},60" for t, x, y in _track(30)]
    pings = tmp_path / "export.csv"
    pings.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    vehicles = tmp_path / "车辆.csv"
    vehicles.write_bytes("车牌号,排放标准\n鲁A12345,国五\n".encode("gbk"))  # keyed by plate: the plate is the id
    base = ["run", "--pings", str(pings), "--vehicles", str(vehicles), "--out", str(tmp_path / "run")]
    code, out = _cli([*base, "--columns", "车速=speed_kmh"])
    assert code == 2 and "车速" in out and "Traceback" not in out  # a header the file does not have: named
    code, out = _cli([*base, "--columns", "行驶速度=speed_kmh"])
    assert code == 0, out
    act = _activity(tmp_path / "run")
    t = np.round(np.array(_track(30)), 6)  # as written
    assert act["vehicle_id"].to_pylist() == ["鲁A12345"]
    assert act["distance_km"].to_pylist()[0] == pytest.approx(_haversine_km(t[:, 1], t[:, 2]), rel=1e-6)


def _local(t: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone(dt.timedelta(hours=8))).strftime("%Y/%m/%d %H:%M:%S")


def test_a_parquet_export_with_chinese_column_names_takes_the_typed_path(tmp_path: Path) -> None:
    track = _track(30)
    pings = tmp_path / "p.parquet"
    pq.write_table(
        pa.table(
            {
                "终端手机号": pa.array(["013912345678"] * 30),
                "GPS时间": pa.array([t for t, _, _ in track], pa.int64()),
                "经度": [x for _, x, _ in track],
                "纬度": [y for _, _, y in track],
            }
        ),
        pings,
    )
    from truckcarbon.ingest.sources import mapped_names
    from truckcarbon.ingest.typed import typed_plan

    names = mapped_names(pings)
    assert names == {"终端手机号": "vehicle_id", "GPS时间": "ts", "经度": "lon", "纬度": "lat"}
    schema = pq.read_schema(pings)
    assert typed_plan(pa.schema([pa.field(names[f.name], f.type) for f in schema])) is not None
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["013912345678"]), tmp_path / "run")
    assert summary.pings_read == 30 and summary.fixes_used == 30


def test_bom_and_an_unterminated_quote_cost_one_row(tmp_path: Path) -> None:
    track = _track(480, step_s=30)
    lines = ["vehicle_id,ts,lon,lat"] + [f"1,{t},{x:.6f},{y:.6f}" for t, x, y in track]
    lines[10] = f'1,{track[9][0]},"{track[9][1]:.6f},{track[9][2]:.6f}'  # data row 10: an unterminated quote
    pings = tmp_path / "p.csv"
    pings.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode("utf-8"))
    summary = run_pipeline(pings, _vehicles(tmp_path / "v.csv", ["1"]), tmp_path / "run")
    assert summary.pings_read == 480 and summary.quality["pings"]["quarantined"]["unterminated_quote"] == 1
    assert summary.quality["pings"]["kept"] == 479 and summary.fixes_used == 479
    q = _quarantine(tmp_path / "run")
    assert [(r["reason"], r["source_row"]) for r in q] == [("unterminated_quote", 10)]
    assert summary.warnings == []  # 1 of 480 is below the 5% threshold


def test_columns_and_times_from_the_toml_configuration(tmp_path: Path) -> None:
    rows = ["设备号,采样时刻,X,Y"] + [f"013912345678,{t},{x:.6f},{y:.6f}" for t, x, y in _track(20)]
    pings = tmp_path / "p.csv"
    pings.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(
        'time_min = "2022-03-01"\ncrs = "wgs84"\n\n[columns]\n"采样时刻" = "ts"\n"X" = "lon"\n"Y" = "lat"\n',
        encoding="utf-8",
    )
    vehicles = _vehicles(tmp_path / "v.csv", ["013912345678"])
    code, out = _cli(["run", "--pings", str(pings), "--vehicles", str(vehicles), "--out", str(tmp_path / "run"),
                      "--config", str(config)])  # fmt: skip
    assert code == 0, out
    assert set(_activity(tmp_path / "run")["vehicle_id"].to_pylist()) == {"013912345678"}
    config.write_text(
        'time_min = "2022-03-31"\n[columns]\n"采样时刻" = "ts"\n"X" = "lon"\n"Y" = "lat"\n', encoding="utf-8"
    )
    code, out = _cli(["run", "--pings", str(pings), "--vehicles", str(vehicles), "--out", str(tmp_path / "run2"),
                      "--config", str(config)])  # fmt: skip
    assert code == 2 and "time_out_of_range" in out and "Traceback" not in out
