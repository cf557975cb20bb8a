"""The engines that read, clean and attribute a run's pings: what the run asks of each, and their names.

An engine (:class:`Engine`) takes the pings files of a run (:class:`Job`), reads
and validates them, hands every vehicle's fixes to the one attribution step
(:func:`truckcarbon.pipeline.attribute.attribute`) and leaves the activity rows in
the run's spill folder; it may also aggregate the monthly inventories itself.
The run (:mod:`truckcarbon.pipeline.run`) writes every output from there, the
same way for every engine. :class:`EngineName` names them; a plain string such
as ``"spark"`` is one too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from truckcarbon.ingest.ids import VehicleIds
from truckcarbon.pipeline.attribute import Tally
from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.pipeline.reading import Reading

Progress = Callable[[str, int, int], None]  # progress(stage, done, total)


class EngineName(StrEnum):
    """The engines of ``truckcarbon run --engine``."""

    EMBEDDED = "embedded"  # DuckDB and the kernels' threads on this machine
    SPARK = "spark"  # PySpark: local mode or a cluster


@dataclass(frozen=True)
class Job:
    """What an engine reads and where it writes: the pings ``files`` (a URI as a string, for an engine
    that reads URIs), the run's validated ``vehicles`` and their ``ids``, the ``months`` asked for (None:
    every month), the run's work folder and its activity ``spill`` folder, and the hashes of the local
    files being computed (``digests``, for the manifest)."""

    files: list[Path] | list[str]
    vehicles: pa.Table
    ids: VehicleIds
    months: set[int] | None
    config: PipelineConfig
    work: Path
    spill: Path
    report: Progress
    digests: Mapping[Path, Future[str]]


class Engine(Protocol):
    """What a run needs from an engine."""

    name: EngineName
    reads_uris: bool  # pings may be given as a URI (hdfs://, s3a://) that the engine reads itself

    def description(self) -> str:
        """The engine and its version, for the manifest (e.g. ``embedded (DuckDB 1.2.0)``)."""
        ...

    def attribute_pings(self, job: Job) -> tuple[Reading, Tally]:
        """Read, validate and attribute the pings of ``job``: the activity rows in ``job.spill``, the
        quarantined rows under ``job.work / "quarantine" / "pings"``; what was read and counted."""
        ...

    def inventories(self, spill: Path, months: list[str]) -> Mapping[str, pa.Table] | None:
        """The inventory of each month, aggregated by the engine from the activity ``spill``; None when the
        run's own aggregation (DuckDB SQL, :mod:`truckcarbon.pipeline.outputs`) is to write them."""
        ...


__all__ = ["Engine", "EngineName", "Job", "Progress"]
