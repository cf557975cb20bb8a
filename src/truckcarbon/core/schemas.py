"""Every table truckcarbon reads or writes, declared once: names, types, units, nullability, ranges.

Ingest validates against :data:`PINGS` and :data:`VEHICLES`; the simulator's and
the gateway's writers write :data:`PINGS`; the engines write :data:`ACTIVITY` and
:data:`INVENTORY`; the analyses read them. Documentation tables
(:meth:`TableSchema.doc`) are generated from the same declarations.

Vehicle ids are text, kept exactly as given (``鲁A12345``, ``013912345678``,
``geolife-000``, ``12345678901234567``): an integer column is read as its
decimal text. Inside a run every id is mapped once to a dense integer key
(:class:`truckcarbon.ingest.ids.VehicleIds`), which only the kernels see.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Load states as JT/T 808 status bits 8-9 report them; a load code is the index in this tuple
# (-1: not reported). The emission factors' LoadState enum has the same values in the same order.
LOAD_STATES = ("empty", "half", "full")


@dataclass(frozen=True)
class Column:
    """One column of a table."""

    name: str
    type: pa.DataType
    unit: str = ""
    nullable: bool = True
    required: bool = False  # inputs: the file must have the column
    low: float | None = None  # inclusive range of valid values, where there is one
    high: float | None = None
    doc: str = ""

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


@dataclass(frozen=True)
class TableSchema:
    """A table: its columns in order."""

    name: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def arrow(self, names: tuple[str, ...] | None = None) -> pa.Schema:
        """The Arrow schema (of ``names`` only, in table order, when given)."""
        return pa.schema([c.field() for c in self.columns if names is None or c.name in names])

    def doc(self) -> str:
        """A reStructuredText-like table of the columns (name, type, unit, rule)."""
        rows = [("column", "type", "unit", "rule")]
        for c in self.columns:
            rule = ("required; " if c.required else "") + c.doc
            if c.low is not None or c.high is not None:
                rule += f" [{c.low if c.low is not None else ''}, {c.high if c.high is not None else ''}]"
            rows.append((c.name, str(c.type), c.unit, rule.strip()))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        rule_line = "  ".join("=" * w for w in widths)
        lines = [rule_line, "  ".join(v.ljust(w) for v, w in zip(rows[0], widths, strict=True)), rule_line]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows[1:]]
        return "\n".join([*lines, rule_line])


LOAD_TYPE = pa.dictionary(pa.int8(), pa.string())

# The pings as a platform export or the simulator's files hold them (what ingest normalises to).
PINGS = TableSchema(
    "pings",
    (
        Column("vehicle_id", pa.string(), nullable=False, required=True, doc="text or integer id, kept as given"),
        Column(
            "ts",
            pa.timestamp("ms", tz="UTC"),
            nullable=False,
            required=True,
            doc="epoch s/ms/us, ISO 8601, YYYY/MM/DD HH:MM:SS, YYYYMMDDHHMMSS; naive = Asia/Shanghai",
        ),
        Column("lon", pa.float64(), "degree", nullable=False, required=True, low=-180.0, high=180.0),
        Column("lat", pa.float64(), "degree", nullable=False, required=True, low=-90.0, high=90.0),
        Column("speed_kmh", pa.float32(), "km/h", low=0.0, high=250.0, doc="reported (GNSS) speed"),
        Column("load_state", LOAD_TYPE, doc="empty, half or full (JT/T 808 status bits 8-9)"),
        Column("odometer_km", pa.float64(), "km", low=0.0, doc="JT/T 808 item 0x01"),
        Column("fuel_level_l", pa.float32(), "L", low=0.0, doc="JT/T 808 item 0x02"),
        Column("acc_on", pa.bool_(), doc="ignition (ACC) on: JT/T 808 status bit 0; 1/0, true/false, on/off, 开/关"),
    ),
)

VEHICLES = TableSchema(
    "vehicles",
    (
        Column("vehicle_id", pa.string(), nullable=False, required=True, doc="unique; as in the pings"),
        Column("plate", pa.string(), doc="its prefix gives the registration city when no adcode is given"),
        Column("emission_standard", pa.string(), required=True, doc="China III..VI (国五, V, 5 also read)"),
        Column("registration_city_adcode", pa.int32(), doc="a mainland prefecture-level unit"),
        Column("weight", pa.float64(), low=0.0, doc="sample expansion weight, > 0 (default 1)"),
        Column(
            "vehicle_class",
            pa.string(),
            doc="articulated (tractor, 牵引车) or rigid (厢式, 自卸...); default articulated",
        ),
        Column(
            "fuel_type",
            pa.string(),
            doc="diesel (柴油), LNG, CNG (天然气), electric (纯电动), hydrogen (氢燃料电池); default diesel",
        ),
    ),
)

# The normalised vehicles of a run (the DuckDB file's ``vehicles`` table).
RUN_VEHICLES = TableSchema(
    "run_vehicles",
    (
        Column("vehicle_id", pa.string(), nullable=False),
        Column("plate", pa.string()),
        Column("registration_city_adcode", pa.int32(), nullable=False),
        Column("registration_province_adcode", pa.int32()),
        Column("registration_source", pa.string(), doc="table or plate"),
        Column("emission_standard", pa.string(), nullable=False),
        Column("standard_code", pa.int8(), nullable=False, doc="0..3: China III..VI"),
        Column("weight", pa.float64(), nullable=False),
        Column("vehicle_class", pa.string(), nullable=False, doc="the COPERT segment"),
        Column("class_code", pa.int8(), nullable=False, doc="0: articulated 40-50 t, 1: rigid 28-32 t"),
        Column("fuel_type", pa.string(), nullable=False, doc="diesel, LNG, CNG, electric or hydrogen"),
        Column("fuel_code", pa.int8(), nullable=False, doc="0..4 in that order"),
    ),
)

_KM = "km"
ACTIVITY = TableSchema(
    "activity",
    (
        Column("vehicle_id", pa.string(), nullable=False),
        Column("month", pa.string(), nullable=False, doc="YYYY-MM, Asia/Shanghai"),
        Column("city_adcode", pa.int32(), nullable=False, doc="0: outside the mainland"),
        Column("distance_km", pa.float64(), _KM, nullable=False),
        Column("distance_km_empty", pa.float64(), _KM, nullable=False),
        Column("distance_km_half", pa.float64(), _KM, nullable=False),
        Column("distance_km_full", pa.float64(), _KM, nullable=False),
        Column("distance_km_unknown_load", pa.float64(), _KM, nullable=False),
        Column("distance_km_fuel_measured", pa.float64(), _KM, nullable=False),
        Column("fuel_measured_l", pa.float64(), "L", nullable=False),
        Column(
            "idle_h", pa.float64(), "h", nullable=False, doc="standing with the engine on (ignition bit or stop rule)"
        ),
        Column("driving_h", pa.float64(), "h", nullable=False, doc="moving segments' hours (0: no speed profile)"),
        Column("fuel_l_report", pa.float64(), "L", nullable=False, doc="the source report's rates"),
        Column("fuel_l_copert", pa.float64(), "L", nullable=False, doc="COPERT by speed bin and load, plus idle"),
        Column("fuel_l_measured", pa.float64(), "L", nullable=False, doc="the gauge where it qualifies, else report"),
        Column("fuel_l", pa.float64(), "L", nullable=False, doc="of the chosen [emissions] method"),
        Column("co2_kg", pa.float64(), "kg", nullable=False, doc="diesel and gas: exhaust; electric: the grid's"),
        Column("diesel_l", pa.float64(), "L", nullable=False, doc="diesel burnt (diesel trucks)"),
        Column("gas_kg", pa.float64(), "kg", nullable=False, doc="natural gas burnt (LNG and CNG trucks)"),
        Column("electricity_kwh", pa.float64(), "kWh", nullable=False, doc="grid electricity (electric trucks)"),
        Column("hydrogen_kg", pa.float64(), "kg", nullable=False, doc="hydrogen (fuel-cell trucks)"),
        Column(
            "method", pa.string(), nullable=False, doc="measured_fuel, copert, load_state, unknown_load, mixed_load"
        ),
        Column("fuel_gauge_used", pa.bool_(), nullable=False, doc="the vehicle-month's fuel gauge qualified"),
        Column("nox_kg", pa.float64(), "kg", nullable=False, doc="hot exhaust (MEE guideline; China VI: COPERT)"),
        Column("pm25_kg", pa.float64(), "kg", nullable=False),
        Column("co_kg", pa.float64(), "kg", nullable=False),
        Column("hc_kg", pa.float64(), "kg", nullable=False),
        Column("emission_standard", pa.string(), nullable=False),
        Column("vehicle_class", pa.string(), nullable=False, doc="the COPERT segment"),
        Column("fuel_type", pa.string(), nullable=False, doc="diesel, LNG, CNG, electric or hydrogen"),
        Column("registration_city_adcode", pa.int32(), nullable=False),
        Column("weight", pa.float64(), nullable=False),
        Column("gps_noise_m", pa.float64(), "m", doc="the vehicle's estimated position noise (per axis)"),
        Column("fix_interval_s", pa.float64(), "s", doc="the vehicle's median fix interval while moving"),
    ),
)

INVENTORY = TableSchema(
    "inventory",
    (
        Column("month", pa.string(), nullable=False),
        Column("view", pa.string(), nullable=False, doc="operating or registration"),
        Column("city_adcode", pa.int32(), nullable=False),
        Column("province_adcode", pa.int32(), nullable=False),
        Column("emission_standard", pa.string(), nullable=False),
        Column("method", pa.string(), nullable=False),
        Column("vehicles", pa.int64(), nullable=False),
        Column("vehicles_weighted", pa.float64(), nullable=False),
        Column("distance_km", pa.float64(), _KM, nullable=False),
        Column("distance_km_unweighted", pa.float64(), _KM, nullable=False),
        Column("fuel_l", pa.float64(), "L", nullable=False),
        Column("co2_t", pa.float64(), "t", nullable=False),
        Column("co2_t_unweighted", pa.float64(), "t", nullable=False),
        Column("idle_h", pa.float64(), "h", nullable=False),
        Column("fuel_l_report", pa.float64(), "L", nullable=False),
        Column("fuel_l_copert", pa.float64(), "L", nullable=False),
        Column("fuel_l_measured", pa.float64(), "L", nullable=False),
        Column("nox_t", pa.float64(), "t", nullable=False),
        Column("pm25_t", pa.float64(), "t", nullable=False),
        Column("co_t", pa.float64(), "t", nullable=False),
        Column("hc_t", pa.float64(), "t", nullable=False),
        Column("diesel_l", pa.float64(), "L", nullable=False),
        Column("gas_kg", pa.float64(), "kg", nullable=False),
        Column("electricity_kwh", pa.float64(), "kWh", nullable=False),
        Column("hydrogen_kg", pa.float64(), "kg", nullable=False),
    ),
)

# Gaps too long (in time) or too fast to bridge: their straight-line displacement, never driven km.
UNOBSERVED = TableSchema(
    "unobserved",
    (
        Column("vehicle_id", pa.string(), nullable=False),
        Column("month", pa.string(), nullable=False, doc="month of the fix before the gap"),
        Column("from_city_adcode", pa.int32(), nullable=False),
        Column("to_city_adcode", pa.int32(), nullable=False),
        Column("gaps", pa.int64(), nullable=False),
        Column("unobserved_km", pa.float64(), _KM, nullable=False, doc="straight-line displacement"),
        Column("gap_hours", pa.float64(), "h", nullable=False),
        Column("odometer_gaps", pa.int64(), nullable=False, doc="gaps whose ends carry a plausible odometer"),
        Column("odometer_km", pa.float64(), _KM, nullable=False, doc="their odometer km (driven, route unknown)"),
    ),
)

__all__ = [
    "ACTIVITY",
    "INVENTORY",
    "LOAD_STATES",
    "LOAD_TYPE",
    "PINGS",
    "RUN_VEHICLES",
    "UNOBSERVED",
    "VEHICLES",
    "Column",
    "TableSchema",
]
