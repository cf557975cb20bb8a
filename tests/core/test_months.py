"""Local (UTC+8) months and number parsing shared by every stage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from truckcarbon.core.arrow import parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import local_month, month_bounds_utc, month_label, month_number, parse_month


def test_local_month_boundaries():
    cst = dt.timezone(dt.timedelta(hours=8))
    start, end = month_bounds_utc(month_number(2022, 2))
    assert start == int(dt.datetime(2022, 2, 1, tzinfo=cst).timestamp())
    assert end == int(dt.datetime(2022, 3, 1, tzinfo=cst).timestamp())
    # One second before local midnight of Feb 1 is still January; UTC 16:00 Jan 31 is February.
    assert local_month([start - 1, start]).tolist() == [month_number(2022, 1), month_number(2022, 2)]
    assert month_label(parse_month("2023-12")) == "2023-12"
    with pytest.raises(InputError, match="unknown month"):
        parse_month("2023-13")


def test_parse_float64():
    values, bad = parse_float64(pa.array([" 1.5", "", None, "east", "-2e3", "nan"]))
    assert np.isnan(values[[1, 2, 3, 5]]).all() and values[0] == 1.5 and values[4] == -2000.0
    assert bad.tolist() == [False, False, False, True, False, False]
    values, bad = parse_float64(pa.array([1, None], pa.int32()))
    assert values[0] == 1.0 and np.isnan(values[1]) and not bad.any()
