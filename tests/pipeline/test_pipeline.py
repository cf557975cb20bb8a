"""The pipeline against the simulator's exact truth, its invariances, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.core.errors import InputError
from truckcarbon.pipeline import PipelineConfig, run_pipeline
from truckcarbon.sim.run import SimConfig, simulate

# Default defect rates, 30 s fixes, parked every 30 min: what the accuracy targets are stated for.
WORLD = SimConfig(trucks=80, start_month="2022-01", end_month="2022-03", interval_s=30, parked_interval_s=1800, seed=6)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    simulate(out, WORLD)
    return out


@pytest.fixture(scope="module")
def full_run(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    run_pipeline(world / "pings", world / "vehicles.parquet", out)
    return out


def sql(query: str) -> list[tuple[object, ...]]:
    return duckdb.connect().execute(query).fetchall()


def test_accuracy_against_ground_truth(world: Path, full_run: Path) -> None:
    truth = f"read_parquet('{world}/truth.parquet')"
    act = f"read_parquet('{full_run}/activity/*.parquet')"
    national = sql(f"""
        WITH t AS (SELECT month, sum(distance_km) km, sum(co2_kg) co2 FROM {truth} GROUP BY 1),
             p AS (SELECT month, sum(distance_km) km, sum(co2_kg) co2 FROM {act} GROUP BY 1)
        SELECT month, t.km, p.km, t.co2, p.co2 FROM t JOIN p USING (month) ORDER BY 1""")
    assert [r[0] for r in national] == ["2022-01", "2022-02", "2022-03"]
    for _, t_km, p_km, t_co2, p_co2 in national:
        assert abs(p_km / t_km - 1) < 0.01  # target: national monthly km within 1%
        assert abs(p_co2 / t_co2 - 1) < 0.01
    cells = sql(f"""
        WITH t AS (SELECT month, city_adcode, sum(distance_km) km FROM {truth} GROUP BY ALL),
             p AS (SELECT month, city_adcode, sum(distance_km) km FROM {act} GROUP BY ALL)
        SELECT t.km, coalesce(p.km, 0) FROM t LEFT JOIN p USING (month, city_adcode) WHERE t.km >= 100""")
    assert len(cells) > 100
    errors = np.array([abs(p / t - 1) for t, p in cells])
    assert errors.max() < 0.03, f"{(errors >= 0.03).sum()} city-months off by >= 3% (max {errors.max():.1%})"


def test_both_views_give_the_same_national_total(full_run: Path) -> None:
    rows = sql(f"""
        SELECT month, view, sum(co2_t), sum(co2_t_unweighted), sum(distance_km), sum(fuel_l)
        FROM read_parquet('{full_run}/inventory/*.parquet') GROUP BY ALL ORDER BY ALL""")
    by = {(r[0], r[1]): r[2:] for r in rows}
    for month in ("2022-01", "2022-02", "2022-03"):
        op, reg = by[(month, "operating")], by[(month, "registration")]
        for a, b in zip(op, reg, strict=True):
            assert a == pytest.approx(b, rel=1e-12)
    # Weighted = sum over vehicles of weight * unweighted, checked from the activity table.
    (w_act,) = sql(f"""
        SELECT sum(co2_kg * weight) / 1000 FROM read_parquet('{full_run}/activity/*.parquet')
        WHERE city_adcode <> 0""")[0]
    (w_inv,) = sql(f"""
        SELECT sum(co2_t) FROM read_parquet('{full_run}/inventory/*.parquet') WHERE view = 'operating'""")[0]
    assert w_inv == pytest.approx(w_act, rel=1e-12)


def test_outputs_manifest_and_database(world: Path, full_run: Path) -> None:
    inv = pq.read_table(full_run / "inventory")
    for col in (
        "month",
        "view",
        "city_adcode",
        "province_adcode",
        "emission_standard",
        "vehicles",
        "distance_km",
        "fuel_l",
        "co2_t",
        "co2_t_unweighted",
        "method",
    ):
        assert col in inv.column_names
    assert set(inv["view"].to_pylist()) == {"operating", "registration"}
    manifest = json.loads((full_run / "manifest.json").read_text())
    assert set(manifest["months"]) == {"2022-01", "2022-02", "2022-03"}
    run = manifest["runs"][-1]
    hashes = {i["path"]: i["hash"] for i in run["inputs"]}
    assert all(h.startswith("blake3:") for h in hashes.values())
    n_files = len(list((world / "pings").rglob("*.parquet")))
    assert sum(1 for i in run["inputs"] if i["role"] == "pings") == n_files
    expected_pings = json.loads((world / "manifest.json").read_text())["pings"]
    assert run["quality"]["pings"]["read"] == expected_pings
    assert manifest["factor_tables"]["fuel_rates.csv"].startswith("blake3:")
    assert run["config"]["rules"]["max_speed_kmh"] == 150.0
    db = duckdb.connect(str(full_run / "truckcarbon.duckdb"), read_only=True)
    (n,) = db.execute("SELECT count(*) FROM inventory").fetchone()  # type: ignore[misc]
    assert n == inv.num_rows
    assert not list(full_run.glob("_work-*")) and not list(full_run.rglob("*.part"))


def _inventory(run: Path) -> pa.Table:
    keys = [("month", "ascending"), ("view", "ascending"), ("city_adcode", "ascending")]
    keys += [("emission_standard", "ascending"), ("method", "ascending")]
    return pq.read_table(run / "inventory").sort_by(keys)


def _assert_same(a: pa.Table, b: pa.Table) -> None:
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a[name].to_pylist(), b[name].to_pylist()
        if isinstance(x[0], float):
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-9)
        else:
            assert x == y, name


def test_shuffled_and_split_input_and_rerun_give_the_same_inventory(
    world: Path, full_run: Path, tmp_path: Path
) -> None:
    table = pa.concat_tables(pq.read_table(f) for f in sorted((world / "pings").rglob("*.parquet")))
    rng = np.random.default_rng(0)
    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    folder = tmp_path / "shuffled"
    folder.mkdir()
    for k, idx in enumerate(np.array_split(np.arange(shuffled.num_rows), 7)):
        pq.write_table(shuffled.take(pa.array(idx)), folder / f"part-{k}.parquet")
    # Spilling to many partitions must not change anything either.
    config = PipelineConfig(rows_per_partition=200_000)
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=config)
    first = _inventory(tmp_path / "run")
    # Exactly the same numbers: sums run in a fixed order whatever the partitions and threads.
    assert first.to_pydict() == _inventory(full_run).to_pydict()
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=config)
    assert _inventory(tmp_path / "run").to_pydict() == first.to_pydict()


def test_partitions_larger_than_planned_are_split_again(
    world: Path, full_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More input than MAX_PARTITIONS partitions of rows_per_partition hold: each is split again, same numbers."""
    from truckcarbon.pipeline.engines import embedded

    loaded: list[int] = []
    read_arrow = embedded._read_arrow

    def recording(path: Path) -> pa.Table:
        table = read_arrow(path)
        loaded.append(table.num_rows)
        return table

    monkeypatch.setattr(embedded, "MAX_PARTITIONS", 2)
    monkeypatch.setattr(embedded, "_read_arrow", recording)
    rows = sum(pq.read_metadata(f).num_rows for f in (world / "pings").rglob("*.parquet"))
    limit = rows // 12
    run_pipeline(
        world / "pings", world / "vehicles.parquet", tmp_path / "run", config=PipelineConfig(rows_per_partition=limit)
    )
    assert _inventory(tmp_path / "run").to_pydict() == _inventory(full_run).to_pydict()
    # The two planned partitions would hold about 6 x limit each; split again, each piece holds whole vehicles
    # near the limit (a vehicle's 3 months are a good part of the limit in this small world).
    assert sum(loaded) == rows and len(loaded) > 4
    assert max(loaded) < 3 * limit < rows // 2, (limit, loaded)
    # Input estimated to fit in memory (a compressed CSV is larger than its size suggests) is spilled after all.
    loaded.clear()
    monkeypatch.setattr(embedded, "estimated_rows", lambda f: 1)
    run_pipeline(
        world / "pings", world / "vehicles.parquet", tmp_path / "run2", config=PipelineConfig(rows_per_partition=limit)
    )
    assert _inventory(tmp_path / "run2").to_pydict() == _inventory(full_run).to_pydict()
    assert sum(loaded) == rows and max(loaded) < 3 * limit, (limit, loaded)


def test_a_month_run_alone_matches_the_full_run(world: Path, full_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "feb"
    summary = run_pipeline(world / "pings", world / "vehicles.parquet", out, months=["2022-02"])
    assert summary.months == ["2022-02"]
    alone = _inventory(out)
    full = _inventory(full_run)
    _assert_same(alone, full.filter(pa.compute.equal(full["month"], "2022-02")))
    # Incremental: another month added to the same folder keeps the first.
    run_pipeline(world / "pings", world / "vehicles.parquet", out, months=["2022-03"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["months"]) == {"2022-02", "2022-03"} and len(manifest["runs"]) == 2
    assert sorted(p.name for p in (out / "inventory").glob("*.parquet")) == ["2022-02.parquet", "2022-03.parquet"]


# ---------------------------------------------------------------- bad input


def _tiny(tmp_path: Path) -> tuple[Path, Path]:
    pings = tmp_path / "pings.csv"
    pings.write_text(
        "vehicle_id,ts,lon,lat,speed_kmh\n"
        "1,2022-03-01 08:00:00,116.30,39.90,60\n"
        "1,2022-03-01 08:00:30,116.306,39.90,60\n"
        "1,2022-03-01 08:01:00,116.312,39.90,60,EXTRA\n"  # malformed line (line 4)
        "1,2022-03-01 08:01:30,east,39.90,60\n"  # wrong type in lon (data row 4)
        "2,2022-03-01 08:01:30,116.32,39.90,60\n"  # vehicle not in the vehicles table
        "1,2022-03-01 08:02:00,116.318,39.90,60\n",
        encoding="utf-8",
    )
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text("vehicle_id,plate,emission_standard\n1,京A11111,China V\n3,ZZ99999,China V\n", encoding="utf-8")
    return pings, vehicles


def test_bad_rows_are_quarantined_with_file_row_and_reason(tmp_path: Path) -> None:
    pings, vehicles = _tiny(tmp_path)
    summary = run_pipeline(pings, vehicles, tmp_path / "run")
    q = pq.read_table(tmp_path / "run" / "quarantine" / "pings").to_pylist()
    reasons = {(r["reason"], r["source_row"]) for r in q}
    assert ("malformed_line", 3) in reasons
    assert ("bad_coordinates", 4) in reasons  # data row 4 (lon 'east')
    assert ("unknown_vehicle", 5) in reasons
    assert all(r["source_file"] == str(pings) for r in q)
    assert summary.pings_quarantined == 3 and summary.pings_kept == 3
    vq = pq.read_table(tmp_path / "run" / "quarantine" / "vehicles").to_pylist()
    assert [(r["vehicle_id"], r["reason"], r["source_row"]) for r in vq] == [("3", "unknown_plate_prefix", 2)]
    quality = summary.quality
    assert quality["pings"]["quarantined"]["malformed_line"] == 1
    assert quality["vehicles"]["quarantined"]["unknown_plate_prefix"] == 1
    assert quality["vehicles"]["registration_from_plate"] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"vehicle_id,ts,lon\n1,2022-03-01 08:00:00,116.3\n", "missing column(s) lat"),
    ],
)
def test_file_level_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    _, vehicles = _tiny(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        run_pipeline(bad, vehicles, tmp_path / "run")
    assert str(bad) in str(err.value)
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not (tmp_path / "run" / "inventory").exists()


def test_truncated_parquet_is_a_clear_error_and_leaves_no_complete_looking_output(world: Path, tmp_path: Path) -> None:
    src = sorted((world / "pings").rglob("*.parquet"))[0]
    folder = tmp_path / "pings"
    folder.mkdir()
    (folder / "good.parquet").write_bytes(src.read_bytes())
    (folder / "zz-truncated.parquet").write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated") as err:
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run")
    assert "zz-truncated.parquet" in str(err.value)
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not list((tmp_path / "run").glob("inventory/*.parquet"))


def test_unsigned_ids_beyond_int64_are_ids_kept_exactly(tmp_path: Path) -> None:
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text(
        "vehicle_id,plate,emission_standard\n1,京A11111,China V\n9223372036854775813,京A22222,China VI\n",
        encoding="utf-8",
    )
    pings = tmp_path / "pings.parquet"
    pq.write_table(
        pa.table(
            {
                "vehicle_id": pa.array([2**63 + 5, 2**63 + 5, 2**63 + 6], pa.uint64()),  # beyond int64
                "ts": pa.array([1646092800, 1646092830, 1646092830], pa.int64()),
                "lon": [116.30, 116.31, 116.31],
                "lat": [39.90, 39.90, 39.90],
            }
        ),
        pings,
    )
    summary = run_pipeline(pings, vehicles, tmp_path / "run")
    assert summary.pings_kept == 2 and summary.quality["pings"]["quarantined"]["unknown_vehicle"] == 1
    activity = pq.read_table(tmp_path / "run" / "activity")
    assert set(activity["vehicle_id"].to_pylist()) == {"9223372036854775813"}
    q = pq.read_table(tmp_path / "run" / "quarantine" / "pings").to_pylist()
    assert [(r["vehicle_id"], r["reason"], r["source_row"]) for r in q] == [
        ("9223372036854775814", "unknown_vehicle", 3)
    ]


def test_vehicles_table_errors(tmp_path: Path) -> None:
    pings, _ = _tiny(tmp_path)
    bad = tmp_path / "v.csv"
    bad.write_text("vehicle_id,plate\n1,京A11111\n", encoding="utf-8")
    with pytest.raises(InputError, match="emission_standard"):
        run_pipeline(pings, bad, tmp_path / "run")
    bad.write_text("vehicle_id,plate,emission_standard\n1,XX1,China V\n", encoding="utf-8")
    with pytest.raises(InputError, match="no valid vehicle"):
        run_pipeline(pings, bad, tmp_path / "run")


def test_config_file_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rules]\nmax_sped_kmh = 100\n", encoding="utf-8")
    with pytest.raises(InputError, match="max_sped_kmh"):
        PipelineConfig.from_file(cfg)
    cfg.write_text('crs = "utm"\n', encoding="utf-8")
    with pytest.raises(InputError, match="crs"):
        PipelineConfig.from_file(cfg)
    cfg.write_text("[rules]\nmax_speed_kmh = 120\n[emissions]\nemission_factor = 'diesel_wtw_defra_2025'\n")
    config = PipelineConfig.from_file(cfg)
    assert config.rules.max_speed_kmh == 120 and config.emissions.emission_factor == "diesel_wtw_defra_2025"


def test_pre_aggregated_activity_input(tmp_path: Path) -> None:
    _, vehicles = _tiny(tmp_path)
    act = tmp_path / "activity.csv"
    pacsv.write_csv(
        pa.table(
            {
                "vehicle_id": [1, 1],
                "month": ["2022-03", "2022-03"],
                "city_adcode": [110100, 131000],
                "distance_km": [100.0, 50.0],
                "fuel_l": [None, 20.0],
            }
        ),
        act,
    )
    run_pipeline(None, vehicles, tmp_path / "run", activity=act)
    rows = {r["city_adcode"]: r for r in pq.read_table(tmp_path / "run" / "activity").to_pylist()}
    # Fuel covers a third of the km: below the 80% coverage rule, so the report method applies.
    rate = 0.4 * 22.74 + 0.6 * 42.89  # China V at 60 km/h (fuel_rates.csv)
    assert rows[110100]["co2_kg"] == pytest.approx(100 * rate / 100 * 2.6765)
    assert rows[110100]["method"] == "unknown_load"
    act.write_text("vehicle_id,month,city_adcode,distance_km\n1,2022-13,110100,5\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 1, column month"):
        run_pipeline(None, vehicles, tmp_path / "run2", activity=act)


def test_cli_run_and_quality(tmp_path: Path) -> None:
    pings, vehicles = _tiny(tmp_path)
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--pings", str(pings), "--vehicles", str(vehicles), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pings set aside at ingest" in result.output and "3" in result.output
    result = runner.invoke(app, ["quality", "--run", str(out)])
    assert result.exit_code == 0, result.output
    assert "malformed_line: 1" in result.output and "unknown_vehicle: 1" in result.output
    result = runner.invoke(app, ["run", "--pings", str(tmp_path / "nope"), "--vehicles", str(vehicles), "-o", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output
    for cmd in (["run", "--help"], ["quality", "--help"]):
        assert runner.invoke(app, cmd).exit_code == 0


def test_vehicle_sorted_input_streams_with_the_same_results(
    world: Path, full_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from truckcarbon.pipeline import reading
    from truckcarbon.pipeline.reading import vehicle_sorted_hint

    table = pa.concat_tables(pq.read_table(f) for f in sorted((world / "pings").rglob("*.parquet")))
    table = table.sort_by([("vehicle_id", "ascending"), ("ts", "ascending")])
    folder = tmp_path / "sorted"
    folder.mkdir()
    cut = np.linspace(0, table.num_rows, 4).astype(int)
    for k in range(3):
        pq.write_table(table.slice(cut[k], cut[k + 1] - cut[k]), folder / f"part-{k}.parquet", row_group_size=50_000)
    files = sorted(folder.glob("*.parquet"))
    assert vehicle_sorted_hint(files)
    # Small chunks so that many vehicles span a chunk boundary.
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=PipelineConfig(rows_per_partition=30_000))
    _assert_same(_inventory(tmp_path / "run"), _inventory(full_run))
    # Row groups larger than the reader takes whole are read in batches, with the same results.
    with monkeypatch.context() as m:
        m.setattr(reading, "UNIT_ROWS", 20_000)
        m.setattr(reading, "BATCH_ROWS", 7_000)
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run-batches")
    _assert_same(_inventory(tmp_path / "run-batches"), _inventory(full_run))
    # Statistics that say "sorted" while the rows of a row group are not: the run starts again with partitions.
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(table.num_rows)))
    one = tmp_path / "one"
    one.mkdir()
    pq.write_table(shuffled, one / "all.parquet", row_group_size=table.num_rows)
    assert vehicle_sorted_hint([one / "all.parquet"])
    run_pipeline(one, world / "vehicles.parquet", tmp_path / "run2")
    _assert_same(_inventory(tmp_path / "run2"), _inventory(full_run))


def test_typed_parquet_and_text_csv_take_the_same_rules(tmp_path: Path) -> None:
    rows = {
        "vehicle_id": [1, None, 1, 1, 1, 1, 1, 1, 9, 1],
        "ts": [1646092800 + 30 * i for i in range(10)],
        "lon": [116.30, 116.31, None, float("nan"), 0.0, 200.0, 116.33, 116.34, 116.35, 116.36],
        "lat": [39.90, 39.90, 39.90, 39.90, 0.0, 39.9, 39.90, 39.90, 39.90, 39.90],
        "speed_kmh": [60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 300.0, None, 60.0, float("nan")],
        "load_state": ["full", "full", "full", "full", "full", "full", "full", "FULL", "full", "loaded"],
        "fuel_level_l": [300.0, 300.0, 300.0, 300.0, 300.0, 300.0, 300.0, -1.0, 300.0, 300.0],
    }
    typed = pa.table(rows)
    typed = typed.set_column(1, "ts", pa.array([t * 1000 for t in rows["ts"]], pa.timestamp("ms", "UTC")))
    pq.write_table(typed, tmp_path / "p.parquet")
    pacsv.write_csv(typed, tmp_path / "p.csv")
    vehicles = tmp_path / "v.csv"
    vehicles.write_text("vehicle_id,plate,emission_standard\n1,京A11111,China V\n", encoding="utf-8")
    results = {}
    for name in ("p.parquet", "p.csv"):
        out = tmp_path / f"run-{name}"
        summary = run_pipeline(tmp_path / name, vehicles, out)
        q = pq.read_table(out / "quarantine" / "pings").sort_by("source_row")
        results[name] = (
            summary.quality["pings"],
            list(zip(q["source_row"].to_pylist(), q["reason"].to_pylist(), strict=True)),
        )
        # The original values travel with each row set aside, from the SQL rules or from the vehicle lookup.
        original = {r["source_row"]: r for r in q.to_pylist()}
        assert original[2]["vehicle_id"] is None and float(original[2]["lon"]) == 116.31
        assert original[3]["lon"] is None and float(original[3]["lat"]) == 39.9
        assert original[9]["vehicle_id"] == "9" and float(original[9]["lon"]) == 116.35
        assert original[10]["load_state"] == "loaded"
    assert results["p.parquet"] == results["p.csv"]
    counts, reasons = results["p.parquet"]
    assert reasons == [
        (2, "missing_vehicle_id"),
        (3, "bad_coordinates"),
        (4, "bad_coordinates"),
        (5, "zero_fix"),
        (6, "bad_coordinates"),
        (7, "bad_optional_value"),
        (8, "bad_optional_value"),
        (9, "unknown_vehicle"),
        (10, "bad_optional_value"),
    ]
    assert counts["kept"] == 1

    # The same rows as three files read by one query: each row set aside names its own file and row.
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, (lo, hi) in enumerate(((0, 4), (4, 7), (7, 10))):
        pq.write_table(typed.slice(lo, hi - lo), folder / f"part-{k}.parquet")
    summary = run_pipeline(folder, vehicles, tmp_path / "run-parts")
    q = pq.read_table(tmp_path / "run-parts" / "quarantine" / "pings").to_pylist()
    placed = sorted((Path(r["source_file"]).name, r["source_row"], r["reason"]) for r in q)
    first_rows = {"part-0.parquet": 0, "part-1.parquet": 4, "part-2.parquet": 7}
    assert sorted((first_rows[f] + row, reason) for f, row, reason in placed) == reasons
    assert {f for f, _, _ in placed} == set(first_rows)
    assert summary.quality["pings"] == counts
    original = {(Path(r["source_file"]).name, r["source_row"]): r for r in q}
    assert original[("part-2.parquet", 2)]["vehicle_id"] == "9"  # unknown vehicle: read again from its file
    assert original[("part-2.parquet", 3)]["load_state"] == "loaded"


def test_stream_chunks_never_split_a_vehicle() -> None:
    from truckcarbon.pipeline.engines.embedded import _NotSortedError, _Stream
    from truckcarbon.pipeline.reading import KERNEL_SCHEMA

    def batch(ids: list[int]) -> pa.RecordBatch:
        n = len(ids)
        cols = [pa.array(ids, pa.int64()), pa.array(np.arange(n), pa.int64())]
        cols += [pa.array(np.zeros(n)), pa.array(np.zeros(n)), pa.array(np.zeros(n, np.float32))]
        cols += [pa.array(np.zeros(n, np.int8)), pa.array(np.zeros(n)), pa.array(np.zeros(n))]
        # Vehicle 0 here: a row set aside by the ingest (a missing id), which takes no part in the order.
        cols += [pa.array(np.where(np.array(ids) == 0, 0, -1).astype(np.int8))]
        return pa.RecordBatch.from_arrays(cols, schema=KERNEL_SCHEMA)

    stream = _Stream(chunk_rows=2)
    chunks = []
    for ids in ([1, 1, 2], [2, 0, 2, 2], [2, 2], [2, 3, 3, 0], [0, 4], [4, 5], [5, 6, 7, 7, 8], [8, 9]):
        for chunk in stream.add(batch(ids)):
            chunks.append(chunk["vehicle_id"].to_pylist())
    rest = stream.rest()
    assert rest is not None
    chunks.append(rest["vehicle_id"].to_pylist())
    expected = [1, 1, 2, 2, 0, 2, 2, 2, 2, 2, 3, 3, 0, 0, 4, 4, 5, 5, 6, 7, 7, 8, 8, 9]
    assert [v for chunk in chunks for v in chunk] == expected
    # The batch [5, 6, 7, 7, 8] gives two chunks: the held rows with its 5 (copied), and its 6, 7, 7 (a view).
    assert [5, 5] in chunks and [6, 7, 7] in chunks
    seen: set[int] = set()
    for chunk in chunks:
        ids = set(chunk) - {0}
        assert not (ids & seen), chunks  # a vehicle lies in one chunk only
        seen |= ids
    with pytest.raises(_NotSortedError):
        stream.add(batch([1]))


def test_read_progress_moves_file_by_file(tmp_path: Path) -> None:
    """Typed files of one schema are still reported one by one (the read's progress bar moves)."""
    _, vehicles = _tiny(tmp_path)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        t0 = 1646092800 + 600 * k
        pq.write_table(
            pa.table(
                {
                    "vehicle_id": [1, 1],
                    "ts": pa.array([(t0 + 30 * i) * 1000 for i in range(2)], pa.timestamp("ms", "UTC")),
                    "lon": [116.30, 116.31],
                    "lat": [39.90, 39.90],
                }
            ),
            folder / f"part-{k}.parquet",
        )
    seen: list[tuple[int, int]] = []
    run_pipeline(
        folder, vehicles, tmp_path / "run", progress=lambda s, d, n: seen.append((d, n)) if s == "read" else None
    )
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_a_run_writes_the_declared_tables(world: Path, full_run: Path) -> None:
    """The outputs of a run have the columns and types the schema module declares, in order."""
    from truckcarbon.core.schemas import ACTIVITY, INVENTORY, RUN_VEHICLES, UNOBSERVED

    for name, schema in (("inventory", INVENTORY), ("activity", ACTIVITY), ("unobserved", UNOBSERVED)):
        f = sorted((full_run / name).glob("*.parquet"))[0]
        got = pq.read_schema(f)
        assert tuple(got.names) == schema.names, name
        assert [fld.type for fld in got] == [c.type for c in schema.columns], name
    import duckdb

    con = duckdb.connect(str(full_run / "truckcarbon.duckdb"), read_only=True)
    names = [r[0] for r in con.execute("DESCRIBE vehicles").fetchall()]
    assert tuple(names) == RUN_VEHICLES.names
