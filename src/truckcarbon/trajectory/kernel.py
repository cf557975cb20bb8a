"""Run the trajectory kernel on a batch of fixes of any number of vehicles, in any order.

:func:`run_kernel` checks the row order and sorts by (vehicle, time) when needed (:class:`Scratch` holds
the sorted copies from call to call), runs the compiled passes in turn (the cleaning pass of
:mod:`truckcarbon.trajectory._flag`, rule 7 of :mod:`truckcarbon.trajectory._robust` when it is on, the
segment rules and attribution of :mod:`truckcarbon.trajectory._attribute`), calling again with larger
outputs when a pass says they were too small, and builds the tables of its
:class:`~truckcarbon.trajectory.schema.KernelResult`. The rules themselves are described in
:mod:`truckcarbon.trajectory.rules`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.months import local_month, month_labels, month_start_utc_s
from truckcarbon.geo.locator import CityLocator
from truckcarbon.trajectory._attribute import (
    GAP_BIN_LABELS,
    N_LOADS,
    N_SPEED_BINS,
    N_VALUES,
    V_ACC_OFF,
    V_ACC_OFF_KM,
    V_ACC_ON,
    V_IDLE_ACC,
    V_IDLE_STOP,
    V_SECS,
    V_SPEED_KM,
    attribute_kernel,
)
from truckcarbon.trajectory._flag import flag_kernel, order_check, scatter, vehicle_positions
from truckcarbon.trajectory._robust import ACC_MOVED_SHARE, MIN_PAIRS, robust_kernel
from truckcarbon.trajectory.rules import CleaningRules, attribute_params, robust_params
from truckcarbon.trajectory.schema import (
    GAP_BIN_SCHEMA,
    GAP_SCHEMA,
    QUARANTINED,
    REASONS,
    VALUE_COLUMNS,
    KernelResult,
)

WALK_SCRATCH = 256  # first size of the border walk's scratch (grown when a segment crosses more edges)


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


POSITIONS = 31  # the Scratch buffer of the rows' places in (vehicle, time) order


def _positions(
    vid: npt.NDArray[np.int64], t: npt.NDArray[np.int64], scratch: Scratch | None
) -> npt.NDArray[Any] | None:
    """Each row's place in (vehicle, time) order when every vehicle's rows come in time order, else None.

    Linear time (:func:`~truckcarbon.trajectory._flag.vehicle_positions`), for
    vehicle ids in a range not much wider than the rows (the pipeline's dense
    vehicle keys); the same order as :func:`_sort_order`'s.
    """
    n = vid.size
    lo, hi = int(vid.min()), int(vid.max())
    if hi - lo >= 4 * n + 4096:
        return None
    pos = np.empty(n, np.int64) if scratch is None else scratch.buffer(POSITIONS, n, np.int64)
    return pos if vehicle_positions(vid, t, lo, hi - lo + 1, pos) else None


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
    values: npt.NDArray[Any],
    order: npt.NDArray[np.intp] | None,
    pos: npt.NDArray[Any] | None,
    scratch: Scratch | None,
    k: int,
) -> npt.NDArray[Any]:
    """``values`` in (vehicle, time) order (in buffer ``k``): gathered by ``order``, or scattered to their
    places ``pos`` (:func:`_positions`), or as they are when neither is given."""
    if pos is not None:
        out = np.empty(values.size, values.dtype) if scratch is None else scratch.buffer(k, values.size, values.dtype)
        return scatter(values, pos, out)  # type: ignore[no-any-return]
    if order is None:
        return values
    return values[order] if scratch is None else scratch.take(k, values, order)


def time_ordered_places(
    vid: npt.NDArray[np.int64], t: npt.NDArray[np.int64], aside: npt.NDArray[np.bool_], scratch: Scratch | None
) -> npt.NDArray[Any] | None:
    """Where :func:`run_kernel` places each row of rows not in (vehicle, time) order whose every vehicle
    comes in time order (a time-ordered dump's); None when it would use them as they are or sort them.

    A caller that puts the rows there first (as it copies them in) hands the kernel
    rows it uses as they are: the same arrays, the same results.
    """
    if not vid.size or order_check(vid, t, aside)[0]:
        return None
    return _positions(vid, t, scratch)


def placing_buffers(
    scratch: Scratch, n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int8]]:
    """Buffers of ``scratch`` for ``n`` vehicle ids, times and int8 flags that a caller fills to find
    :func:`time_ordered_places` before it hands :func:`run_kernel` (with the same ``scratch``) rows in
    those places: the kernel's buffers of the columns it would place (vehicle, time, ignition), free
    until it runs and unused by it for rows in (vehicle, time) order, so placing takes no memory of its
    own."""
    return scratch.buffer(0, n, np.int64), scratch.buffer(1, n, np.int64), scratch.buffer(8, n, np.int8)


def run_kernel(
    vehicle_id: npt.ArrayLike,
    t_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    locator: CityLocator,
    speed_kmh: npt.ArrayLike | None = None,
    rules: CleaningRules = CleaningRules(),  # noqa: B008 (frozen: one shared default is safe)
    *,
    load: npt.ArrayLike | None = None,
    fuel_level_l: npt.ArrayLike | None = None,
    odometer_km: npt.ArrayLike | None = None,
    acc_on: npt.ArrayLike | None = None,
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
    acc_on
        Ignition (ACC, JT/T 808 status bit 0) per fix: 1 on, 0 off, -1 not reported; optional. Rule 7
        accrues nothing between two ignition-off fixes when the bit is consistent with the positions.
    skip
        True for rows that are not fixes (set aside before the kernel); they get
        reason ``quarantined`` and take no part in any rule.
    scratch
        Buffers to reuse for the sorted copies of unsorted input (see :class:`Scratch`).

    Returns
    -------
    KernelResult
        Per-row reasons in input order, counts, and the activity table with
        :data:`ACTIVITY_COLUMNS`, one row per (vehicle, month, city); the
        unobserved gaps (:data:`GAP_COLUMNS`) and the segments by duration bin
        (:data:`GAP_BIN_COLUMNS`), both with the month of a segment's first fix
        (filter them by month as the activity).
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
    ac_in = np.full(n, -1, np.int8) if acc_on is None else np.asarray(acc_on, dtype=np.int8)
    aside = np.zeros(n, np.bool_) if skip is None else np.asarray(skip, dtype=np.bool_)
    ordered, out_of_order = order_check(vid, t, aside) if n else (True, 0)
    # Vehicles interleaved but each in time order (a time-ordered dump) are placed in linear time; else sorted.
    pos = None if ordered else _positions(vid, t, scratch)
    order = None if ordered or pos is not None else _sort_order(vid, t)
    columns = (vid, t, x_in, y_in, v_in, ld_in, fu_in, od_in, ac_in)  # column k placed in buffer k (placing_buffers)
    sv, st, sx, sy, sp, sl, sf, so, sa = (_pick(a, order, pos, scratch, k) for k, a in enumerate(columns))
    reason = _pick(aside, order, pos, None, 0).view(np.int8) * np.int8(QUARANTINED)
    dseg = np.full(n, np.nan) if scratch is None else scratch.filled(len(columns), n, np.nan)
    cos = np.empty(n) if scratch is None else scratch.buffer(len(columns) + 1, n, np.float64)
    t_lo, t_hi = flag_kernel(
        sv, st, sx, sy, sp, reason, dseg, cos, rules.max_speed_kmh, rules.reanchor_after,
        rules.max_vehicle_kmh, rules.sustained_s,
    )  # fmt: skip
    if t_hi >= t_lo:
        month0, last = (int(m) for m in local_month(np.array([t_lo, t_hi])))
        starts = month_start_utc_s(np.arange(month0, last + 2))
    else:
        month0, starts = 0, np.zeros(0, np.int64)
    k0 = len(columns) + 2
    if rules.noise_rules:
        code = np.zeros(n, np.int8) if scratch is None else scratch.buffer(k0 + 1, n, np.int8)
        dist = np.empty(n) if scratch is None else scratch.buffer(k0, n, np.float64)
        kept = np.empty(n, np.int64) if scratch is None else scratch.buffer(k0 + 2, n, np.int64)
        g_vid, g_mon, g_noise, g_interval, g_speed, g_acc = robust_kernel(
            sv, st, sx, sy, sp, speed_kmh is not None, sa, reason, dseg, cos, starts, robust_params(rules), dist,
            code, kept,
        )  # fmt: skip
        g_mon = g_mon + month0
    else:  # rule 7 off: the attribution reads neither
        dist, code = np.empty(0), np.empty(0, np.int8)
        g_vid = g_mon = np.zeros(0, np.int64)
        g_noise = g_interval = np.zeros(0)
        g_speed = g_acc = np.zeros(0, np.bool_)
    params = attribute_params(rules)
    cap, walk, gap_cap = max(64, n // 50), WALK_SCRATCH, 0
    while True:  # the kernel grows no array: it says when its outputs or the walk's scratch are too small
        o_vid, o_mon = np.empty(cap, np.int64), np.empty(cap, np.int64)
        o_unit, o_val = np.empty(cap, np.int32), np.empty((cap, N_VALUES), np.float64)
        out = attribute_kernel(  # type: ignore[call-arg]
            sv, st, sx, sy, reason, dseg, dist, code, sl, sf, so, sa, starts, month0, params, len(REASONS),
            o_vid, o_mon, o_unit, o_val, np.empty(walk), np.empty(walk, np.int32), np.empty(walk),
            *locator.kernel_args, gap_cap,
        )  # fmt: skip
        rows, stats, month_reasons, tallies, n_gaps, *gap_arrays, bin_n, bin_km = out
        if rows == -1:
            cap *= 4
        elif rows < -1:  # -2 - the crossings of a segment
            walk = max(2 * walk, -rows)
        elif n_gaps > gap_arrays[0].shape[0]:
            gap_cap = int(n_gaps)
        else:
            break
    o_vid, o_mon, o_unit, o_val = o_vid[:rows], o_mon[:rows], o_unit[:rows], o_val[:rows]
    by_month = {month0 + m: month_reasons[m] for m in np.flatnonzero(month_reasons.any(axis=1)).tolist()}
    if tallies[1]:  # rows (never kept fixes) outside the kept fixes' months
        outside = np.flatnonzero((st < starts[0]) | (st >= starts[-1])) if starts.size else np.arange(n)
        pairs, count = np.unique(local_month(st[outside]) * len(REASONS) + reason[outside], return_counts=True)
        for pair, c in zip(pairs.tolist(), count.tolist(), strict=True):
            m, r = divmod(pair, len(REASONS))
            by_month.setdefault(m, np.zeros(len(REASONS), np.int64))[r] += c
    ok = (o_val[:, 0] > 0) | (o_val[:, V_IDLE_ACC] > 0) | (o_val[:, V_IDLE_STOP] > 0)  # driven or idled
    o_vid, o_mon, o_unit, o_val = o_vid[ok], o_mon[ok], o_unit[ok], o_val[ok]
    if g_vid.size:
        at = _estimate_rows(g_vid, g_mon, o_vid, o_mon)
        noise_col, interval_col = g_noise[at], g_interval[at]
    else:  # rule 7 off: not estimated
        noise_col = interval_col = np.full(o_vid.size, np.nan)
    uniq_months, month_idx = np.unique(o_mon, return_inverse=True)
    month_text = pa.DictionaryArray.from_arrays(
        pa.array(month_idx.astype(np.int32)), pa.array(month_labels(uniq_months), pa.string())
    ).cast(pa.string())
    activity = pa.table(
        {
            "vehicle_id": pa.array(o_vid),
            "month": month_text,
            "city_adcode": pa.array(locator.adcodes_of_units(o_unit)),
            **{name: pa.array(o_val[:, c]) for c, name in enumerate(VALUE_COLUMNS)},
            "gps_noise_m": pa.array(noise_col, from_pandas=True),  # null: not estimated (rule 7 off)
            "fix_interval_s": pa.array(interval_col, from_pandas=True),  # null: never moving, or not estimated
            **_speed_and_idle(o_vid, o_mon, o_val, rules.use_acc),
        }
    ).sort_by([("vehicle_id", "ascending"), ("month", "ascending"), ("city_adcode", "ascending")])
    unobserved_km, bridged_km, unobserved_segments = float(stats[0]), float(stats[1]), int(stats[2])
    gaps = _gap_table(locator, int(n_gaps), *gap_arrays)
    gap_bins = _gap_bin_table(month0, bin_n, bin_km)
    if order is not None:
        reason_in_input_order = np.empty(n, np.int8)
        reason_in_input_order[order] = reason
    else:
        reason_in_input_order = reason if pos is None else reason[pos]
    totals = np.sum(list(by_month.values()), axis=0) if by_month else np.zeros(len(REASONS), np.int64)
    counts = {name: int(totals[code]) for code, name in enumerate(REASONS)}
    counts["out_of_order"] = int(out_of_order)
    counts["unobserved_segments"] = unobserved_segments
    counts["outside_mainland"] = int(tallies[0])  # kept fixes in no mainland unit
    counts["implausible_speed_segments"] = int(stats[4])
    estimates = pa.table(
        {
            "vehicle_id": pa.array(g_vid),
            "month": _month_text(g_mon) if g_mon.size else pa.array([], pa.string()),
            "gps_noise_m": pa.array(g_noise),
            "fix_interval_s": pa.array(g_interval, from_pandas=True),
            "speed_channel_used": pa.array(g_speed),
            "acc_used": pa.array(g_acc),
        }
    )
    return KernelResult(
        reason_in_input_order, counts, activity, unobserved_km, bridged_km, by_month, gaps, gap_bins, float(stats[3]),
        estimates,
    )  # fmt: skip


def _speed_and_idle(
    vid: npt.NDArray[np.int64], mon: npt.NDArray[np.int64], val: npt.NDArray[np.float64], use_acc: bool
) -> dict[str, pa.Array]:
    """``idle_h``, ``driving_h`` and the speed-bin lists of the rows (contiguous by vehicle-month): idle time by
    the ignition bit where it is consistent with the positions over the vehicle-month (as rule 7 tests it),
    else by the stop-length rule."""
    n = vid.size
    new = np.ones(n, np.bool_)
    new[1:] = (vid[1:] != vid[:-1]) | (mon[1:] != mon[:-1])
    group = np.cumsum(new) - 1
    sums = [np.bincount(group, weights=val[:, c]) for c in (V_ACC_OFF, V_ACC_ON, V_ACC_OFF_KM, 0)]
    off, on, off_km, km = sums
    acc_ok = use_acc & (off >= MIN_PAIRS) & (on >= MIN_PAIRS) & (off_km <= ACC_MOVED_SHARE * km)
    idle_s = np.where(acc_ok[group], val[:, V_IDLE_ACC], val[:, V_IDLE_STOP]) if n else np.zeros(0)
    secs = np.ascontiguousarray(val[:, V_SECS : V_SECS + N_SPEED_BINS])
    speed_km = np.ascontiguousarray(val[:, V_SPEED_KM : V_SPEED_KM + N_LOADS * N_SPEED_BINS])
    return {
        "idle_h": pa.array(idle_s / 3600.0),
        "driving_h": pa.array(secs.sum(axis=1) / 3600.0),
        "speed_bin_km": pa.FixedSizeListArray.from_arrays(pa.array(speed_km.ravel()), N_LOADS * N_SPEED_BINS),
        "speed_bin_h": pa.FixedSizeListArray.from_arrays(pa.array(secs.ravel() / 3600.0), N_SPEED_BINS),
    }


def _estimate_rows(
    g_vid: npt.NDArray[np.int64], g_mon: npt.NDArray[np.int64], vid: npt.NDArray[np.int64], mon: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """For each (vehicle, month) of ``vid``, ``mon``, its row in the vehicle-month estimates (sorted by
    vehicle, then month; every activity row's vehicle-month has a kept fix, hence a row)."""
    at = np.searchsorted(g_vid, vid)
    if g_vid.size == 0:
        return at
    while True:  # a vehicle has few months: step to the month
        ahead = (at + 1 < g_vid.size) & (g_mon[at] < mon)
        ahead[ahead] &= g_vid[at[ahead] + 1] == vid[ahead]
        if not ahead.any():
            return at
        at[ahead] += 1


_NO_GAPS, _NO_GAP_BINS = GAP_SCHEMA.empty_table(), GAP_BIN_SCHEMA.empty_table()


def _month_text(months: npt.NDArray[np.int64]) -> pa.Array:
    """Month numbers as 'YYYY-MM' strings (one label per distinct month)."""
    lo, hi = int(months.min()), int(months.max())  # the months of one run of the kernel: a short range
    return pa.array(np.array(month_labels(np.arange(lo, hi + 1)), dtype=object)[months - lo], pa.string())


def _gap_table(
    locator: CityLocator,
    n_gaps: int,
    g_vid: npt.NDArray[np.int64],
    g_mon: npt.NDArray[np.int64],
    g_from: npt.NDArray[np.int32],
    g_to: npt.NDArray[np.int32],
    g_val: npt.NDArray[np.float64],
) -> pa.Table:
    """The unobserved segments listed by the attribution, summed by (vehicle, month, from city, to city)
    (:data:`GAP_SCHEMA`, in that order)."""
    if n_gaps == 0:
        return _NO_GAPS
    vid, mon = g_vid[:n_gaps], g_mon[:n_gaps]
    frm, to = locator.adcodes_of_units(g_from[:n_gaps]), locator.adcodes_of_units(g_to[:n_gaps])
    order = np.lexsort((to, frm, mon, vid))
    vid, mon, frm, to, val = vid[order], mon[order], frm[order], to[order], g_val[:n_gaps][order]
    new = np.ones(n_gaps, np.bool_)
    new[1:] = (vid[1:] != vid[:-1]) | (mon[1:] != mon[:-1]) | (frm[1:] != frm[:-1]) | (to[1:] != to[:-1])
    first = np.flatnonzero(new)
    odometer = val[:, 2]
    has_odometer = ~np.isnan(odometer)
    columns = [
        pa.array(vid[first]),
        _month_text(mon[first]),
        pa.array(frm[first]),
        pa.array(to[first]),
        pa.array(np.diff(np.append(first, n_gaps))),
        pa.array(np.add.reduceat(val[:, 0], first)),
        pa.array(np.add.reduceat(val[:, 1], first) / 3600.0),
        pa.array(np.add.reduceat(has_odometer.astype(np.int64), first)),
        pa.array(np.add.reduceat(np.where(has_odometer, odometer, 0.0), first)),
    ]
    return pa.Table.from_arrays(columns, schema=GAP_SCHEMA)


def _gap_bin_table(month0: int, bin_n: npt.NDArray[np.int64], bin_km: npt.NDArray[np.float64]) -> pa.Table:
    """Segments by month of their first fix and duration bin: one row per (month, bin) with any segment
    (:data:`GAP_BIN_SCHEMA`)."""
    m, k = np.nonzero(bin_n.sum(axis=2))
    if m.size == 0:
        return _NO_GAP_BINS
    columns = [_month_text(month0 + m), pa.array(np.array(GAP_BIN_LABELS, dtype=object)[k], pa.string())]
    for c in range(3):
        columns += [pa.array(bin_n[m, k, c]), pa.array(bin_km[m, k, c])]
    return pa.Table.from_arrays(columns, schema=GAP_BIN_SCHEMA)


def _speeds(speed_kmh: npt.ArrayLike | None, n: int) -> npt.NDArray[np.floating[Any]]:
    """Reported speeds as float32 or float64 (NaN stays NaN: the rules only ask whether a speed is above 0)."""
    if speed_kmh is None:
        return np.zeros(n, np.float32)
    v = np.asarray(speed_kmh)
    return v if v.dtype in (np.float32, np.float64) else v.astype(np.float64)


__all__ = ["Scratch", "placing_buffers", "run_kernel", "time_ordered_places"]
