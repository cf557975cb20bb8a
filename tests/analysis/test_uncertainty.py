"""The inventory's intervals on hand-built run folders whose draws can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truckcarbon.analysis.uncertainty import COLUMNS, GAP_COLUMNS, UNOBSERVED_CIRCUITY, inventory_intervals
from truckcarbon.core.errors import InputError
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.emissions.factors import EmissionStandard, LoadState, fuel_rates
from truckcarbon.emissions.montecarlo import UncertaintySettings

BEIJING, TIANJIN = 110100, 120100
MONTH = "2023-05"
# No factor error (the fallback's sigma 0), no bootstrap: only what a test puts in varies.
FIXED = UncertaintySettings(draws=2000, seed=5, fallback_sigma=0.0, bootstrap=False)


def row(vehicle: str, city: int = BEIJING, co2_kg: float = 1000.0, km: float = 400.0, **kw: object) -> dict:
    base = {
        "vehicle_id": vehicle, "month": MONTH, "city_adcode": city, "registration_city_adcode": BEIJING,
        "emission_standard": "China V", "vehicle_class": "Articulated 40 - 50 t", "method": "load_state",
        "weight": 1.0, "distance_km": km, "distance_km_unknown_load": 0.0, "distance_km_fuel_measured": 0.0,
        "driving_h": km / 50.0, "fuel_l_report": co2_kg / 2.6, "fuel_l_copert": co2_kg / 2.6,
        "fuel_l_measured": float("nan"), "fuel_gauge_used": False, "fuel_type": "diesel", "co2_kg": co2_kg,
        "nox_kg": co2_kg / 100, "pm25_kg": co2_kg / 1e4, "co_kg": co2_kg / 500, "hc_kg": co2_kg / 2000,
    }  # fmt: skip
    base.update(kw)
    return base


def run_folder(tmp: Path, rows: list[dict], gaps: list[dict] | None = None) -> RunFolder:
    (tmp / "activity").mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows).select(list(COLUMNS))
    table = table.set_column(2, "city_adcode", table["city_adcode"].cast(pa.int32()))
    pq.write_table(table, tmp / "activity" / f"{MONTH}.parquet")
    if gaps:
        (tmp / "unobserved").mkdir(exist_ok=True)
        pq.write_table(pa.Table.from_pylist(gaps).select(list(GAP_COLUMNS)), tmp / "unobserved" / f"{MONTH}.parquet")
    return RunFolder.open(tmp)


def gap(vehicle: str, km: float, odometer_km: float = 0.0) -> dict:
    return {
        "vehicle_id": vehicle, "from_city_adcode": BEIJING, "to_city_adcode": TIANJIN, "gaps": 1,
        "unobserved_km": km, "odometer_gaps": int(odometer_km > 0), "odometer_km": odometer_km,
    }  # fmt: skip


def national(result, column: str = "co2") -> list[float]:  # type: ignore[no-untyped-def]
    r = result.national.to_pylist()[0]
    return [r["co2_t"], r[f"{column}_t_p05"], r[f"{column}_t_p50"], r[f"{column}_t_p95"]]


def test_nothing_uncertain_gives_the_point_estimate(tmp_path: Path) -> None:
    result = inventory_intervals(run_folder(tmp_path, [row("a"), row("b", TIANJIN, 500.0)]), FIXED)
    assert national(result) == pytest.approx([1.5, 1.5, 1.5, 1.5])
    assert national(result, "nox") == pytest.approx([1.5, 0.015, 0.015, 0.015])
    inventory = {(r["view"], r["city_adcode"]): r for r in result.inventory.to_pylist()}
    assert inventory["operating", TIANJIN]["co2_t_p95"] == pytest.approx(0.5)
    assert inventory["registration", BEIJING]["co2_t_p50"] == pytest.approx(1.5)  # both registered in Beijing
    assert (tmp_path / "analysis" / "national_intervals.csv").is_file()


def test_the_bootstrap_of_two_trucks_in_one_stratum(tmp_path: Path) -> None:
    """Two trucks of 10 and 30 kg drawn twice with replacement: 20 (1/4), 40 (1/2) or 60 kg (1/4)."""
    folder = run_folder(tmp_path, [row("a", co2_kg=10.0), row("b", co2_kg=30.0)])
    result = inventory_intervals(folder, UncertaintySettings(draws=2000, seed=5, fallback_sigma=0.0))
    assert national(result) == pytest.approx([0.04, 0.02, 0.04, 0.06])


def test_a_years_draws_are_its_months_draws_summed(tmp_path: Path) -> None:
    """The two trucks in May and June: a draw takes each truck as often in both months (its count is the
    truck's), so the year is 40, 80 or 120 kg; the fallback factor (sigma 0.2) is drawn per row and month."""
    folder = run_folder(tmp_path, [row("a", co2_kg=10.0), row("b", co2_kg=30.0)])
    june = [dict(row("a", co2_kg=10.0), month="2023-06"), dict(row("b", co2_kg=30.0), month="2023-06")]
    table = pa.Table.from_pylist(june).select(list(COLUMNS))
    pq.write_table(table.set_column(2, "city_adcode", table["city_adcode"].cast(pa.int32())),
                   tmp_path / "activity" / "2023-06.parquet")  # fmt: skip
    result = inventory_intervals(folder, UncertaintySettings(draws=2000, seed=5, fallback_sigma=0.0))
    (year,) = result.national_annual.to_pylist()
    assert (year["year"], year["co2_t"]) == (2023, pytest.approx(0.08))
    assert [year["co2_t_p05"], year["co2_t_p50"], year["co2_t_p95"]] == pytest.approx([0.04, 0.08, 0.12])
    assert [r["co2_t_p50"] for r in result.national.to_pylist()] == pytest.approx([0.04, 0.04])
    wide = inventory_intervals(folder, UncertaintySettings(draws=4000, seed=5, fallback_sigma=0.2, bootstrap=False))
    (y,) = wide.national_annual.to_pylist()
    months = wide.national.to_pylist()
    # Independent months: the year's interval is narrower than the months' intervals added.
    assert y["co2_t_p95"] - y["co2_t_p05"] < sum(m["co2_t_p95"] - m["co2_t_p05"] for m in months)


def test_another_fuels_factor_spans_its_range(tmp_path: Path) -> None:
    """An LNG truck: its gas per diesel litre uniform on 0.787-0.880 around 0.831 (fuel_types.csv)."""
    folder = run_folder(tmp_path, [row("a", fuel_type="LNG")])
    _, p05, p50, p95 = national(inventory_intervals(folder, FIXED))
    lo, hi = 0.787 / 0.831, 0.880 / 0.831
    assert [p05, p50, p95] == pytest.approx([lo + q * (hi - lo) for q in (0.05, 0.5, 0.95)], rel=0.01)


def test_the_unknown_load_share_spans_its_range(tmp_path: Path) -> None:
    folder = run_folder(tmp_path, [row("a", distance_km_unknown_load=400.0)])
    _, p05, p50, p95 = national(inventory_intervals(folder, FIXED))
    rates = fuel_rates(60)
    empty = rates.rate(EmissionStandard.CHINA_V, LoadState.EMPTY)
    full = rates.rate(EmissionStandard.CHINA_V, LoadState.FULL)
    unknown = rates.unknown_load_rate(EmissionStandard.CHINA_V)
    at = [((1 - s) * empty + s * full) / unknown for s in (0.42, 0.6, 0.78)]  # uniform 0.4-0.8: its p05, p50, p95
    assert [p05, p50, p95] == pytest.approx(at, rel=0.01)


def test_a_gauge_row_takes_the_factor_error_only_on_the_km_it_missed(tmp_path: Path) -> None:
    wide = UncertaintySettings(draws=2000, seed=5, fallback_sigma=0.3, bootstrap=False)
    measured = dict(method="measured_fuel", distance_km_fuel_measured=400.0, fuel_gauge_used=True)
    result = inventory_intervals(run_folder(tmp_path / "all", [row("a", **measured)]), wide)
    assert national(result) == pytest.approx([1.0] * 4)
    half = dict(measured, distance_km_fuel_measured=200.0)
    _, p05, _, p95 = national(inventory_intervals(run_folder(tmp_path / "half", [row("a", **half)]), wide))
    _, q05, _, q95 = national(inventory_intervals(run_folder(tmp_path / "none", [row("a")]), wide))
    assert 0.0 < p95 - p05 < q95 - q05
    assert (p95 - p05) / (q95 - q05) == pytest.approx(0.5, rel=0.1)


def test_an_unobserved_gap_adds_its_driving_at_the_trucks_rate(tmp_path: Path) -> None:
    """A truck at 2.5 kg/km (1,000 kg over 400 km) with a 50 km gap Beijing -> Tianjin: each draw adds
    125 kg times a circuity uniform on 1.0-1.5, to one of the two cities."""
    result = inventory_intervals(run_folder(tmp_path / "chord", [row("a")], [gap("a", 50.0)]), FIXED)
    lo, hi = UNOBSERVED_CIRCUITY
    extra = [0.125 * (lo + q * (hi - lo)) for q in (0.05, 0.5, 0.95)]
    assert national(result) == pytest.approx([1.0, *(1.0 + e for e in extra)], rel=0.01)
    assert result.unobserved_km == 50.0
    cities = {r["city_adcode"]: r for r in result.city.to_pylist()}
    assert cities[TIANJIN]["co2_t"] == 0.0  # no km attributed there
    assert cities[TIANJIN]["co2_t_p05"] == 0.0 and cities[TIANJIN]["co2_t_p95"] > 0.12  # half the draws
    # With odometer readings at the gap's ends its km are known: 70 km, 175 kg in every draw.
    known = inventory_intervals(run_folder(tmp_path / "odo", [row("a")], [gap("a", 50.0, 70.0)]), FIXED)
    assert national(known)[1:] == pytest.approx([1.175] * 3)


def test_the_draws_are_seeded(tmp_path: Path) -> None:
    rows = [row(v, co2_kg=100.0 + 10 * i, distance_km_unknown_load=100.0) for i, v in enumerate("abcdefgh")]
    folder = run_folder(tmp_path, rows, [gap("c", 30.0)])
    settings = UncertaintySettings(draws=300, seed=11)
    first = inventory_intervals(folder, settings).inventory
    assert inventory_intervals(folder, settings).inventory.equals(first)
    other = inventory_intervals(folder, UncertaintySettings(draws=300, seed=12)).inventory
    assert not other.equals(first)
    r = first.to_pylist()[0]
    assert r["co2_t_p05"] < r["co2_t_p50"] < r["co2_t_p95"]


def test_an_older_run_folder_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "activity").mkdir()
    pq.write_table(pa.table({"vehicle_id": ["a"], "co2_kg": [1.0]}), tmp_path / "activity" / f"{MONTH}.parquet")
    with pytest.raises(InputError, match=r"2023-05.parquet: missing column\(s\) .*truckcarbon run"):
        inventory_intervals(RunFolder.open(tmp_path), FIXED)
    with pytest.raises(InputError, match="no activity"):
        inventory_intervals(RunFolder.open(tmp_path / "empty"), FIXED)
