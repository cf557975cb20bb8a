"""``truckcarbon report``: a run's figures, maps and tables as one self-contained HTML page per language.

Every script is inlined (plotly.js from the ``plotly`` package, the display
boundaries as GeoJSON), so the page opens with no network. Charts are
interactive (values on hover). A section whose inputs are missing says which
output could not be read and why, and the rest of the report still renders; a
section that renders without some of the manifest's keys lists them. The run
folder is read through :class:`~truckcarbon.core.runfolder.RunFolder`.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon import __version__
from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_write_text
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.report.i18n import LANGS, Lang, T
from truckcarbon.report.maps import MAP_CREDIT, display_boundaries

STANDARD_COLORS = {"China III": "#8c564b", "China IV": "#d62728", "China V": "#ff7f0e", "China VI": "#2ca02c"}
WAN_T = 1e4  # 万吨


class SectionError(Exception):
    """A section could not be made (its message says which input and why)."""


@dataclass
class Section:
    key: str
    title: str
    body: str = ""
    figures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what the section lacked (it rendered without)


@dataclass
class ReportSummary:
    paths: dict[str, Path]
    sections: dict[str, str | None]  # key -> error (None when made)
    seconds: float = 0.0
    notes: dict[str, list[str]] = field(default_factory=dict)  # key -> what a section made without
    pdfs: dict[str, Path] = field(default_factory=dict)
    pdf_error: str | None = None


def chromium() -> str | None:
    """Path of a Chromium (Debian's ``chromium``) or Chrome executable, if any."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(page: Path, pdf: Path, browser: str) -> None:
    """Print an HTML page to PDF with headless Chromium once its charts have rendered (written atomically)."""
    import subprocess

    from truckcarbon.core.files import atomic_path

    with atomic_path(pdf) as tmp:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--virtual-time-budget=30000", "--no-pdf-header-footer",
             f"--print-to-pdf={tmp.resolve()}", page.resolve().as_uri()],
            capture_output=True, timeout=300, check=True,
        )  # fmt: skip
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise InputError(f"Chromium wrote no PDF for {page}")


def _read(run: RunFolder, sub: str, name: str) -> pa.Table:
    path = run.output(sub) / f"{name}.parquet"
    if not path.exists():
        hint = "truckcarbon analyze" if sub == "analysis" else "truckcarbon forecast"
        raise SectionError(f"{path} is missing (run `{hint} --run {run.path}`)")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SectionError(f"{path} could not be read ({exc})") from None


def _table_html(headers: list[str], rows: list[list[Any]], cls: str = "") -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "<td class='na'>—</td>"
        if isinstance(v, float):
            return f"<td class='num'>{v:,.2f}</td>" if abs(v) < 100 else f"<td class='num'>{v:,.0f}</td>"
        if isinstance(v, int):
            return f"<td class='num'>{v}</td>"
        return f"<td>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fig(fid: str, data: list[dict[str, Any]], layout: dict[str, Any], height: int = 380) -> dict[str, Any]:
    base = {"margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "height": height, "hovermode": "closest"}
    return {"id": fid, "data": data, "layout": {**base, **layout}}


def _name(row: dict[str, Any], lang: Lang) -> str:
    return str(row.get("name_zh") if lang == "zh" else row.get("name_en")) or str(row.get("city_adcode"))


# --------------------------------------------------------------------------- sections


def s_national(run: RunFolder, lang: Lang) -> Section:
    annual = _read(run, "analysis", "national_annual").to_pylist()
    monthly = _read(run, "analysis", "national_monthly").to_pylist()
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
    sec.figures.append(
        _fig(
            "fig-national-monthly",
            [
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
    sec.body = _table_html(
        [T["year"][lang], T["co2_1e8"][lang], T["growth"][lang], T["months"][lang]],
        [[r["year"], r["co2_t"] / 1e8, f"{r['growth']:+.1%}" if r["growth"] is not None else None, r["months"]]
         for r in annual],
    )  # fmt: skip
    return sec


def _group_lines(table: pa.Table, lang: Lang, group: str | None) -> list[dict[str, Any]]:
    rows = [r for r in table.to_pylist() if (group is None or r["group_id"] == group) and r["city_adcode"] != 0]
    by: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["city_adcode"], []).append(r)
    return [
        {"type": "scatter", "mode": "lines", "name": _name(rs[0], lang), "x": [r["month"] for r in rs],
         "y": [r["co2_t"] / WAN_T for r in rs],
         "hovertemplate": "%{x}: %{y:,.1f}<extra>" + _name(rs[0], lang) + "</extra>"}
        for rs in by.values()
    ]  # fmt: skip


def s_cities(run: RunFolder, lang: Lang) -> Section:
    monthly = _read(run, "analysis", "major_cities_monthly")
    yearly = _read(run, "analysis", "major_cities_yearly").to_pylist()
    sec = Section("cities", T["cities"][lang])
    sec.figures.append(
        _fig("fig-major-cities", _group_lines(monthly, lang, None),
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


def s_clusters(run: RunFolder, lang: Lang) -> Section:
    monthly = _read(run, "analysis", "clusters_monthly")
    sec = Section("clusters", T["clusters"][lang])
    for gid in ("jjj", "yrd", "prd"):
        layout = {
            "title": {"text": T[f"cluster_{gid}"][lang]},
            "yaxis": {"title": {"text": T["co2_wan"][lang]}},
            "showlegend": True,
        }
        sec.figures.append(_fig(f"fig-cluster-{gid}", _group_lines(monthly, lang, gid), layout, height=420))
    return sec


def s_standards(run: RunFolder, lang: Lang) -> Section:
    shares = _read(run, "analysis", "standard_shares").to_pylist()
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


def s_maps(run: RunFolder, lang: Lang) -> Section:
    table = _read(run, "analysis", "city_standard_period").to_pylist()
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


def s_rankings(run: RunFolder, lang: Lang) -> Section:
    top = _read(run, "analysis", "top_cities").to_pylist()
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


def s_exchange(run: RunFolder, lang: Lang) -> Section:
    prov = _read(run, "analysis", "registration_vs_operating_province").to_pylist()
    city = _read(run, "analysis", "registration_vs_operating_city").to_pylist()
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


def s_forecast(run: RunFolder, lang: Lang) -> Section:
    fc = _read(run, "forecast", "forecast").to_pylist()
    bt = _read(run, "forecast", "backtest").to_pylist()
    peak_path = run.forecast / "peak.json"
    if not peak_path.exists():
        raise SectionError(f"{peak_path} is missing (run `truckcarbon forecast --run {run.path}`)")
    try:
        peak = json.loads(peak_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SectionError(f"{peak_path} is not valid JSON ({exc}); run `truckcarbon forecast` again") from None
    if not isinstance(peak, dict) or "peak_year" not in peak:
        raise SectionError(f"{peak_path} has no peak_year; run `truckcarbon forecast --run {run.path}` again")
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

    data: list[dict[str, Any]] = [
        band("lo95", "hi95", 0.12, "95%"),
        band("lo80", "hi80", 0.25, "80%"),
        line(actual, T["actual"][lang], {"color": "#333"}),
        line(pro, "Prophet", {"color": "#1f77b4"}),
    ]
    for model, color in (("seasonal_naive", "#999"), ("ets", "#2ca02c")):
        rs = [r for r in fc if r["model"] == model]
        data.append({"type": "scatter", "mode": "lines", "x": [r["month"] for r in rs],
                     "y": [r["co2_t"] / WAN_T for r in rs], "name": T[model][lang],
                     "line": {"color": color, "dash": "dot"}})  # fmt: skip
    sec.figures.append(
        _fig(
            "fig-forecast",
            data,
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


def s_quality(run: RunFolder, lang: Lang) -> Section:
    with run.collect() as missed:
        q = run.quality()
        months = run.months()
    if q is None and not months:
        raise SectionError("; ".join(map(str, missed)) or f"{run.manifest_path} holds no quality record")
    sec = Section("quality", T["quality"][lang])
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
    fixes: dict[str, int] = {}
    for entry in months.values():
        for k, v in entry.fixes.items():
            fixes[k] = fixes.get(k, 0) + v
    rows += [[f"{T['fixes'][lang]}: {k}", v] for k, v in fixes.items()]
    sec.body = _table_html([T["item"][lang], T["count"][lang]], rows)
    return sec


def _factor_rows() -> list[list[Any]]:
    out = []
    for name in ("fuel_rates.csv", "emission_factors.csv"):
        with files("truckcarbon.data").joinpath("factors", name).open("rb") as f:
            t = pacsv.read_csv(f)
        for r in t.to_pylist():
            if "fuel_rate_l_per_100km" in r:
                if r["reference_speed_kmh"] != 60:
                    continue
                out.append(
                    [
                        f"{r['emission_standard']} · {r['load_state']}",
                        f"{r['fuel_rate_l_per_100km']} L/100 km",
                        r["source"],
                    ]
                )
            else:
                out.append([r["factor_id"], f"{r['ef_kg_per_l']} kg CO2/L", r["source"]])
    return out


def _short_hash(value: str | None) -> str:
    """``algorithm:hex`` as ``algorithm hex[:16]…`` (a run's manifest may hold older SHA-256 hashes)."""
    if not value:
        return "–"
    algorithm, _, hexdigest = value.partition(":")
    return f"{algorithm} {hexdigest[:16]}…" if hexdigest else f"{value[:16]}…"


def s_method(run: RunFolder, lang: Lang) -> Section:
    sec = Section("method", T["method"][lang])
    inputs = run.inputs()
    formula = run.method_formula() or ""
    sec.body = (
        f"<p>{T['method_text'][lang]}</p><pre>{html.escape(formula)}</pre>"
        + f"<h3>{T['factors'][lang]}</h3>"
        + _table_html([T["item"][lang], T["value"][lang], T["source"][lang]], _factor_rows(), "small")
        + f"<h3>{T['inputs'][lang]}</h3>"
        + _table_html([T["role_col"][lang], T["file"][lang], T["hash"][lang]],
                      [[i.role, i.path, _short_hash(i.hash)] for i in inputs[:50]], "small")
        + (f"<p>{len(inputs) - 50} …</p>" if len(inputs) > 50 else "")
    )  # fmt: skip
    return sec


def _simulated_world(run: RunFolder) -> bool:
    """True when the run's pings come from a world written by ``truckcarbon simulate``."""
    for item in run.inputs():
        for parent in list(Path(item.path or "").parents)[:4]:
            world = parent / "manifest.json"
            if world.exists():
                try:
                    if "simulator" in str(json.loads(world.read_text(encoding="utf-8")).get("generator", "")):
                        return True
                except json.JSONDecodeError:
                    continue
    return False


def s_published(run: RunFolder, lang: Lang) -> Section:
    if not _simulated_world(run):
        return Section("published", T["published"][lang], body=f"<p>{T['published_na'][lang]}</p>")
    annual = _read(run, "analysis", "national_annual").to_pylist()
    with files("truckcarbon.data").joinpath("published_national_annual.csv").open("rb") as f:
        published = {r["year"]: r for r in pacsv.read_csv(f).to_pylist()}
    sec = Section("published", T["published"][lang])
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


SECTIONS: list[Callable[[RunFolder, Lang], Section]] = [
    s_national, s_cities, s_clusters, s_standards, s_maps, s_rankings, s_exchange, s_forecast, s_quality, s_method,
    s_published,
]  # fmt: skip


def _page(sections: list[Section], lang: Lang, run: Path, geo: dict[str, Any]) -> str:
    import plotly.offline

    figs = [f for s in sections for f in s.figures]
    nav = "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in sections)
    body = []
    for s in sections:
        inner = (
            f"<p class='missing'>{T['not_made'][lang]}: {html.escape(s.error)}</p>"
            if s.error
            else "".join(f"<div class='fig' id='{f['id']}'></div>" for f in s.figures) + s.body
        )
        if s.notes and not s.error:
            inner += f"<p class='missing'>{T['incomplete'][lang]}: {html.escape('; '.join(s.notes))}</p>"
        body.append(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2>{inner}</section>")
    script = (
        "const GEO=" + json.dumps(geo["cities"], separators=(",", ":")) + ";\n"
        + "const PROV=" + json.dumps(geo["provinces"], separators=(",", ":")) + ";\n"
        + "const FIGS=" + json.dumps(figs, separators=(",", ":"), ensure_ascii=False) + ";\n"
        + """
// Plotly's geo maps load a world base map from a CDN unless one is cached: an empty one is given
// (the maps draw only the units' own GeoJSON), so viewing the report needs no network.
window.PlotlyGeoAssets = window.PlotlyGeoAssets || {topojson: {}};
const EMPTY = {type: "GeometryCollection", geometries: []};
window.PlotlyGeoAssets.topojson["world_110m"] = {type: "Topology", arcs: [], objects: {
  coastlines: EMPTY, land: EMPTY, ocean: EMPTY, lakes: EMPTY, rivers: EMPTY, countries: EMPTY, subunits: EMPTY}};
window.TC_RENDERED = 0;
for (const f of FIGS) {
  for (const t of f.data) {
    if (t.geojson === "GEO") { t.geojson = GEO; t.featureidkey = "id"; }
    if (t.lon === "PROV_LON") { t.lon = PROV[0]; t.lat = PROV[1]; }
  }
  Plotly.newPlot(f.id, f.data, f.layout, {displaylogo: false, responsive: true})
    .then(() => { window.TC_RENDERED += 1; document.body.dataset.rendered = window.TC_RENDERED; });
}
"""
    )  # fmt: skip
    other = [x for x in LANGS if x != lang]
    switch = "".join(f"<a href='report.{o}.html'>{T['lang_name'][o]}</a>" for o in other)
    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(T["report_title"][lang])}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue", Arial, sans-serif;
  margin: 0; color: #222; }}
header {{ background: #12355b; color: #fff; padding: 18px 32px; }}
header h1 {{ margin: 0 0 6px 0; font-size: 24px; }}
nav {{ position: sticky; top: 0; background: #f4f6f8; padding: 8px 32px; border-bottom: 1px solid #ddd; z-index: 9; }}
nav a {{ margin-right: 14px; color: #12355b; text-decoration: none; font-size: 14px; }}
main {{ padding: 0 32px 40px 32px; max-width: 1200px; }}
section {{ margin-top: 28px; }}
.fig {{ display: inline-block; width: 100%; min-height: 300px; }}
#maps .fig {{ width: 49%; }}
table {{ border-collapse: collapse; margin: 8px 0 16px 0; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #e3e3e3; padding: 4px 10px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.small {{ font-size: 11px; }}
.missing {{ color: #a33; background: #fff2f2; padding: 10px; border-left: 4px solid #a33; }}
.credit {{ color: #666; font-size: 12px; }}
@media print {{
  nav, .modebar {{ display: none !important; }}
  section {{ break-before: page; }}
  section:first-of-type {{ break-before: auto; }}
  .fig, table {{ break-inside: avoid; }}
  #maps .fig {{ width: 48%; }}
}}
</style></head>
<body data-figures="{len(figs)}" data-rendered="0"><header><h1>{html.escape(T["report_title"][lang])}</h1>
<div>{html.escape(T["subtitle"][lang].format(run=run.name, version=__version__))} · {switch}</div></header>
<nav>{nav}</nav><main>{"".join(body)}</main>
<script>{plotly.offline.get_plotlyjs()}</script>
<script>{script}</script>
</body></html>
"""


def _section(make: Callable[[RunFolder, Lang], Section], run: RunFolder, lang: Lang) -> Section:
    """One section; what stops it becomes its error, what it lacked of the manifest its notes."""
    key = make.__name__[2:]
    with run.collect() as missed:
        try:
            sec = make(run, lang)
        except SectionError as exc:
            return Section(key, T[key][lang], error=str(exc))
        except KeyError as exc:  # an output written by another version of truckcarbon
            hint = "truckcarbon forecast" if key == "forecast" else "truckcarbon analyze"
            return Section(key, T[key][lang], error=f"its inputs lack {exc} (run `{hint} --run {run.path}` again)")
    sec.notes = [str(m) for m in missed]
    return sec


def build_report(
    run: Path, out: Path | None = None, langs: tuple[Lang, ...] = LANGS, pdf: bool = False
) -> ReportSummary:
    """Write ``report.<lang>.html`` (and with ``pdf``, ``report.<lang>.pdf``) into ``out`` (default ``run/report``).

    The PDF is the page printed by headless Chromium (charts as rendered, A4);
    without a Chromium the summary's ``pdf_error`` says so and the HTML is kept.
    """
    started = time.perf_counter()
    folder = RunFolder.open(run)
    if not run.is_dir():
        raise InputError(f"{run} is not a folder; give a run folder written by `truckcarbon run`")
    if not folder.looks_like_run():
        raise InputError(
            f"{run} is not a run folder (no manifest.json, inventory/, analysis/ or forecast/); "
            "run `truckcarbon run`, `analyze` and `forecast` first"
        )
    out = out or folder.report
    with folder.lock(exclusive=False):  # not while a run is replacing the folder
        out.mkdir(parents=True, exist_ok=True)
        geo = display_boundaries()
        paths: dict[str, Path] = {}
        errors: dict[str, str | None] = {}
        notes: dict[str, list[str]] = {}
        for lang in langs:
            sections = []
            for make in SECTIONS:
                sec = _section(make, folder, lang)
                sections.append(sec)
                errors[sec.key] = sec.error
                notes[sec.key] = sec.notes
            path = out / f"report.{lang}.html"
            atomic_write_text(path, _page(sections, lang, run, geo))
            paths[lang] = path
    summary = ReportSummary(paths, errors, notes={k: v for k, v in notes.items() if v})
    if pdf:
        browser = chromium()
        if browser is None:
            summary.pdf_error = "no Chromium found (Debian: apt-get install chromium); the HTML report is complete"
        else:
            for lg, page in paths.items():
                target = page.with_suffix(".pdf")
                print_pdf(page, target, browser)
                summary.pdfs[lg] = target
    summary.seconds = time.perf_counter() - started
    return summary
