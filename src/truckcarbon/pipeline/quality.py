"""The data-quality report of a run folder, from its manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError


@dataclass(frozen=True)
class QualityReport:
    """Per-month fix counts by cleaning rule and the latest run's ingest and trajectory counts."""

    months: dict[str, dict[str, Any]]
    latest_run: dict[str, Any]

    def fix_rows(self) -> list[dict[str, Any]]:
        """One row per month: fixes by outcome (kept, duplicate, invalid, stuck, jump) and km."""
        rows = []
        for month, entry in self.months.items():
            fixes = entry.get("fixes", {})
            total = sum(fixes.values())
            rows.append(
                {
                    "month": month,
                    "fixes": total,
                    **fixes,
                    "kept_share": fixes.get("kept", 0) / total if total else 0.0,
                    "distance_km_unweighted": entry.get("distance_km_unweighted", 0.0),
                    "distance_km_outside_mainland_unweighted": entry.get(
                        "distance_km_outside_mainland_unweighted", 0.0
                    ),
                    "co2_t": entry.get("co2_t", 0.0),
                }
            )
        return rows


def read_quality(run: Path) -> QualityReport:
    """Load the quality report of a run folder written by ``truckcarbon run``."""
    path = run / "manifest.json"
    if not path.exists():
        raise InputError(f"{run} is not a run folder (no manifest.json); run `truckcarbon run` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    runs = manifest.get("runs") or [{}]
    return QualityReport(months=manifest.get("months", {}), latest_run=runs[-1].get("quality", {}))
