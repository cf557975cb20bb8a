"""Distance under receiver noise and sparse fixes: per-vehicle noise level, stops, spikes, speed channel.

One compiled pass per vehicle (rows sorted by (vehicle, time), after the
cleaning pass of :mod:`truckcarbon.trajectory._flag` has set ``reason``) in
three sweeps over its kept fixes:

A. **Estimates.** The pair scale ``s`` of the receiver's noise (the Rayleigh
   scale of the displacement between two independent fixes of a standing
   truck: the median of such displacements / 1.1774) from runs of standing
   pairs (both speeds below ``stop_kmh`` when the speed channel is read, else
   at least ``STAND_PAIR_S`` apart and within ``STAND_PAIR_M``): each fix
   against the run's last fix at least ``WANDER_S`` before it (a parked
   receiver's error wanders slowly: consecutive fixes are closer than
   independent ones, and the dead band must hold the whole wander); fewer than
   ``MIN_PAIRS`` such pairs: ``default_noise_m``. The fix interval: the median
   interval of moving segments up to 10 min. Whether the speed channel is
   consistent with the positions: the speeds integrated over segments up to
   5 min long against their straight lines (at least ``MIN_PAIRS`` * 2.5 of
   them, ratio within ``SPEED_RATIO``); a channel that is constant, zero, in
   the wrong unit or stale is not used. Whether the ignition bit (ACC) is
   consistent: a truck does not drive with the ignition off, so the segments
   with the ignition off at both ends (at least ``MIN_PAIRS`` of them, and as
   many with it on) that span more than ``ACC_MOVED_KM`` may hold at most
   ``ACC_MOVED_SHARE`` of the vehicle-month's straight-line kilometres; else (a
   terminal whose bit is stuck, inverted or not wired) the bit is not used.
B. **Small spikes.** A fix farther than the vehicle's band radius ``R`` (below)
   but within ``MULTIPATH_KM`` of both its neighbours, which are close to each
   other (within a quarter of the shorter step), is a multipath outlier: set
   aside as a jump. (The cleaning pass takes spikes beyond 1.5 km; between the
   two, an out-and-back is a truck turning round.)
C. **Distance of each segment.**
   - *Ignition off* (when the bit is consistent): a segment with the ignition
     off at both ends accrues nothing, however far the fixes wander (a parked
     truck's receiver, multipath included); the anchor stays.
   - *Stops (a dead band).* The band's radius is ``R = max(band_floor_m,
     band_sigmas * s)``. A fix within ``R`` of the anchor (the last fix that
     left the band) accrues nothing (a standing truck's wander, however long it
     stands); the fix that leaves it accrues the straight line from the anchor
     and becomes the anchor. A crawling truck leaves the band again and again
     and keeps its kilometres; a standing one accrues none.
   - *Speed channel* (when consistent): a segment with a speed at or above
     ``stop_kmh`` at both ends accrues the speeds integrated over its time
     (trapezoid): the curves between sparse fixes are in it. (With a standing
     end the truck may have stopped anywhere in the interval: a terminal
     reports every 15-30 min once the ignition is off, so such a segment takes
     its geometry.) The speeds are
     first scaled to the positions: by the ratio of straight lines to integrated
     speeds over the vehicle's steady driving (both ends at least ``REF_KMH``,
     up to 2 min: there the chord is the path), which removes a speedometer's
     calibration error. Its
     geometry (the straight line from the anchor) places it in cities. Over an
     interval longer than ``STOP_GAP_S`` the truck may have stopped between two
     moving fixes (a red light, a stop-and-go queue), and speeds read while it
     moves overstate its mean speed: such a segment takes its positions, as
     below (capping the integral at the longest the path can be still left
     congested city-months 3-5% high at 120 s).
   - *Positions only:* the straight line from the anchor; with ``turn_correction``, less the noise's
     expected excess ``s^2 (1 - exp(-dt / NOISE_CORR_S)) / (2 L)`` (the length
     of a noisy chord of length ``L`` exceeds it by its pair variance over 2 L
     on average; a moving receiver's error is correlated over tens of seconds,
     so fixes ``dt`` apart differ by less than independent ones), times the arc-over-chord ratio
     ``1 + theta^2 / 24`` of a circular arc turning by ``theta``, the mean of
     the turning at its two ends (less the turning that noise alone makes),
     when both neighbouring steps leave the band; and for segments up to 10 min,
     divided by ``1 - g * chord_loss``: the bends shorter than the span, by its
     length and implied speed (:func:`chord_loss`), in proportion ``g`` to the
     turning seen (``theta^2 / TURN_REF_RAD^2``, at most 1): on a straight road
     the chord is the path, and clean straight traces stay exact.

Outputs per row: the segment's distance (km) and its code (0: from the fix
before, 1: inside the band, 2: from the anchor); per vehicle-month: the noise (m,
per axis: ``s / sqrt 2``), the fix interval (s) and whether the speed channel
and the ignition bit were used.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from truckcarbon.geo.distance import step_km_cos

STAND_PAIR_S = 120.0
WANDER_S = 1800.0  # standing fixes this far apart have wandered independently of each other
STAND_PAIR_M = 200.0
MIN_PAIRS = 8
SPEED_RATIO = (0.85, 1.6)
REF_KMH = 40.0  # segments driven at least this fast at both ends calibrate the speed channel's scale
TURN_REF_RAD = 0.2  # turning at a segment's ends from which its unseen bends count in full
MULTIPATH_KM = 0.4  # multipath outliers are tens to hundreds of metres off (a longer out-and-back: a U-turn)
ACC_MOVED_KM = 0.2  # an ignition-off segment longer than this moved (beyond a parked receiver's wander)
ACC_MOVED_SHARE = 0.05  # a bit whose off segments hold more of the km than this is not used
STOP_GAP_S = 45.0  # an interval long enough to hold a stop at a light between two moving fixes
NOISE_CORR_S = 20.0  # a moving receiver's error correlates over tens of seconds (multipath, atmosphere)
RAYLEIGH_MEDIAN = 1.1774100225154747  # sqrt(2 ln 2)
# params: band_floor_m, band_sigmas, stop_kmh, default_noise_m, use_speed, turn_correction, use_acc
N_PARAMS = 7
CODE_STEP, CODE_BAND, CODE_ANCHOR = 0, 1, 2


@nb.njit(cache=True, inline="always")
def _valid(v):  # type: ignore[no-untyped-def]
    return v == v  # not NaN


@nb.njit(cache=True, inline="always")
def _median_bin(hist, total):  # type: ignore[no-untyped-def]
    """The centre of the bin holding the median of a histogram of unit bins."""
    half = 0.5 * total
    acc = 0.0
    for k in range(hist.shape[0]):
        acc += hist[k]
        if acc >= half:
            return k + 0.5
    return hist.shape[0] - 0.5


# The chord loss between sparse fixes not seen in their turning: curves and bends shorter than the span.
# By implied speed (km/h; a proxy of the road: urban, arterial, expressway), its ceiling and length scale
# (km): loss = ceiling * (1 - exp(-chord / scale)). Urban: 3%, 5% and 7% at spans of 170, 330 and 670 m,
# as measured on dense urban truck traces subsampled at 30, 60 and 120 s; arterial and expressway: the
# road world's gentler curvature (truckcarbon.sim.road). Uncertainty: half the correction (docs/accuracy.md).
LOSS_KMH = np.array([23.0, 39.0, 75.0])  # mean speeds of urban, arterial, expressway driving, stops included
LOSS_CEILING = np.array([0.08, 0.025, 0.006])
LOSS_SCALE_KM = np.array([0.30, 1.0, 2.5])


@nb.njit(cache=True, inline="always")
def chord_loss(chord_km, kmh):  # type: ignore[no-untyped-def]
    """The expected share of a segment's path its chord misses (``LOSS_*``), linear in speed between
    the table's speeds."""
    if kmh <= LOSS_KMH[0]:
        c = LOSS_CEILING[0]
        s = LOSS_SCALE_KM[0]
    elif kmh >= LOSS_KMH[-1]:
        c = LOSS_CEILING[-1]
        s = LOSS_SCALE_KM[-1]
    else:
        k = 0
        while kmh > LOSS_KMH[k + 1]:
            k += 1
        f = (kmh - LOSS_KMH[k]) / (LOSS_KMH[k + 1] - LOSS_KMH[k])
        c = LOSS_CEILING[k] + f * (LOSS_CEILING[k + 1] - LOSS_CEILING[k])
        s = LOSS_SCALE_KM[k] + f * (LOSS_SCALE_KM[k + 1] - LOSS_SCALE_KM[k])
    return c * (1.0 - math.exp(-chord_km / s))


@nb.njit(cache=True, inline="always")
def _turn2(x, y, cos, p, a, b, d_pa, d_ab, s_km):  # type: ignore[no-untyped-def]
    """Squared turning angle at ``a`` between the steps p -> a and a -> b, less what noise of pair scale
    ``s_km`` makes on average (0 when below)."""
    c = cos[a]
    ux = (x[a] - x[p]) * c
    uy = y[a] - y[p]
    wx = (x[b] - x[a]) * c
    wy = y[b] - y[a]
    nn = (ux * ux + uy * uy) * (wx * wx + wy * wy)
    if nn <= 0.0:
        return 0.0
    ct = (ux * wx + uy * wy) / math.sqrt(nn)
    th2 = 2.0 * (1.0 - ct) * (1.0 + (1.0 - ct) / 6.0)  # theta^2 from its cosine (to theta^4)
    sig2 = 0.5 * s_km * s_km  # per-axis variance of one fix
    i1 = 1.0 / d_pa
    i2 = 1.0 / d_ab
    noise = sig2 * ((i1 + i2) * (i1 + i2) + i1 * i1 + i2 * i2)
    return max(th2 - noise, 0.0)


@nb.njit(cache=True)
def _estimate(t, x, y, speed, has_speed, use_speed, acc, dseg, cos, kept, j0, j1, stop_kmh, hist, hist_dt):  # type: ignore[no-untyped-def]
    """Sweep A over the segments closed by kept fixes ``kept[j0:j1]`` (one vehicle-month; ``j0 >= 1`` or the
    vehicle's first fix, which closes none). Returns (pair scale s in km or -1 when too few standing pairs,
    fix interval s or NaN, speed consistent, speed scale, ignition bit consistent; the speed checks only
    with ``use_speed``)."""
    hist[:] = 0.0
    hist_dt[:] = 0.0
    n_stand = 0
    n_move = 0
    n_cons = 0
    n_ref = 0
    sum_v = 0.0
    sum_d = 0.0
    ref_v = 0.0
    ref_d = 0.0
    n_off = 0  # segments with the ignition off at both ends, their km beyond a wander; with it on, and all km
    n_on = 0
    off_km = 0.0
    all_km = 0.0
    run0 = -1  # kept position of the current standing run's reference fix
    last_dt = -1  # the interval of the run of moving segments not yet in hist_dt (regular fixes: one bin)
    dt_run = 0
    for j in range(max(j0, 1), j1):
        a = kept[j - 1]
        b = kept[j]
        d = dseg[b]
        if not _valid(d) or d < 0.0:
            run0 = -1
            continue
        dt = float(t[b] - t[a])
        all_km += d
        if acc[a] == 0 and acc[b] == 0:
            n_off += 1
            if d > ACC_MOVED_KM:
                off_km += d
        elif acc[a] == 1 or acc[b] == 1:
            n_on += 1
        va = speed[a]
        vb = speed[b]
        sp = has_speed and _valid(va) and _valid(vb)
        d_m = d * 1000.0
        if d_m < STAND_PAIR_M and ((sp and va < stop_kmh and vb < stop_kmh) or (not sp and dt >= STAND_PAIR_S)):
            if run0 < 0:
                run0 = j - 1
            # Against the run's last fix at least WANDER_S earlier (independent of it; an outlier among
            # them is the reference of one or two fixes only).
            while run0 + 1 < j and t[b] - t[kept[run0 + 1]] >= WANDER_S:
                run0 += 1
            r = kept[run0]
            if t[b] - t[r] >= WANDER_S:
                d0 = step_km_cos(x[r], y[r], x[b], y[b], cos[r], cos[b]) * 1000.0
                if d0 < STAND_PAIR_M:
                    hist[int(d0)] += 1.0
                    n_stand += 1
        else:
            run0 = -1
            if (d_m >= STAND_PAIR_M or (sp and max(va, vb) >= stop_kmh)) and dt <= 600.0:
                idt = int(dt)
                if idt != last_dt:
                    if dt_run > 0:
                        hist_dt[last_dt] += dt_run
                    last_dt = idt
                    dt_run = 0
                dt_run += 1
                n_move += 1
        if use_speed and sp and dt <= 300.0 and d_m > 50.0:
            v_km = (va + vb) * dt * (0.5 / 3600.0)
            sum_v += v_km
            sum_d += d
            n_cons += 1
            if min(va, vb) >= REF_KMH and dt <= 120.0:  # steady driving: the chord is the path
                ref_v += v_km
                ref_d += d
                n_ref += 1
    if dt_run > 0:
        hist_dt[last_dt] += dt_run
    s = _median_bin(hist, n_stand) / RAYLEIGH_MEDIAN / 1000.0 if n_stand >= MIN_PAIRS else -1.0
    interval = _median_bin(hist_dt, n_move) - 0.5 if n_move > 0 else np.nan
    ok = n_cons >= int(2.5 * MIN_PAIRS) and SPEED_RATIO[0] * sum_d <= sum_v <= SPEED_RATIO[1] * sum_d
    scale = ref_d / ref_v if n_ref >= MIN_PAIRS and ref_v > 0.0 else 1.0
    acc_ok = n_off >= MIN_PAIRS and n_on >= MIN_PAIRS and off_km <= ACC_MOVED_SHARE * all_km
    return s, interval, ok, min(max(scale, SPEED_RATIO[0]), 1.0 / SPEED_RATIO[0]), acc_ok


@nb.njit(cache=True, nogil=True)
def robust_kernel(vid, t, x, y, speed, has_speed, acc, reason, dseg, cos, starts, params, dist, code, kept):  # type: ignore[no-untyped-def]
    """The module's sweeps over every vehicle; writes ``dist``, ``code`` (per row) and may set ``reason``
    to 4 (small spikes, updating ``dseg`` of the fix after). ``acc``: the ignition per row (1 on, 0 off,
    -1 not reported). ``kept``: int64 scratch of n places;
    ``starts``: the UTC starts of the months spanning every kept fix and the end of the last.

    The estimates are made per vehicle-month (the month of a segment's last fix), and the dead band's
    anchor restarts at each month's first fix, so a month's kilometres do not depend on the months run
    with it. Returns per vehicle-month (in row order): key, month index in ``starts``, noise (m), fix
    interval (s), speed channel used, ignition bit used.
    """
    band_floor = params[0] / 1000.0
    band_k = params[1]
    stop_kmh = params[2]
    default_s = params[3] * math.sqrt(2.0) / 1000.0
    use_speed = params[4] > 0.0 and has_speed
    turn_on = params[5] > 0.0
    use_acc = params[6] > 0.0
    n = vid.shape[0]
    n_months = starts.shape[0] - 1
    hist = np.zeros(200, np.float64)
    hist_dt = np.zeros(601, np.float64)
    runs = 0  # vehicle runs (an upper bound on vehicle-months is runs * months)
    last = -1
    for i in range(n):
        if reason[i] != 5:
            if last < 0 or vid[i] != vid[last]:
                runs += 1
            last = i
    cap = runs * max(n_months, 1)
    out_v = np.empty(cap, np.int64)
    out_m = np.empty(cap, np.int64)
    out_noise = np.empty(cap, np.float64)
    out_dt = np.empty(cap, np.float64)
    out_speed = np.empty(cap, np.bool_)
    out_acc = np.empty(cap, np.bool_)
    g_s = np.empty(cap, np.float64)  # per vehicle-month: pair scale, band radius, noise measured, speed scale
    g_r = np.empty(cap, np.float64)
    g_meas = np.empty(cap, np.bool_)
    g_scale = np.empty(cap, np.float64)
    g_end = np.empty(cap, np.int64)  # the kept position after the vehicle-month's last
    nv = 0
    lo = 0
    mc = 0
    while lo < n:
        if reason[lo] == 5:  # set aside before the kernel: not a fix, not a vehicle's
            lo += 1
            continue
        hi = lo
        while hi < n and (reason[hi] == 5 or vid[hi] == vid[lo]):
            hi += 1
        m = 0
        for i in range(lo, hi):
            if reason[i] == 0 and n_months > 0 and starts[0] <= t[i] < starts[n_months]:
                kept[m] = i
                m += 1
        # A. estimates, per vehicle-month
        first_g = nv
        j0 = 0
        while j0 < m:
            tb = t[kept[j0]]
            if tb < starts[mc]:
                mc = np.searchsorted(starts, tb, side="right") - 1
            while starts[mc + 1] <= tb:
                mc += 1
            j1 = j0
            while j1 < m and t[kept[j1]] < starts[mc + 1]:
                j1 += 1
            s, interval, ok, scale, acc_ok = _estimate(
                t, x, y, speed, has_speed, use_speed, acc, dseg, cos, kept, j0, j1, stop_kmh, hist, hist_dt
            )
            measured = s >= 0.0  # else the default noise sizes the band, and nothing is debiased
            if not measured:
                s = default_s
            out_v[nv] = vid[lo]
            out_m[nv] = mc
            out_noise[nv] = s / math.sqrt(2.0) * 1000.0
            out_dt[nv] = interval
            out_speed[nv] = use_speed and ok
            out_acc[nv] = use_acc and acc_ok
            g_s[nv] = s
            g_r[nv] = max(band_floor, band_k * s)
            g_meas[nv] = measured
            g_scale[nv] = scale
            g_end[nv] = j1
            nv += 1
            j0 = j1
        # B. small spikes (the radius of the vehicle-month of the fix in question)
        g = first_g
        q = 0
        if m > 0:
            q = 1
        for j in range(1, m):
            while g_end[g] <= j:
                g += 1
            b = kept[j]
            a = kept[q - 1]
            if j + 1 < m:
                c = kept[j + 1]
                d_ab = dseg[b]
                d_bc = dseg[c]
                r_band = g_r[g]
                if (
                    d_ab > r_band and d_bc > r_band and d_ab < MULTIPATH_KM and d_bc < MULTIPATH_KM
                    and (x[b] - x[a]) * (x[c] - x[b]) * cos[b] * cos[b] + (y[b] - y[a]) * (y[c] - y[b]) < 0.0
                ):  # fmt: skip
                    d_ac = step_km_cos(x[a], y[a], x[c], y[c], cos[a], cos[c])
                    if d_ac < 0.25 * min(d_ab, d_bc):
                        reason[b] = 4
                        dseg[c] = d_ac
                        continue
            kept[q] = b
            q += 1
        # C. distances
        g = first_g
        if m > 0:
            dist[kept[0]] = 0.0
            code[kept[0]] = CODE_STEP
        anchor = kept[0] if q > 0 else -1
        for j in range(1, q):
            a = kept[j - 1]
            b = kept[j]
            while t[b] >= starts[out_m[g] + 1]:
                g += 1
                anchor = a  # the band restarts with the month
            s = g_s[g]
            r_band = g_r[g]
            d_ab = dseg[b]
            dt = float(t[b] - t[a])
            if not _valid(d_ab) or d_ab < 0.0:  # not measured, or implausible motion (the attribution decides)
                dist[b] = d_ab
                code[b] = CODE_STEP
                anchor = b
                continue
            if out_acc[g] and acc[a] == 0 and acc[b] == 0:  # parked, ignition off: nothing accrues
                dist[b] = 0.0
                code[b] = CODE_BAND
                continue
            d_anc = d_ab if anchor == a else step_km_cos(x[anchor], y[anchor], x[b], y[b], cos[anchor], cos[b])
            c_code = CODE_STEP if anchor == a else CODE_ANCHOR
            va = speed[a]
            vb = speed[b]
            # Over an interval longer than STOP_GAP_S the truck may have stopped between two moving fixes (a
            # red light, a queue): speeds read only while it moves overstate its mean speed there (and the
            # lower of speeds and geometry is biased low), so such a segment takes its geometry, as without
            # the channel.
            sp = out_speed[g] and _valid(va) and _valid(vb) and dt <= STOP_GAP_S
            if sp and min(va, vb) >= stop_kmh and dt > 0.0:
                dv = 0.5 * (va + vb) * dt / 3600.0 * g_scale[g]
                if d_anc > 1.3 * dv + 2.0 * r_band:  # the positions moved much farther: a stale speed
                    dv = d_anc
                dist[b] = dv
                code[b] = c_code
                anchor = b
                continue
            if d_anc <= r_band:
                dist[b] = 0.0
                code[b] = CODE_BAND
                continue
            dl = d_anc
            if turn_on and g_meas[g] and dl > 2.0 * s:  # the noise's excess, shrunk by its correlation in time
                dl -= s * s * (1.0 - math.exp(-dt / NOISE_CORR_S)) / (2.0 * dl)
            if turn_on and not sp and c_code == CODE_STEP and j >= 2 and j + 1 < q and dt > 0.0 and dt <= 600.0:
                p = kept[j - 2]
                c = kept[j + 1]
                d_pa = dseg[a]
                d_bc = dseg[c]
                if d_pa > r_band and d_bc > r_band and code[a] == CODE_STEP and _valid(d_pa) and _valid(d_bc):
                    th_a = math.sqrt(_turn2(x, y, cos, p, a, b, d_pa, d_ab, s))
                    th_b = math.sqrt(_turn2(x, y, cos, a, b, c, d_ab, d_bc, s))
                    th2 = 0.25 * (th_a + th_b) * (th_a + th_b)
                    # The arc of the turning seen, and the bends shorter than the span, in proportion to the
                    # turning seen (a straight road shows none: its chord is its length).
                    gate = min(1.0, th2 / (TURN_REF_RAD * TURN_REF_RAD))
                    dl *= (1.0 + th2 / 24.0) / (1.0 - gate * chord_loss(dl, dl / dt * 3600.0))
            dist[b] = dl
            code[b] = c_code
            anchor = b
        lo = hi
    return out_v[:nv], out_m[:nv], out_noise[:nv], out_dt[:nv], out_speed[:nv], out_acc[:nv]
