"""Run configuration: cleaning rules, emission settings and partitioning, from a TOML file.

Example ``truckcarbon.toml`` (every key optional; the defaults shown)::

    crs = "wgs84"                 # coordinates of the pings: wgs84 or gcj02
    context_hours = 24            # fixes read either side of a month so its edges are exact
    rows_per_partition = 4000000  # pings held in memory at once (bounds peak memory)
    threads = 2                   # kernel threads (at most the machine's cores)

    [rules]
    max_speed_kmh = 150
    reanchor_after = 3
    drift_m = 30
    drift_kmh = 5
    gap_s = 1200
    max_bridge_kmh = 120
    gap_circuity = 1.05
    refuel_l = 5
    max_fuel_l_per_km = 1.5
    odometer_after_s = 150

    [emissions]
    fuel_source = "auto"          # auto: measured fuel when plausible; report: never
    reference_speed_kmh = 60
    emission_factor = "diesel_ttw_ghg_protocol_2017"
    min_fuel_coverage = 0.8
    min_rate_l_per_100km = 10
    max_rate_l_per_100km = 80
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from truckcarbon.core.errors import InputError
from truckcarbon.emissions.method import EmissionSettings
from truckcarbon.trajectory.kernel import CleaningRules


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that changes a run's numbers (recorded in the manifest)."""

    rules: CleaningRules = field(default_factory=CleaningRules)
    emissions: EmissionSettings = field(default_factory=EmissionSettings)
    crs: str = "wgs84"
    context_hours: float = 24.0
    rows_per_partition: int = 4_000_000
    threads: int = 2

    def validate(self) -> None:
        if self.crs not in ("wgs84", "gcj02"):
            raise InputError(f"crs must be 'wgs84' or 'gcj02', not {self.crs!r}")
        if not 0 <= self.context_hours <= 24 * 27:
            raise InputError("context_hours must be between 0 and 648 (27 days)")
        if self.rows_per_partition < 1000:
            raise InputError("rows_per_partition must be at least 1000")
        if self.threads < 1:
            raise InputError("threads must be at least 1")
        self.emissions.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
        emissions = build(EmissionSettings, top.pop("emissions", {}), "emissions")
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
