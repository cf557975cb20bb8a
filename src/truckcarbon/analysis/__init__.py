"""Analyses of an inventory: trends, seasonality, cities and clusters, standards, rankings, exports."""

from truckcarbon.analysis.run import AnalysisSummary, analyze

__all__ = ["AnalysisSummary", "analyze"]
