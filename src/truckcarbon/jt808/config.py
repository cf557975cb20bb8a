"""The gateway's settings and their defaults, in one place (``truckcarbon gateway`` sets them from its options).

What each one bounds is told where it is applied: deadlines, connection caps and
sub-package bounds in :mod:`truckcarbon.jt808.server` and
:mod:`truckcarbon.jt808.dispatch`, the log's group commit in
:mod:`truckcarbon.jt808.wal`, the compaction's period and back-off in
:mod:`truckcarbon.jt808.compactor`, the registration allow-lists in
:mod:`truckcarbon.jt808.registry` and the valid ranges of a report in
:mod:`truckcarbon.jt808.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from truckcarbon.jt808.registry import VehicleId
from truckcarbon.jt808.validation import Limits

LOAD_SENSING = ("listed", "all", "none")


@dataclass
class GatewayConfig:
    """Gateway settings; every default is here.

    ``known_vehicles`` (plate -> vehicle id) and ``known_terminals`` (terminal
    phone numbers) are the platform's allow-lists for registration; None accepts
    any plate or terminal. ``load_sensors``: the terminals whose status bits 8-9
    = 00 mean empty (``load_sensing="listed"``; ``"all"``: every terminal's;
    ``"none"``: the load state is never taken from the status). ``limits``: the
    valid ranges of a report. ``dedup_months`` is how many months, up to the
    newest one reported, keep their deduplication keys in memory.
    """

    host: str = "127.0.0.1"
    port: int = 7808
    data: Path = Path("gateway_data")
    max_frame: int = 4096
    idle_timeout_s: float = 300.0
    auth_timeout_s: float = 30.0
    frame_timeout_s: float = 10.0
    max_reports_per_s: float = 20000.0
    compact_s: float = 5.0
    compaction_retry_max_s: float = 30.0
    commit_interval_s: float = 0.002
    load_sensing: str = "listed"
    load_sensors: frozenset[str] = frozenset()
    max_partial_messages: int = 16
    max_partial_bytes: int = 1 << 20
    max_partial_bytes_total: int = 64 << 20
    partial_timeout_s: float = 60.0
    max_connections: int = 10000
    max_connections_per_address: int = 256
    max_preauth_bytes: int = 16384
    max_auth_failures: int = 3
    max_registrations: int = 3  # registration attempts per connection (a terminal registers itself once)
    known_vehicles: Mapping[str, VehicleId] | None = None
    known_terminals: frozenset[str] | None = None
    dedup_months: int = 2
    limits: Limits = field(default_factory=Limits)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None  # None: no HTTP endpoint; 0: a free port

    def __post_init__(self) -> None:
        if self.load_sensing not in LOAD_SENSING:
            raise ValueError(f"load_sensing {self.load_sensing!r}: use one of {', '.join(LOAD_SENSING)}")
