"""The idle-rate table: each class's rate within its sourced range, a clear error for what it lacks."""

from __future__ import annotations

import pytest

from truckcarbon.core.errors import ReferenceDataError
from truckcarbon.emissions.copert import VehicleClass
from truckcarbon.emissions.idle import _parse, idle_rate, idle_rate_l_per_h, idle_rates


def test_every_class_has_a_sourced_diesel_rate_inside_its_range():
    for cls in VehicleClass:
        r = idle_rate(cls)
        assert r.low <= r.rate <= r.high and r.unit == "L/h" and "Fact #861" in r.source
        assert idle_rate_l_per_h(cls) == r.rate
    # 0.44-0.90 US gal/h at 3.785 L per gallon
    assert idle_rate(VehicleClass.ARTICULATED_40_50).low == pytest.approx(0.44 * 3.785, abs=0.01)
    assert idle_rate(VehicleClass.ARTICULATED_40_50).high == pytest.approx(0.90 * 3.785, abs=0.01)
    assert len(idle_rates()) == len(VehicleClass)


def test_a_missing_rate_or_a_bad_row_is_a_reference_data_error():
    with pytest.raises(ReferenceDataError, match="no idle rate for LNG"):
        idle_rate(VehicleClass.RIGID_28_32, "LNG")
    bad = "fuel_type,vehicle_class,rate,unit,low,high,source\ndiesel,X,5,L/h,1,3,somewhere\n"
    with pytest.raises(ReferenceDataError, match="line 2"):
        _parse(bad, "t.csv")
    with pytest.raises(ReferenceDataError, match="numbers"):
        _parse(bad.replace(",5,", ",five,"), "t.csv")
