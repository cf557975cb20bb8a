"""The report's sections: each renders one part of a run (figures, tables, text) in one language.

A section function takes the run's :class:`~truckcarbon.report.load.ReportData` and a
language and returns a :class:`Section`: its figures (Plotly specs), HTML body and the
notices of the manifest's records it used (what it lacked). It raises
:class:`~truckcarbon.report.load.SectionError` when it cannot be made (a table missing,
no rows); :data:`SECTIONS` lists them in page order.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from truckcarbon.core.manifest_read import fix_totals
from truckcarbon.core.runfolder import OutputError
from truckcarbon.report.emission_sections import s_methods, s_pollutants
from truckcarbon.report.i18n import Lang, T
from truckcarbon.report.load import ReportData, Row, SectionError, merged
from truckcarbon.report.maps import MAP_CREDIT
from truckcarbon.report.parts import (
    STANDARD_COLORS,
    WAN_T,
    Section,
    _band,
    _fig,
    _name,
    _optional,
    _table_html,
)

# --------------------------------------------------------------------------- sections


def s_national(data: ReportData, lang: Lang) -> Section:
    annual = data.rows("analysis", "national_annual")
    monthly = data.rows("analysis", "national_monthly")
    sec = Section("national", T["national"][lang])
    years = [r["year"] for r in annual]
    sec.figures.append(
        _fig(
            "fig-national-annual",
            [{"type": "bar", "x": years, "y": [r["co2_t"] / 1e8 for r in annual], "name": T["co2_1e8"][lang],
              "text": [f"{(r['growth'] or 0):+.1%}" if r["growth"] is not None else "" for r in annual],
              "hovertemplate": "%{x}: %{y:.3f}<extra></extra>"}],
            {"title": {"text": T["annual_title"][lang]}, "yaxis": {"title": {"text": T["co2_1e8"][lang]}}},
        )
    )  # fmt: skip
    months = [r["month"] for r in monthly]
    ny = [r for r in monthly if r["new_year_month"]]
    shocks = [r for r in monthly if r["shock"]]
    intervals = _optional(data, "national_intervals")
    bands: list[dict[str, Any]] = []
    if intervals:
        by_month = {r["month"]: r for r in intervals}
        xs = [m for m in months if m in by_month]
        bands.append(_band(xs, [by_month[m]["co2_t_p05"] / WAN_T for m in xs],
                           [by_month[m]["co2_t_p95"] / WAN_T for m in xs], T["interval90"][lang],
                           "rgba(31,119,180,0.2)"))  # fmt: skip
    else:
        sec.notes.append(T["intervals_missing"][lang])
    sec.figures.append(
        _fig(
            "fig-national-monthly",
            [
                *bands,
                {"type": "scatter", "mode": "lines", "x": months, "y": [r["co2_t"] / WAN_T for r in monthly],
                 "name": T["co2_wan"][lang], "hovertemplate": "%{x}: %{y:,.0f}<extra></extra>"},
                {"type": "scatter", "mode": "markers", "x": [r["month"] for r in ny],
                 "y": [r["co2_t"] / WAN_T for r in ny], "name": T["new_year"][lang],
                 "marker": {"symbol": "star", "size": 11, "color": "#d62728"}},
                {"type": "scatter", "mode": "markers", "x": [r["month"] for r in shocks],
                 "y": [r["co2_t"] / WAN_T for r in shocks], "name": T["shock"][lang],
                 "marker": {"symbol": "x", "size": 10, "color": "#333"}},
            ],
            {"title": {"text": T["monthly_title"][lang]}, "yaxis": {"title": {"text": T["co2_wan"][lang]}}},
        )
    )  # fmt: skip
    yearly = {r["year"]: r for r in _optional(data, "national_annual_intervals") or []}

    def interval(year: int) -> str | None:
        r = yearly.get(year)
        return None if r is None else f"{r['co2_t_p05'] / 1e8:.3f} – {r['co2_t_p95'] / 1e8:.3f}"

    sec.body = _table_html(
        [T["year"][lang], T["co2_1e8"][lang], T["interval90"][lang], T["growth"][lang], T["months"][lang]],
        [[r["year"], r["co2_t"] / 1e8, interval(r["year"]),
          f"{r['growth']:+.1%}" if r["growth"] is not None else None, r["months"]] for r in annual],
    )  # fmt: skip
    return sec


def _group_lines(table: list[Row], lang: Lang, group: str | None) -> list[dict[str, Any]]:
    rows = [r for r in table if (group is None or r["group_id"] == group) and r["city_adcode"] != 0]
    by: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["city_adcode"], []).append(r)
    return [
        {"type": "scatter", "mode": "lines", "name": _name(rs[0], lang), "x": [r["month"] for r in rs],
         "y": [r["co2_t"] / WAN_T for r in rs],
         "hovertemplate": "%{x}: %{y:,.1f}<extra>" + _name(rs[0], lang) + "</extra>"}
        for rs in by.values()
    ]  # fmt: skip


def s_cities(data: ReportData, lang: Lang) -> Section:
    monthly = data.rows("analysis", "major_cities_monthly")
    yearly = data.rows("analysis", "major_cities_yearly")
    sec = Section("cities", T["cities"][lang])
    lines = _group_lines(monthly, lang, None)
    intervals = _optional(data, "city_intervals")
    if intervals:
        wanted = {r["city_adcode"] for r in monthly if r["city_adcode"] != 0}
        by: dict[int, list[Row]] = {}
        for r in intervals:
            if r["city_adcode"] in wanted:
                by.setdefault(r["city_adcode"], []).append(r)
        label = {r["city_adcode"]: _name(r, lang) for r in monthly}
        lines = [
            _band([r["month"] for r in rs], [r["co2_t_p05"] / WAN_T for r in rs], [r["co2_t_p95"] / WAN_T for r in rs],
                  f"{label.get(code, code)} {T['interval90'][lang]}", "rgba(120,120,120,0.18)")
            for code, rs in sorted(by.items())
        ] + lines  # fmt: skip
    else:
        sec.notes.append(T["intervals_missing"][lang])
    sec.figures.append(
        _fig("fig-major-cities", lines,
             {"title": {"text": T["cities_title"][lang]}, "yaxis": {"title": {"text": T["co2_wan"][lang]}}})
    )  # fmt: skip
    years = sorted({r["year"] for r in yearly})
    names: dict[str, dict[int, float]] = {}
    for r in yearly:
        if r["city_adcode"] != 0:
            names.setdefault(_name(r, lang), {})[r["year"]] = r["co2_t_monthly_mean"] / WAN_T
    sec.body = (
        "<p>"
        + T["yearly_mean_note"][lang]
        + "</p>"
        + _table_html(
            [T["city"][lang], *[str(y) for y in years]], [[n, *[v.get(y) for y in years]] for n, v in names.items()]
        )
    )
    return sec


def s_clusters(data: ReportData, lang: Lang) -> Section:
    monthly = data.rows("analysis", "clusters_monthly")
    sec = Section("clusters", T["clusters"][lang])
    for gid in ("jjj", "yrd", "prd"):
        layout = {
            "title": {"text": T[f"cluster_{gid}"][lang]},
            "yaxis": {"title": {"text": T["co2_wan"][lang]}},
            "showlegend": True,
        }
        sec.figures.append(_fig(f"fig-cluster-{gid}", _group_lines(monthly, lang, gid), layout, height=420))
    return sec


def s_standards(data: ReportData, lang: Lang) -> Section:
    shares = data.rows("analysis", "standard_shares")
    sec = Section("standards", T["standards"][lang])
    by: dict[str, list[dict[str, Any]]] = {}
    for r in shares:
        by.setdefault(r["emission_standard"], []).append(r)
    sec.figures.append(
        _fig("fig-standard-shares",
             [{"type": "scatter", "mode": "lines", "stackgroup": "one", "name": s, "x": [r["month"] for r in rs],
               "y": [r["share"] * 100 for r in rs], "line": {"color": STANDARD_COLORS.get(s)},
               "hovertemplate": "%{x}: %{y:.1f}%<extra>" + s + "</extra>"} for s, rs in sorted(by.items())],
             {"title": {"text": T["shares_title"][lang]}, "yaxis": {"title": {"text": "%"}, "range": [0, 100]}})
    )  # fmt: skip
    return sec


def s_maps(data: ReportData, lang: Lang) -> Section:
    table = data.rows("analysis", "city_standard_period")
    sec = Section("maps", T["maps"][lang])
    periods = sorted({r["period"] for r in table})
    if not periods:
        raise SectionError("city_standard_period has no rows")
    chosen = [periods[0], periods[-1]] if len(periods) > 1 else periods
    standards = sorted({r["emission_standard"] for r in table})
    top = max((r["co2_t_monthly_mean"] for r in table if r["period"] in chosen), default=1.0) / WAN_T
    for period in chosen:
        for std in standards:
            rows = [r for r in table if r["period"] == period and r["emission_standard"] == std]
            sec.figures.append(
                _fig(f"fig-map-{period}-{std.replace(' ', '-')}",
                     [{"type": "choropleth", "locations": [r["city_adcode"] for r in rows],
                       "z": [r["co2_t_monthly_mean"] / WAN_T for r in rows], "zmin": 0, "zmax": top,
                       "colorscale": "YlOrRd", "reversescale": True,
                       "marker": {"line": {"width": 0.2, "color": "#999"}},
                       "colorbar": {"title": {"text": T["wan_t_month"][lang]}},
                       "hovertemplate": "%{location}: %{z:,.2f}<extra></extra>", "geojson": "GEO"},
                      {"type": "scattergeo", "mode": "lines", "lon": "PROV_LON", "lat": "PROV_LAT",
                       "line": {"width": 0.6, "color": "#444"}, "hoverinfo": "skip", "showlegend": False}],
                     {"title": {"text": f"{std} · {period}"},
                      "geo": {"fitbounds": "locations", "visible": False, "projection": {"type": "mercator"}},
                      "margin": {"l": 0, "r": 0, "t": 36, "b": 0}}, height=340)
            )  # fmt: skip
    sec.body = f"<p class='credit'>{T['map_note'][lang]} {html.escape(MAP_CREDIT)}</p>"
    return sec


def s_rankings(data: ReportData, lang: Lang) -> Section:
    top = data.rows("analysis", "top_cities")
    sec = Section("rankings", T["rankings"][lang])
    parts = []
    for year in sorted({r["year"] for r in top}):
        rows = [r for r in top if r["year"] == year]
        parts.append(f"<h3>{year}</h3>")
        parts.append(
            _table_html(
                [T["rank"][lang], T["city"][lang], T["co2_wan"][lang], T["gdp"][lang], T["intensity"][lang]],
                [[r["rank"], _name(r, lang), r["co2_t"] / WAN_T, r["gdp_100m_yuan"], r["t_co2_per_100m_yuan"]]
                 for r in rows],
            )
        )  # fmt: skip
    sec.body = f"<p>{T['gdp_note'][lang]}</p>" + "".join(parts)
    return sec


def s_exchange(data: ReportData, lang: Lang) -> Section:
    prov = data.rows("analysis", "registration_vs_operating_province")
    city = data.rows("analysis", "registration_vs_operating_city")
    sec = Section("exchange", T["exchange"][lang])
    headers = [T["place"][lang], T["registration"][lang], T["operating"][lang], T["ratio"][lang], T["role"][lang]]

    def rows(rs: list[dict[str, Any]]) -> list[list[Any]]:
        return [[_name(r, lang), r["registration_co2_t"] / WAN_T, r["operating_co2_t"] / WAN_T, r["ratio"],
                 T[r["role"]][lang]] for r in rs]  # fmt: skip

    sec.body = (
        f"<p>{T['exchange_note'][lang]}</p><h3>{T['by_province'][lang]}</h3>"
        + _table_html(headers, rows(prov))
        + f"<h3>{T['city_exporters'][lang]}</h3>"
        + _table_html(headers, rows(city[:15]))
        + f"<h3>{T['city_receivers'][lang]}</h3>"
        + _table_html(headers, rows(city[-15:][::-1]))
    )
    return sec


def s_forecast(data: ReportData, lang: Lang) -> Section:
    fc = data.rows("forecast", "forecast")
    bt = data.rows("forecast", "backtest")
    peak = data.peak
    if isinstance(peak, OutputError):
        raise SectionError(str(peak))
    if not isinstance(peak, dict) or "peak_year" not in peak:
        raise SectionError(f"{data.peak_path} has no peak_year; run `truckcarbon forecast --run {data.path}` again")
    sec = Section("forecast", T["forecast"][lang])
    actual = [r for r in fc if r["model"] == "actual"]
    pro = [r for r in fc if r["model"] == "prophet"]
    x = [r["month"] for r in pro]

    def band(lo: str, hi: str, alpha: float, name: str) -> dict[str, Any]:
        upper = [r[hi] / WAN_T for r in pro]
        lower = [r[lo] / WAN_T for r in pro]
        return {"type": "scatter", "x": x + x[::-1], "y": upper + lower[::-1], "fill": "toself", "name": name,
                "fillcolor": f"rgba(31,119,180,{alpha})", "line": {"width": 0}, "hoverinfo": "skip"}  # fmt: skip

    def line(rows: list[dict[str, Any]], name: str, style: dict[str, Any]) -> dict[str, Any]:
        return {"type": "scatter", "mode": "lines", "x": [r["month"] for r in rows],
                "y": [r["co2_t"] / WAN_T for r in rows], "name": name, "line": style}  # fmt: skip

    traces: list[dict[str, Any]] = [
        band("lo95", "hi95", 0.12, "95%"),
        band("lo80", "hi80", 0.25, "80%"),
        line(actual, T["actual"][lang], {"color": "#333"}),
        line(pro, "Prophet", {"color": "#1f77b4"}),
    ]
    for model, color in (("seasonal_naive", "#999"), ("ets", "#2ca02c")):
        rs = [r for r in fc if r["model"] == model]
        traces.append({"type": "scatter", "mode": "lines", "x": [r["month"] for r in rs],
                       "y": [r["co2_t"] / WAN_T for r in rs], "name": T[model][lang],
                       "line": {"color": color, "dash": "dot"}})  # fmt: skip
    sec.figures.append(
        _fig(
            "fig-forecast",
            traces,
            {"title": {"text": T["forecast_title"][lang]}, "yaxis": {"title": {"text": T["co2_wan"][lang]}}},
        )
    )
    horizons = sorted({r["horizon"] for r in bt})
    models = sorted({r["model"] for r in bt})
    mape = {(r["model"], r["horizon"]): r["mape"] for r in bt}
    share = peak.get("share_of_paths_peaked")
    share_text = f"{share:.0%}" if share is not None else "—"
    table = _table_html(
        [T["model"][lang], *[f"h={h}" for h in horizons]],
        [[T.get(m, {"zh": m, "en": m})[lang], *[f"{mape[(m, h)]:.1%}" for h in horizons]] for m in models],
    )
    sec.body = (
        f"<p>{T['peak_text'][lang].format(year=peak['peak_year'], share=share_text)}</p>"
        + f"<h3>{T['backtest'][lang]}</h3>"
        + table
    )
    return sec


def s_quality(data: ReportData, lang: Lang) -> Section:
    q, months = data.quality.value, data.months.value
    missed = merged(data.quality, data.months)
    if q is None and not months:
        raise SectionError("; ".join(map(str, missed)) or f"{data.manifest_path} holds no quality record")
    sec = Section("quality", T["quality"][lang], notes=[str(m) for m in missed])
    rows: list[list[Any]] = []
    pings = q.pings if q is not None else None
    if pings is not None:
        rows += [[T["pings_read"][lang], pings.read], [T["pings_kept"][lang], pings.kept]]
        rows += [[f"{T['quarantined'][lang]}: {k}", v] for k, v in pings.quarantined.items() if v]
    veh = q.vehicles if q is not None else None
    if veh is not None:
        kept, read = ("—" if n is None else f"{n:,}" for n in (veh.kept, veh.read))
        rows += [[T["vehicles_kept"][lang], f"{kept} / {read}"]]
        rows += [[f"{T['quarantined'][lang]}: {k}", v] for k, v in veh.quarantined.items() if v]
    traj = q.trajectories if q is not None else {}
    rows += [[k, f"{v:,.1f}" if isinstance(v, float) else v] for k, v in traj.items()]
    rows += [[f"{T['fixes'][lang]}: {k}", v] for k, v in fix_totals(months).items()]
    sec.body = _table_html([T["item"][lang], T["count"][lang]], rows)
    return sec


def _factor_rows(data: ReportData) -> list[list[Any]]:
    """The fuel rates at 60 km/h and the emission factors, as the method section lists them."""
    out = [
        [f"{r['emission_standard']} · {r['load_state']}", f"{r['fuel_rate_l_per_100km']} L/100 km", r["source"]]
        for r in data.fuel_rates
        if r["reference_speed_kmh"] == 60
    ]
    out += [[r["factor_id"], f"{r['ef_kg_per_l']} kg CO2/L", r["source"]] for r in data.emission_factors]
    return out


def _short_hash(value: str | None) -> str:
    """``algorithm:hex`` as ``algorithm hex[:16]…`` (a run's manifest may hold older SHA-256 hashes)."""
    if not value:
        return "–"
    algorithm, _, hexdigest = value.partition(":")
    return f"{algorithm} {hexdigest[:16]}…" if hexdigest else f"{value[:16]}…"


def s_method(data: ReportData, lang: Lang) -> Section:
    sec = Section("method", T["method"][lang], notes=[str(m) for m in merged(data.inputs, data.formula)])
    inputs = data.inputs.value
    formula = data.formula.value or ""
    sec.body = (
        f"<p>{T['method_text'][lang]}</p><pre>{html.escape(formula)}</pre>"
        + f"<h3>{T['factors'][lang]}</h3>"
        + _table_html([T["item"][lang], T["value"][lang], T["source"][lang]], _factor_rows(data), "small")
        + f"<h3>{T['inputs'][lang]}</h3>"
        + _table_html([T["role_col"][lang], T["file"][lang], T["hash"][lang]],
                      [[i.role, i.path, _short_hash(i.hash)] for i in inputs[:50]], "small")
        + (f"<p>{len(inputs) - 50} …</p>" if len(inputs) > 50 else "")
    )  # fmt: skip
    return sec


def s_published(data: ReportData, lang: Lang) -> Section:
    notes = [str(m) for m in merged(data.inputs)]
    if not data.simulated_world:
        return Section("published", T["published"][lang], body=f"<p>{T['published_na'][lang]}</p>", notes=notes)
    annual = data.rows("analysis", "national_annual")
    published = {r["year"]: r for r in data.published}
    sec = Section("published", T["published"][lang], notes=notes)
    rows = []
    for r in annual:
        p = published.get(r["year"])
        if p is not None:
            ours = r["co2_t"] / 1e8
            rows.append([r["year"], p["co2_1e8_t"], ours, f"{ours / p['co2_1e8_t'] - 1:+.1%}"])
    if not rows:
        raise SectionError("the run has no year in common with the published figures (2018-2023)")
    source = next(iter(published.values()))["source"]
    sec.body = (
        f"<p>{T['published_note'][lang]}</p>"
        + _table_html([T["year"][lang], T["published_col"][lang], T["this_run"][lang], T["difference"][lang]], rows)
        + f"<p class='credit'>{html.escape(source)}</p>"
    )
    return sec


SECTIONS: list[Callable[[ReportData, Lang], Section]] = [
    s_national, s_cities, s_clusters, s_standards, s_maps, s_rankings, s_exchange, s_methods, s_pollutants,
    s_forecast, s_quality, s_method, s_published,
]  # fmt: skip

__all__ = ["SECTIONS", "s_cities", "s_forecast", "s_maps", "s_method", "s_national", "s_published", "s_quality"]
