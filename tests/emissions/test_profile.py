"""The speed methods on activity rows, by hand: COPERT fuel per speed bin and load, idle, pollutants.

Expected values are computed here from the shipped CSV rows (copert_hdv.csv's coefficients written out as the
Guidebook's formulas, idle_rates.csv's rate, china_pollutants.csv's base and load factors), not from the code.
"""

from __future__ import annotations

import csv
from importlib.resources import files

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.method import EmissionSettings, apply_method
from truckcarbon.emissions.profile import SpeedProfile

ART, RIGID = 0, 1
BINS = 10
DENSITY = 0.835  # kg/L


def rows(name: str) -> list[dict[str, str]]:
    text = files("truckcarbon.data").joinpath("factors", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def fc_euro_v_articulated(load_pct: int, v: float) -> float:
    """g/km of the Euro V SCR articulated FC row at ``load_pct``, written out (forms 0 and 14)."""
    (r,) = [
        r for r in rows("copert_hdv.csv")
        if (r["vehicle_class"], r["euro_stage"], r["technology"], r["pollutant"], r["load_pct"])
        == ("Articulated 40 - 50 t", "Euro V", "SCR", "FC", str(load_pct))
    ]  # fmt: skip
    a, b, c, d = (float(r[k]) for k in "abcd")
    v = min(max(v, float(r["v_min_kmh"])), float(r["v_max_kmh"]))
    if r["function_id"] == "0":
        return a * b**v * v**c
    assert r["function_id"] == "14"
    return a * v**3 + b * v**2 + c * v + d


def idle_rate(cls: str = "Articulated 40 - 50 t") -> float:
    (r,) = [r for r in rows("idle_rates.csv") if (r["fuel_type"], r["vehicle_class"]) == ("diesel", cls)]
    return float(r["rate"])


def row(km_bins: dict[tuple[int, int], tuple[float, float]], idle_h: float = 0.0, extra_km: float = 0.0) -> dict:
    """An activity row: ``km_bins`` maps (load column, speed bin) to (km, hours); ``extra_km`` of unknown load
    outside the lists."""
    km = np.zeros((4, BINS))
    h = np.zeros(BINS)
    for (ld, b), (k, hours) in km_bins.items():
        km[ld, b] += k
        h[b] += hours
    loads = km.sum(axis=1)
    loads[3] += extra_km
    return {
        "vehicle_id": 1, "month": "2022-03", "city_adcode": 110100, "distance_km": float(loads.sum()),
        "distance_km_empty": loads[0], "distance_km_half": loads[1], "distance_km_full": loads[2],
        "distance_km_unknown_load": loads[3], "fuel_measured_l": 0.0, "distance_km_fuel_measured": 0.0,
        "idle_h": idle_h, "speed_bin_km": km.ravel().tolist(), "speed_bin_h": h.tolist(),
    }  # fmt: skip


def table(items: list[dict]) -> pa.Table:
    t = pa.Table.from_pylist(items)
    for name, width in (("speed_bin_km", 4 * BINS), ("speed_bin_h", BINS)):
        t = t.set_column(t.column_names.index(name), name, t[name].cast(pa.list_(pa.float64(), width)))
    return t


COPERT = EmissionSettings(method="copert")


def test_a_segment_at_20_and_at_80_kmh_empty_and_full():
    # 10 km empty in 0.5 h (20 km/h), 40 km full in 0.5 h (80 km/h), each in its own bin.
    t = table([row({(0, 2): (10.0, 0.5)}), row({(2, 8): (40.0, 0.5)}), row({(0, 8): (40.0, 0.5)})])
    out = apply_method(t, [2, 2, 2], COPERT, [ART, ART, ART])
    want = [
        10 * fc_euro_v_articulated(0, 20.0) / (1000 * DENSITY),
        40 * fc_euro_v_articulated(100, 80.0) / (1000 * DENSITY),
        40 * fc_euro_v_articulated(0, 80.0) / (1000 * DENSITY),
    ]
    assert out["fuel_l_copert"].to_pylist() == pytest.approx(want, rel=1e-12)
    assert out["fuel_l"].to_pylist() == out["fuel_l_copert"].to_pylist()
    assert set(out["method"].to_pylist()) == {"copert"}
    # Per km, 20 km/h burns more than 80 km/h, and full more than empty (COPERT's shapes).
    assert want[0] / 10 > want[2] / 40 and want[1] > want[2]
    assert out["co2_kg"].to_pylist() == pytest.approx([w * 2.6765 for w in want], rel=1e-12)


def test_a_bin_speed_is_its_km_over_its_hours_and_half_load_interpolates():
    # Two loads in one bin: 30 km/h from (10 + 20) km over 1 h; half load is COPERT's 50% row itself.
    t = table([row({(0, 3): (10.0, 0.25), (2, 3): (20.0, 0.75)})])
    out = apply_method(t, [2], COPERT, [ART])
    want = (10 * fc_euro_v_articulated(0, 30.0) + 20 * fc_euro_v_articulated(100, 30.0)) / (1000 * DENSITY)
    assert out["fuel_l_copert"][0].as_py() == pytest.approx(want, rel=1e-12)


def test_idling_burns_the_idle_rate_and_unknown_load_takes_the_reports_split():
    idle = table([row({}, idle_h=2.0)])
    out = apply_method(idle, [2], COPERT, [ART])
    assert out["fuel_l_copert"][0].as_py() == pytest.approx(2.0 * idle_rate(), rel=1e-12)
    assert out["fuel_l_report"][0].as_py() == 0.0  # the report's method knows no idling
    unknown = table([row({(3, 5): (50.0, 1.0)})])  # 50 km/h, load unknown
    got = apply_method(unknown, [2], COPERT, [ART])["fuel_l_copert"][0].as_py()
    want = 50 * (0.4 * fc_euro_v_articulated(0, 50.0) + 0.6 * fc_euro_v_articulated(100, 50.0)) / (1000 * DENSITY)
    assert got == pytest.approx(want, rel=1e-12)


def test_km_without_a_speed_profile_take_the_default_speed():
    no_lists = table([row({}, extra_km=100.0)]).drop_columns(["speed_bin_km", "speed_bin_h"])
    for speed in (60.0, 40.0):
        got = apply_method(no_lists, [2], EmissionSettings(method="copert", default_speed_kmh=speed), [ART])
        want = 100 * (0.4 * fc_euro_v_articulated(0, speed) + 0.6 * fc_euro_v_articulated(100, speed)) / 835.0
        assert got["fuel_l_copert"][0].as_py() == pytest.approx(want, rel=1e-12)


def test_the_rigid_class_uses_its_own_functions_and_a_bad_class_code_is_refused():
    t = table([row({(2, 6): (60.0, 1.0)})] * 2)
    out = apply_method(t, [2, 2], COPERT, [ART, RIGID])["fuel_l_copert"].to_pylist()
    assert out[1] < out[0]  # a 31 t rigid truck burns less than a 49 t combination
    with pytest.raises(InputError, match="vehicle class"):
        apply_method(t, [2, 2], COPERT, [ART, 5])


def test_pollutants_china_v_at_the_guidelines_base_and_load_factors_china_vi_by_copert_speed():
    base = {
        (r["pollutant"], r["standard"]): float(r["value"]) for r in rows("china_pollutants.csv") if r["kind"] == "base"
    }
    load = {(r["pollutant"], r["load_state"]): float(r["value"]) for r in rows("china_pollutants.csv")
            if r["kind"] == "load" and r["standard"] in ("all", "China V")}  # fmt: skip
    t = table([row({(0, 2): (10.0, 0.5), (2, 8): (30.0, 0.375)})])
    v = apply_method(t, [2], COPERT, [ART])
    want_nox = (10 * base[("NOx", "China V")] * load[("NOx", "empty")] + 30 * base[("NOx", "China V")]
                * load[("NOx", "full")]) / 1000  # fmt: skip
    assert v["nox_kg"][0].as_py() == pytest.approx(want_nox, rel=1e-12)
    vi = apply_method(t, [3], COPERT, [ART])
    assert vi["nox_kg"][0].as_py() > 0 and vi["nox_kg"][0].as_py() < v["nox_kg"][0].as_py()  # China VI: SCR+DPF


def test_the_profile_of_rows_without_km_is_empty():
    p = SpeedProfile.of(table([row({})]))
    assert p.km.sum() == 0.0 and p.km.shape == (1, 4, BINS + 1)
