"""The report's sections on the emission methods side by side and on the air pollutants."""

from __future__ import annotations

import html

from truckcarbon.report.i18n import Lang, T
from truckcarbon.report.load import ReportData, Row, SectionError
from truckcarbon.report.maps import MAP_CREDIT
from truckcarbon.report.parts import WAN_T, Section, _fig, _name, _pct, _table_html


def _opening(
    data: ReportData, lang: Lang, key: str, national: str, cities: str
) -> tuple[Section, list[Row], list[Row]]:
    """The section ``key`` and the rows of its national and city analysis tables (the national ones required)."""
    rows = data.rows("analysis", national)
    if not rows:
        raise SectionError(f"{national} has no rows")
    return Section(key, T[key][lang]), rows, data.rows("analysis", cities)


def s_methods(data: ReportData, lang: Lang) -> Section:
    sec, monthly, cities = _opening(data, lang, "methods", "methods_national_monthly", "methods_city_annual")
    months = [r["month"] for r in monthly]
    styles = {"report": "#333", "copert": "#1f77b4", "measured": "#2ca02c"}
    sec.figures.append(
        _fig("fig-methods",
             [{"type": "scatter", "mode": "lines", "x": months, "y": [r[f"co2_t_{m}"] / WAN_T for r in monthly],
               "name": T[f"method_{m}"][lang], "line": {"color": c}} for m, c in styles.items()],
             {"title": {"text": T["methods_title"][lang]}, "yaxis": {"title": {"text": T["co2_wan"][lang]}}})
    )  # fmt: skip
    total = {m: sum(r[f"co2_t_{m}"] for r in monthly) for m in styles}
    chosen = min(styles, key=lambda m: abs(total[m] - sum(r["co2_t"] for r in monthly)))
    years: dict[int, dict[str, float]] = {}
    for r in monthly:
        y = years.setdefault(int(r["month"][:4]), dict.fromkeys(styles, 0.0))
        for m in styles:
            y[m] += r[f"co2_t_{m}"]

    def vs(a: float, b: float) -> str | None:
        return _pct(a / b - 1.0) if b else None

    headers = [T["method_report"][lang], T["method_copert"][lang], T["method_measured"][lang],
               T["copert_vs"][lang], T["measured_vs"][lang]]  # fmt: skip
    annual = _table_html(
        [T["year"][lang], *headers],
        [[y, v["report"] / WAN_T, v["copert"] / WAN_T, v["measured"] / WAN_T, vs(v["copert"], v["report"]),
          vs(v["measured"], v["report"])] for y, v in sorted(years.items())],
    )  # fmt: skip
    last = max((r["year"] for r in cities), default=None)
    top = sorted((r for r in cities if r["year"] == last), key=lambda r: -r["co2_t"])[:15]
    city_table = _table_html(
        [T["city"][lang], *headers],
        [[_name(r, lang), r["co2_t_report"] / WAN_T, r["co2_t_copert"] / WAN_T, r["co2_t_measured"] / WAN_T,
          _pct(r["copert_vs_report"]), _pct(r["measured_vs_report"])] for r in top],
    )  # fmt: skip
    sec.body = (
        f"<p>{T['methods_note'][lang].format(method=T[f'name_{chosen}'][lang])}</p>"
        + annual
        + (f"<h3>{T['methods_cities'][lang].format(year=last)}</h3>" + city_table if top else "")
    )
    return sec


POLLUTANTS = (("nox_t", "NOx"), ("pm25_t", "PM2.5"), ("co_t", "CO"), ("hc_t", "HC"))


def s_pollutants(data: ReportData, lang: Lang) -> Section:
    sec, national, cities = _opening(data, lang, "pollutants", "pollutants_national_annual",
                                     "pollutants_city_annual")  # fmt: skip
    headers = [T["pollutant_t"][lang].format(p=p) for _, p in POLLUTANTS]
    sec.body = f"<p>{T['pollutants_note'][lang]}</p>" + _table_html(
        [T["year"][lang], *headers, T["co2_wan"][lang]],
        [[r["year"], *[r[c] for c, _ in POLLUTANTS], r["co2_t"] / WAN_T] for r in national],
    )
    last = max((r["year"] for r in cities), default=None)
    rows = [r for r in cities if r["year"] == last]
    if rows:
        sec.figures.append(
            _fig("fig-map-nox",
                 [{"type": "choropleth", "locations": [r["city_adcode"] for r in rows], "z": [r["nox_t"] for r in rows],
                   "zmin": 0, "colorscale": "YlOrRd", "reversescale": True,
                   "marker": {"line": {"width": 0.2, "color": "#999"}}, "colorbar": {"title": {"text": "t NOx"}},
                   "hovertemplate": "%{location}: %{z:,.1f} t<extra></extra>", "geojson": "GEO"},
                  {"type": "scattergeo", "mode": "lines", "lon": "PROV_LON", "lat": "PROV_LAT",
                   "line": {"width": 0.6, "color": "#444"}, "hoverinfo": "skip", "showlegend": False}],
                 {"title": {"text": T["nox_map"][lang].format(year=last)},
                  "geo": {"fitbounds": "locations", "visible": False, "projection": {"type": "mercator"}},
                  "margin": {"l": 0, "r": 0, "t": 36, "b": 0}}, height=420)
        )  # fmt: skip
        top = sorted(rows, key=lambda r: -r["nox_t"])[:15]
        sec.body += f"<h3>{T['pollutants_cities'][lang].format(year=last)}</h3>" + _table_html(
            [T["city"][lang], *headers], [[_name(r, lang), *[r[c] for c, _ in POLLUTANTS]] for r in top]
        )
        sec.body += f"<p class='credit'>{T['map_data'][lang]} {html.escape(MAP_CREDIT)}</p>"
    return sec
