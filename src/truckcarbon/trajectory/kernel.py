"""Clean a batch of fixes and attribute the kilometres driven to (vehicle, month, city).

Rules, in order, each configurable in :class:`CleaningRules` and counted:

1. **Order**: fixes are sorted by (vehicle, time); rows that arrived out of order
   are counted (``out_of_order``), not dropped.
2. **Duplicates**: repeated (vehicle, time) rows keep the first (``duplicate``).
3. **Invalid**: NaN/infinite/out-of-range coordinates and (0, 0) fixes (``invalid``).
4. **Stuck receiver**: a fix repeating the previous position exactly while the
   reported speed is above zero (``stuck``).
5. **Jumps**: a fix more than 1.5 km from both its neighbours while they are close
   to each other (an out-and-back spike, whatever the interval), or whose implied
   speed from the last kept fix exceeds ``max_speed_kmh``, is set aside (``jump``);
   when ``reanchor_after`` consecutive
   set-aside fixes agree with each other, the track re-anchors on them (the old
   anchor was the outlier), so runs of bad fixes cannot swallow a trip.
6. **Drift**: a segment shorter than ``drift_m`` at an implied speed below
   ``drift_kmh`` accrues no distance (a parked truck's GPS noise).
7. **Gaps**: a segment longer than ``gap_s`` is bridged by its straight line times
   ``gap_circuity`` when its implied speed is plausible (``max_bridge_kmh``), else
   its distance is not attributed and is reported as unobserved. Any segment
   longer than ``odometer_after_s`` (a hole in the trace, a gap or shorter) whose
   ends carry an odometer reading (JT/T 808 item 0x01) that is plausible (at
   least ``0.95`` of the straight line, at most ``max_bridge_kmh`` over the
   segment) takes the odometer's distance instead, shared out along the straight
   line: a truck that lost its signal for ten minutes on a winding road drove
   the odometer's kilometres, not the chord's.

Attribution: each kept segment is split at local (Asia/Shanghai) month
boundaries by time and at city borders exactly (:meth:`CityLocator.split_segments`).

Channels: a segment's load state is the one reported at its end fix (the state
during the interval that fix closes; JT/T 808 status bits 8-9), unknown when not
reported. A segment's measured fuel is the fall of the fuel-level gauge over it;
a rise of more than ``refuel_l`` (a refuel) or a fall above
``max_fuel_l_per_km`` per km plus ``refuel_l`` (a glitch) makes it unknown.
The level telescopes, so rounding of the gauge cancels over a trip. Both are
shared out to cities and months in proportion to distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.months import local_month, month_labels, month_start_utc_s
from truckcarbon.geo._kernels import cosines, step_km, step_km_cos
from truckcarbon.geo.locator import CityLocator
from truckcarbon.trajectory._attribute import N_VALUES, attribute_kernel

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
)
KEPT, DUPLICATE, INVALID, STUCK, JUMP = 0, 1, 2, 3, 4
REASONS = ("kept", "duplicate", "invalid", "stuck", "jump", "quarantined")
QUARANTINED = 5  # rows the caller set aside before the kernel (``skip``): not fixes of the track
SPIKE_KM = 1.5
WALK_SCRATCH = 256  # first size of the border walk's scratch (grown when a segment crosses more edges)


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of the cleaning rules (module docstring); defaults suit 10-120 s fixes."""

    max_speed_kmh: float = 150.0
    reanchor_after: int = 3
    drift_m: float = 30.0
    drift_kmh: float = 5.0
    gap_s: float = 1200.0
    max_bridge_kmh: float = 120.0
    gap_circuity: float = 1.05
    refuel_l: float = 5.0
    max_fuel_l_per_km: float = 1.5
    odometer_after_s: float = 150.0


def attribute_params(rules: CleaningRules) -> npt.NDArray[np.float64]:
    """The segment rules' thresholds in the order :func:`attribute_kernel` takes them (``params``)."""
    return np.array(
        [
            rules.drift_m,
            rules.drift_kmh,
            rules.gap_s,
            rules.max_speed_kmh,
            rules.max_bridge_kmh,
            rules.gap_circuity,
            rules.refuel_l,
            rules.max_fuel_l_per_km,
            rules.odometer_after_s,
        ]
    )


@nb.njit(cache=True, nogil=True)
def _flag(vid, t, lon, lat, speed, reason, dseg, cos, max_kmh, reanchor_after):  # type: ignore[no-untyped-def]
    """Sequential rules 2-5 on fixes sorted by (vehicle, time); writes ``reason`` in place.

    Rows already marked QUARANTINED are not fixes and are passed over. For a
    kept fix whose distance from the kept fix before it was computed here,
    ``dseg`` (NaN-filled by the caller) receives it, so the attribution need
    not compute it again. ``cos`` (scratch of n places) receives the cosine of
    every fix's latitude first (:func:`step_km_cos`). Returns the first and
    last time of the kept fixes (0, -1 when none is kept).
    """
    n = vid.shape[0]
    if cos.shape[0] < n:
        raise ValueError("_flag: the cos scratch has fewer places than rows")
    cosines(lat, cos)
    last = -1  # last kept fix of the current vehicle
    run_start = -1  # first set-aside fix of the current run of jumps
    prev_jump = -1  # last set-aside fix
    run_len = 0
    prev = -1  # previous row that is a fix (for duplicates)
    for i in range(n):
        if reason[i] == 5:
            continue
        if prev >= 0 and vid[prev] == vid[i] and t[prev] == t[i]:
            reason[i] = 1
            continue
        prev = i
        x = lon[i]
        y = lat[i]
        if not (x >= -180.0 and x <= 180.0 and y >= -90.0 and y <= 90.0) or (x == 0.0 and y == 0.0):
            reason[i] = 2
            continue
        if last >= 0 and vid[last] != vid[i]:
            last = -1
            run_len = 0
        if last < 0:
            last = i
            continue
        if x == lon[last] and y == lat[last] and speed[i] > 0.0:
            reason[i] = 3
            continue
        dt_h = (t[i] - t[last]) / 3600.0
        d = step_km_cos(lon[last], lat[last], x, y, cos[last], cos[i])
        dseg[i] = d
        if run_len == 0 and d > SPIKE_KM:
            # An out-and-back spike: far from both neighbours, which are close to each other.
            j = i + 1
            while (
                j < n
                and (reason[j] == 5 or vid[j] == vid[i])
                and (reason[j] != 0 or (lon[j] == 0.0 and lat[j] == 0.0) or t[j] == t[j - 1])
            ):  # the next fix of the vehicle: rows set aside are not fixes, duplicates and (0, 0) are not kept
                j += 1
            if j < n and vid[j] == vid[i]:
                d_ij = step_km(x, y, lon[j], lat[j])
                d_lj = step_km(lon[last], lat[last], lon[j], lat[j])
                if d_ij > SPIKE_KM and d_lj < 0.25 * min(d, d_ij):
                    reason[i] = 4
                    continue
        if d > 1.0 and (dt_h <= 0.0 or d / dt_h > max_kmh):
            consistent = False
            if run_len > 0:
                dtp = (t[i] - t[prev_jump]) / 3600.0
                dp = step_km(lon[prev_jump], lat[prev_jump], x, y)
                consistent = dp <= 1.0 or (dtp > 0.0 and dp / dtp <= max_kmh)
            reason[i] = 4
            if consistent:
                run_len += 1
            else:
                run_start = i
                run_len = 1
            prev_jump = i
            if run_len >= reanchor_after:
                for k in range(run_start, i + 1):
                    if reason[k] == 4:
                        reason[k] = 0
                        if k > run_start:
                            dseg[k] = np.nan  # measured from the old anchor, not from the fix before
                last = i
                run_len = 0
            continue
        last = i
        run_len = 0
    t_lo = 0
    t_hi = -1
    for i in range(n):
        if reason[i] == 0:
            if t_hi < t_lo:
                t_lo = t[i]
                t_hi = t[i]
            else:
                t_lo = min(t_lo, t[i])
                t_hi = max(t_hi, t[i])
    return t_lo, t_hi


@nb.njit(cache=True, nogil=True)
def _order_check(vid, t, aside):  # type: ignore[no-untyped-def]
    """(fixes sorted by (vehicle, time)?, fixes of a vehicle earlier than the fix before them).

    Rows set aside (``aside``) are not fixes: their place, vehicle and time do not count.
    """
    ordered = True
    late = 0
    p = -1
    for i in range(vid.shape[0]):
        if aside[i]:
            continue
        if p >= 0:
            if vid[i] == vid[p]:
                if t[i] < t[p]:
                    late += 1
                    ordered = False
            elif vid[i] < vid[p]:
                ordered = False
        p = i
    return ordered, late


@dataclass(frozen=True)
class KernelResult:
    """Per-row reasons, counts and the kilometres per (vehicle, month, city)."""

    reason: npt.NDArray[np.int8]  # in the input's row order
    counts: dict[str, int]
    activity: pa.Table  # vehicle_id, month, city_adcode, distance_km (ACTIVITY_COLUMNS)
    unobserved_km: float
    bridged_km: float  # distance added over straight lines by gap bridging (odometer or circuity)
    by_month: dict[int, npt.NDArray[np.int64]]  # local month number -> rows per reason code (REASONS)


def _sort_order(vid: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """The stable permutation to (vehicle, time) order.

    One 64-bit key (vehicle offset above, time offset below) sorted by a
    stable sort that finds runs already in order (input arriving file by file
    is mostly such runs); ``lexsort`` when the ranges do not fit in the key.
    """
    v_lo, v_hi, t_lo, t_hi = int(vid.min()), int(vid.max()), int(t.min()), int(t.max())
    if v_hi - v_lo < 2**31 and t_hi - t_lo < 2**32:
        key = ((vid - v_lo) << 32) | (t - t_lo)
        return np.argsort(key, kind="stable")
    return np.lexsort((t, vid))


class Scratch:
    """Buffers :func:`run_kernel` reuses from call to call (the sorted copies of unsorted input, the
    distances of the cleaning pass).

    Fresh memory for every call costs page faults and zeroing; a caller that runs
    the kernel chunk after chunk on one thread passes one ``Scratch`` (it holds
    the largest chunk's columns until it is dropped).
    """

    def __init__(self) -> None:
        self.buffers: dict[int, npt.NDArray[Any]] = {}

    def buffer(self, k: int, n: int, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """``n`` elements of buffer ``k`` (grown when smaller; contents undefined)."""
        buf = self.buffers.get(k)
        if buf is None or buf.size < n or buf.dtype != np.dtype(dtype):
            buf = self.buffers[k] = np.empty(max(n, int(1.25 * buf.size) if buf is not None else n), dtype)
        return buf[:n]

    def take(self, k: int, values: npt.NDArray[Any], order: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
        """``values[order]`` in buffer ``k``."""
        return np.take(values, order, out=self.buffer(k, order.size, values.dtype))

    def filled(self, k: int, n: int, value: float) -> npt.NDArray[np.float64]:
        """``n`` float64 ``value``s in buffer ``k``."""
        out = self.buffer(k, n, np.float64)
        out.fill(value)
        return out


def _pick(
    values: npt.NDArray[Any], order: npt.NDArray[np.intp] | None, scratch: Scratch | None, k: int
) -> npt.NDArray[Any]:
    if order is None:
        return values
    return values[order] if scratch is None else scratch.take(k, values, order)


def run_kernel(
    vehicle_id: npt.ArrayLike,
    t_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    locator: CityLocator,
    speed_kmh: npt.ArrayLike | None = None,
    rules: CleaningRules = CleaningRules(),
    *,
    load: npt.ArrayLike | None = None,
    fuel_level_l: npt.ArrayLike | None = None,
    odometer_km: npt.ArrayLike | None = None,
    skip: npt.ArrayLike | None = None,
    scratch: Scratch | None = None,
) -> KernelResult:
    """Clean fixes of any number of vehicles (any order) and attribute their kilometres.

    Parameters
    ----------
    vehicle_id, t_s, lon, lat
        One entry per fix; ``t_s`` in UTC epoch seconds; coordinates in the
        locator's coordinate system.
    locator
        The city locator (its CRS must match the coordinates).
    speed_kmh
        Reported speed (the stuck-receiver rule uses it); missing means 0.
    rules
        Cleaning thresholds.
    load
        Load-state codes per fix (0 empty, 1 half, 2 full, -1 unknown), optional.
    fuel_level_l
        Fuel-level gauge per fix in litres (NaN when not reported), optional.
    odometer_km
        Odometer per fix in km (NaN when not reported), optional; used across gaps.
    skip
        True for rows that are not fixes (set aside before the kernel); they get
        reason ``quarantined`` and take no part in any rule.
    scratch
        Buffers to reuse for the sorted copies of unsorted input (see :class:`Scratch`).

    Returns
    -------
    KernelResult
        Per-row reasons in input order, counts, and the activity table with
        :data:`ACTIVITY_COLUMNS`, one row per (vehicle, month, city).
    """
    vid = np.asarray(vehicle_id, dtype=np.int64)
    t = np.asarray(t_s, dtype=np.int64)
    n = vid.size
    x_in = np.asarray(lon, dtype=np.float64)
    y_in = np.asarray(lat, dtype=np.float64)
    v_in = _speeds(speed_kmh, n)
    ld_in = np.full(n, -1, np.int8) if load is None else np.asarray(load, dtype=np.int8)
    fu_in = np.full(n, np.nan) if fuel_level_l is None else np.asarray(fuel_level_l, dtype=np.float64)
    od_in = np.full(n, np.nan) if odometer_km is None else np.asarray(odometer_km, dtype=np.float64)
    aside = np.zeros(n, np.bool_) if skip is None else np.asarray(skip, dtype=np.bool_)
    ordered, out_of_order = _order_check(vid, t, aside) if n else (True, 0)
    order = None if ordered else _sort_order(vid, t)
    columns = (vid, t, x_in, y_in, v_in, ld_in, fu_in, od_in)
    sv, st, sx, sy, sp, sl, sf, so = (_pick(a, order, scratch, k) for k, a in enumerate(columns))
    reason = _pick(aside, order, None, 0).view(np.int8) * np.int8(QUARANTINED)
    dseg = np.full(n, np.nan) if scratch is None else scratch.filled(len(columns), n, np.nan)
    cos = np.empty(n) if scratch is None else scratch.buffer(len(columns) + 1, n, np.float64)
    t_lo, t_hi = _flag(sv, st, sx, sy, sp, reason, dseg, cos, rules.max_speed_kmh, rules.reanchor_after)

    if t_hi >= t_lo:
        month0, last = (int(m) for m in local_month(np.array([t_lo, t_hi])))
        starts = month_start_utc_s(np.arange(month0, last + 2))
    else:
        month0, starts = 0, np.zeros(0, np.int64)
    params = attribute_params(rules)
    cap, walk = max(64, n // 50), WALK_SCRATCH
    while True:  # the kernel grows no array: it says when its outputs or the walk's scratch are too small
        o_vid, o_mon = np.empty(cap, np.int64), np.empty(cap, np.int64)
        o_unit, o_val = np.empty(cap, np.int32), np.empty((cap, N_VALUES), np.float64)
        rows, stats, month_reasons, tallies = attribute_kernel(  # type: ignore[call-arg]
            sv, st, sx, sy, reason, dseg, sl, sf, so, starts, month0, params, len(REASONS),
            o_vid, o_mon, o_unit, o_val, np.empty(walk), np.empty(walk, np.int32), np.empty(walk),
            *locator.kernel_args,
        )  # fmt: skip
        if rows >= 0:
            break
        if rows == -1:
            cap *= 4
        else:  # -2 - the crossings of a segment
            walk = max(2 * walk, -rows)
    o_vid, o_mon, o_unit, o_val = o_vid[:rows], o_mon[:rows], o_unit[:rows], o_val[:rows]
    by_month = {month0 + m: month_reasons[m] for m in np.flatnonzero(month_reasons.any(axis=1)).tolist()}
    if tallies[1]:  # rows (never kept fixes) outside the kept fixes' months
        outside = np.flatnonzero((st < starts[0]) | (st >= starts[-1])) if starts.size else np.arange(n)
        pairs, count = np.unique(local_month(st[outside]) * len(REASONS) + reason[outside], return_counts=True)
        for pair, c in zip(pairs.tolist(), count.tolist(), strict=True):
            m, r = divmod(pair, len(REASONS))
            by_month.setdefault(m, np.zeros(len(REASONS), np.int64))[r] += c
    ok = o_val[:, 0] > 0
    o_vid, o_mon, o_unit, o_val = o_vid[ok], o_mon[ok], o_unit[ok], o_val[ok]
    uniq_months, month_idx = np.unique(o_mon, return_inverse=True)
    month_text = pa.DictionaryArray.from_arrays(
        pa.array(month_idx.astype(np.int32)), pa.array(month_labels(uniq_months), pa.string())
    ).cast(pa.string())
    activity = pa.table(
        {
            "vehicle_id": pa.array(o_vid),
            "month": month_text,
            "city_adcode": pa.array(locator.adcodes_of_units(o_unit)),
            **{name: pa.array(o_val[:, c]) for c, name in enumerate(ACTIVITY_COLUMNS[3:])},
        }
    ).sort_by([("vehicle_id", "ascending"), ("month", "ascending"), ("city_adcode", "ascending")])
    unobserved_km, bridged_km, unobserved_segments = float(stats[0]), float(stats[1]), int(stats[2])
    reason_in_input_order = reason if order is None else np.empty(n, np.int8)
    if order is not None:
        reason_in_input_order[order] = reason
    totals = np.sum(list(by_month.values()), axis=0) if by_month else np.zeros(len(REASONS), np.int64)
    counts = {name: int(totals[code]) for code, name in enumerate(REASONS)}
    counts["out_of_order"] = int(out_of_order)
    counts["unobserved_segments"] = unobserved_segments
    counts["outside_mainland"] = int(tallies[0])  # kept fixes in no mainland unit
    return KernelResult(reason_in_input_order, counts, activity, unobserved_km, bridged_km, by_month)


def _speeds(speed_kmh: npt.ArrayLike | None, n: int) -> npt.NDArray[np.floating[Any]]:
    """Reported speeds as float32 or float64 (NaN stays NaN: the rules only ask whether a speed is above 0)."""
    if speed_kmh is None:
        return np.zeros(n, np.float32)
    v = np.asarray(speed_kmh)
    return v if v.dtype in (np.float32, np.float64) else v.astype(np.float64)


__all__ = ["ACTIVITY_COLUMNS", "CleaningRules", "KernelResult", "Scratch", "run_kernel"]
