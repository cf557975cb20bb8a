"""Run the simulator: write the pings dataset, the vehicles, the ground truth and a manifest.

Output folder layout::

    OUT/pings/month=YYYY-MM/part-GGG-NNNNN.parquet   vehicle_id, ts (UTC), lon, lat (WGS-84),
                                                     speed_kmh, load_state, odometer_km, fuel_level_l
    OUT/vehicles.parquet                             one row per sampled truck
    OUT/truth.parquet                                vehicle_id, month, city_adcode, distance_km,
                                                     distance_km_empty/_half/_full, fuel_l, co2_kg,
                                                     fuel_l_unknown_load, co2_kg_unknown_load
    OUT/manifest.json                                configuration, seed, row and defect counts

Months are local (Asia/Shanghai) calendar months. The run is deterministic for a
given configuration (:mod:`truckcarbon.sim.config`): each truck-month draws from
its own random stream ``(seed, vehicle_id, month)``. Everything is written into
a temporary folder beside ``OUT`` and renamed into place at the end, so an
interrupted run leaves no folder that looks complete. Memory stays bounded: pings
are written month by month in parts of at most ``rows_per_file`` rows
(:mod:`truckcarbon.sim.pingfile`), by the run's processes
(:mod:`truckcarbon.sim.workers`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from truckcarbon import __version__
from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_label
from truckcarbon.core.runtime import fewer_collections
from truckcarbon.emissions.factors import DEFAULT_EF, ef_kg_per_l
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.context import context
from truckcarbon.sim.defects import DEFECT_NAMES
from truckcarbon.sim.fleet import Fleet
from truckcarbon.sim.month import MonthResult
from truckcarbon.sim.pingfile import PartBuffer, month_folder, text_ids
from truckcarbon.sim.truth import RunTruth
from truckcarbon.sim.workers import group_count, run_tasks, split_fleet, start_helpers


@dataclass
class SimSummary:
    """What a run wrote."""

    out: Path
    trucks: int
    months: int
    pings: int
    truth_rows: int
    defects: dict[str, int]
    seconds: float


@dataclass
class _Totals:
    """What the run has collected so far, month by month: pings, defect counts, truth rows."""

    on_month: Callable[[str, int], None] | None
    pings: int = 0
    defects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECT_NAMES, 0))
    truth: RunTruth = field(default_factory=RunTruth)

    def collect(self, m: int, results: list[MonthResult]) -> None:
        """Add one month's group results (in group order); report the month to ``on_month``."""
        month_pings = 0
        for r in results:
            month_pings += r.pings
            for name, c in r.defects.items():
                self.defects[name] += c
            self.truth.add(m, r.truth)
        if self.on_month is not None:
            self.on_month(month_label(m), month_pings)
        self.pings += month_pings


def simulate(
    out: Path,
    config: SimConfig,
    *,
    overwrite: bool = False,
    workers: int = 1,
    on_month: Callable[[str, int], None] | None = None,
) -> SimSummary:
    """Simulate the world of ``config`` into ``out`` (see the module docstring).

    ``workers`` processes (this one and ``workers - 1`` helpers) share the
    trucks in groups (the data do not depend on it);
    ``on_month(label, pings)`` is called after each month is written (progress).
    """
    config.validate()
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    with fewer_collections():
        return _simulate(out, config, overwrite, workers, on_month)


def _simulate(
    out: Path, config: SimConfig, overwrite: bool, workers: int, on_month: Callable[[str, int], None] | None
) -> SimSummary:
    months = config.months()
    tmp = _prepare_out(out, overwrite)
    t_start = time.perf_counter()
    pool = None
    try:
        pool = start_helpers(config, workers)
        ctx = context(config)
        n_groups = group_count(ctx.fleet, pool, workers)
        for m in months:
            month_folder(tmp, m).mkdir(parents=True)
        totals = _Totals(on_month)
        run_tasks(config, split_fleet(ctx, n_groups), months, tmp, pool, workers, totals.collect)
        truth_rows = _write_tables(tmp, config, ctx.fleet, totals.truth)
        seconds = time.perf_counter() - t_start
        run = {"workers": workers if pool is not None else 1, "truck_groups": n_groups, "seconds": round(seconds, 2)}
        manifest = _manifest(config, months, ctx.fleet.n, totals, truth_rows, run)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        PartBuffer.release()
    return SimSummary(out, ctx.fleet.n, len(months), totals.pings, truth_rows, totals.defects, seconds)


def _prepare_out(out: Path, overwrite: bool) -> Path:
    """A new temporary folder beside ``out``, once ``out`` may be written (empty, or ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} exists and is not empty; choose another folder or pass --overwrite")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
    except OSError as exc:
        raise InputError(f"cannot write to {parent}: {exc.strerror}; choose a writable folder") from None
    return tmp


def _write_tables(tmp: Path, config: SimConfig, fleet: Fleet, truth: RunTruth) -> int:
    """Write ``vehicles.parquet`` and ``truth.parquet`` into ``tmp``; returns the truth's rows."""
    tables = {
        "vehicles.parquet": fleet.table(),
        "truth.parquet": truth.table(fleet.standard, load_known=config.load_channel, fuel=fleet.fuel),
    }
    for name, table in tables.items():
        pq.write_table(_with_ids(table, config), tmp / name)
    return int(tables["truth.parquet"].num_rows)


def _with_ids(table: pa.Table, config: SimConfig) -> pa.Table:
    """``table`` with its vehicle ids as the configuration writes them (text by ``id_format``)."""
    return text_ids(table, config.id_format) if config.id_format else table


def _manifest(
    config: SimConfig, months: list[int], trucks: int, totals: _Totals, truth_rows: int, run: dict[str, Any]
) -> dict[str, Any]:
    """The manifest: configuration, months, counts, ``run`` (workers, groups, seconds) and the truth's method."""
    return {
        "generator": f"truckcarbon {__version__} simulator",
        "config": asdict(config),
        "months": [month_label(m) for m in months],
        "trucks": trucks,
        "pings": totals.pings,
        "truth_rows": truth_rows,
        "defects": totals.defects,
        **run,
        "coordinate_system": "WGS-84",
        "truth_method": {
            "formula": "co2_kg = distance_km * fuel_rate_l_per_100km(standard, load) / 100 * ef_kg_per_l",
            "load_state": "known (from the pings)" if config.load_channel else "unknown: 0.4 empty + 0.6 full",
            "emission_factor": DEFAULT_EF,
            "ef_kg_per_l": ef_kg_per_l(),
        },
        "month_definition": "local calendar month, Asia/Shanghai (UTC+8)",
    }


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary folder onto ``out`` (an old ``out`` is removed after)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
