"""The pieces every report section is made of: the section record, tables, figures, names and bands."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from truckcarbon.core.runfolder import OutputError
from truckcarbon.report.i18n import Lang
from truckcarbon.report.load import ReportData, Row

STANDARD_COLORS = {"China III": "#8c564b", "China IV": "#d62728", "China V": "#ff7f0e", "China VI": "#2ca02c"}
WAN_T = 1e4  # 万吨


@dataclass
class Section:
    """A section of the page: its key (anchor), title, figures and body, or the error that stopped it."""

    key: str
    title: str
    body: str = ""
    figures: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what the section lacked (it rendered without)


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


def _optional(data: ReportData, name: str) -> list[Row] | None:
    """The rows of an analysis table a section can do without (None when it is not in the run folder)."""
    got = data.tables.get(f"analysis/{name}")
    return None if got is None or isinstance(got, OutputError) else got


def _band(x: list[Any], lo: list[float], hi: list[float], name: str, color: str) -> dict[str, Any]:
    """A filled p05-p95 band (a closed path: up along ``hi``, back along ``lo``)."""
    return {"type": "scatter", "x": x + x[::-1], "y": hi + lo[::-1], "fill": "toself", "name": name,
            "fillcolor": color, "line": {"width": 0}, "hoverinfo": "skip"}  # fmt: skip


def _pct(v: float | None) -> str | None:
    return None if v is None else f"{v:+.1%}"
