"""A run end to end: accuracy against the simulator's exact truth and invariances on every engine; bad input.

The tests that take ``engine`` run on the embedded and the Spark engine alike (``conftest.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from truckcarbon.cli.main import app
from truckcarbon.core.errors import InputError
from truckcarbon.pipeline import EngineName, PipelineConfig, run_pipeline

from .pipekit import assert_same, inventory, shuffled_copy


def sql(query: str) -> list[tuple[object, ...]]:
    return duckdb.connect().execute(query).fetchall()


# ---------------------------------------------------------------- every engine


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


def test_outputs_manifest_and_database(world: Path, full_run: Path, engine: EngineName) -> None:
    inv = pq.read_table(full_run / "inventory")
    assert sorted(p.name for p in (full_run / "inventory").glob("*.parquet")) == [
        "2022-01.parquet",
        "2022-02.parquet",
        "2022-03.parquet",
    ]
    assert set(inv["view"].to_pylist()) == {"operating", "registration"}
    manifest = json.loads((full_run / "manifest.json").read_text())
    assert manifest["engine"].startswith(f"{engine} (")
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


def test_shuffled_and_split_input_gives_the_same_inventory(
    world: Path, full_run: Path, engine: EngineName, tmp_path: Path
) -> None:
    folder = shuffled_copy(world, tmp_path / "shuffled")
    # Many partitions must not change anything either.
    config = PipelineConfig(rows_per_partition=200_000)
    run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", config=config, engine=engine)
    assert_same(inventory(tmp_path / "run"), inventory(full_run))


def test_a_month_run_alone_matches_the_full_run(
    world: Path, full_run: Path, engine: EngineName, tmp_path: Path
) -> None:
    out = tmp_path / "feb"
    summary = run_pipeline(world / "pings", world / "vehicles.parquet", out, months=["2022-02"], engine=engine)
    assert summary.months == ["2022-02"]
    full = inventory(full_run)
    assert_same(inventory(out), full.filter(pc.equal(full["month"], "2022-02")))
    # Incremental: another month added to the same folder keeps the first.
    run_pipeline(world / "pings", world / "vehicles.parquet", out, months=["2022-03"], engine=engine)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["months"]) == {"2022-02", "2022-03"} and len(manifest["runs"]) == 2
    assert sorted(p.name for p in (out / "inventory").glob("*.parquet")) == ["2022-02.parquet", "2022-03.parquet"]
    assert_same(inventory(out), full.filter(pc.is_in(full["month"], pa.array(["2022-02", "2022-03"]))))


def test_a_file_uri_gives_the_same_inventory(world: Path, full_run: Path, engine: EngineName, tmp_path: Path) -> None:
    """``file://`` pings: read by Spark itself, or as the local folder by the embedded engine."""
    run_pipeline(f"file://{world}/pings", world / "vehicles.parquet", tmp_path / "uri", engine=engine)
    assert_same(inventory(tmp_path / "uri"), inventory(full_run))


def test_truncated_parquet_is_a_clear_error_and_leaves_no_complete_looking_output(
    world: Path, engine: EngineName, tmp_path: Path
) -> None:
    src = sorted((world / "pings").rglob("*.parquet"))[0]
    folder = tmp_path / "pings"
    folder.mkdir()
    (folder / "good.parquet").write_bytes(src.read_bytes())
    (folder / "zz-truncated.parquet").write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated") as err:
        run_pipeline(folder, world / "vehicles.parquet", tmp_path / "run", engine=engine)
    assert "zz-truncated.parquet" in str(err.value)
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not list((tmp_path / "run").glob("inventory/*.parquet"))


# ---------------------------------------------------------------- engines by name


def test_engines_are_named_by_plain_strings_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    assert EngineName("spark") is EngineName.SPARK and EngineName.EMBEDDED == "embedded"
    pings, vehicles = _tiny(tmp_path)
    with pytest.raises(InputError, match=r"unknown engine 'duck'; use one of embedded, spark"):
        run_pipeline(pings, vehicles, tmp_path / "run", engine="duck")
    assert not (tmp_path / "run").exists()
    summary = run_pipeline(pings, vehicles, tmp_path / "run", engine="embedded")  # a plain string
    assert summary.pings_kept == 3


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


def test_pings_or_activity_but_not_both(tmp_path: Path) -> None:
    pings, vehicles = _tiny(tmp_path)
    for given in ({"pings": None}, {"pings": pings, "activity": pings}):
        with pytest.raises(InputError, match="either pings or a pre-aggregated activity table"):
            run_pipeline(vehicles=vehicles, out=tmp_path / "run", **given)  # type: ignore[arg-type]


def test_pre_aggregated_activity_input(tmp_path: Path) -> None:
    _, vehicles = _tiny(tmp_path)
    act = tmp_path / "activity.csv"
    pacsv.write_csv(
        pa.table(
            {
                "vehicle_id": [1, 1, 1],
                "month": ["2022-03", "2022-03", "2022-04"],
                "city_adcode": [110100, 131000, 110100],
                "distance_km": [100.0, 50.0, 10.0],
                "fuel_l": [None, 20.0, None],
            }
        ),
        act,
    )
    summary = run_pipeline(None, vehicles, tmp_path / "run", activity=act, months=["2022-03"])
    assert summary.months == ["2022-03"]  # the month asked for only
    rows = {r["city_adcode"]: r for r in pq.read_table(tmp_path / "run" / "activity").to_pylist()}
    assert set(rows) == {110100, 131000}
    # Fuel covers a third of the km: below the 80% coverage rule, so the report method applies.
    rate = 0.4 * 22.74 + 0.6 * 42.89  # China V at 60 km/h (fuel_rates.csv)
    assert rows[110100]["co2_kg"] == pytest.approx(100 * rate / 100 * 2.6765)
    assert rows[110100]["method"] == "unknown_load"
    assert summary.distance_km == pytest.approx(150.0)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [i["role"] for i in manifest["runs"][-1]["inputs"]] == ["vehicles", "activity"]
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
    result = runner.invoke(
        app, ["run", "--pings", str(pings), "--vehicles", str(vehicles), "-o", str(out), "--engine", "duck"]
    )
    assert result.exit_code == 2 and "unknown engine" in result.output
    for cmd in (["run", "--help"], ["quality", "--help"]):
        assert runner.invoke(app, cmd).exit_code == 0


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
