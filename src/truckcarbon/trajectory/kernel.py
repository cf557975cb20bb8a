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
   its distance is not attributed and is reported as unobserved.

Attribution: each kept segment is split at local (Asia/Shanghai) month
boundaries by time and at city borders exactly (:meth:`CityLocator.split_segments`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.months import local_month, month_labels, month_start_utc_s
from truckcarbon.geo._kernels import haversine_km, haversine_many
from truckcarbon.geo.locator import CityLocator

KEPT, DUPLICATE, INVALID, STUCK, JUMP = 0, 1, 2, 3, 4
REASONS = ("kept", "duplicate", "invalid", "stuck", "jump")
SPIKE_KM = 1.5


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


@nb.njit(cache=True)
def _flag(vid, t, lon, lat, speed, reason, max_kmh, reanchor_after):  # type: ignore[no-untyped-def]
    """Sequential rules 3-5 on fixes sorted by (vehicle, time); writes ``reason`` in place."""
    n = vid.shape[0]
    last = -1  # last kept fix of the current vehicle
    run_start = -1  # first set-aside fix of the current run of jumps
    prev_jump = -1  # last set-aside fix
    run_len = 0
    for i in range(n):
        if reason[i] != 0:
            continue
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
        d = haversine_km(lon[last], lat[last], x, y)
        if run_len == 0 and d > SPIKE_KM:
            # An out-and-back spike: far from both neighbours, which are close to each other.
            j = i + 1
            while j < n and vid[j] == vid[i] and (reason[j] != 0 or (lon[j] == 0.0 and lat[j] == 0.0)):
                j += 1
            if j < n and vid[j] == vid[i]:
                d_ij = haversine_km(x, y, lon[j], lat[j])
                d_lj = haversine_km(lon[last], lat[last], lon[j], lat[j])
                if d_ij > SPIKE_KM and d_lj < 0.25 * min(d, d_ij):
                    reason[i] = 4
                    continue
        if d > 1.0 and (dt_h <= 0.0 or d / dt_h > max_kmh):
            consistent = False
            if run_len > 0:
                dtp = (t[i] - t[prev_jump]) / 3600.0
                dp = haversine_km(lon[prev_jump], lat[prev_jump], x, y)
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
                last = i
                run_len = 0
            continue
        last = i
        run_len = 0


@dataclass(frozen=True)
class KernelResult:
    """Per-row reasons, counts and the kilometres per (vehicle, month, city)."""

    reason: npt.NDArray[np.int8]  # in the input's row order
    counts: dict[str, int]
    activity: pa.Table  # vehicle_id, month, city_adcode, distance_km
    unobserved_km: float
    bridged_km: float


def run_kernel(
    vehicle_id: npt.ArrayLike,
    t_s: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    locator: CityLocator,
    speed_kmh: npt.ArrayLike | None = None,
    rules: CleaningRules = CleaningRules(),
) -> KernelResult:
    """Clean fixes of any number of vehicles (any order) and attribute their kilometres."""
    vid = np.asarray(vehicle_id, dtype=np.int64)
    t = np.asarray(t_s, dtype=np.int64)
    x_in = np.asarray(lon, dtype=np.float64)
    y_in = np.asarray(lat, dtype=np.float64)
    v_in = np.zeros(vid.size) if speed_kmh is None else np.nan_to_num(np.asarray(speed_kmh, dtype=np.float64))
    n = vid.size
    order = np.lexsort((t, vid))
    same_vehicle = vid[1:] == vid[:-1]
    out_of_order = int(np.sum(same_vehicle & (t[1:] < t[:-1])))
    sv, st, sx, sy, sp = vid[order], t[order], x_in[order], y_in[order], v_in[order]
    reason = np.zeros(n, np.int8)
    if n > 1:
        dup = (sv[1:] == sv[:-1]) & (st[1:] == st[:-1])
        reason[1:][dup] = DUPLICATE
    _flag(sv, st, sx, sy, sp, reason, rules.max_speed_kmh, rules.reanchor_after)

    keep = np.flatnonzero(reason == KEPT)
    kv, kt, kx, ky = sv[keep], st[keep], sx[keep], sy[keep]
    pair = np.flatnonzero(kv[1:] == kv[:-1])
    a, b = pair, pair + 1
    d_km = haversine_many(kx[a], ky[a], kx[b], ky[b]) if pair.size else np.empty(0)
    dt_s = (kt[b] - kt[a]).astype(np.float64)
    speed = np.where(dt_s > 0, d_km / np.maximum(dt_s, 1e-9) * 3600.0, np.inf)
    factor = np.ones(pair.size)
    factor[(d_km * 1000.0 < rules.drift_m) & (speed < rules.drift_kmh)] = 0.0
    gap = dt_s > rules.gap_s
    # Implausible segments (a re-anchored track, a gap too long to bridge) are not attributed.
    unobserved = (gap & (speed > rules.max_bridge_kmh)) | ((speed > rules.max_speed_kmh) & (d_km > 1.0))
    factor[gap & ~unobserved] *= rules.gap_circuity
    factor[unobserved] = 0.0
    unobserved_km = float(d_km[unobserved].sum())
    bridged_km = float((d_km * (factor - 1.0))[gap & ~unobserved].sum())

    # Split at month boundaries by time, then at borders.
    m0 = local_month(kt[a])
    m1 = local_month(kt[b])
    cross = np.flatnonzero((m1 > m0) & (factor > 0))
    seg_ax, seg_ay, seg_bx, seg_by = kx[a].copy(), ky[a].copy(), kx[b].copy(), ky[b].copy()
    seg_month, seg_vid, seg_factor = m0.copy(), kv[a].copy(), factor.copy()
    extra = []
    for s in cross.tolist():  # rare: a segment spanning a month boundary (possibly several)
        t0, t1 = float(kt[a][s]), float(kt[b][s])
        bounds = month_start_utc_s(np.arange(m0[s] + 1, m1[s] + 1))
        fr = np.concatenate([[0.0], (bounds - t0) / (t1 - t0), [1.0]])
        px = kx[a][s] + (kx[b][s] - kx[a][s]) * fr
        py = ky[a][s] + (ky[b][s] - ky[a][s]) * fr
        seg_bx[s], seg_by[s] = px[1], py[1]
        for k in range(1, fr.size - 1):
            extra.append((px[k], py[k], px[k + 1], py[k + 1], m0[s] + k, kv[a][s], factor[s]))
    if extra:
        e = np.array(extra)
        seg_ax = np.concatenate([seg_ax, e[:, 0]])
        seg_ay = np.concatenate([seg_ay, e[:, 1]])
        seg_bx = np.concatenate([seg_bx, e[:, 2]])
        seg_by = np.concatenate([seg_by, e[:, 3]])
        seg_month = np.concatenate([seg_month, e[:, 4].astype(np.int64)])
        seg_vid = np.concatenate([seg_vid, e[:, 5].astype(np.int64)])
        seg_factor = np.concatenate([seg_factor, e[:, 6]])
    live = np.flatnonzero(seg_factor > 0)
    split = locator.split_segments(seg_ax[live], seg_ay[live], seg_bx[live], seg_by[live])
    src = live[split.segment]
    km = split.distance_km * seg_factor[src]
    ok = np.isfinite(km) & (km > 0)
    table = pa.table(
        {
            "vehicle_id": pa.array(seg_vid[src][ok]),
            "month_n": pa.array(seg_month[src][ok]),
            "city_adcode": pa.array(split.city_adcode[ok]),
            "distance_km": pa.array(km[ok]),
        }
    )
    agg = table.group_by(["vehicle_id", "month_n", "city_adcode"]).aggregate([("distance_km", "sum")])
    months = agg["month_n"].to_numpy()
    activity = pa.table(
        {
            "vehicle_id": agg["vehicle_id"],
            "month": pa.array(month_labels(months)),
            "city_adcode": agg["city_adcode"],
            "distance_km": agg["distance_km_sum"],
        }
    ).sort_by([("vehicle_id", "ascending"), ("month", "ascending"), ("city_adcode", "ascending")])
    reason_in_input_order = np.empty(n, np.int8)
    reason_in_input_order[order] = reason
    counts = {name: int((reason == code).sum()) for code, name in enumerate(REASONS)}
    counts["out_of_order"] = out_of_order
    counts["unobserved_segments"] = int(unobserved.sum())
    return KernelResult(reason_in_input_order, counts, activity, unobserved_km, bridged_km)


__all__ = ["CleaningRules", "KernelResult", "run_kernel"]
