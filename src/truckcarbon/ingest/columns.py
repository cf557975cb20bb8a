"""Column names of real exports mapped to the contract names (``vehicle_id``, ``ts``, ...).

Platform and Excel exports name their columns in their own way (``车辆ID``,
``GPS时间``, ``经度``, ``lng``). :func:`map_columns` finds, for one file, the
renaming that gives the contract names, from three sources in this order:

1. the user's mapping ``{source header: contract name}`` (``--columns`` on the
   command line, parsed by :func:`parse_column_map`, or a ``[columns]`` table in
   the TOML configuration, checked by :func:`column_map_from_table`);
2. a column already named as the contract column;
3. the built-in aliases (:data:`ALIASES`), per table kind (``"pings"`` or
   ``"vehicles"``), in tiers: a column of an earlier tier wins over one of a later
   tier (in a pings file ``车牌号`` is the vehicle id only when there is no id
   column such as ``车辆ID``; in a vehicles file it is the ``plate``).

Headers are compared after Unicode NFKC normalisation (full-width letters and
brackets become ASCII), with surrounding whitespace and a byte order mark removed,
ASCII letters lower-cased and the separators space, ``_`` and ``-`` ignored:
``GPS Time``, ``gps_time`` and ``GPSTIME`` are the same header.

Refused with an :class:`InputError` naming the file, the columns and what to do:
two columns of one tier (or a user mapping and a column already named so) that
give the same contract column; a user mapping whose source header is not in the
file; a user mapping to a name that is not a contract column of the kind.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from truckcarbon.core.errors import InputError
from truckcarbon.core.schemas import PINGS, VEHICLES

PINGS_COLUMNS = PINGS.names
VEHICLES_COLUMNS = VEHICLES.names
CONTRACT: dict[str, tuple[str, ...]] = {"pings": PINGS_COLUMNS, "vehicles": VEHICLES_COLUMNS}
KINDS = tuple(CONTRACT)

_VEHICLE_IDS = (
    "车辆ID",
    "车辆编号",
    "车辆标识",
    "终端手机号",
    "终端号",
    "终端ID",
    "设备号",
    "设备ID",
    "SIM卡号",
    "vid",
    "vehicle",
    "terminal_id",
    "device_id",
)
_PLATES = ("车牌号", "车牌号码", "车牌", "plate", "plate_no", "plate_number", "license_plate")

# contract column -> tiers of source headers (as written; compared normalised, see the module docstring).
ALIASES: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "pings": {
        "vehicle_id": (_VEHICLE_IDS, _PLATES),
        "ts": (
            ("GPS时间", "定位时间", "gps_time", "fix_time"),
            ("时间", "时间戳", "上报时间", "采集时间", "日期时间", "timestamp", "time", "datetime"),
        ),
        "lon": (("经度", "GPS经度", "lng", "longitude"),),
        "lat": (("纬度", "GPS纬度", "latitude"),),
        "speed_kmh": (("速度", "GPS速度", "速度(km/h)", "速度(公里/小时)", "车速", "speed", "gps_speed"),),
        "load_state": (("载重状态", "空重车", "空重车状态", "载货状态", "load", "load_status"),),
        "odometer_km": (("里程", "总里程", "累计里程", "里程(km)", "总里程(km)", "里程(公里)", "odometer", "mileage"),),
        "fuel_level_l": (("油量", "油位", "剩余油量", "油量(L)", "油量(升)", "fuel", "fuel_level"),),
        "acc_on": (("ACC", "ACC状态", "点火状态", "点火", "acc_status", "ignition", "ignition_on"),),
    },
    "vehicles": {
        "vehicle_id": (_VEHICLE_IDS,),
        "plate": (_PLATES,),
        "emission_standard": (("排放标准", "排放阶段", "排放等级", "emission", "standard"),),
        "registration_city_adcode": (
            ("注册地", "注册城市代码", "注册地代码", "注册城市", "registration_city", "registration_adcode"),
        ),
        "weight": (("权重", "扩样权重", "weight_factor"),),
        "vehicle_class": (("车辆类型", "车型", "车辆类别", "vehicle_type", "class", "body_type"),),
        "fuel_type": (("燃料类型", "燃料种类", "燃料", "能源类型", "动力类型", "fuel", "fuel_kind", "energy_type"),),
    },
}

_SEPARATORS = str.maketrans("", "", " _-\t\ufeff")


def normalise_header(name: str) -> str:
    """The form in which headers are compared (see the module docstring)."""
    s = unicodedata.normalize("NFKC", name).strip().strip("\ufeff").strip()
    s = "".join(c.lower() if c.isascii() else c for c in s)
    return s.translate(_SEPARATORS)


def _contract(kind: str | None) -> tuple[str, ...]:
    if kind is None:
        return ()
    if kind not in CONTRACT:
        raise InputError(f"unknown table kind {kind!r}; one of {', '.join(KINDS)}")
    return CONTRACT[kind]


def _hint(source: str, target: str) -> str:
    return f'--columns {source}={target} (or "{source}" = "{target}" in the [columns] table)'


def map_columns(
    names: Sequence[str], user: Mapping[str, str] | None = None, kind: str | None = "pings", source: str = "input"
) -> dict[str, str]:
    """The renaming ``{file column: contract name}`` that gives a file's columns their contract names.

    ``names`` are the file's column names in order, ``user`` the user's mapping
    ``{source header: contract name}``, ``kind`` ``"pings"``, ``"vehicles"`` or None
    (no built-in aliases and any target name), ``source`` the file, for messages.
    Only columns whose name changes are in the result; the others keep theirs.
    """
    contract = _contract(kind)
    user = dict(user or {})
    by_norm: dict[str, list[str]] = {}
    for n in dict.fromkeys(names):
        by_norm.setdefault(normalise_header(n), []).append(n)
    found = ", ".join(names) or "(none)"

    def one(header: str) -> str | None:
        hits = by_norm.get(normalise_header(header), [])
        exact = [h for h in hits if h.strip() == header.strip()]
        if len(hits) > 1 and len(exact) != 1:
            raise InputError(
                f"{source}: columns {', '.join(hits)} all read as {header!r}; rename one of them in the file"
            )
        return (exact or hits)[0] if hits else None

    taken: dict[str, str] = {}  # contract name -> the file column giving it
    rename: dict[str, str] = {}
    for header, target in user.items():
        if contract and target not in contract:
            raise InputError(
                f"{source}: the column mapping {header}={target} names {target!r}, which is not a {kind} column; "
                f"the {kind} columns are {', '.join(contract)}"
            )
        col = one(header)
        if col is None:
            raise InputError(
                f"{source}: the column mapping {header}={target} names a column {header!r} the file does not have; "
                f"the file's columns are {found}; correct or remove it"
            )
        if target in taken:
            raise InputError(
                f"{source}: the column mapping gives {target} from both {taken[target]} and {col}; keep one"
            )
        if col in taken.values():
            raise InputError(f"{source}: the column mapping maps the column {col} twice; keep one")
        taken[target] = col
        if col != target:
            rename[col] = target
    mapped = set(taken.values())
    for target in contract:
        exact = [n for n in by_norm.get(normalise_header(target), []) if n not in mapped]
        if len(exact) > 1:
            if target not in exact:
                raise InputError(
                    f"{source}: columns {' and '.join(exact)} could each be {target}; rename one of them in the file"
                )
            exact = [target]
        if target in taken:
            if exact and exact[0] != taken[target]:
                raise InputError(
                    f"{source}: the column mapping gives {target} from {taken[target]}, but the file has a column "
                    f"{exact[0]} too; remove {taken[target]}={target} from the mapping or rename {exact[0]} in the file"
                )
            continue
        if exact:
            taken[target] = exact[0]
            mapped.add(exact[0])
            if exact[0] != target:
                rename[exact[0]] = target
    for target, tiers in ALIASES.get(kind or "", {}).items():
        if target in taken:
            continue
        for tier in tiers:
            hits = list(
                dict.fromkeys(n for alias in tier for n in by_norm.get(normalise_header(alias), []) if n not in mapped)
            )
            if len(hits) > 1:
                raise InputError(
                    f"{source}: columns {' and '.join(hits)} could each be {target}; say which one with "
                    f"{_hint(hits[0], target)}"
                )
            if hits:
                taken[target] = hits[0]
                mapped.add(hits[0])
                rename[hits[0]] = target
                break
    repeated = [n for n in set(taken.values()) if list(names).count(n) > 1]
    if repeated:
        raise InputError(f"{source}: the header has column {repeated[0]} more than once; rename one in the file")
    return rename


def _check_pair(header: str, target: str, where: str) -> tuple[str, str]:
    header, target = header.strip(), target.strip()
    if not header or not target:
        raise InputError(f"{where}: {header}={target} needs a source header and a column name, e.g. 车辆ID=vehicle_id")
    return header, target


def _add(out: dict[str, str], header: str, target: str, where: str) -> None:
    if header in out:
        raise InputError(f"{where}: {header} is mapped twice ({header}={out[header]}, {header}={target}); keep one")
    twice = [h for h, t in out.items() if t == target]
    if twice:
        raise InputError(f"{where}: both {twice[0]} and {header} are mapped to {target}; keep one")
    out[header] = target


def parse_column_map(text: str, where: str = "--columns") -> dict[str, str]:
    """``"车辆ID=vehicle_id,GPS时间=ts"`` as ``{"车辆ID": "vehicle_id", "GPS时间": "ts"}``.

    Items are separated by commas, source and name by ``=`` (the full-width
    ``，`` and ``＝`` are read as well); whitespace around them is ignored. A
    header holding a comma or ``=`` cannot be written here: use the ``[columns]``
    table of the configuration.
    """
    out: dict[str, str] = {}
    for item in text.replace("，", ",").replace("＝", "=").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise InputError(f"{where}: {item.strip()!r} has no '='; write SOURCE=COLUMN, e.g. 车辆ID=vehicle_id")
        left, right = item.split("=", 1)
        header, target = _check_pair(left, right, where)
        _add(out, header, target, where)
    return out


def column_map_from_table(table: object, where: str = "[columns]") -> dict[str, str]:
    """A ``[columns]`` table of the TOML configuration (``"车辆ID" = "vehicle_id"``) as a mapping."""
    if not isinstance(table, Mapping):
        raise InputError(f'{where}: must be a table of "source header" = "column name" pairs')
    out: dict[str, str] = {}
    for header, target in table.items():
        if not isinstance(header, str) or not isinstance(target, str):
            raise InputError(f'{where}: {header!r} = {target!r}: both must be text, e.g. "车辆ID" = "vehicle_id"')
        header, target = _check_pair(header, target, where)
        _add(out, header, target, where)
    return out


def alias_table(kind: str) -> list[tuple[str, int, str]]:
    """``(contract column, tier, alias)`` rows of :data:`ALIASES` for ``kind``, in order (for docs)."""
    return [
        (target, rank, alias)
        for target, tiers in ALIASES[kind].items()
        for rank, tier in enumerate(tiers, 1)
        for alias in tier
    ]


__all__ = [
    "ALIASES",
    "CONTRACT",
    "KINDS",
    "PINGS_COLUMNS",
    "VEHICLES_COLUMNS",
    "alias_table",
    "column_map_from_table",
    "map_columns",
    "normalise_header",
    "parse_column_map",
]
