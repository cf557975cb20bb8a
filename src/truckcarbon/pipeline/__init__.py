"""The accounting pipeline: pings -> clean trajectories -> km per vehicle, city and month -> CO2 -> inventories."""

from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.pipeline.engines import EngineName
from truckcarbon.pipeline.run import RunSummary, run_pipeline

__all__ = ["EngineName", "PipelineConfig", "RunSummary", "run_pipeline"]
