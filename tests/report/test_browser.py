"""The HTML report in headless Chromium: every figure renders, no console errors, no network requests.

Chromium is Debian's ``chromium`` package (``make test`` installs it when missing).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from truckcarbon.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=30000",
]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_renders_offline_in_chromium(small_run: Path, tmp_path: Path, lang: str) -> None:
    assert CHROMIUM is not None
    page = build_report(small_run, tmp_path / "report", (lang,)).paths[lang]  # type: ignore[arg-type]
    netlog = tmp_path / "net.json"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    counts = re.search(r'data-figures="(\d+)" data-rendered="(\d+)"', dom.stdout)
    assert counts is not None, dom.stdout[:500]
    assert int(counts.group(1)) >= 10 and counts.group(1) == counts.group(2), counts.groups()
    console = [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    assert not [ln for ln in console if "rror" in ln], console
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page_requests = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"  # the browser's own services, not the page
        and not e["params"]["url"].startswith(("file:", "data:", "blob:"))
    ]
    assert page_requests == []
    shot = tmp_path / f"report-{lang}.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, "--window-size=1400,3000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert shot.stat().st_size > 50_000  # a page with charts, not a blank one
    keep = Path(__file__).resolve().parents[2] / ".pytest_cache" / "screenshots"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / shot.name)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_pdf_pages_render(small_run: Path, tmp_path: Path) -> None:
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed (make test installs it)")
    summary = build_report(small_run, tmp_path / "report", ("en",), pdf=True)
    pdf = summary.pdfs["en"]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=180)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 8  # one page or more per section
    assert all(p.stat().st_size > 1000 for p in pages)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_pdf_with_relative_paths(small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(small_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path)  # `make demo` passes paths relative to the checkout
    summary = build_report(Path("run"), Path("report"), ("en",), pdf=True)
    assert summary.pdfs["en"].read_bytes()[:5] == b"%PDF-"
