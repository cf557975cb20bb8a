"""Published figures against a simulated world's ground truth (``truckcarbon calibrate --check``).

The checks, each with its tolerance (from the product brief):

* national annual CO2 2018-2023 (expanded by the weights) within +/-5% of the published totals;
* the monthly facts: the Chinese New Year month is each year's minimum; 2020-01
  and 2020-02 fall year on year by the published -22.7% and -15.6% (+/-10 points);
  2022-04 is below 2022-03 and 2021-04; the 2022 peak month is September;
  2022-Q4 is below 2021-Q4; 2018-2021 average annual growth 20.5% (+/-5 points);
* China V's share of June CO2 2019-2022 within 5 points of the published shares;
* registration/operating CO2 by province 2022: the log-ratio has the published
  sign for at least 20 of the 23 provinces of the published table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.resources import abc as resources_abc
from importlib.resources import files
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.calendar import chinese_new_year
from truckcarbon.core.errors import InputError
from truckcarbon.core.settings import cache_dir
from truckcarbon.geo.reference import cities


@dataclass(frozen=True)
class Check:
    """One published fact against the simulated world."""

    name: str
    published: str
    simulated: str
    ok: bool


def _tree_bytes(folder: resources_abc.Traversable) -> list[bytes]:
    out: list[bytes] = []
    for item in sorted(folder.iterdir(), key=lambda x: x.name):
        if item.is_dir():
            out += _tree_bytes(item)
        elif item.name.endswith((".py", ".csv")):
            out.append(item.read_bytes())
    return out


def default_world(workers: int = 1, on_simulate: Callable[[Path], None] | None = None) -> Path:
    """The default world (the ``demo`` preset), simulated once into the cache folder.

    Its folder is keyed by the configuration and by the code and data it depends
    on (the simulator, the geometry kernels, the emission factors, the package
    data), so a change to any of them simulates a new world.
    """
    from truckcarbon.sim.config import preset
    from truckcarbon.sim.run import simulate

    config = preset("demo")
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for package in ("truckcarbon.sim", "truckcarbon.geo", "truckcarbon.emissions", "truckcarbon.data"):
        for blob in _tree_bytes(files(package)):
            digest.update(blob)
    world = cache_dir() / "worlds" / f"demo-{digest.hexdigest()[:12]}"
    if not (world / "manifest.json").exists():
        if on_simulate is not None:
            on_simulate(world)
        simulate(world, config, overwrite=True, workers=workers)
    return world


def _published(name: str) -> pa.Table:
    with files("truckcarbon.data").joinpath(name).open("rb") as f:
        return pacsv.read_csv(f)


def _load(world: Path) -> pa.Table:
    for name in ("truth.parquet", "vehicles.parquet"):
        if not (world / name).exists():
            raise InputError(f"{world / name} is missing; give a folder written by `truckcarbon simulate`")
    have = pq.read_schema(world / "truth.parquet").names
    need = ["vehicle_id", "month", "city_adcode", "co2_kg"]
    if missing := [c for c in need if c not in have]:
        raise InputError(
            f"{world / 'truth.parquet'} lacks {', '.join(missing)}; simulate the world again with this version"
        )
    truth = pq.read_table(world / "truth.parquet", columns=need)
    vehicles = pq.read_table(
        world / "vehicles.parquet", columns=["vehicle_id", "registration_city_adcode", "emission_standard", "weight"]
    )
    t = truth.join(vehicles, "vehicle_id")
    return t.append_column("co2_t", pc.divide(pc.multiply(t["co2_kg"], t["weight"]), 1000.0))


def _monthly(t: pa.Table, mask: pa.Array | None = None) -> dict[str, float]:
    if mask is not None:
        t = t.filter(mask)
    g = t.group_by("month").aggregate([("co2_t", "sum")])
    return dict(zip(g["month"].to_pylist(), g["co2_t_sum"].to_pylist(), strict=True))


def run_checks(world: Path) -> list[Check]:
    """All checks for the world simulated into ``world`` (those its months allow)."""
    t = _load(world)
    monthly = _monthly(t)
    return [
        *_national_checks(monthly),
        *_monthly_checks(monthly),
        *_china_v_checks(t, monthly),
        *_registration_vs_operating(t),
    ]


def _full_years(monthly: dict[str, float]) -> list[str]:
    """The years of which ``monthly`` holds all twelve months."""
    years = sorted({m[:4] for m in monthly})
    return [y for y in years if sum(x.startswith(y) for x in monthly) == 12]


def _national_checks(monthly: dict[str, float]) -> list[Check]:
    """National annual CO2 (expanded by the weights) within +/-5% of the published total, each full year."""
    out = []
    pub = _published("published_national_annual.csv")
    full = _full_years(monthly)
    for year, value in zip(pub["year"].to_pylist(), pub["co2_1e8_t"].to_pylist(), strict=True):
        y = str(year)
        if y not in full:
            continue
        sim = sum(v for m, v in monthly.items() if m.startswith(y)) / 1e8
        out.append(Check(f"national CO2 {y} (亿吨)", f"{value:.2f}", f"{sim:.2f}", abs(sim / value - 1) <= 0.05))
    return out


def _new_year_check(monthly: dict[str, float]) -> list[Check]:
    """Each full year's lowest month is its Chinese New Year month (2020: February)."""
    cny_ok = []
    for y in _full_years(monthly):
        # 2020: the published minimum is February (470 against 897 万吨 in January, COVID-19).
        expected = "2020-02" if y == "2020" else f"{y}-{chinese_new_year(int(y)).month:02d}"
        lowest = min((x for x in sorted(monthly) if x.startswith(y)), key=lambda x: monthly[x])
        cny_ok.append(lowest == expected)
    if not cny_ok:
        return []
    name = "yearly minimum: New Year month (2020: Feb)"
    return [Check(name, "every year", f"{sum(cny_ok)} of {len(cny_ok)}", all(cny_ok))]


def _monthly_checks(monthly: dict[str, float]) -> list[Check]:
    """The monthly facts of the module docstring, those the world's months allow."""
    out = _new_year_check(monthly)
    m = monthly.get
    for label, yoy in (("2020-01", -0.227), ("2020-02", -0.156)):
        now, before = m(label), m(f"2019-{label[5:]}")
        if now is not None and before:
            sim = now / before - 1
            out.append(Check(f"{label} year on year", f"{yoy:+.1%}", f"{sim:+.1%}", abs(sim - yoy) <= 0.10))
    a, b, c = m("2022-04"), m("2022-03"), m("2021-04")
    if a is not None and b is not None and c is not None:
        out.append(
            Check("2022-04 below 2022-03 and 2021-04", "yes", "yes" if a < b and a < c else "no", a < b and a < c)
        )
    in_2022 = [x for x in sorted(monthly) if x.startswith("2022")]
    if len(in_2022) == 12:
        peak = max(in_2022, key=lambda x: monthly[x])
        out.append(Check("2022 peak month", "2022-09", peak, peak == "2022-09"))
    q4 = [sum(monthly.get(f"{y}-{mm:02d}", np.nan) for mm in (10, 11, 12)) for y in (2021, 2022)]
    if np.isfinite(q4).all():
        out.append(Check("2022-Q4 below 2021-Q4", "yes", "yes" if q4[1] < q4[0] else "no", q4[1] < q4[0]))
    full = _full_years(monthly)
    if "2018" in full and "2021" in full:
        annual = {y: sum(v for x, v in monthly.items() if x.startswith(y)) for y in ("2018", "2021")}
        growth = (annual["2021"] / annual["2018"]) ** (1 / 3) - 1
        out.append(Check("2018-2021 average annual growth", "20.5%", f"{growth:.1%}", abs(growth - 0.205) <= 0.05))
    return out


def _china_v_checks(t: pa.Table, monthly: dict[str, float]) -> list[Check]:
    """China V's share of each June's CO2 within 5 points of the published share."""
    out = []
    june = _monthly(t, pc.equal(t["emission_standard"], "China V"))
    share_pub = _published("published_china_v_june.csv")
    for year, share in zip(share_pub["year"].to_pylist(), share_pub["share"].to_pylist(), strict=True):
        label = f"{year}-06"
        if monthly.get(label):
            sim = june.get(label, 0.0) / monthly[label]
            out.append(Check(f"China V share of {label} CO2", f"{share:.0%}", f"{sim:.0%}", abs(sim - share) <= 0.05))
    return out


def _registration_vs_operating(t: pa.Table) -> list[Check]:
    t22 = t.filter(pc.starts_with(t["month"], "2022"))
    if t22.num_rows == 0:
        return []
    prov_of = dict(zip(cities()["city_adcode"].to_pylist(), cities()["province_adcode"].to_pylist(), strict=True))
    op: dict[int, float] = {}
    reg: dict[int, float] = {}
    for city, home, co2 in zip(
        t22["city_adcode"].to_pylist(),
        t22["registration_city_adcode"].to_pylist(),
        t22["co2_t"].to_pylist(),
        strict=True,
    ):
        if city in prov_of:
            op[prov_of[city]] = op.get(prov_of[city], 0.0) + co2
        reg[prov_of[home]] = reg.get(prov_of[home], 0.0) + co2
    pub = _published("published_province_2022.csv")
    agree = 0
    for code, ratio in zip(pub["province_adcode"].to_pylist(), pub["ratio"].to_pylist(), strict=True):
        if op.get(code) and reg.get(code):
            agree += np.sign(np.log(reg[code] / op[code])) == np.sign(np.log(ratio))
    n = pub.num_rows
    return [
        Check(
            "provinces with the published sign of log(registration/operating)",
            ">= 20 of 23",
            f"{agree} of {n}",
            agree >= 20,
        )
    ]
