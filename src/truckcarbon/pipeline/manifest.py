"""A run's record of itself: the manifest written last into the run folder, and the quality report read back.

The manifest (``manifest.json``) says how every number was made: the generator
and engine, the month definition, the emission method and factor tables, the
boundary data, one entry per month computed (its totals, fixes by cleaning rule,
unobserved gaps, segments by duration) and one per run (its months, input files
with their hashes and warnings, its quality record and configuration).
:func:`write_manifest` writes it after every other output; :func:`read_quality`
reads its quality record back (:class:`QualityReport`, for ``truckcarbon
quality`` and the report), through :class:`~truckcarbon.core.runfolder.RunFolder`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon import __version__
from truckcarbon.core.errors import InputError
from truckcarbon.core.manifest_read import InputEntry, MonthEntry, Quality
from truckcarbon.core.months import parse_month
from truckcarbon.core.runfolder import Missing, RunFolder
from truckcarbon.emissions.factors import emission_factors, fuel_rates
from truckcarbon.geo.boundaries import boundary_data_version
from truckcarbon.ingest.files import bytes_digest
from truckcarbon.ingest.quarantine import IngestCounts
from truckcarbon.ingest.vehicles import VehicleCounts
from truckcarbon.pipeline.attribute import Tally
from truckcarbon.pipeline.config import PipelineConfig
from truckcarbon.pipeline.outputs import MonthTotals
from truckcarbon.trajectory.schema import GAP_BIN_LABELS, QUARANTINED
from truckcarbon.trajectory.schema import REASONS as KERNEL_REASONS


def new_run_id() -> str:
    """A run's id: its UTC start time and a random suffix (``20240131T120000Z-1a2b3c``)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def quality_record(
    ingest: IngestCounts, vehicles: VehicleCounts, outside_window: int, trajectories: dict[str, float]
) -> dict[str, Any]:
    """A run's quality record: pings read, kept and set aside (by reason) and outside the months asked for,
    the vehicles' counts, and the trajectories' statistics (:data:`~truckcarbon.pipeline.attribute.STATS`)."""
    return {
        "pings": {
            "read": ingest.rows,
            "kept": ingest.kept,
            "quarantined": dict(ingest.quarantined.items()),
            "outside_months_asked": outside_window,
        },
        "vehicles": {
            "read": vehicles.rows,
            "kept": vehicles.kept,
            "registration_from_plate": vehicles.registration_from_plate,
            "identical_duplicates": vehicles.identical_duplicates,
            "quarantined": vehicles.quarantined,
        },
        "trajectories": trajectories,
    }


def _month_entry(run_id: str, label: str, totals: MonthTotals, tally: Tally, bins: pa.Table) -> dict[str, Any]:
    """The manifest's entry of one month: its totals, fixes by cleaning rule, gaps and segments by duration."""
    counts = tally.by_month.get(parse_month(label), np.zeros(QUARANTINED, np.int64))
    return {
        "run_id": run_id,
        "vehicles_active": totals.vehicles_active,
        "distance_km_unweighted": totals.distance_km_unweighted,
        "distance_km_outside_mainland_unweighted": totals.distance_km_outside_mainland_unweighted,
        "co2_t": totals.co2_t,
        "fixes": {name: int(counts[code]) for code, name in enumerate(KERNEL_REASONS[:QUARANTINED])},
        "unobserved_gaps": totals.unobserved_gaps,
        "unobserved_km_unweighted": totals.unobserved_km_unweighted,
        "segments_by_duration": _duration_bins(bins, label),
    }


def _duration_bins(gap_bins: pa.Table, label: str) -> dict[str, dict[str, float]]:
    """The month's kept segments by duration bin: segments and km attributed (above 20 min: bridged gaps),
    unobserved and of implausible motion."""
    part = gap_bins.filter(pc.equal(gap_bins["month"], label)).to_pylist()
    return {row.pop("gap_bin"): {k: v for k, v in row.items() if k != "month"} for row in part}


SHIPPED_FACTOR_TABLES = (
    "fuel_rates.csv", "emission_factors.csv", "copert_hdv.csv", "idle_rates.csv", "china_pollutants.csv",
    "fuel_types.csv", "grid_factors.csv",
)  # fmt: skip


def _factor_versions(config: PipelineConfig) -> dict[str, str]:
    """The SHA-256 of every factor table the run read: the shipped ones by name, a user's by its path."""
    out = {}
    for name in SHIPPED_FACTOR_TABLES:
        out[name] = bytes_digest(files("truckcarbon.data").joinpath("factors", name).read_bytes())
    own = {"copert_factors": config.emissions.copert_factors, "fuel_factors": config.emissions.fuel_factors,
           "grid_factors": config.emissions.grid_factors}  # fmt: skip
    for key, given in own.items():
        if given:
            path = Path(given)
            out[f"{key}:{path.resolve()}"] = bytes_digest(path.read_bytes())
    return out


def write_manifest(
    folder: RunFolder,
    previous: dict[str, Any],
    run_id: str,
    months: dict[str, MonthTotals],
    tally: Tally,
    inputs: list[dict[str, Any]],
    quality: dict[str, Any],
    config: PipelineConfig,
    engine: str,
) -> None:
    """Write ``folder``'s manifest: the ``previous`` one's months and runs (an incremental run keeps them)
    with this run's ``months`` (YYYY-MM in order: their totals) and its run entry added.

    ``engine``: the engine and its version as the manifest names them."""
    month_entries: dict[str, Any] = previous.get("months", {})
    bins = tally.gap_bins_table()
    for label, totals in months.items():
        month_entries[label] = _month_entry(run_id, label, totals, tally, bins)
    runs = previous.get("runs", [])
    runs.append(
        {
            "run_id": run_id,
            "months": list(months),
            "inputs": inputs,
            "quality": quality,
            "config": config.to_dict(),
        }
    )
    manifest = {
        "generator": f"truckcarbon {__version__}",
        "engine": engine,
        "month_definition": "local calendar month, Asia/Shanghai (UTC+8)",
        "method": {
            "chosen": config.emissions.method,
            "formula": "co2_kg = fuel_l * ef_kg_per_l; report: fuel_l = sum_s distance_km_s * rate(standard, s) / 100 "
            "(unknown load: 0.4 empty + 0.6 full); copert: sum over load and speed bin of km * FC(class, stage, "
            "load, bin speed) + idle_h * idle rate; measured: the gauge's fuel where it qualifies, else report",
            "reference_speed_kmh": config.emissions.reference_speed_kmh,
            "fuel_rates_rows": fuel_rates(config.emissions.reference_speed_kmh).table.num_rows,
            "emission_factor": config.emissions.emission_factor,
            "emission_factors": emission_factors().select(["factor_id", "ef_kg_per_l"]).to_pylist(),
        },
        "factor_tables": _factor_versions(config),
        "boundaries": boundary_data_version(),
        "months": dict(sorted(month_entries.items())),
        "runs": runs,
    }
    folder.write_manifest(manifest)


@dataclass(frozen=True)
class QualityReport:
    """Per-month fix counts by cleaning rule and the latest run's ingest and trajectory counts.

    ``missing`` lists what the manifest lacked (the rest of the report is still there)."""

    months: dict[str, MonthEntry]
    quality: Quality | None
    missing: list[Missing] = field(default_factory=list)
    inputs: list[InputEntry] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """What the latest run said about its input files (many rows set aside, repeated vehicles, ...)."""
        return [f"{e.path}: {e.warning}" for e in self.inputs if e.warning]

    def duration_rows(self) -> list[dict[str, Any]]:
        """Kept segments by duration bin over the months: segments and km attributed (above 20 min: gaps
        bridged), unobserved (not attributed: their straight line) and of implausible motion."""
        totals: dict[str, dict[str, float]] = {}
        for entry in self.months.values():
            for b, row in entry.segments_by_duration.items():
                acc = totals.setdefault(b, {})
                for k, v in row.items():
                    acc[k] = acc.get(k, 0.0) + v
        order = {label: i for i, label in enumerate(GAP_BIN_LABELS)}
        return [{"bin": b, **totals[b]} for b in sorted(totals, key=lambda b: order.get(b, len(order)))]

    def fix_rows(self) -> list[dict[str, Any]]:
        """One row per month: fixes by outcome (kept, duplicate, invalid, stuck, jump) and km."""
        rows = []
        for month, entry in self.months.items():
            fixes = entry.fixes
            total = sum(fixes.values())
            rows.append(
                {
                    "month": month,
                    "fixes": total,
                    **fixes,
                    "kept_share": fixes.get("kept", 0) / total if total else 0.0,
                    "distance_km_unweighted": entry.distance_km_unweighted or 0.0,
                    "distance_km_outside_mainland_unweighted": entry.distance_km_outside_mainland_unweighted or 0.0,
                    "co2_t": entry.co2_t or 0.0,
                }
            )
        return rows


def read_quality(run: Path) -> QualityReport:
    """Load the quality report of a run folder written by ``truckcarbon run``.

    Raises :class:`InputError` only when nothing of it can be read (no folder, no usable manifest)."""
    folder = RunFolder.open(run)
    if not folder.path.is_dir():
        raise InputError(f"{run} is not a folder; give a run folder written by `truckcarbon run`")
    with folder.collect() as missed:
        manifest = folder.manifest()
    if manifest is None:
        raise InputError(f"{run} is not a run folder ({'; '.join(map(str, missed))}); run `truckcarbon run` first")
    months = folder.months()
    quality = folder.quality()
    if not months and quality is None:
        raise InputError(
            f"{folder.manifest_path} holds no quality record ({'; '.join(map(str, folder.missing))}); "
            "run `truckcarbon run` again"
        )
    latest = folder.latest_run()
    inputs = latest.inputs if latest is not None else []
    return QualityReport(months=months, quality=quality, missing=list(folder.missing), inputs=inputs)


__all__ = ["QualityReport", "new_run_id", "quality_record", "read_quality", "write_manifest"]
