"""The fleet simulator: determinism, schemas, exact truth, defects as set, bad input."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.calendar import chinese_new_year
from truckcarbon.core.errors import InputError
from truckcarbon.geo.reference import city_from_plate
from truckcarbon.sim import run
from truckcarbon.sim.defects import DefectRates, events, standard_normal
from truckcarbon.sim.run import SimConfig, simulate

CLEAN = DefectRates(0, 0, 0, 0, 0, 0, 0)
SMALL = SimConfig(trucks=12, start_month="2021-12", end_month="2022-02", interval_s=60, parked_interval_s=600, seed=7)


def pings(out: Path):
    return (
        ds.dataset(out / "pings", partitioning="hive")
        .to_table()
        .sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    )


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "clean"
    simulate(out, replace(SMALL, defects=CLEAN))
    return out


def test_same_seed_same_world(tmp_path, clean_run):
    again = tmp_path / "again"
    simulate(again, replace(SMALL, defects=CLEAN))
    assert pings(again).equals(pings(clean_run))
    assert pq.read_table(again / "truth.parquet").equals(pq.read_table(clean_run / "truth.parquet"))
    assert pq.read_table(again / "vehicles.parquet").equals(pq.read_table(clean_run / "vehicles.parquet"))
    other = tmp_path / "other"
    simulate(other, replace(SMALL, defects=CLEAN, seed=8))
    assert not pings(other).equals(pings(clean_run))


def test_worker_processes_do_not_change_the_data(tmp_path, clean_run):
    out = tmp_path / "two"
    simulate(out, replace(SMALL, defects=CLEAN), workers=2)
    assert pings(out).equals(pings(clean_run))
    assert pq.read_table(out / "truth.parquet").equals(pq.read_table(clean_run / "truth.parquet"))
    assert len(list((out / "pings" / "month=2022-01").glob("part-*.parquet"))) == 2


def test_a_failure_stops_the_run_and_leaves_nothing(tmp_path):
    """An error in the month callback (run on whichever thread finished the month) stops every worker."""
    calls = []

    def on_month(label: str, n: int) -> None:
        calls.append(label)
        raise RuntimeError("progress display failed")

    out = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="progress display failed"):
        simulate(out, SMALL, workers=2, on_month=on_month)
    assert calls == ["2021-12"]  # no later month was collected
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name != "failed"]


# A helper process's start-up (sim.run._start_helper, which takes the fleet from a queue); prints the scipy
# modules it loaded.
HELPER = """
import pickle, queue, sys
from truckcarbon.sim import run
config, fleet, use = pickle.loads(open(sys.argv[1], "rb").read())
fleets = queue.Queue()
fleets.put((fleet, use))
run._start_helper(config, fleets)
run._context(config)
print(",".join(m for m in sys.modules if m.startswith(("scipy.stats", "scipy.special", "scipy.sparse"))))
"""


def test_helper_processes_get_the_fleet_and_import_no_scipy(tmp_path):
    """The main process samples the fleet and hands it to its helpers, which import no scipy."""
    shipped = tmp_path / "fleet.pickle"
    shipped.write_bytes(pickle.dumps((SMALL, *run._fleet(SMALL))))
    result = subprocess.run([sys.executable, "-c", HELPER, str(shipped)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


SAMPLER = """
import sys
from truckcarbon.sim import run
run._fleet(run.SimConfig(trucks=50, start_month="2022-01", end_month="2022-01"))
print(",".join(m for m in sys.modules if m.startswith(("scipy.stats", "scipy.special"))))
"""


def test_sampling_the_fleet_imports_neither_scipy_stats_nor_special():
    """Their import cost the main process about 1.5 s before the first month could start."""
    result = subprocess.run([sys.executable, "-c", SAMPLER], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_output_schemas(clean_run):
    p = pings(clean_run)
    for col in ("vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km", "fuel_level_l"):
        assert col in p.column_names
    assert str(p.schema.field("ts").type) == "timestamp[ms, tz=UTC]"
    months = sorted(x.name for x in (clean_run / "pings").iterdir())
    assert months == ["month=2021-12", "month=2022-01", "month=2022-02"]
    v = pq.read_table(clean_run / "vehicles.parquet")
    for col in ("vehicle_id", "plate", "registration_city_adcode", "emission_standard", "weight"):
        assert col in v.column_names
    assert v.num_rows == 12 and pc.min(v["weight"]).as_py() > 0
    # Plates carry the registration unit's prefix where the unit has one of its own.
    derived = city_from_plate(v["plate"]).to_pylist()
    reg = v["registration_city_adcode"].to_pylist()
    assert sum(d == r for d, r in zip(derived, reg, strict=True)) >= 11
    t = pq.read_table(clean_run / "truth.parquet")
    for col in ("vehicle_id", "month", "city_adcode", "distance_km"):
        assert col in t.column_names
    manifest = json.loads((clean_run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["pings"] == p.num_rows and manifest["truth_rows"] == t.num_rows


def test_ping_file_layout(tmp_path, clean_run):
    """Columns that are never null are REQUIRED; ids and times delta-encoded; a channel left out is nulls."""
    f = next((clean_run / "pings").glob("*/*.parquet"))
    meta = pq.ParquetFile(f)
    rg = meta.metadata.row_group(0)
    column = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    for name in ("vehicle_id", "ts"):
        assert "DELTA_BINARY_PACKED" in column[name].encodings and column[name].compression == "UNCOMPRESSED"
    assert column["speed_kmh"].compression.startswith("LZ4")
    assert all(meta.schema.column(i).max_definition_level == 0 for i in range(rg.num_columns))
    out = tmp_path / "no-fuel"
    simulate(out, replace(SMALL, end_month="2021-12", fuel_channel=False))
    g = next((out / "pings").glob("*/*.parquet"))
    table, schema = pq.read_table(g), pq.ParquetFile(g).schema
    assert table["fuel_level_l"].null_count == table.num_rows > 0
    assert schema.column(schema.names.index("fuel_level_l")).max_definition_level == 1
    assert schema.column(schema.names.index("odometer_km")).max_definition_level == 0


def _haversine(lon0, lat0, lon1, lat1):
    p0, p1 = np.radians(lat0), np.radians(lat1)
    h = np.sin((p1 - p0) / 2) ** 2 + np.cos(p0) * np.cos(p1) * np.sin(np.radians(lon1 - lon0) / 2) ** 2
    return 2 * 6371.0088 * np.arcsin(np.sqrt(h))


def test_step_distance_series_is_the_haversine():
    """The truth's step distance (Taylor series of sin and asin for short steps) equals the haversine to
    1e-14, from centimetres to steps well past the series' range, at every latitude."""
    from truckcarbon.geo.distance import haversine_cos

    rng = np.random.default_rng(8)
    lat0, lon0 = rng.uniform(-70, 70, 4000), rng.uniform(70, 140, 4000)
    km, heading = 10 ** rng.uniform(-5, 1.7, 4000), rng.uniform(0, 2 * np.pi, 4000)
    lat1 = lat0 + km / 111.0 * np.sin(heading)
    lon1 = lon0 + km / 111.0 * np.cos(heading) / np.cos(np.radians(lat0))
    got = np.array(
        [
            haversine_cos(
                np.radians(b) - np.radians(a), np.radians(d - c), np.cos(np.radians(a)), np.cos(np.radians(b))
            )
            for a, b, c, d in zip(lat0, lat1, lon0, lon1, strict=True)
        ]
    )
    want = _haversine(lon0, lat0, lon1, lat1)
    assert np.all(np.abs(got / want - 1) < 1e-14)
    assert (km > 25).sum() > 100 and (km < 1).sum() > 1000  # both branches


def test_truth_is_the_length_of_the_true_path(clean_run, reference):
    """Clean pings are the true fixes: their segment lengths add up to the truth, per vehicle-month and city."""
    from truckcarbon.geo.crs import wgs84_to_gcj02

    p = pings(clean_run)
    t = pq.read_table(clean_run / "truth.parquet")
    vid = p["vehicle_id"].to_numpy()
    lon, lat = p["lon"].to_numpy(), p["lat"].to_numpy()
    ts = p["ts"].cast("int64").to_numpy() // 1000
    same = vid[1:] == vid[:-1]
    km = np.where(same, _haversine(lon[:-1], lat[:-1], lon[1:], lat[1:]), 0.0)
    month = np.array([f"{(m // 12):04d}-{m % 12 + 1:02d}" for m in _local_month(ts[1:])])
    start_city = reference.locate(*wgs84_to_gcj02(lon[:-1], lat[:-1]))
    totals: dict[tuple[int, str], float] = {}
    by_city: dict[tuple[int, str, int], float] = {}
    for v, m, c, d in zip(vid[1:], month, start_city, km, strict=True):
        if d > 0:
            totals[(int(v), m)] = totals.get((int(v), m), 0.0) + d
            by_city[(int(v), m, int(c))] = by_city.get((int(v), m, int(c)), 0.0) + d
    truth_tot: dict[tuple[int, str], float] = {}
    for row in t.to_pylist():
        key = (row["vehicle_id"], row["month"])
        truth_tot[key] = truth_tot.get(key, 0.0) + row["distance_km"]
    assert set(truth_tot) == set(totals)
    for key, km_sum in totals.items():
        assert truth_tot[key] == pytest.approx(km_sum, rel=1e-9)
    # Per city, the truth (split exactly at borders) is within the length of one
    # segment per crossing of the start-city approximation.
    for row in t.to_pylist():
        approx = by_city.get((row["vehicle_id"], row["month"], row["city_adcode"]), 0.0)
        assert abs(row["distance_km"] - approx) < 5.0 + 0.01 * row["distance_km"]
    assert len(truth_tot) >= 6 and min(truth_tot.values()) > 300  # the trucks in the world drove


def test_truth_fuel_and_co2_follow_the_report_method(clean_run):
    """Recomputed here from the factor files: km by load state x L/100 km, x 2.6765 kg/L."""
    import csv
    from importlib.resources import files

    with files("truckcarbon.data").joinpath("factors", "fuel_rates.csv").open(encoding="utf-8") as f:
        rate = {
            (r["emission_standard"], r["load_state"]): float(r["fuel_rate_l_per_100km"])
            for r in csv.DictReader(f)
            if r["reference_speed_kmh"] == "60"
        }
    std = dict(
        zip(
            *pq.read_table(clean_run / "vehicles.parquet", columns=["vehicle_id", "emission_standard"])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    t = pq.read_table(clean_run / "truth.parquet").to_pylist()
    for row in t:
        s = std[row["vehicle_id"]]
        fuel = sum(row[f"distance_km_{ld}"] * rate[(s, ld)] / 100 for ld in ("empty", "half", "full"))
        assert row["fuel_l"] == pytest.approx(fuel, rel=1e-9, abs=1e-9)
        assert row["co2_kg"] == pytest.approx(fuel * 2.6765, rel=1e-9, abs=1e-9)
        unknown = row["distance_km"] * (0.4 * rate[(s, "empty")] + 0.6 * rate[(s, "full")]) / 100
        assert row["fuel_l_unknown_load"] == pytest.approx(unknown, rel=1e-9, abs=1e-9)
        assert row["distance_km"] == pytest.approx(
            row["distance_km_empty"] + row["distance_km_half"] + row["distance_km_full"], rel=1e-9, abs=1e-9
        )


def test_fuel_gauge_drains_by_the_truth_and_jumps_at_refuels(clean_run):
    p = pings(clean_run)
    vid = p["vehicle_id"].to_numpy()
    level = p["fuel_level_l"].to_numpy().astype(np.float64)
    same = vid[1:] == vid[:-1]
    d = np.diff(level)[same]
    refuels = d > 50
    assert refuels.sum() >= 5  # trucks refuel
    assert (level[1:][same][refuels] >= 0.9 * 600 - 0.1).all()  # to 90-100% of the 600 L tank
    assert (level > 0).all() and (level <= 600).all()
    consumed = -d[~refuels].sum()
    truth_fuel = pc.sum(pq.read_table(clean_run / "truth.parquet")["fuel_l"]).as_py()
    assert consumed == pytest.approx(truth_fuel, rel=0.01)


def _local_month(ts_s):
    import datetime as dt

    return [(d.year * 12 + d.month - 1) for d in (dt.datetime.fromtimestamp(int(x) + 8 * 3600, dt.UTC) for x in ts_s)]


def test_defects_are_applied_at_the_rates_set(tmp_path, clean_run):
    rates = replace(CLEAN, jump_rate=0.01, duplicate_rate=0.02, zero_rate=0.005)
    out = tmp_path / "dirty"
    simulate(out, replace(SMALL, defects=rates))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    d = manifest["defects"]
    clean = pings(clean_run)
    dirty = pings(out)
    n = clean.num_rows
    assert dirty.num_rows == n + d["duplicates"]
    assert d["duplicates"] / n == pytest.approx(0.02, rel=0.1)
    assert d["jumps"] / n == pytest.approx(0.01, rel=0.15)
    assert d["zero_fixes"] / n == pytest.approx(0.005, rel=0.2)
    # Exact duplicates in the file equal the count in the manifest.
    keys = np.column_stack([dirty["vehicle_id"].to_numpy(), dirty["ts"].cast("int64").to_numpy()])
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    assert int((counts - 1).sum()) == d["duplicates"]
    lon, lat = dirty["lon"].to_numpy()[first], dirty["lat"].to_numpy()[first]
    assert int(((lon == 0) & (lat == 0)).sum()) == d["zero_fixes"]
    # Jumped fixes are 2-50 km from where the clean run put them; no other fix moved.
    moved = _haversine(lon, lat, clean["lon"].to_numpy(), clean["lat"].to_numpy())
    real = ~((lon == 0) & (lat == 0))
    assert int((moved[real] > 1.9).sum()) == d["jumps"]
    assert int(((moved[real] > 0) & (moved[real] < 1.9)).sum()) == 0


def test_defect_events_are_a_bernoulli_process():
    """Each position is hit independently with the rate: counts and positions, over many draws."""
    rng = np.random.default_rng(3)
    n, rate, runs = 5000, 0.004, 4000
    draws = [events(rng, n, rate) for _ in range(runs)]
    counts = np.array([d.size for d in draws])
    sd = np.sqrt(n * rate * (1 - rate) / runs)
    assert abs(counts.mean() - n * rate) < 4 * sd
    assert counts.var() == pytest.approx(n * rate * (1 - rate), rel=0.1)
    hits = np.bincount(np.concatenate(draws), minlength=n)
    assert hits.size == n  # nothing at or beyond n
    assert all(np.all(np.diff(d) > 0) for d in draws)  # sorted, no position twice
    quarter = hits.reshape(4, -1).sum(axis=1) / (runs * n / 4 * rate)  # uniform over the positions
    assert np.all(np.abs(quarter - 1) < 0.03)
    assert events(rng, 10, 0.0).size == 0 and events(rng, 0, 0.5).size == 0
    assert events(rng, 7, 1.0).tolist() == list(range(7))


def test_new_year_month_is_the_yearly_minimum(tmp_path):
    out = tmp_path / "year"
    simulate(
        out,
        SimConfig(
            trucks=60,
            start_month="2019-01",
            end_month="2019-12",
            interval_s=300,
            parked_interval_s=1800,
            seed=3,
            defects=CLEAN,
        ),
    )
    t = pq.read_table(out / "truth.parquet").group_by("month").aggregate([("distance_km", "sum")]).sort_by("month")
    v = pq.read_table(out / "vehicles.parquet")
    reg, ret = (
        v["registration_month"].to_numpy(zero_copy_only=False),
        v["retirement_month"].to_numpy(zero_copy_only=False),
    )
    in_service = np.array([((reg <= m) & (ret > m)).sum() for m in t["month"].to_pylist()])
    km = t["distance_km_sum"].to_numpy() / in_service  # per truck in service
    cny = chinese_new_year(2019)
    assert (cny.year, cny.month) == (2019, 2)
    assert int(np.argmin(km)) == 1
    assert int(np.argmax(km)) >= 8  # the peak is in the second half


def test_bad_input_is_refused_and_nothing_half_written(tmp_path):
    with pytest.raises(InputError, match="positive"):
        simulate(tmp_path / "a", replace(SMALL, trucks=0))
    with pytest.raises(InputError, match="unknown month"):
        simulate(tmp_path / "b", replace(SMALL, start_month="2019-13"))
    with pytest.raises(InputError, match="empty"):
        simulate(tmp_path / "c", replace(SMALL, start_month="2020-05", end_month="2020-01"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="--overwrite"):
        simulate(full, SMALL)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"writable|not a folder"):
        simulate(blocker / "sub", SMALL)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_standard_normal_draws_are_normal():
    """The quantised inverse transform: mean 0, variance 1, Kolmogorov distance to N(0, 1) within
    sampling error, tails to 4.0, every value drawn; deterministic for a seed."""
    from scipy.special import ndtr

    z = standard_normal(np.random.default_rng(11), (2, 400_000))
    assert z.shape == (2, 400_000) and z.dtype == np.float32
    s = np.sort(z.astype(np.float64).ravel())
    n = s.size
    assert abs(s.mean()) < 5 / np.sqrt(n)
    assert s.var() == pytest.approx(1.0, abs=5 * np.sqrt(2 / n))
    cdf = ndtr(s)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.63 / np.sqrt(n)  # the 1% critical value of the Kolmogorov-Smirnov test
    assert 3.9 < -s[0] < 4.1 and 3.9 < s[-1] < 4.1
    assert np.unique(s).size > 0.99 * 65536
    a, b = (standard_normal(np.random.default_rng(5), 9) for _ in range(2))
    assert np.array_equal(a, b) and standard_normal(np.random.default_rng(5), 0).size == 0
