"""Monte Carlo intervals of activity rows' fuel and emissions, vectorised over the rows and the draws.

Each draw perturbs what is uncertain in a row's estimate, independently per
vehicle-month unless said otherwise:

- **The method's factor** (rows not measured by a fuel gauge, and a gauge row's
  km the gauge missed). Where the run has at least ``MIN_GAUGE_TRUCKS`` trucks
  whose fuel gauge qualified (the measured path, within a fraction of a per
  cent of the truth where it covers a month: ``benchmarks/bench_methods.py``),
  the factor's error is what those gauges show: each draw takes, for each row,
  the ratio gauge/method of a gauge row of the same vehicle class and speed band
  (``SPEED_BANDS_KMH``, by km over moving hours), chosen at random (an empirical
  bootstrap: bias and scatter both come from measurements), times the
  calibration's own spread (a bootstrap of the gauge trucks). Without enough
  gauges the factor is log-normal with ``fallback_sigma`` and mean 1
  (:data:`FALLBACK_SIGMA`, see its source).
- **The unknown-load split** (km whose load state was not reported): the share
  driven full, ``UNKNOWN_FULL_SHARE`` around the source report's 0.6, per vehicle.
- **The expansion weights**: the vehicles are resampled with replacement within
  their strata (registration province and emission standard), each draw a
  bootstrap of the sample; their weights multiply by how often each was drawn.

The rows' litres and kilograms per draw come out as a (rows, draws) array; summed
by any key and taken at ``QUANTILES``, they give the p05, p50 and p95 of an
inventory row or a national month. Draws are seeded (``seed``): the same inputs
give the same intervals.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import sparse

from truckcarbon.core.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

QUANTILES: Final = (0.05, 0.5, 0.95)
MIN_GAUGE_TRUCKS: Final = 20
MIN_STRATUM: Final = 10  # gauge rows a stratum (class and speed band) needs to lend its own ratios
MIN_CLASS: Final = 5  # ... and a vehicle class (a class's bias is the largest a pooled ratio would miss)
MIN_ROW_KM: Final = 10.0  # a gauge row shorter than this lends no ratio (the gauge reads 0.1 L)
SPEED_BANDS_KMH: Final = (30.0, 40.0, 50.0, 60.0, 70.0)  # band edges (km/h): below 30, 30-40, ..., from 70
N_BANDS: Final = len(SPEED_BANDS_KMH) + 1
# The share of unknown-load km driven full: the source report's 0.6 (0.4 empty + 0.6 full) within +-0.2, the
# spread between China's reported empty-running shares of heavy freight trucks (about 40%, the report's basis)
# and a fully loaded fleet; an assumption stated as such, not a measured range.
UNKNOWN_FULL_SHARE: Final = (0.4, 0.8)
# Without gauges: the log-normal sigma of a heavy truck's fuel factor, 0.15: the spread of heavy tractor-trailer
# fuel consumption between fleets measured on the same cycles (ICCT 2015 literature review: China about 44, US 39,
# EU 31 L/100 km: +-17% about their mean).
FALLBACK_SIGMA: Final = 0.15


@dataclass(frozen=True)
class UncertaintySettings:
    """How many draws, their seed, and the ranges drawn from."""

    draws: int = 1000
    seed: int = 20240601
    unknown_full_share: tuple[float, float] = UNKNOWN_FULL_SHARE
    fallback_sigma: float = FALLBACK_SIGMA
    bootstrap: bool = True

    def validate(self) -> None:
        if not 10 <= self.draws <= 100_000:
            raise InputError("[uncertainty] draws must be between 10 and 100000")
        lo, hi = self.unknown_full_share
        if not 0.0 <= lo <= hi <= 1.0:
            raise InputError("[uncertainty] unknown_full_share must be two shares 0 <= low <= high <= 1")
        if not 0.0 <= self.fallback_sigma <= 1.0:
            raise InputError("[uncertainty] fallback_sigma must be between 0 and 1")


@dataclass(frozen=True)
class FactorErrors:
    """What the qualifying fuel gauges say of the method's factor.

    Per activity row of a gauge vehicle-month with at least ``MIN_ROW_KM``: the ratio gauge/method, the method's
    litres, its stratum
    (``class * N_BANDS + speed band``) and class; per gauge truck: its class and the litres of gauge and method
    over its rows (the clusters the calibration is resampled by: a truck's errors hold from month to month)."""

    ratios: FloatArray
    litres: FloatArray  # the method's litres of each ratio's row: the odds it is drawn
    stratum: IntArray
    klass: IntArray
    truck_class: IntArray
    truck_gauge_l: FloatArray
    truck_method_l: FloatArray

    @property
    def measured(self) -> bool:
        """Enough gauges to use them (else the fallback log-normal)."""
        return self.truck_class.size >= MIN_GAUGE_TRUCKS


def speed_band(km: FloatArray, driving_h: FloatArray) -> IntArray:
    """Band of each average moving speed (km over hours; no hours: the middle band)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        kmh = np.where(driving_h > 0, km / driving_h, 50.0)
    return np.searchsorted(np.asarray(SPEED_BANDS_KMH), kmh, side="right").astype(np.int64)


def factor_errors(
    gauge_l: FloatArray, method_l: FloatArray, km: FloatArray, band: IntArray, klass: IntArray, truck: IntArray
) -> FactorErrors:
    """The ratios of gauge rows (``gauge_l``, ``method_l``, ``km``, ``band``, ``klass`` and truck number ``truck``
    one per row)."""
    ok = np.isfinite(gauge_l) & (method_l > 0) & (gauge_l > 0)
    row = ok & (km >= MIN_ROW_KM)
    n = int(truck.max()) + 1 if truck.size else 0
    g = np.asarray(np.bincount(truck[ok], gauge_l[ok], n), np.float64)
    m = np.asarray(np.bincount(truck[ok], method_l[ok], n), np.float64)
    c = np.zeros(n, np.int64)
    c[truck] = klass
    has = m > 0
    return FactorErrors(
        gauge_l[row] / method_l[row],
        method_l[row],
        klass[row] * N_BANDS + band[row],
        klass[row],
        c[has],
        g[has],
        m[has],
    )


class FactorSampler:
    """The factor draws of one run, rows after rows: what they rest on is made once.

    The calibration's draws (per class, the ratio of litres gauge/method of a bootstrap of its gauge trucks
    to that of all of them: the gauges are a sample of trucks too) are one per draw for the whole run, so a
    draw's calibration error is shared by every row, as it is in the world; each stratum's pool of gauge
    rows and its alias table are built the first time a row needs them."""

    def __init__(self, errors: FactorErrors, draws: int, sigma: float, rng: np.random.Generator) -> None:
        self.errors = errors
        self.draws = draws
        self.sigma = sigma
        self.rng = rng
        self._calibration: dict[int, FloatArray] = {}
        self._pools: dict[int, tuple[FloatArray, FloatArray, IntArray]] = {}

    def calibration(self, klass: int) -> FloatArray:
        """(draws,): the class's calibration factor of each draw."""
        if klass not in self._calibration:
            e = self.errors
            own = np.flatnonzero(e.truck_class == klass)
            members = own if own.size >= MIN_CLASS else np.arange(e.truck_class.size)
            pick = members[self.rng.integers(0, members.size, (self.draws, members.size))]
            ratio = e.truck_gauge_l[pick].sum(axis=1) / e.truck_method_l[pick].sum(axis=1)
            self._calibration[klass] = ratio / (e.truck_gauge_l[members].sum() / e.truck_method_l[members].sum())
        return self._calibration[klass]

    def pool(self, stratum: int, klass: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """The stratum's gauge ratios (its own if it holds ``MIN_STRATUM``, else its class's if that holds
        ``MIN_CLASS``, else all) and their alias table by litres."""
        if stratum not in self._pools:
            e = self.errors
            pool = e.stratum == stratum
            if pool.sum() < MIN_STRATUM:
                pool = e.klass == klass
            if pool.sum() < MIN_CLASS:
                pool = np.ones(e.ratios.size, bool)
            # Drawn with odds by its litres: the factor's mean is then the pool's litres gauge/method (drawn
            # evenly, the short rows' scatter would bias it up: the mean of ratios exceeds the ratio of sums).
            self._pools[stratum] = (e.ratios[pool], *alias_table(e.litres[pool]))
        return self._pools[stratum]

    def sample(self, stratum: IntArray, klass: IntArray) -> FloatArray:
        """(rows, draws) factors of rows of ``stratum`` and ``klass``, or log-normal(0, sigma) without enough
        gauges."""
        n = stratum.size
        if not self.errors.measured:
            sigma = self.sigma
            return np.exp(self.rng.normal(-0.5 * sigma * sigma, sigma, (n, self.draws)))  # mean 1
        out = np.empty((n, self.draws))
        for s in np.unique(stratum).tolist():
            rows = np.flatnonzero(stratum == s)
            c = int(klass[rows[0]])
            ratios, prob, alias = self.pool(s, c)
            pick = alias_draw(prob, alias, (rows.size, self.draws), self.rng)
            out[rows] = ratios[pick] * self.calibration(c)[None, :]
        return out


def factor_draws(
    errors: FactorErrors, stratum: IntArray, klass: IntArray, draws: int, sigma: float, rng: np.random.Generator
) -> FloatArray:
    """(rows, draws) factors, or log-normal(0, sigma) without enough gauges (:class:`FactorSampler`, for
    one set of rows).

    A row takes the ratio of a gauge row drawn at random (odds by its litres) from its stratum (class and speed
    band), times, per draw and class, the calibration's own uncertainty."""
    return FactorSampler(errors, draws, sigma, rng).sample(stratum, klass)


def alias_table(weights: FloatArray) -> tuple[FloatArray, IntArray]:
    """Walker's alias table of a discrete distribution with odds ``weights`` (Vose's construction): draw a
    column ``j`` evenly, keep it with probability ``prob[j]``, else take ``alias[j]``."""
    k = weights.size
    scaled = np.asarray(weights, np.float64) * (k / weights.sum())
    prob = np.ones(k)
    alias = np.arange(k, dtype=np.int64)
    small = [i for i in range(k) if scaled[i] < 1.0]
    large = [i for i in range(k) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob, alias  # the columns left over keep themselves (probability 1, up to rounding)


def alias_draw(prob: FloatArray, alias: IntArray, shape: tuple[int, ...], rng: np.random.Generator) -> IntArray:
    """Indices drawn from an :func:`alias_table`: one uniform picks the column and, from its fraction, the
    side (constant time per draw)."""
    u = rng.random(shape) * prob.size
    j = u.astype(np.int64)
    np.minimum(j, prob.size - 1, out=j)
    u -= j  # the fraction: uniform on [0, 1), independent of the column
    return np.where(u < prob[j], j, alias[j])


def bootstrap_counts(stratum: IntArray, draws: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """(vehicles, draws): how often each vehicle is drawn when its stratum's n vehicles are drawn n times with
    replacement (a bootstrap of the sample within strata)."""
    n = stratum.size
    counts = np.zeros((n, draws), np.float32)
    order = np.argsort(stratum, kind="stable")
    s = stratum[order]
    bounds = np.flatnonzero(np.r_[True, s[1:] != s[:-1], True]) if n else np.zeros(1, np.int64)
    for lo, hi in itertools.pairwise(bounds):
        members = order[lo:hi]
        m = members.size
        picks = rng.integers(0, m, (draws, m)) + (np.arange(draws) * m)[:, None]  # draw d's picks, offset d * m
        counts[members] = np.bincount(picks.ravel(), minlength=draws * m).reshape(draws, m).T
    return counts


def group_matrix(group: IntArray, n_groups: int, scale: FloatArray | None = None) -> sparse.csr_matrix:
    """The (groups, rows) matrix that sums rows into their ``group`` (each times ``scale``; a group < 0: none)."""
    rows = np.flatnonzero(group >= 0)
    values = np.ones(rows.size) if scale is None else np.asarray(scale, np.float64)[rows]
    return sparse.csr_matrix((values, (group[rows], rows)), shape=(n_groups, group.size))


def group_sums(values: FloatArray, group: IntArray, n_groups: int) -> FloatArray:
    """(groups, draws): ``values`` (rows, draws) summed by ``group`` (rows), in a fixed order."""
    if group.size == 0:
        return np.zeros((n_groups, values.shape[1]))
    return np.asarray(group_matrix(group, n_groups) @ values)


def quantiles(sums: FloatArray) -> FloatArray:
    """(groups, 3): the p05, p50 and p95 over the draws."""
    if sums.shape[0] == 0:
        return np.zeros((0, len(QUANTILES)))
    return np.quantile(sums, QUANTILES, axis=1).T


__all__ = [
    "FALLBACK_SIGMA",
    "MIN_GAUGE_TRUCKS",
    "N_BANDS",
    "QUANTILES",
    "SPEED_BANDS_KMH",
    "UNKNOWN_FULL_SHARE",
    "FactorErrors",
    "FactorSampler",
    "UncertaintySettings",
    "alias_draw",
    "alias_table",
    "bootstrap_counts",
    "factor_draws",
    "factor_errors",
    "group_matrix",
    "group_sums",
    "quantiles",
    "speed_band",
]
