"""Run configuration: cleaning rules, emission settings and partitioning, from a TOML file.

Example ``truckcarbon.toml`` (every key optional; the defaults shown)::

    crs = "wgs84"                 # coordinates of the pings: wgs84 or gcj02
    context_hours = 24            # fixes read either side of a month so its edges are exact
    rows_per_partition = 4000000  # pings held in memory at once (bounds peak memory)
    partition_memory_mb = 512     # unsorted input's partitions held in memory, spilled to disk past this
    spill_compression = "lz4"     # their spill files: none, lz4 or zstd (docs/scale.md)
    threads = 2                   # kernel threads (at most the machine's cores)
    encoding = ""                 # CSV encoding: utf-8, utf-8-sig, gbk, gb18030; empty: detected
    ts_format = ""                # an extra strptime format for ts, e.g. "%d.%m.%Y %H:%M:%S"
    time_min = "2000-01-01"       # fixes before this local date are time_out_of_range
    time_max = ""                 # ... and after this one (empty: one day after the run's clock)
    max_quarantine_share = 0.05   # a file with more of its rows set aside is flagged loudly

    [columns]                     # header in the file = contract column (common Chinese headers are known)
    "车辆ID" = "vehicle_id"

    [rules]
    max_speed_kmh = 150
    reanchor_after = 3
    drift_m = 30
    drift_kmh = 5
    noise_rules = false           # rule 7, the robust distance for real receivers (docs/accuracy.md):
    band_floor_m = 30             # the dead band of a standing truck: at least this radius ...
    band_sigmas = 4.5             # ... and this many times the vehicle's estimated noise (pair scale)
    stop_kmh = 2                  # a speed below this is standing
    default_noise_m = 10          # the noise of a vehicle with too few standing fixes to estimate it
    use_speed = true              # integrate the speed channel when it is consistent with the positions
    turn_correction = true        # positions only: noise excess off, the arcs and bends a chord misses on
    use_acc = true                # nothing accrues between ignition-off fixes (when the bit is consistent)
    gap_s = 1200
    max_bridge_kmh = 120
    gap_circuity = 1.05
    refuel_l = 5
    max_fuel_l_per_km = 1.5
    odometer_after_s = 150
    max_bridge_s = 14400          # a segment longer (4 h) is never bridged: unobserved
    idle_stop_s = 900             # without a consistent ignition bit, a stop idles its first 15 min
    max_vehicle_kmh = 130         # a stretch faster than this for sustained_s is not truck driving
    sustained_s = 60

    [emissions]
    method = "report"             # report (the source report's rates), copert (speed and load, idle), measured
    reference_speed_kmh = 60
    emission_factor = "diesel_ttw_ghg_protocol_2017"
    min_fuel_coverage = 0.8
    min_rate_l_per_100km = 10
    max_rate_l_per_100km = 80
    copert_factors = ""           # a COPERT table of one's own (copert_hdv.csv's columns); "": the shipped one
    fuel_factors = ""             # a fuel table of one's own (fuel_types.csv's columns): units per diesel litre
    grid_factors = ""             # grid CO2 per kWh of one's own (grid_factors.csv's columns), by province and year
    default_speed_kmh = 60        # copert's speed for km without a speed profile (activity given as km)
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.method import EmissionSettings
from truckcarbon.ingest.columns import CONTRACT
from truckcarbon.ingest.rules import IngestRules
from truckcarbon.ingest.sources import SourceOptions
from truckcarbon.trajectory.rules import CleaningRules

CRS_NAMES = ("wgs84", "gcj02", "bd09")
ENCODINGS = ("utf-8", "utf-8-sig", "gbk", "gb18030", "gb2312")


SPILL_CODECS = ("none", "lz4", "zstd")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that changes a run's numbers (recorded in the manifest)."""

    rules: CleaningRules = field(default_factory=CleaningRules)
    emissions: EmissionSettings = field(default_factory=EmissionSettings)
    crs: str = "wgs84"
    context_hours: float = 24.0
    rows_per_partition: int = 4_000_000
    partition_memory_mb: int = 512
    spill_compression: str = "lz4"
    threads: int = 2
    encoding: str = ""
    ts_format: str = ""
    time_min: str = ""
    time_max: str = ""
    max_quarantine_share: float = 0.05
    columns: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.crs not in CRS_NAMES:
            raise InputError(f"crs must be one of {', '.join(CRS_NAMES)}, not {self.crs!r}")
        if self.encoding and self.encoding.lower().replace("_", "-") not in ENCODINGS:
            raise InputError(
                f"encoding must be one of {', '.join(ENCODINGS)} (or empty: detected), not {self.encoding!r}"
            )
        if not 0 <= self.max_quarantine_share <= 1:
            raise InputError("max_quarantine_share must be between 0 and 1")
        if not isinstance(self.columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items()
        ):
            raise InputError('[columns] must map header names to contract names, e.g. "车辆ID" = "vehicle_id"')
        self.ingest_rules()
        if not 0 <= self.context_hours <= 24 * 27:
            raise InputError("context_hours must be between 0 and 648 (27 days)")
        if self.rows_per_partition < 1000:
            raise InputError("rows_per_partition must be at least 1000")
        if self.partition_memory_mb < 0:
            raise InputError("partition_memory_mb must be 0 (spill every partition) or more")
        if self.threads < 1:
            raise InputError("threads must be at least 1")
        if self.spill_compression not in SPILL_CODECS:
            raise InputError(
                f"spill_compression must be one of {', '.join(SPILL_CODECS)}, not {self.spill_compression!r}"
            )
        self.emissions.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def source_options(self, kind: str) -> SourceOptions:
        """How the files of ``kind`` (pings or vehicles) are read: encoding and header mapping (the built-in
        headers of that kind and ``[columns]``; a mapping names columns of either table)."""
        return SourceOptions(encoding=self.encoding or None, columns=self.columns_for(kind), kind=kind)

    def columns_for(self, kind: str) -> dict[str, str]:
        """The ``[columns]`` entries that name columns of ``kind``'s table."""
        wanted = set(CONTRACT[kind])
        return {k: v for k, v in self.columns.items() if v in wanted}

    def ingest_rules(self) -> IngestRules:
        """How ping values are read (time format, plausible window); raises InputError on a bad setting."""
        return IngestRules.from_settings(self.ts_format, self.time_min, self.time_max)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> PipelineConfig:
        """Build from a mapping like the TOML file; unknown keys are an error."""

        def build(kind: type[Any], values: object, where: str) -> Any:
            if not isinstance(values, dict):
                raise InputError(f"{source}: [{where}] must be a table of settings")
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = sorted(set(values) - names)
            if unknown:
                raise InputError(
                    f"{source}: unknown setting(s) {', '.join(unknown)} in [{where}]; known: {', '.join(sorted(names))}"
                )
            try:
                return kind(**values)
            except TypeError as exc:
                raise InputError(f"{source}: [{where}] {exc}") from None

        top = dict(data)
        rules = build(CleaningRules, top.pop("rules", {}), "rules")
        emission_values = top.pop("emissions", {})
        if isinstance(emission_values, dict) and "fuel_source" in emission_values:
            raise InputError(
                f'{source}: [emissions] fuel_source is now method: fuel_source = "auto" is method = "measured",'
                ' fuel_source = "report" is method = "report"'
            )
        emissions = build(EmissionSettings, emission_values, "emissions")
        config: PipelineConfig = build(cls, {**top, "rules": rules, "emissions": emissions}, "top level")
        config.validate()
        return config

    @classmethod
    def from_file(cls, path: Path) -> PipelineConfig:
        """Read a TOML configuration file."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({exc})") from None
        return cls.from_dict(data, str(path))
