"""The report: a run's figures, maps and tables as self-contained HTML pages in Chinese and English."""

from truckcarbon.report.build import ReportSummary, build_report

__all__ = ["ReportSummary", "build_report"]
