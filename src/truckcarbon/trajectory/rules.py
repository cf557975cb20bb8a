"""The rules that clean a batch of fixes and attribute its kilometres, and their thresholds.

Rules, in order, each configurable in :class:`CleaningRules` and counted:

1. **Order**: fixes are sorted by (vehicle, time); rows that arrived out of order
   are counted (``out_of_order``), not dropped.
2. **Duplicates**: repeated (vehicle, time) rows keep the first (``duplicate``).
3. **Invalid**: NaN/infinite/out-of-range coordinates and (0, 0) fixes (``invalid``).
4. **Stuck receiver**: a fix repeating the previous position exactly while the
   reported speed is above zero (``stuck``). Without a speed, a frozen receiver
   shows as kept fixes repeating one position exactly and then a jump no truck
   makes in one interval (rule 5) but a plausible drive (``max_speed_kmh``) from
   the first of them: the repeats are ``stuck`` and the drive is the segment from
   the first repeat, attributed, not unobserved. A truck standing under a
   receiver that holds its position departs without such a jump: its repeats stay.
5. **Jumps**: a fix more than 1.5 km from both its neighbours while they are close
   to each other (an out-and-back spike, whatever the interval), or whose implied
   speed from the last kept fix exceeds ``max_speed_kmh``, is set aside (``jump``);
   when ``reanchor_after`` consecutive set-aside fixes agree with each other, the
   track re-anchors on them (the old anchor was the outlier), so runs of bad fixes
   cannot swallow a trip. Set-aside fixes agree when each is within
   ``max_speed_kmh`` of the one before (a receiver stuck on a wrong place), or
   when each step keeps the velocity of the step before it to within
   ``FAST_CHAIN_TOLERANCE`` of its length (a smooth track faster than
   ``max_speed_kmh``: a train or a plane, which rule 6 then excludes; scattered
   outliers do not line up so).
6. **Implausible motion**: a stretch of at least ``MIN_FAST_SEGMENTS`` consecutive
   kept segments, each faster than ``max_vehicle_kmh``, lasting at least
   ``sustained_s`` from its first fix to its last, is motion a heavy truck cannot
   make (a phone on a train or a plane: mixed-mode data). Its segments accrue no
   distance; they are counted (``implausible_speed_segments``, and
   ``implausible_speed_km``, the sum of their straight lines), not reported as
   unobserved. The default 130 km/h is 30% above the 100 km/h that China's
   expressways allow trucks (Road Traffic Safety Law Implementation Regulations,
   art. 78), a margin for position noise and a truck driving above the limit; a
   single spike stays a jump (rule 5) and a single fast segment a hole (rule 8).
   GPS noise on a truck at 80-100 km/h cannot keep every segment of a minute
   above 130 km/h: at 1 s fixes it swings single segments, whose neighbours
   then fall below.
7. **Drift**: a segment shorter than ``drift_m`` at an implied speed below
   ``drift_kmh`` accrues no distance (a parked truck's GPS noise). With
   ``noise_rules`` (:data:`NOISY_ROAD_RULES`), rule 7 is instead the robust
   distance of :mod:`truckcarbon.trajectory._robust`: per vehicle-month, the
   receiver's noise level and fix interval are estimated and multipath spikes
   below 400 m are set aside (``jump``); a fix within the noise's dead band
   (``band_floor_m``, ``band_sigmas`` times the noise's pair scale) of the last
   fix that left it accrues nothing (a standing truck), the one that leaves it
   accrues the straight line from there; a segment with the truck moving by the
   speed channel at both ends (at or above ``stop_kmh``; the channel used when
   consistent with the positions, ``use_speed``) over at most 45 s accrues the
   speed integrated over its time (a longer interval may hold a stop the speeds
   at its ends do not show); otherwise its straight line, with ``turn_correction`` less the
   noise's expected excess and times the arcs and bends its turning shows.
8. **Gaps**: a segment longer than ``max_bridge_s`` (a few hours: what a truck can
   plausibly drive through a hole in the signal) is never bridged, whatever its
   speed: it is **unobserved**, its straight line reported, never attributed as
   driven km along the chord through the cities between. Nor does the odometer
   bridge it: the odometer's km over such a gap are real driving, but their route
   is unknown (a 300 km round trip from the depot shows a chord of 0 km), so they
   go to the unobserved table (``odometer_km``), not to the cities on the chord.
   A segment longer than ``gap_s`` (and at most ``max_bridge_s``) is bridged by
   its straight line times ``gap_circuity`` when its implied speed is plausible
   (``max_bridge_kmh``), else it is unobserved too, as is any kept segment faster
   than ``max_speed_kmh`` over more than 1 km (the chord to a re-anchored track).
   Any segment longer than ``odometer_after_s`` (and at most ``max_bridge_s``: a
   hole in the trace, a gap or shorter) whose ends carry an odometer reading
   (JT/T 808 item 0x01) that is plausible (at least ``0.95`` of the straight
   line, at most ``max_bridge_kmh`` over the segment) takes the odometer's
   distance instead, shared out along the straight line: a truck that lost its
   signal for ten minutes on a winding road drove the odometer's kilometres, not
   the chord's. Every unobserved segment is in :attr:`~truckcarbon.trajectory.schema.KernelResult.gaps` by
   vehicle, month of its first fix and the cities of its two fixes; every
   segment is counted by duration in :attr:`~truckcarbon.trajectory.schema.KernelResult.gap_bins`.

Attribution: each kept segment is split at local (Asia/Shanghai) month
boundaries by time and at city borders exactly (:meth:`CityLocator.split_segments`).

Channels: a segment's load state is the one reported at its end fix (the state
during the interval that fix closes; JT/T 808 status bits 8-9), unknown when not
reported. A segment's measured fuel is the fall of the fuel-level gauge over it;
a rise of more than ``refuel_l`` (a refuel) or a fall above
``max_fuel_l_per_km`` per km plus ``refuel_l`` (a glitch) makes it unknown.
The level telescopes, so rounding of the gauge cancels over a trip. Both are
shared out to cities and months in proportion to distance; a standing segment's
fall (idling burns fuel; a rise or fall above ``refuel_l`` makes it unknown) goes
to the city it stands in, with no kilometres.

Speed and idling (what the emission methods' speed curves and idle rates need):
each moving segment's kilometres and hours go to the bin of its average speed
(``SPEED_BIN_EDGES_KMH``: 10 km/h bins, the last from 90 km/h) by load state. A
standing segment (rule 7's dead band, or the drift rule) is idle time when the
ignition is on: both ends on count its time (at most ``gap_s``), one end half of
it. The ignition bit is used for a vehicle-month when it is consistent with the
positions (as rule 7 tests it: enough segments with it off and on, and the
ignition-off ones moved no more than 5% of the km) and ``use_acc`` is on; else
(no bit, or one stuck, inverted or not wired) each stop idles its first
``idle_stop_s`` (default 15 min: a heavy truck warms up for minutes at a
shift's start and idles through queues and lights, while a longer stop is
usually a parked truck with its engine off) and is parked after that.

This module holds the thresholds (:class:`CleaningRules`, :data:`NOISY_ROAD_RULES`) and their order in
the compiled kernels' ``params`` arrays; the kernels are run by
:func:`truckcarbon.trajectory.kernel.run_kernel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_VEHICLE_KMH = 130.0  # rule 6's defaults
SUSTAINED_S = 60.0


@dataclass(frozen=True)
class CleaningRules:
    """Thresholds of the cleaning rules (module docstring); defaults suit 10-120 s fixes.

    ``max_bridge_s`` (default 4 hours) bounds in time the segments bridged along
    their straight line (by circuity or by the odometer); ``max_vehicle_kmh``
    (default 130 km/h) and ``sustained_s`` (default 60 s) define motion a heavy
    truck cannot make (rule 6).
    """

    max_speed_kmh: float = 150.0
    reanchor_after: int = 3
    drift_m: float = 30.0
    drift_kmh: float = 5.0
    # Rule 7 (off by default: the calibrated straight world's truth is the chord between its fixes, and the
    # rule costs a pass over the rows); NOISY_ROAD_RULES turns it on for real receivers and roads.
    noise_rules: bool = False
    band_floor_m: float = 30.0
    band_sigmas: float = 4.5
    stop_kmh: float = 2.0
    default_noise_m: float = 10.0
    use_speed: bool = True
    turn_correction: bool = True
    use_acc: bool = True
    gap_s: float = 1200.0
    max_bridge_kmh: float = 120.0
    gap_circuity: float = 1.05
    refuel_l: float = 5.0
    max_fuel_l_per_km: float = 1.5
    odometer_after_s: float = 150.0
    max_bridge_s: float = 14400.0
    idle_stop_s: float = 900.0
    max_vehicle_kmh: float = MAX_VEHICLE_KMH
    sustained_s: float = SUSTAINED_S


NOISY_ROAD_RULES = CleaningRules(noise_rules=True)


def robust_params(rules: CleaningRules) -> npt.NDArray[np.float64]:
    """Rule 7's thresholds in the order :func:`~truckcarbon.trajectory._robust.robust_kernel` takes them
    (``params``)."""
    return np.array(
        [
            rules.band_floor_m,
            rules.band_sigmas,
            rules.stop_kmh,
            rules.default_noise_m,
            float(rules.use_speed),
            float(rules.turn_correction),
            float(rules.use_acc),
        ]
    )


def attribute_params(rules: CleaningRules) -> npt.NDArray[np.float64]:
    """The segment rules' thresholds in the order :func:`~truckcarbon.trajectory._attribute.attribute_kernel`
    takes them (``params``)."""
    return np.array(
        [
            rules.drift_m if not rules.noise_rules else -1.0,  # rule 7 replaces the drift rule
            rules.drift_kmh,
            rules.gap_s,
            rules.max_speed_kmh,
            rules.max_bridge_kmh,
            rules.gap_circuity,
            rules.refuel_l,
            rules.max_fuel_l_per_km,
            rules.odometer_after_s,
            rules.max_bridge_s,
            rules.idle_stop_s,
        ]
    )


__all__ = ["MAX_VEHICLE_KMH", "NOISY_ROAD_RULES", "SUSTAINED_S", "CleaningRules", "attribute_params", "robust_params"]
