"""The Spring Festival month of each year, against published dates."""

from __future__ import annotations

import datetime as dt

from truckcarbon.core.calendar import chinese_new_year, new_year_month


def test_spring_festival_dates_are_the_published_ones():
    # Published dates of the first day of the lunar year (正月初一).
    published = {2018: dt.date(2018, 2, 16), 2020: dt.date(2020, 1, 25), 2022: dt.date(2022, 2, 1),
                 2023: dt.date(2023, 1, 22), 2024: dt.date(2024, 2, 10)}  # fmt: skip
    for year, date in published.items():
        assert chinese_new_year(year) == date


def test_new_year_month_is_the_gregorian_month_holding_it():
    assert new_year_month(2020) == "2020-01"
    assert new_year_month(2022) == "2022-02"
