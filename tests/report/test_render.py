"""The report's pages: a section that cannot be made says why in its place; notes and links on the page."""

from __future__ import annotations

import re
from collections.abc import Callable

from truckcarbon.report.i18n import Lang
from truckcarbon.report.load import ReportData, SectionError
from truckcarbon.report.parts import Section
from truckcarbon.report.render import html_page, render, section
from truckcarbon.report.sections import SECTIONS

Make = Callable[..., ReportData]
GEO = {"cities": {"type": "FeatureCollection", "features": []}, "provinces": [[], []]}


def s_rankings(data: ReportData, lang: Lang) -> Section:  # named as a section: its key is "rankings"
    raise KeyError("rank")


def s_forecast(data: ReportData, lang: Lang) -> Section:
    raise KeyError("hi95")


def s_maps(data: ReportData, lang: Lang) -> Section:
    raise SectionError("city_standard_period has no rows")


def test_what_stops_a_section_becomes_its_error(make_data: Make) -> None:
    data = make_data()
    sec = section(s_rankings, data, "en")
    assert sec.key == "rankings" and sec.title == "Top cities and CO2 per GDP" and not sec.figures
    assert sec.error == f"its inputs lack 'rank' (run `truckcarbon analyze --run {data.path}` again)"
    assert section(s_forecast, data, "en").error == (
        f"its inputs lack 'hi95' (run `truckcarbon forecast --run {data.path}` again)"
    )
    assert section(s_maps, data, "zh").error == "city_standard_period has no rows"


def test_an_empty_run_renders_every_section_in_place(make_data: Make) -> None:
    sections = render(make_data(), "en")
    assert [s.key for s in sections] == [make.__name__[2:] for make in SECTIONS]
    made = {s.key for s in sections if s.error is None}
    assert made == {"method", "published"}  # the two that need neither analysis nor forecast tables
    assert "analysis/national_annual" in str(next(s.error for s in sections if s.key == "national"))


def test_the_page_shows_errors_notes_and_links_to_the_other_language(make_data: Make) -> None:
    sections = [
        Section("national", "National trends", body="<p>made</p>", figures=[{"id": "fig-a", "data": [], "layout": {}}]),
        Section("maps", "Maps", error="city_standard_period has <no> rows", notes=["not shown for an error"]),
        Section("quality", "Data quality", body="<table></table>", notes=["manifest.json months: absent", "x: y"]),
    ]
    page = html_page(sections, "en", make_data().path, GEO)
    assert page.startswith("<!doctype html>") and '<html lang="en">' in page
    assert re.findall(r"<a href='#(\w+)'>", page) == ["national", "maps", "quality"]
    assert "<div class='fig' id='fig-a'></div><p>made</p>" in page and 'data-figures="1"' in page
    assert "This section could not be made: city_standard_period has &lt;no&gt; rows" in page
    assert "not shown for an error" not in page
    assert "Incomplete: not in the run folder: manifest.json months: absent; x: y" in page
    assert "<a href='report.zh.html'>中文</a>" in page and "run run · truckcarbon" in page
    zh = html_page(sections, "zh", make_data().path, GEO)
    assert '<html lang="zh-CN">' in zh and "<a href='report.en.html'>English</a>" in zh
