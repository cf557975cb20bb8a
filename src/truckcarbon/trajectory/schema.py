"""What the trajectory kernel returns: each row's reason code, the columns of its tables, its result.

:func:`truckcarbon.trajectory.kernel.run_kernel` gives every input row a cleaning reason (``KEPT`` ...
``QUARANTINED``, named in ``REASONS``) and returns a :class:`KernelResult`: the activity table
(:data:`ACTIVITY_COLUMNS`, one row per vehicle, month and city), the unobserved gaps (:data:`GAP_SCHEMA`)
and every segment by duration bin (:data:`GAP_BIN_SCHEMA`, bins labelled :data:`GAP_BIN_LABELS`). The
pipeline writes these tables as they are declared here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.trajectory._attribute import GAP_BIN_LABELS  # the bins' labels, beside their edges

ACTIVITY_COLUMNS = (
    "vehicle_id",
    "month",
    "city_adcode",
    "distance_km",
    "distance_km_empty",
    "distance_km_half",
    "distance_km_full",
    "distance_km_unknown_load",
    "fuel_measured_l",
    "distance_km_fuel_measured",
    "gps_noise_m",
    "fix_interval_s",
    "idle_h",
    "driving_h",
    "speed_bin_km",
    "speed_bin_h",
)
# The kernel's sums per row, in ACTIVITY_COLUMNS' order from distance_km.
VALUE_COLUMNS = ACTIVITY_COLUMNS[3:10]
# Kilometres by (load state, speed bin) and hours by speed bin of a row's moving segments: lists of
# N_LOADS * N_SPEED_BINS (empty, half, full, unknown; bins of SPEED_BIN_EDGES_KMH) and N_SPEED_BINS values. The
# emission methods read them (activity given as km per row has none); the run's activity table keeps idle_h
# and driving_h only.
SPEED_COLUMNS = ("speed_bin_km", "speed_bin_h")
GAP_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.int64()),
        ("month", pa.string()),
        ("from_city_adcode", pa.int32()),
        ("to_city_adcode", pa.int32()),
        ("gaps", pa.int64()),
        ("unobserved_km", pa.float64()),
        ("gap_hours", pa.float64()),
        ("odometer_gaps", pa.int64()),
        ("odometer_km", pa.float64()),
    ]
)
GAP_BIN_SCHEMA = pa.schema(
    [("month", pa.string()), ("gap_bin", pa.string())]
    + [(f"{kind}_{what}", t) for kind in ("attributed", "unobserved", "implausible")
       for what, t in (("segments", pa.int64()), ("km", pa.float64()))]
)  # fmt: skip
GAP_COLUMNS = tuple(GAP_SCHEMA.names)  # KernelResult.gaps
GAP_BIN_COLUMNS = tuple(GAP_BIN_SCHEMA.names)  # KernelResult.gap_bins
KEPT, DUPLICATE, INVALID, STUCK, JUMP = 0, 1, 2, 3, 4
REASONS = ("kept", "duplicate", "invalid", "stuck", "jump", "quarantined")
QUARANTINED = 5  # rows the caller set aside before the kernel (``skip``): not fixes of the track


@dataclass(frozen=True)
class KernelResult:
    """Per-row reasons, counts and the kilometres per (vehicle, month, city)."""

    reason: npt.NDArray[np.int8]  # in the input's row order
    counts: dict[str, int]
    activity: pa.Table  # vehicle_id, month, city_adcode, distance_km (ACTIVITY_COLUMNS)
    unobserved_km: float  # straight lines of the unobserved segments (counts["unobserved_segments"])
    bridged_km: float  # distance added over straight lines by gap bridging (odometer or circuity)
    by_month: dict[int, npt.NDArray[np.int64]]  # local month number -> rows per reason code (REASONS)
    # Unobserved segments (GAP_COLUMNS) by vehicle, local month of their first fix and the cities of their
    # fixes: gaps (count), unobserved_km (straight line; sums to unobserved_km), gap_hours, and for those
    # with a plausible odometer reading their count and its km (driven, route unknown: not attributed).
    gaps: pa.Table
    # Every kept segment (GAP_BIN_COLUMNS) by local month of its first fix and duration bin (GAP_BIN_LABELS):
    # segments and km attributed (for bins above 20 min: bridged gaps), unobserved, implausible motion.
    gap_bins: pa.Table
    implausible_speed_km: float  # straight lines of the segments of implausible motion (rule 6), not attributed
    # Per vehicle-month (rule 7's estimates): key, month, gps_noise_m (per axis), fix_interval_s (median while
    # moving; null when it never moved), speed_channel_used (the speed channel consistent with the positions),
    # acc_used (the ignition bit consistent with them).
    vehicles: pa.Table


__all__ = [
    "ACTIVITY_COLUMNS",
    "DUPLICATE",
    "GAP_BIN_COLUMNS",
    "GAP_BIN_LABELS",
    "GAP_BIN_SCHEMA",
    "GAP_COLUMNS",
    "GAP_SCHEMA",
    "INVALID",
    "JUMP",
    "KEPT",
    "QUARANTINED",
    "REASONS",
    "SPEED_COLUMNS",
    "STUCK",
    "VALUE_COLUMNS",
    "KernelResult",
]
