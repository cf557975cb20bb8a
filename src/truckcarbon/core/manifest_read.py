"""The reader side of a run's manifest: its typed records and their tolerant parsing.

A manifest (``RUN/manifest.json``, written by ``truckcarbon run``) holds the months
of the run folder (``months.YYYY-MM``: the run that computed each and its totals)
and the history of its runs (``runs[-1]`` is the latest: months, inputs, quality
record, configuration). The parsers here turn the parsed JSON into
:class:`MonthEntry`, :class:`Quality`, :class:`InputEntry` and :class:`RunEntry`.
They tolerate missing or older keys and wrong types: they return None or empty
values and report each lack through a ``note(key, why)`` callback (the key path
inside the manifest, e.g. ``runs[-1].quality.pings``), so that a reader can say
what it lacked and use the rest. :class:`~truckcarbon.core.runfolder.RunFolder`
reads the file and records the notices.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Note = Callable[[str, str], None]  # (key path inside the manifest, why it is not usable)


@dataclass(frozen=True)
class MonthEntry:
    """A month of the manifest (``months.YYYY-MM``): the run that computed it and its totals."""

    month: str
    run_id: str | None
    vehicles_active: int | None
    distance_km_unweighted: float | None
    distance_km_outside_mainland_unweighted: float | None
    co2_t: float | None
    fixes: dict[str, int]
    unobserved_gaps: int | None = None  # gaps not attributed (too long or too fast to bridge)
    unobserved_km_unweighted: float | None = None  # their straight-line displacement
    # kept segments by duration bin: {bin: {attributed_segments, attributed_km, unobserved_..., implausible_...}}
    segments_by_duration: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    """Rows read, kept and quarantined by reason (pings or vehicles of a run's quality record)."""

    read: int | None
    kept: int | None
    quarantined: dict[str, int]
    other: dict[str, int] = field(default_factory=dict)  # outside_months_asked, registration_from_plate, ...


@dataclass(frozen=True)
class Quality:
    """A run's quality record (``runs[-1].quality``)."""

    pings: Counts | None
    vehicles: Counts | None
    trajectories: dict[str, float]


@dataclass(frozen=True)
class InputEntry:
    """An input file of a run: role (pings, vehicles, activity), path and hash (None when not hashed)."""

    role: str | None
    path: str | None
    hash: str | None
    rows: int | None = None  # pings files: data rows read, kept, and set aside by reason
    kept: int | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    warning: str | None = None  # what the run said about the file (many rows set aside, repeated rows, ...)


@dataclass(frozen=True)
class RunEntry:
    """A run of the manifest (``runs[-1]``)."""

    run_id: str | None
    months: list[str]
    inputs: list[InputEntry]
    quality: Quality | None
    config: dict[str, Any]


def fix_totals(months: Mapping[str, MonthEntry]) -> dict[str, int]:
    """Fixes by cleaning outcome (kept, duplicate, jump, ...) summed over ``months``, keys in order of first use."""
    totals: dict[str, int] = {}
    for entry in months.values():
        for k, v in entry.fixes.items():
            totals[k] = totals.get(k, 0) + v
    return totals


def parse_manifest_file(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(the manifest, None), (None, None) when absent, or (None, why it cannot be used)."""
    if not path.exists():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({exc})"
    except OSError as exc:
        return None, f"could not be read ({exc.strerror or exc})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def parse_months(manifest: dict[str, Any], note: Note) -> dict[str, MonthEntry]:
    """``months`` of the manifest by label, in label order (empty when missing)."""
    raw = _take(note, manifest, "", "months", dict)
    if raw is None:
        return {}
    out: dict[str, MonthEntry] = {}
    lacking: dict[str, list[str]] = {}
    fields = ("run_id", "vehicles_active", "distance_km_unweighted", "distance_km_outside_mainland_unweighted")
    for label, entry in sorted(raw.items()):
        if not isinstance(entry, dict):
            note(f"months.{label}", "not a mapping")
            continue
        for key in (*fields, "co2_t", "fixes"):
            if key not in entry:
                lacking.setdefault(key, []).append(label)
        out[label] = MonthEntry(
            month=label,
            run_id=entry.get("run_id") if isinstance(entry.get("run_id"), str) else None,
            vehicles_active=_as_int(entry.get("vehicles_active")),
            distance_km_unweighted=_as_float(entry.get("distance_km_unweighted")),
            distance_km_outside_mainland_unweighted=_as_float(entry.get("distance_km_outside_mainland_unweighted")),
            co2_t=_as_float(entry.get("co2_t")),
            fixes=_int_map(entry.get("fixes")),
            # Written from the gap rules on: absent in older runs is not a notice.
            unobserved_gaps=_as_int(entry.get("unobserved_gaps")),
            unobserved_km_unweighted=_as_float(entry.get("unobserved_km_unweighted")),
            segments_by_duration={
                str(b): {str(k): float(v) for k, v in row.items() if isinstance(v, int | float)}
                for b, row in (entry.get("segments_by_duration") or {}).items()
                if isinstance(row, dict)
            }
            if isinstance(entry.get("segments_by_duration"), dict)
            else {},
        )
    for key, labels in lacking.items():
        shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
        note(f"months.*.{key}", f"absent in {len(labels)} of {len(raw)} months ({shown})")
    return out


def latest_run(manifest: dict[str, Any], note: Note) -> dict[str, Any] | None:
    """``runs[-1]`` of the manifest as written (None when missing)."""
    runs = _take(note, manifest, "", "runs", list)
    if runs is None:
        return None
    if not runs or not isinstance(runs[-1], dict):
        note("runs[-1]", "absent" if not runs else "not a mapping")
        return None
    latest: dict[str, Any] = runs[-1]
    return latest


def parse_run(run: dict[str, Any], note: Note) -> RunEntry:
    """A run of the manifest (``runs[-1]`` as :func:`latest_run` gives it)."""
    p = "runs[-1]"
    return RunEntry(
        run_id=_take(note, run, p, "run_id", str),
        months=[str(x) for x in _take(note, run, p, "months", list) or []],
        inputs=parse_inputs(run, note),
        quality=parse_quality(run, note),
        config=_take(note, run, p, "config", dict) or {},
    )


def parse_inputs(run: dict[str, Any], note: Note) -> list[InputEntry]:
    """The input files of a run (empty when missing)."""
    inputs = []
    for i, item in enumerate(_take(note, run, "runs[-1]", "inputs", list) or []):
        p = f"runs[-1].inputs[{i}]"
        if not isinstance(item, dict):
            note(p, "not a mapping")
            continue
        digest = item.get("hash")
        inputs.append(
            InputEntry(
                role=_take(note, item, p, "role", str),
                path=_take(note, item, p, "path", str),
                hash=digest if isinstance(digest, str) else None,  # null: not hashed (a URI)
                # Written from 0.1 on for pings files only: absent is not a notice.
                rows=item["rows"] if isinstance(item.get("rows"), int) else None,
                kept=item["kept"] if isinstance(item.get("kept"), int) else None,
                quarantined={str(k): v for k, v in (item.get("quarantined") or {}).items() if isinstance(v, int)}
                if isinstance(item.get("quarantined"), dict)
                else {},
                warning=item["warning"] if isinstance(item.get("warning"), str) else None,
            )
        )
    return inputs


def parse_quality(run: dict[str, Any], note: Note) -> Quality | None:
    """The quality record of a run (None when missing)."""
    p = "runs[-1].quality"
    q = _take(note, run, "runs[-1]", "quality", dict)
    if q is None:
        return None
    trajectories = _take(note, q, p, "trajectories", dict) or {}
    return Quality(
        pings=_counts(note, q, p, "pings"),
        vehicles=_counts(note, q, p, "vehicles"),
        trajectories={str(k): f for k, v in trajectories.items() if (f := _as_float(v)) is not None},
    )


def parse_formula(manifest: dict[str, Any], note: Note) -> str | None:
    """``method.formula`` of the manifest."""
    method = _take(note, manifest, "", "method", dict)
    return _take(note, method, "method", "formula", str) if method is not None else None


# ---------------------------------------------------------------------- helpers


def _as_int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer() else None


def _as_float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int_map(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        return {}
    return {str(k): n for k, x in v.items() if (n := _as_int(x)) is not None}


_KINDS: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string", int: "a whole number"}


def _take(note: Note, obj: dict[str, Any], path: str, key: str, kind: type) -> Any:
    """``obj[key]`` when it is of ``kind``, else None (noted as absent or of the wrong type)."""
    full = f"{path}.{key}" if path else key
    if key not in obj:
        note(full, "absent")
        return None
    value = obj[key]
    ok = _as_int(value) is not None if kind is int else isinstance(value, kind)
    if not ok:
        note(full, f"not {_KINDS.get(kind, kind.__name__)}")
        return None
    return int(value) if kind is int else value


def _counts(note: Note, q: dict[str, Any], path: str, key: str) -> Counts | None:
    raw = _take(note, q, path, key, dict)
    if raw is None:
        return None
    p = f"{path}.{key}"
    quarantined = _take(note, raw, p, "quarantined", dict)
    other = {k: n for k, v in raw.items() if k not in ("read", "kept", "quarantined") and (n := _as_int(v)) is not None}
    return Counts(
        read=_take(note, raw, p, "read", int),
        kept=_take(note, raw, p, "kept", int),
        quarantined=_int_map(quarantined),
        other=other,
    )


__all__ = [
    "Counts",
    "InputEntry",
    "MonthEntry",
    "Note",
    "Quality",
    "RunEntry",
    "fix_totals",
    "latest_run",
    "parse_formula",
    "parse_inputs",
    "parse_manifest_file",
    "parse_months",
    "parse_quality",
    "parse_run",
]
