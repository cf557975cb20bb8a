"""The simulated fleet's fuels: each truck's from the shares of its registration year's new trucks."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from truckcarbon.emissions.fuels import FUELS, FuelType

# Shares of new heavy-truck registrations by fuel (the rest diesel), by registration year. Natural gas (taken as
# LNG, the heavy trucks' gas): about 4 % of China's 40-49 t fleet in 2017 while its sales grew fivefold that
# year (IHS Markit, in China Daily / Bloomberg, 2017-10-10), below 10 % of sales until 2023 and about 30 % by
# the end of 2023 (Wood Mackenzie, 2024), 29 % in 2024 (ICCT, zero-emission MHDV market spotlight 2024).
# Electric and hydrogen: zero-emission vehicles were 8-9 % of all heavy-duty sales in 2022-2023, buses included,
# 6 % of them fuel cell (ICCT, Race to zero, China 2023); heavy trucks a smaller share (assumed here). The
# demo world's calibration: the published figures are of diesel trucks, so the shares stay small.
NEW_FUEL_SHARE: dict[int, dict[FuelType, float]] = {
    2016: {FuelType.LNG: 0.02},
    2017: {FuelType.LNG: 0.06},
    2018: {FuelType.LNG: 0.06},
    2019: {FuelType.LNG: 0.06},
    2020: {FuelType.LNG: 0.07, FuelType.ELECTRIC: 0.003},
    2021: {FuelType.LNG: 0.07, FuelType.ELECTRIC: 0.01, FuelType.HYDROGEN: 0.001},
    2022: {FuelType.LNG: 0.08, FuelType.ELECTRIC: 0.03, FuelType.HYDROGEN: 0.003},
    2023: {FuelType.LNG: 0.20, FuelType.ELECTRIC: 0.035, FuelType.HYDROGEN: 0.003},
}


def registration_fuels(registered: npt.NDArray[np.int64], rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Each truck's fuel from its registration year's shares (:data:`NEW_FUEL_SHARE`)."""
    years = registered // 12
    u = rng.random(registered.size)
    out = np.zeros(registered.size, np.int8)
    for year in np.unique(years).tolist():
        shares = NEW_FUEL_SHARE[min(max(year, min(NEW_FUEL_SHARE)), max(NEW_FUEL_SHARE))]
        rows = np.flatnonzero(years == year)
        edges = np.cumsum([shares.get(f, 0.0) for f in FUELS[1:]])
        out[rows] = np.searchsorted(edges, u[rows], side="right") + 1
        out[rows[u[rows] >= edges[-1]]] = 0  # the rest: diesel
    return out


__all__ = ["NEW_FUEL_SHARE", "registration_fuels"]
