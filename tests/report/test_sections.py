"""The report's sections on hand-made models: what each shows, what stops it, what it says it lacked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from truckcarbon.core.manifest_read import Counts, InputEntry, MonthEntry, Quality
from truckcarbon.core.runfolder import Missing, OutputError
from truckcarbon.report.load import Noted, ReportData, SectionError
from truckcarbon.report.sections import s_forecast, s_maps, s_method, s_published, s_quality

Make = Callable[..., ReportData]
ABSENT = Missing("manifest.json", "months", "absent")


def _month(label: str, fixes: dict[str, int]) -> MonthEntry:
    return MonthEntry(label, "r", 1, 1.0, 0.0, 1.0, fixes)


def test_quality_shows_the_record_and_the_fixes_summed_over_months(make_data: Make) -> None:
    quality = Quality(
        pings=Counts(read=20, kept=17, quarantined={"bad_ts": 3, "zero_fix": 0}),
        vehicles=Counts(read=3, kept=2, quarantined={"no_standard": 1}),
        trajectories={"segments": 4.0},
    )
    months = {"2022-01": _month("2022-01", {"kept": 10, "duplicate": 2}), "2022-02": _month("2022-02", {"kept": 5})}
    lacking = Missing("manifest.json", "months.*.fixes", "absent in 1 of 2 months (2022-02)")
    data = make_data(quality=Noted(quality, (lacking,)), months=Noted(months, (lacking,)))
    sec = s_quality(data, "en")
    assert "<td>pings read</td><td class='num'>20</td>" in sec.body
    assert "<td>quarantined: bad_ts</td><td class='num'>3</td>" in sec.body and "zero_fix" not in sec.body
    assert "<td>vehicles kept / read</td><td>2 / 3</td>" in sec.body
    assert "<td>fixes: kept</td><td class='num'>15</td>" in sec.body  # 10 + 5
    assert "<td>fixes: duplicate</td><td class='num'>2</td>" in sec.body
    assert "<td>segments</td><td>4.0</td>" in sec.body
    assert sec.notes == [str(lacking)]  # noted by both records, said once


def test_quality_without_a_record_says_what_the_manifest_lacked(make_data: Make) -> None:
    with pytest.raises(SectionError, match=r"^manifest\.json months: absent$"):
        s_quality(make_data(months=Noted({}, (ABSENT,))), "en")
    with pytest.raises(SectionError, match=r"manifest\.json holds no quality record"):
        s_quality(make_data(), "zh")


def test_maps_and_forecast_stop_on_what_they_cannot_show(make_data: Make) -> None:
    with pytest.raises(SectionError, match="city_standard_period has no rows"):
        s_maps(make_data(tables={"analysis/city_standard_period": []}), "en")
    forecast: dict[str, list[dict[str, Any]] | OutputError] = {"forecast/forecast": [], "forecast/backtest": []}
    with pytest.raises(SectionError, match=r"^peak\.json is missing$"):
        s_forecast(make_data(tables=forecast), "en")
    data = make_data(tables=forecast, peak={"share_of_paths_peaked": 0.5})
    with pytest.raises(SectionError, match=r"forecast/peak\.json has no peak_year; run `truckcarbon forecast --run"):
        s_forecast(data, "en")
    missing = OutputError("forecast/forecast.parquet is missing", "forecast/forecast.parquet", "absent")
    with pytest.raises(SectionError, match=r"^forecast/forecast\.parquet is missing$"):
        s_forecast(make_data(tables={**forecast, "forecast/forecast": missing}), "en")


def test_published_figures_only_for_a_simulated_world(make_data: Make) -> None:
    inputs = Noted([InputEntry("pings", None, None)], (Missing("manifest.json", "runs[-1].inputs[0].path", "absent"),))
    sec = s_published(make_data(inputs=inputs), "en")
    assert "is not the simulated demo world" in sec.body and sec.notes == [
        "manifest.json runs[-1].inputs[0].path: absent"
    ]
    published = [{"year": 2018, "co2_1e8_t": 1.25, "source": "the source report"}]
    annual: list[dict[str, Any]] = [{"year": 2018, "co2_t": 1.5e8}, {"year": 2030, "co2_t": 9.0e8}]
    data = make_data(simulated_world=True, published=published, tables={"analysis/national_annual": annual})
    body = s_published(data, "en").body
    assert "<td class='num'>2018</td><td class='num'>1.25</td><td class='num'>1.50</td><td>+20.0%</td>" in body
    assert "2030" not in body and "the source report" in body
    with pytest.raises(SectionError, match="no year in common"):
        s_published(make_data(simulated_world=True, published=published, tables={"analysis/national_annual": []}), "en")


def test_method_lists_the_fuel_rates_at_60_kmh_the_factors_and_the_inputs(make_data: Make) -> None:
    rates = [
        {"emission_standard": "China V", "load_state": "full", "reference_speed_kmh": s, "fuel_rate_l_per_100km": r,
         "source": "COPERT"}
        for s, r in ((60, 31.5), (80, 36.0))
    ]  # fmt: skip
    factors = [{"factor_id": "diesel", "ef_kg_per_l": 2.6765, "source": "GHG Protocol"}]
    inputs = [InputEntry("pings", "p.parquet", "blake3:0123456789abcdef0123"), InputEntry("vehicles", "v.csv", None)]
    data = make_data(fuel_rates=rates, emission_factors=factors, inputs=Noted(inputs), formula=Noted("co2 = a < b"))
    sec = s_method(data, "en")
    assert "31.5 L/100 km" in sec.body and "36.0 L/100 km" not in sec.body
    assert "<td>diesel</td><td>2.6765 kg CO2/L</td>" in sec.body
    assert "<pre>co2 = a &lt; b</pre>" in sec.body
    assert "<td>blake3 0123456789abcdef…</td>" in sec.body and "<td>–</td>" in sec.body  # no hash: a dash
    assert sec.notes == []
