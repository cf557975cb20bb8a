"""Validate the vehicles table; vehicles that fail go to quarantine with a reason code.

The vehicles contract:

========================= ========= ==============================================
column                    type      rule
========================= ========= ==============================================
vehicle_id                text/int  required, unique; kept exactly as given (a
                                    table without it is keyed by ``plate``)
emission_standard         string    required: China III..VI (also ``国五``, ``V``,
                                    ``5``, ``China 5``)
plate                     string    optional; its prefix gives the registration
                                    city when ``registration_city_adcode`` is empty
registration_city_adcode  int32     optional; a mainland prefecture-level unit
weight                    float64   optional expansion weight, > 0 (default 1)
vehicle_class             string    optional: articulated (tractor, 牵引车, 半挂)
                                    or rigid (厢式, 栏板, 自卸...); default
                                    articulated (COPERT's 40-50 t segment)
fuel_type                 string    optional: diesel (柴油), LNG (液化天然气), CNG
                                    (压缩天然气, 天然气), electric (纯电动, BEV),
                                    hydrogen (氢燃料电池, FCEV); default diesel
========================= ========= ==============================================

An identical repeated row is kept once (counted as ``identical_duplicates``,
a warning); rows that repeat an id with other values are all set aside
(``duplicate_vehicle_id``), and so are the pings of that id.

Output columns (:data:`truckcarbon.core.schemas.RUN_VEHICLES`), in key order
(:mod:`.ids`): ``vehicle_id`` (text), ``plate, registration_city_adcode,
registration_province_adcode, registration_source`` (``table`` or ``plate``),
``emission_standard``, ``standard_code`` (0..3 in :class:`EmissionStandard` order),
``weight``, ``vehicle_class`` and ``class_code`` (its index in :class:`VehicleClass`), ``fuel_type`` and
``fuel_code`` (its index in :data:`~truckcarbon.emissions.fuels.FUELS`).
Quarantined rows keep their original columns as text plus ``reason``, ``source_file``
and ``source_row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from truckcarbon.core.arrow import given, parse_float64
from truckcarbon.core.errors import InputError
from truckcarbon.emissions.copert import VehicleClass, vehicle_class_code
from truckcarbon.emissions.factors import EmissionStandard
from truckcarbon.emissions.fuels import FUELS, fuel_type_code
from truckcarbon.geo.reference import cities, city_from_plate, province_of
from truckcarbon.ingest.ids import VehicleIds, id_text, key_order
from truckcarbon.ingest.quarantine import quarantine_table

REASONS = (
    "missing_vehicle_id",
    "duplicate_vehicle_id",
    "unknown_emission_standard",
    "unknown_registration_city",
    "unknown_plate_prefix",
    "bad_weight",
    "unknown_vehicle_class",
    "unknown_fuel_type",
)

_ROMAN = {"III": 0, "IV": 1, "V": 2, "VI": 3, "3": 0, "4": 1, "5": 2, "6": 3, "三": 0, "四": 1, "五": 2, "六": 3}


def standard_code(text: str | None) -> int:
    """Index in :class:`EmissionStandard` of a written standard, -1 when unknown."""
    if text is None:
        return -1
    s = str(text).strip().upper().replace(" ", "")
    for prefix in ("CHINA", "国", "EURO"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return _ROMAN.get(s, -1)


@dataclass
class VehicleCounts:
    """Vehicles read, kept and quarantined (by reason), and how registration was found."""

    rows: int = 0
    kept: int = 0
    registration_from_plate: int = 0
    identical_duplicates: int = 0  # repeated identical rows, kept once
    quarantined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    conflicting_ids: list[str] = field(default_factory=list)  # ids given twice with different values


def vehicle_ids(vehicles: pa.Table, counts: VehicleCounts) -> VehicleIds:
    """The run's id lookup from the validated vehicles (key = row) and their conflicting ids."""
    return VehicleIds.build(vehicles["vehicle_id"].combine_chunks(), pa.array(counts.conflicting_ids, pa.string()))


def validate_vehicles(table: pa.Table, source: str) -> tuple[pa.Table, pa.Table, VehicleCounts]:
    """Split a vehicles table into normalised vehicles and quarantined rows.

    Raises
    ------
    InputError
        When ``vehicle_id`` or ``emission_standard`` is missing, or neither
        ``registration_city_adcode`` nor ``plate`` is given.
    """
    names = table.column_names
    if "vehicle_id" not in names and "plate" in names:
        # A fleet list keyed by plate: the plate is the vehicle's id (as in pings exports keyed by plate).
        table = table.append_column("vehicle_id", table.column("plate"))
        names = table.column_names
    missing = [c for c in ("vehicle_id", "emission_standard") if c not in names]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(names)}. "
            "Vehicles need vehicle_id, emission_standard and registration_city_adcode or plate."
        )
    if "registration_city_adcode" not in names and "plate" not in names:
        raise InputError(f"{source}: needs registration_city_adcode or plate to find each vehicle's registration city")
    n = table.num_rows
    reason = np.full(n, -1, np.int8)

    def flag(mask: np.ndarray, code: int) -> None:
        reason[(reason < 0) & mask] = code

    ids = id_text(table.column("vehicle_id"), f"{source}: column vehicle_id")
    id_missing = np.asarray(ids.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    flag(id_missing, 0)
    # A row repeated exactly is kept once; an id repeated with other values sets every one of its rows aside
    # (which is right cannot be known).
    row_key = pc.binary_join_element_wise(
        *[
            pc.fill_null(pc.utf8_trim_whitespace(pc.cast(table.column(c).combine_chunks(), pa.string())), "\x00")
            for c in names
        ],
        "\x1f",
    )
    identical = np.zeros(n, bool)
    conflicting: list[str] = []
    if n:
        id_codes = np.asarray(pc.fill_null(pc.dictionary_encode(ids).indices, -1).to_numpy(), dtype=np.int64)
        row_codes = np.asarray(pc.dictionary_encode(row_key).indices.to_numpy(), dtype=np.int64)
        present = ~id_missing
        ids_seen, id_freq = np.unique(id_codes[present], return_counts=True)
        repeated = np.isin(id_codes, ids_seen[id_freq > 1]) & present
        if repeated.any():
            pairs = np.unique(np.column_stack([id_codes[repeated], row_codes[repeated]]), axis=0)
            variants_ids, variants = np.unique(pairs[:, 0], return_counts=True)
            clash_ids = variants_ids[variants > 1]
            clash = np.isin(id_codes, clash_ids) & present
            flag(clash, 1)
            conflicting = sorted({v for v in ids.filter(pa.array(clash)).to_pylist() if v is not None})
            # Identical repeats: every occurrence after the first of the same row.
            same = repeated & ~clash
            first = np.zeros(n, bool)
            _, first_idx = np.unique(row_codes[same], return_index=True)
            first[np.flatnonzero(same)[first_idx]] = True
            identical = same & ~first
    std_text = pc.cast(table.column("emission_standard").combine_chunks(), pa.string()).to_pylist()
    std = np.array([standard_code(s) for s in std_text], dtype=np.int8)
    flag(std < 0, 2)

    plate = (
        pc.cast(table.column("plate").combine_chunks(), pa.string()) if "plate" in names else pa.nulls(n, pa.string())
    )
    reg = np.full(n, np.nan)
    declared = np.zeros(n, bool)
    if "registration_city_adcode" in names:
        col = table.column("registration_city_adcode").combine_chunks()
        reg, _ = parse_float64(col)
        declared = given(col)
        known = np.isin(reg, cities()["city_adcode"].to_numpy())
        flag(declared & ~known, 3)
    from_plate = pc.fill_null(pc.cast(city_from_plate(plate), pa.float64()), np.nan).to_numpy()
    use_plate = ~declared
    flag(use_plate & ~np.isfinite(from_plate), 4)
    reg = np.where(use_plate, from_plate, reg)

    weight = np.ones(n)
    if "weight" in names:
        col = table.column("weight").combine_chunks()
        w, _ = parse_float64(col)
        present = given(col)
        flag(present & ~(np.isfinite(w) & (w > 0)), 5)
        weight = np.where(present, w, 1.0)

    klass = np.zeros(n, np.int8)
    if "vehicle_class" in names:
        class_text = pc.cast(table.column("vehicle_class").combine_chunks(), pa.string()).to_pylist()
        klass = np.array([vehicle_class_code(c) for c in class_text], dtype=np.int8)
        flag(klass < 0, 6)

    fuel = np.zeros(n, np.int8)
    if "fuel_type" in names:
        fuel_text = pc.cast(table.column("fuel_type").combine_chunks(), pa.string()).to_pylist()
        fuel = np.array([fuel_type_code(f) for f in fuel_text], dtype=np.int8)
        flag(fuel < 0, 7)

    kept_rows = np.flatnonzero((reason < 0) & ~identical)
    keep = kept_rows[key_order(ids.take(pa.array(kept_rows)))]  # in key order
    reg_kept = reg[keep].astype(np.int32)
    vehicles = pa.table(
        {
            "vehicle_id": ids.take(pa.array(keep)),
            "plate": plate.take(pa.array(keep)),
            "registration_city_adcode": pa.array(reg_kept),
            "registration_province_adcode": province_of(pa.array(reg_kept)),
            "registration_source": pa.array(np.where(use_plate[keep], "plate", "table")),
            "emission_standard": pa.array([list(EmissionStandard)[c].value for c in std[keep]], pa.string()),
            "standard_code": pa.array(std[keep]),
            "weight": pa.array(weight[keep]),
            "vehicle_class": pa.array([list(VehicleClass)[c].value for c in klass[keep]], pa.string()),
            "class_code": pa.array(klass[keep]),
            "fuel_type": pa.array([FUELS[c].value for c in fuel[keep]], pa.string()),
            "fuel_code": pa.array(fuel[keep]),
        }
    )
    bad = np.flatnonzero(reason >= 0)
    taken = table.take(pa.array(bad)) if bad.size else table.slice(0, 0)
    quarantine = quarantine_table(taken, reason[bad], source, bad + 1, REASONS)
    counts = VehicleCounts(
        rows=n,
        kept=int(keep.size),
        registration_from_plate=int(use_plate[keep].sum()),
        identical_duplicates=int(identical.sum()),
        conflicting_ids=conflicting,
    )
    for code, name in enumerate(REASONS):
        counts.quarantined[name] = int((reason == code).sum())
    return vehicles, quarantine, counts
