"""The report's pages: every section of :mod:`truckcarbon.report.sections` in one language, as HTML.

:func:`render` makes the sections of a page from the run's
:class:`~truckcarbon.report.load.ReportData` (a section that cannot be made says why
in its place) and :func:`html_page` writes them into one self-contained HTML document:
plotly.js, the display boundaries and the figures are inlined, so the page opens
with no network.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from truckcarbon import __version__
from truckcarbon.report.i18n import LANGS, Lang, T
from truckcarbon.report.load import ReportData, SectionError
from truckcarbon.report.parts import Section
from truckcarbon.report.sections import SECTIONS


def render(data: ReportData, lang: Lang) -> list[Section]:
    """Every section of the page in ``lang``, in page order."""
    return [section(make, data, lang) for make in SECTIONS]


def section(make: Callable[[ReportData, Lang], Section], data: ReportData, lang: Lang) -> Section:
    """One section; what stops it becomes its error."""
    key = make.__name__[2:]
    try:
        return make(data, lang)
    except SectionError as exc:
        return Section(key, T[key][lang], error=str(exc))
    except KeyError as exc:  # an output written by another version of truckcarbon
        hint = "truckcarbon forecast" if key == "forecast" else "truckcarbon analyze"
        return Section(key, T[key][lang], error=f"its inputs lack {exc} (run `{hint} --run {data.path}` again)")


def html_page(sections: list[Section], lang: Lang, run: Path, geo: dict[str, Any]) -> str:
    """The HTML page of ``sections`` (scripts, boundaries and figures inlined)."""
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
