"""A run end to end: determinism, the output folder's tables and manifest, bad input refused, nothing half written."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.geo.reference import city_from_plate
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.run import simulate

from .worlds import CLEAN, SMALL, pings


def test_same_seed_same_world(tmp_path, clean_run):
    again = tmp_path / "again"
    simulate(again, replace(SMALL, defects=CLEAN))
    assert pings(again).equals(pings(clean_run))
    assert pq.read_table(again / "truth.parquet").equals(pq.read_table(clean_run / "truth.parquet"))
    assert pq.read_table(again / "vehicles.parquet").equals(pq.read_table(clean_run / "vehicles.parquet"))
    other = tmp_path / "other"
    simulate(other, replace(SMALL, defects=CLEAN, seed=8))
    assert not pings(other).equals(pings(clean_run))


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


def test_manifest_records_the_configuration_and_what_was_written(clean_run):
    """The manifest's configuration rebuilds the run's; its months, counts and method match the folder."""
    manifest = json.loads((clean_run / "manifest.json").read_text(encoding="utf-8"))
    config = manifest["config"]
    rebuilt = SimConfig(**{**config, "defects": DefectRates(**config["defects"])})
    assert rebuilt == replace(SMALL, defects=CLEAN)
    assert manifest["months"] == ["2021-12", "2022-01", "2022-02"]
    assert manifest["trucks"] == 12 and manifest["workers"] == 1 and manifest["truck_groups"] == 1
    assert set(manifest["defects"].values()) == {0}  # a clean world
    assert manifest["truth_method"]["load_state"] == "known (from the pings)"
    assert asdict(rebuilt) == config


def test_text_ids_are_the_same_in_every_table(tmp_path):
    out = tmp_path / "ids"
    simulate(out, replace(SMALL, end_month="2021-12", defects=CLEAN, id_format="0139{:08d}"))
    vehicles = pq.read_table(out / "vehicles.parquet")["vehicle_id"].to_pylist()
    assert vehicles == [f"0139{k:08d}" for k in range(1, 13)]
    truth = set(pq.read_table(out / "truth.parquet")["vehicle_id"].to_pylist())
    in_pings = set(ds.dataset(out / "pings", partitioning="hive").to_table()["vehicle_id"].to_pylist())
    assert truth and in_pings and truth <= set(vehicles) and in_pings <= set(vehicles)


def test_overwrite_replaces_the_folder_and_leaves_no_temporary_one(tmp_path, clean_run):
    out = tmp_path / "w"
    out.mkdir()
    (out / "old.txt").write_text("x", encoding="utf-8")
    summary = simulate(out, replace(SMALL, defects=CLEAN), overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "pings", "truth.parquet", "vehicles.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["w"]
    assert summary.pings == pings(clean_run).num_rows and summary.months == 3 and summary.trucks == 12


def test_bad_input_is_refused_and_nothing_half_written(tmp_path):
    with pytest.raises(InputError, match="positive"):
        simulate(tmp_path / "a", replace(SMALL, trucks=0))
    with pytest.raises(InputError, match="unknown month"):
        simulate(tmp_path / "b", replace(SMALL, start_month="2019-13"))
    with pytest.raises(InputError, match="empty"):
        simulate(tmp_path / "c", replace(SMALL, start_month="2020-05", end_month="2020-01"))
    with pytest.raises(InputError, match="--workers"):
        simulate(tmp_path / "d", SMALL, workers=0)
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
