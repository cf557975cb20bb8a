"""What a run says about its inputs before it writes anything: clear refusals and loud warnings.

A run is refused (:class:`InputError`, exit code 2, one message naming the
file, what was wrong and what to do) when its pings hold no row at all, or when
every row was set aside. It goes on, with a warning in the summary and in the
manifest's input entry, when a file sets aside more than
``max_quarantine_share`` of its rows (default 5%), when a file of a folder is
empty, and when the vehicles table repeats rows.
"""

from __future__ import annotations

from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.quarantine import IngestCounts
from truckcarbon.ingest.rules import IngestRules
from truckcarbon.ingest.vehicles import VehicleCounts

# What to do about each reason, for the messages.
ADVICE = {
    "missing_vehicle_id": "the id column is empty: map the right column with --columns (e.g. 车牌号=vehicle_id)",
    "bad_time": "the times are in no known form: give --ts-format (e.g. '%d.%m.%Y %H:%M:%S')",
    "time_out_of_range": "the times fall outside the plausible window: check their unit, or set time_min/time_max",
    "bad_coordinates": "lon/lat are not numbers in range: check the columns (--columns) and the decimal separator",
    "zero_fix": "every fix is (0, 0): the receiver had no position",
    "bad_optional_value": "a channel (speed, load, odometer, fuel) is out of range: check its unit",
    "duplicate_vehicle_id": "the vehicles table gives these ids twice with different values: keep one row each",
    "unknown_vehicle": "the ids are not in the vehicles table: use the same ids in both (plate, terminal phone, ...)",
    "malformed_line": "lines have the wrong number of fields: check the delimiter and the quoting",
    "unterminated_quote": 'lines have an unterminated quote ("): fix the export',
}


def _reasons(quarantined: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(quarantined.items(), key=lambda kv: -kv[1]) if v)


def refuse_empty_input(inputs: list[dict[str, Any]], ingest: IngestCounts, rules: IngestRules) -> None:
    """Raise when the pings hold no row, or when every row was set aside (naming the file(s) and what to do)."""
    pings = [e for e in inputs if e.get("role") == "pings"]
    where = pings[0]["path"] if len(pings) == 1 else f"{len(pings)} files under {_common_root(pings)}"
    if ingest.rows == 0:
        raise InputError(
            f"pings: {where} holds no data row (header only, or zero rows); export the data, or point --pings at it"
        )
    if ingest.kept == 0:
        top = max(ingest.quarantined.items(), key=lambda kv: kv[1])[0]
        advice = ADVICE.get(top, "see the reasons")
        if top == "time_out_of_range":
            advice += f" (window {rules.window_text()})"
        raise InputError(
            f"pings: all {ingest.rows:,} rows of {where} were set aside ({_reasons(ingest.quarantined)}); {advice}"
        )


def _common_root(entries: list[dict[str, Any]]) -> str:
    import os

    paths = [str(e["path"]) for e in entries]
    return os.path.commonpath(paths) if paths else "?"


def input_warnings(inputs: list[dict[str, Any]], v_counts: VehicleCounts, max_share: float) -> list[str]:
    """Warnings about the inputs; each is also written into its input's manifest entry (``warning``)."""
    out: list[str] = []
    for entry in inputs:
        notes: list[str] = []
        if entry.get("role") == "pings" and "rows" in entry:
            rows, kept = int(entry["rows"]), int(entry.get("kept", 0))
            set_aside = sum(entry.get("quarantined", {}).values())
            if rows == 0:
                notes.append("holds no data row")
            elif set_aside > max_share * rows:
                q = entry.get("quarantined", {})
                top = max(q.items(), key=lambda kv: kv[1])[0] if q else ""
                notes.append(
                    f"{set_aside:,} of its {rows:,} rows ({set_aside / rows:.1%}, more than {max_share:.0%}) were set "
                    f"aside ({_reasons(q)}); {ADVICE.get(top, 'see the quarantine')}; {kept:,} kept"
                )
        if entry.get("role") == "vehicles":
            if v_counts.identical_duplicates:
                notes.append(f"{v_counts.identical_duplicates:,} repeated identical row(s) kept once")
            if v_counts.conflicting_ids:
                shown = ", ".join(v_counts.conflicting_ids[:5])
                notes.append(
                    f"{len(v_counts.conflicting_ids):,} id(s) given twice with different values ({shown}"
                    f"{', ...' if len(v_counts.conflicting_ids) > 5 else ''}): all their rows and pings set aside "
                    "(duplicate_vehicle_id)"
                )
            set_aside = sum(v_counts.quarantined.values())
            if v_counts.rows and set_aside > max_share * v_counts.rows:
                notes.append(
                    f"{set_aside:,} of its {v_counts.rows:,} rows set aside ({_reasons(v_counts.quarantined)})"
                )
        if notes:
            entry["warning"] = "; ".join(notes)
            out.append(f"{entry['path']}: {entry['warning']}")
    return out


__all__ = ["ADVICE", "input_warnings", "refuse_empty_input"]
