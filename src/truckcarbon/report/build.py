"""``truckcarbon report``: a run's figures, maps and tables as one self-contained HTML page per language.

Every script is inlined (plotly.js from the ``plotly`` package, the display
boundaries as GeoJSON), so the page opens with no network. Charts are
interactive (values on hover). A section whose inputs are missing says which
output could not be read and why, and the rest of the report still renders; a
section that renders without some of the manifest's keys lists them. The run
folder is read once (:func:`truckcarbon.report.load.load_report_data`) and every
language is rendered from that model (:mod:`truckcarbon.report.render`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_write_text
from truckcarbon.core.runfolder import RunFolder
from truckcarbon.report.i18n import LANGS, Lang
from truckcarbon.report.load import load_report_data
from truckcarbon.report.maps import display_boundaries
from truckcarbon.report.render import html_page, render


@dataclass
class ReportSummary:
    """The pages written (language -> path), each section's error (None when made) and what sections lacked."""

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
        data = load_report_data(folder)
        paths: dict[str, Path] = {}
        errors: dict[str, str | None] = {}
        notes: dict[str, list[str]] = {}
        for lang in langs:
            sections = render(data, lang)
            for sec in sections:
                errors[sec.key] = sec.error
                notes[sec.key] = sec.notes
            path = out / f"report.{lang}.html"
            atomic_write_text(path, html_page(sections, lang, run, geo))
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
