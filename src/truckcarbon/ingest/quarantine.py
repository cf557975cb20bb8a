"""Rows set aside: the pings' reason codes, their counts, and the quarantine table's layout.

Every ping that fails a rule gets the first reason of :data:`REASONS` that
applies (the order in which the rules are checked); a CSV line that could not be
read as a row at all gets one of :data:`LINE_REASONS`. :class:`IngestCounts`
counts rows read, kept and set aside by reason. :func:`quarantine_table` is the
layout of every quarantine (pings and vehicles alike): the original columns as
text, then ``reason``, ``source_file`` and ``source_row`` (1-based data row),
so nothing is lost and every rejection can be traced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

# Reason codes, in the order they are checked (a row gets the first that applies).
REASONS = (
    "missing_vehicle_id",
    "bad_time",
    "time_out_of_range",
    "bad_coordinates",
    "zero_fix",
    "bad_optional_value",
    "duplicate_vehicle_id",
    "unknown_vehicle",
)
(R_MISSING_ID, R_BAD_TIME, R_TIME_RANGE, R_COORDS, R_ZERO, R_OPTIONAL, R_DUPLICATE, R_UNKNOWN) = range(len(REASONS))

# Reasons of whole CSV lines that could not be read as rows, counted beside REASONS: the wrong number of
# fields, and a quoted value left open (see :mod:`.csvquotes`).
MALFORMED_LINE = "malformed_line"
UNTERMINATED_QUOTE = "unterminated_quote"
LINE_REASONS = (MALFORMED_LINE, UNTERMINATED_QUOTE)


@dataclass
class IngestCounts:
    """Rows read, kept and quarantined (by reason)."""

    rows: int = 0
    kept: int = 0
    quarantined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def add(self, other: IngestCounts) -> None:
        """Add ``other``'s counts to these."""
        self.rows += other.rows
        self.kept += other.kept
        for k, v in other.quarantined.items():
            self.quarantined[k] = self.quarantined.get(k, 0) + v


def quarantine_table(
    rows: pa.Table,
    reasons: npt.NDArray[np.integer[Any]],
    source: str,
    source_rows: npt.NDArray[np.int64],
    names: Sequence[str] = REASONS,
) -> pa.Table:
    """Rows set aside as the quarantine keeps them: every original column as text, then ``reason`` (the
    name in ``names`` of each code, default the pings' :data:`REASONS`), ``source_file`` and
    ``source_row`` (1-based data row)."""
    out = {name: pc.cast(rows.column(name), pa.string()) for name in rows.column_names}
    out["reason"] = pa.array(np.asarray(names)[reasons], pa.string())
    out["source_file"] = pa.array([source] * rows.num_rows, pa.string())
    out["source_row"] = pa.array(source_rows, pa.int64())
    return pa.table(out)


__all__ = [
    "LINE_REASONS",
    "MALFORMED_LINE",
    "REASONS",
    "UNTERMINATED_QUOTE",
    "IngestCounts",
    "quarantine_table",
]
