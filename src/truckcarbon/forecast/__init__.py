"""Forecasts of the national monthly series: Prophet, baselines, rolling-origin backtest, peak assessment."""

from truckcarbon.forecast.run import backtest, forecast_run, forecast_series, peak_assessment

__all__ = ["backtest", "forecast_run", "forecast_series", "peak_assessment"]
