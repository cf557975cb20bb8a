"""Numbers read out of Arrow columns of any type: numbers cast, text parsed exactly, the rest unreadable."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from truckcarbon.core.arrow import given, parse_float64


def test_number_columns_are_cast_with_nulls_as_nan():
    values, bad = parse_float64(pa.array([1, None, 3], pa.int32()))
    np.testing.assert_array_equal(values, [1.0, np.nan, 3.0])
    assert not bad.any()


def test_text_is_trimmed_and_read_as_decimal_numbers():
    values, bad = parse_float64(pa.array([" 12.5 ", "-3e2", ".5", "nan", "inf", "1,5", "abc", "", None]))
    np.testing.assert_array_equal(values[:5], [12.5, -300.0, 0.5, np.nan, np.inf])
    assert np.isnan(values[5:]).all()
    # "1,5" and "abc" are given but not numbers; blank and null are not given at all
    assert bad.tolist() == [False, False, False, False, False, True, True, False, False]


def test_other_types_are_unreadable_where_given():
    values, bad = parse_float64(pa.array([True, None]))
    assert np.isnan(values).all() and bad.tolist() == [True, False]


def test_given_means_not_null_and_not_blank_text():
    assert given(pa.array(["a", " ", "", None])).tolist() == [True, False, False, False]
    assert given(pa.array([0.0, None])).tolist() == [True, False]
