"""The data-quality report of a run folder, from its manifest (read through :class:`RunFolder`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.core.manifest_read import InputEntry, MonthEntry, Quality
from truckcarbon.core.runfolder import Missing, RunFolder
from truckcarbon.trajectory.schema import GAP_BIN_LABELS


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
