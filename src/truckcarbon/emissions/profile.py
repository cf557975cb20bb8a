"""The speed profile of activity rows, and the speed methods' fuel and pollutants applied to it.

The trajectory kernel gives every activity row its moving kilometres by load state
and average-speed bin (``speed_bin_km``: empty, half, full and unknown load, each
over the bins) and its hours by bin (``speed_bin_h``), so a speed-dependent factor
applies per bin at the bin's own average speed (its km over its hours) and load:
aggregate first, apply the curves after. Kilometres outside the lists (activity
given as km per row, which has no lists) take ``default_speed_kmh`` with the row's
load split.

A load state that is unknown takes the source report's split, 0.4 empty + 0.6
full (:data:`truckcarbon.emissions.factors.UNKNOWN_LOAD_WEIGHTS`), of the factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.factors import UNKNOWN_LOAD_WEIGHTS, EmissionStandard, LoadState

FloatArray = npt.NDArray[np.float64]
N_LOAD_COLUMNS = 4  # empty, half, full, unknown
LOAD_FRACTIONS = (0.0, 0.5, 1.0)  # of the payload, by LoadState
LOAD_KM = ("distance_km_empty", "distance_km_half", "distance_km_full", "distance_km_unknown_load")
DEFAULT_SPEED_KMH = 60.0  # the report's reference speed (fuel_rates.csv)

# factor(class index, standard, load fraction, speeds) -> g/km (or L/km) at each speed
Factor = Callable[[int, EmissionStandard, float, FloatArray], FloatArray]


def _column(t: pa.Table, name: str) -> FloatArray:
    return np.asarray(t.column(name).to_numpy(), dtype=np.float64)


def _list_values(t: pa.Table, name: str, width: int) -> FloatArray:
    column = t.column(name).combine_chunks()
    if not pa.types.is_fixed_size_list(column.type) or column.type.list_size != width:
        raise InputError(f"activity column {name} must be a list of {width} values per row")
    return np.asarray(column.flatten().to_numpy(), dtype=np.float64).reshape(t.num_rows, width)


@dataclass(frozen=True)
class SpeedProfile:
    """Kilometres by (row, load column, speed bin) at each (row, bin)'s average speed."""

    km: FloatArray  # (rows, 4, bins): the binned km, then one more bin of the km outside the lists
    speed_kmh: FloatArray  # (rows, bins + 1)

    @classmethod
    def of(cls, activity: pa.Table, default_speed_kmh: float = DEFAULT_SPEED_KMH) -> SpeedProfile:
        """The profile of activity rows (with or without the kernel's speed lists)."""
        n = activity.num_rows
        loads = np.stack([_column(activity, c) for c in LOAD_KM], axis=1)  # (n, 4)
        if "speed_bin_h" in activity.column_names and "speed_bin_km" in activity.column_names:
            hours = activity.column("speed_bin_h").type.list_size if n else 0
            h = _list_values(activity, "speed_bin_h", hours) if n else np.zeros((0, 0))
            binned = (
                _list_values(activity, "speed_bin_km", N_LOAD_COLUMNS * hours).reshape(n, N_LOAD_COLUMNS, hours)
                if n
                else np.zeros((0, N_LOAD_COLUMNS, 0))
            )
        else:
            h = np.zeros((n, 0))
            binned = np.zeros((n, N_LOAD_COLUMNS, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(h > 0, binned.sum(axis=1) / h, default_speed_kmh)
        rest = np.clip(loads - binned.sum(axis=2), 0.0, None)  # km outside the lists (rounding: ~0 from the kernel)
        km = np.concatenate([binned, rest[:, :, None]], axis=2)
        speed = np.concatenate([v, np.full((n, 1), default_speed_kmh)], axis=1)
        return cls(km, speed)

    def apply(self, factor: Factor, class_code: npt.ArrayLike, standard_code: npt.ArrayLike) -> FloatArray:
        """Sum over a row's km of ``factor`` (per km) at each bin's speed and load; unknown load 0.4 empty + 0.6
        full."""
        cls_code = np.asarray(class_code, dtype=np.int64)
        std_code = np.asarray(standard_code, dtype=np.int64)
        out = np.zeros(self.km.shape[0])
        w_empty, w_full = UNKNOWN_LOAD_WEIGHTS[LoadState.EMPTY], UNKNOWN_LOAD_WEIGHTS[LoadState.FULL]
        for c in np.unique(cls_code).tolist():
            for s in np.unique(std_code).tolist():
                rows = np.flatnonzero((cls_code == c) & (std_code == s))
                if rows.size == 0:
                    continue
                standard = list(EmissionStandard)[s]
                v = self.speed_kmh[rows]
                per_load = [factor(c, standard, f, v) for f in LOAD_FRACTIONS]
                unknown = w_empty * per_load[0] + w_full * per_load[2]
                km = self.km[rows]
                total = sum((km[:, i, :] * ef).sum(axis=1) for i, ef in enumerate(per_load))
                out[rows] = total + (km[:, 3, :] * unknown).sum(axis=1)
        return out


__all__ = ["DEFAULT_SPEED_KMH", "LOAD_FRACTIONS", "LOAD_KM", "Factor", "SpeedProfile"]
