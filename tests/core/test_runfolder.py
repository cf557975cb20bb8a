"""RunFolder: the layout, the typed reading and writing of its tables, the tolerant manifest accessors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError, TruckcarbonError
from truckcarbon.core.runfolder import OUTPUTS, Missing, OutputError, RunFolder


def test_layout() -> None:
    folder = RunFolder(Path("r"))
    assert folder.inventory == Path("r/inventory") and folder.database == Path("r/truckcarbon.duckdb")
    assert folder.month_file("activity", "2022-03") == Path("r/activity/2022-03.parquet")
    assert {o.name for o in OUTPUTS} >= {"inventory", "activity", "quarantine", "analysis", "forecast", "report"}
    with pytest.raises(KeyError):
        folder.month_file("quarantine", "2022-03")
    with pytest.raises(KeyError):
        folder.output("nope")


def test_accessors_tolerate_missing_and_wrong_keys(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.months() == {} and folder.quality() is None and folder.inputs() == []
    assert folder.missing[0].source == "manifest.json" and folder.missing[0].why.startswith("absent")
    manifest = {
        "months": {"2022-01": {"run_id": "a", "vehicles_active": 2, "co2_t": 1.5, "fixes": {"kept": 3, "x": "y"}}},
        "runs": [{"inputs": [{"role": "pings", "path": "p", "hash": None}, 7], "quality": {"pings": {"read": "ten"}}}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    folder = RunFolder(tmp_path)
    with folder.collect() as missed:
        months = folder.months()
    assert months["2022-01"].fixes == {"kept": 3} and months["2022-01"].distance_km_unweighted is None
    assert Missing("manifest.json", "months.*.distance_km_unweighted", "absent in 1 of 1 months (2022-01)") in missed
    q = folder.quality()
    assert q is not None and q.vehicles is None and q.pings is not None and q.pings.read is None
    assert q.pings.quarantined == {} and q.trajectories == {}
    notes = {str(m) for m in folder.missing}
    assert "manifest.json runs[-1].quality.pings.read: not a whole number" in notes
    assert "manifest.json runs[-1].quality.vehicles: absent" in notes
    assert [i.path for i in folder.inputs()] == ["p"]
    assert "manifest.json runs[-1].inputs[1]: not a mapping" in {str(m) for m in folder.missing}
    assert folder.method_formula() is None
    # The writer side refuses an unreadable manifest instead of dropping the folder's history.
    (tmp_path / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON object"):
        RunFolder(tmp_path).manifest_data()
    assert RunFolder(tmp_path).months() == {}


def _month(month: str, co2: float, **extra: list[object]) -> pa.Table:
    return pa.table({"month": [month, month], "view": ["operating", "registration"], "co2_t": [co2, 2 * co2], **extra})


def test_monthly_outputs_are_read_as_one_table_in_month_order(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    with pytest.raises(InputError, match=r"no inventory \(expected .*inventory/YYYY-MM.parquet\)"):
        folder.read_inventory()
    with pytest.raises(InputError, match="no activity"):
        folder.read_activity()
    (tmp_path / "inventory").mkdir()
    pq.write_table(_month("2022-02", 5.0), folder.month_file("inventory", "2022-02"))
    pq.write_table(_month("2022-01", 1.0, city=[1, 2]), folder.month_file("inventory", "2022-01"))
    pq.write_table(_month("2099-01", 9.0), tmp_path / "inventory" / ".2099-01.parquet")  # a temporary: not a month
    table = folder.read_inventory()
    assert table["month"].to_pylist() == ["2022-01", "2022-01", "2022-02", "2022-02"]
    assert table["co2_t"].to_pylist() == [1.0, 2.0, 5.0, 10.0]
    assert table["city"].to_pylist() == [1, 2, None, None]  # a column of some months only: null in the others
    assert folder.read_inventory(["co2_t", "month"]).column_names == ["co2_t", "month"]
    with pytest.raises(InputError, match=r"inventory: not an inventory, missing column\(s\) fuel_l, vehicles$"):
        folder.read_inventory(["month", "fuel_l", "vehicles"])
    (tmp_path / "activity").mkdir()
    pq.write_table(_month("2022-01", 3.0), folder.month_file("activity", "2022-01"))
    assert folder.read_activity(["co2_t"])["co2_t"].to_pylist() == [3.0, 6.0]


def test_derived_tables_round_trip_and_name_the_command_that_writes_them(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    table = pa.table({"month": ["2022-01", "2022-02"], "co2_t": [1.5, 2.5]})
    folder.write_analysis("national", table)
    assert folder.read_analysis("national").equals(table)
    assert pacsv.read_csv(tmp_path / "run" / "analysis" / "national.csv").equals(table)
    folder.write_forecast("backtest", table)
    assert (tmp_path / "run" / "forecast" / "backtest.parquet").exists()
    with pytest.raises(OutputError) as absent:
        folder.read_forecast("forecast")
    assert str(absent.value) == (
        f"{tmp_path / 'run' / 'forecast' / 'forecast.parquet'} is missing "
        f"(run `truckcarbon forecast --run {tmp_path / 'run'}`)"
    )
    assert (absent.value.source, absent.value.why) == ("forecast/forecast.parquet", "absent")
    assert isinstance(absent.value, InputError) and isinstance(absent.value, TruckcarbonError)
    (tmp_path / "run" / "analysis" / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(OutputError, match=r"broken\.parquet could not be read") as broken:
        folder.read_analysis("broken")
    assert broken.value.why.startswith("could not be read")
    folder.write_json("forecast", "peak", {"peak_year": 2021, "shocks": ["2020-02"]})
    assert folder.read_json("forecast", "peak") == {"peak_year": 2021, "shocks": ["2020-02"]}
    folder.json_path("forecast", "peak").write_text("{not json", encoding="utf-8")
    with pytest.raises(OutputError, match=r"peak.json is not valid JSON \(.*\); run `truckcarbon forecast` again$"):
        folder.read_json("forecast", "peak")
    with pytest.raises(KeyError):
        folder.table_path("inventory", "national")  # a monthly output has month files, not named tables
