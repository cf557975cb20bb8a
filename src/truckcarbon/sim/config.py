"""What determines a simulated world: :class:`SimConfig`, its validation and the named presets.

A configuration is frozen and hashable: the same configuration (seed included)
gives the same world, byte for byte, and the processes of a run key what they
derive from it (:mod:`truckcarbon.sim.context`) by the configuration itself.
:data:`PRESETS` are the named starting points of ``truckcarbon simulate
--preset``; :func:`preset` replaces some of their fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import parse_month
from truckcarbon.sim.defects import DefectRates
from truckcarbon.sim.pingfile import OPTIONAL_CHANNELS

GEOMETRIES = ("straight", "road")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated world."""

    trucks: int = 200
    start_month: str = "2018-01"
    end_month: str = "2023-12"
    interval_s: int = 30
    parked_interval_s: int = 300
    seed: int = 20240601
    defects: DefectRates = field(default_factory=DefectRates)
    load_channel: bool = True
    odometer_channel: bool = True
    fuel_channel: bool = True
    acc_channel: bool = True  # the ignition (ACC) status bit
    rows_per_file: int = 2_000_000
    # Vehicle ids written as text (a str.format pattern of the number, e.g. "0139{:08d}": 12-digit terminal
    # phone numbers with a leading zero, as platforms key them); empty: integers.
    id_format: str = ""
    # "straight": trucks move straight between their true fixes, i.i.d. Gaussian noise (the calibrated
    # world); "road": curved roads driven second by second, lights and idling, receivers of varying
    # quality with correlated, heavy-tailed noise and multipath (truckcarbon.sim.road).
    geometry: str = "straight"

    def months(self) -> list[int]:
        """Month numbers (year * 12 + month - 1) from start to end, inclusive."""
        a, b = parse_month(self.start_month), parse_month(self.end_month)
        if b < a:
            raise InputError(
                f"month range {self.start_month}:{self.end_month} is empty; give START:END with START <= END"
            )
        return list(range(a, b + 1))

    def left_out_channels(self) -> tuple[str, ...]:
        """The optional ping channels (:data:`~truckcarbon.sim.pingfile.OPTIONAL_CHANNELS`) this
        configuration leaves out: written as nulls."""
        kept = (self.load_channel, self.odometer_channel, self.fuel_channel, self.acc_channel)
        return tuple(name for name, k in zip(OPTIONAL_CHANNELS, kept, strict=True) if not k)

    def validate(self) -> None:
        """Raise :class:`~truckcarbon.core.errors.InputError` naming the first unusable field."""
        if self.trucks <= 0:
            raise InputError(f"--trucks must be a positive number of trucks, got {self.trucks}")
        if self.interval_s <= 0 or self.parked_interval_s < self.interval_s:
            raise InputError("--interval-s must be positive and the parked interval at least as long")
        self.months()
        if self.geometry not in GEOMETRIES:
            raise InputError(f"geometry {self.geometry!r} is not one of {', '.join(GEOMETRIES)}")
        if self.id_format:
            _validate_id_format(self.id_format)
        self.defects.validate()


def _validate_id_format(id_format: str) -> None:
    """Refuse an ``id_format`` that is not a pattern of one number or gives two vehicles the same id."""
    try:
        texts = {id_format.format(1), id_format.format(2)}
    except (IndexError, KeyError, ValueError) as exc:
        raise InputError(f"id_format {id_format!r} is not a pattern of one number ({exc})") from None
    if len(texts) < 2:
        raise InputError(f"id_format {id_format!r} gives every vehicle the same id; use e.g. 0139{{:08d}}")


PRESETS: dict[str, SimConfig] = {
    # Small enough for `make demo` on two cores, large enough for every figure of the report.
    "demo": SimConfig(trucks=1000, interval_s=120, parked_interval_s=1800),
    # Hundreds of millions of pings for benchmarks.
    "bench": SimConfig(trucks=3000, start_month="2023-01", end_month="2023-12", interval_s=30),
}


def preset(name: str, **overrides: object) -> SimConfig:
    """A named configuration with some fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
