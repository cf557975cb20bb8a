"""JT/T 808 commands: ``gateway`` (serve terminals: registration, authentication, location reports),
``gateway terminals list`` and ``gateway terminals release`` (the terminal bindings), and ``replay``
(send a simulated fleet's pings to a gateway from many terminals)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from truckcarbon.cli.common import console, friendly


@friendly
def gateway(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(help="Folder for the terminal registry, the write-ahead log, pings/, quarantine/.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7808,
    compact_s: Annotated[float, typer.Option(help="Seconds between compactions into pings/.")] = 5.0,
    max_frame: Annotated[int, typer.Option(help="Largest frame accepted, bytes.")] = 4096,
    idle_timeout_s: Annotated[
        float, typer.Option(help="Close connections without a complete frame this long.")
    ] = 300.0,
    auth_timeout_s: Annotated[float, typer.Option(help="Close connections not authenticated this long.")] = 30.0,
    frame_timeout_s: Annotated[
        float, typer.Option(help="Close connections whose frame is not complete this long.")
    ] = 10.0,
    max_reports_per_s: Annotated[float, typer.Option(help="Reports per second per connection.")] = 20000.0,
    max_connections: Annotated[
        int, typer.Option(help="Connections at once (also kept below the open-file limit).")
    ] = 10000,
    max_connections_per_address: Annotated[int, typer.Option(help="Connections at once from one address.")] = 256,
    max_preauth_bytes: Annotated[
        int, typer.Option(help="Frame bytes a connection may send before authenticating.")
    ] = 16384,
    max_age_days: Annotated[
        float, typer.Option(help="Quarantine reports older than this (blind-area uploads come late); 0: any age.")
    ] = 90.0,
    max_future_s: Annotated[float, typer.Option(help="Quarantine reports this far ahead of the server clock.")] = 900.0,
    load_sensing: Annotated[
        str,
        typer.Option(
            help="Status bits 8-9 = 00 mean empty for: listed (terminals marked load-sensor in --terminals), "
            "all, or none (the load state is never taken from the status)."
        ),
    ] = "listed",
    no_load_bits: Annotated[bool, typer.Option("--no-load-bits", help="The same as --load-sensing none.")] = False,
    vehicles: Annotated[
        Path | None,
        typer.Option(
            help="Vehicles the platform knows (Parquet or CSV with plate and vehicle_id): "
            "a registration with another plate is refused (0x8100 result 2)."
        ),
    ] = None,
    terminals: Annotated[
        Path | None,
        typer.Option(
            help="Terminals the platform knows (text: a phone number per line, optionally followed by "
            "load-sensor): others get result 4."
        ),
    ] = None,
    dedup_months: Annotated[int, typer.Option(help="Months whose (vehicle, time) keys stay in memory.")] = 2,
    partial_timeout_s: Annotated[
        float, typer.Option(help="Drop a sub-packaged message this long after its first piece if incomplete.")
    ] = 60.0,
    max_partial_messages: Annotated[
        int, typer.Option(help="Incomplete sub-packaged messages held per connection.")
    ] = 16,
    max_partial_bytes: Annotated[int, typer.Option(help="Sub-package bytes held per connection.")] = 1048576,
    max_partial_bytes_total: Annotated[
        int, typer.Option(help="Sub-package bytes held over all connections.")
    ] = 67108864,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics (Prometheus), /healthz and /readyz on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address of the metrics endpoint.")] = "127.0.0.1",
    workers: Annotated[
        int,
        typer.Option(
            help="Gateway processes sharing the port (SO_REUSEPORT), each with its own write-ahead log; "
            "one compaction deduplicates across them. About one per core."
        ),
    ] = 1,
) -> None:
    """A JT/T 808 gateway: registration, authentication, location reports acknowledged once durable."""
    if ctx.invoked_subcommand is not None:
        return
    from truckcarbon.core.errors import InputError
    from truckcarbon.jt808.config import GatewayConfig
    from truckcarbon.jt808.gateway import run_gateway
    from truckcarbon.jt808.registry import known_vehicles, read_terminal_list
    from truckcarbon.jt808.validation import Limits
    from truckcarbon.jt808.workers import run_workers

    if data is None:
        raise InputError("--data is required: the folder for the registry, the log and the datasets")
    if not 1 <= workers <= 256:
        raise InputError(f"--workers {workers}: give 1 to 256 processes")
    if load_sensing not in ("listed", "all", "none"):
        raise InputError(f"--load-sensing {load_sensing!r}: use listed, all or none")
    listed = None if terminals is None else read_terminal_list(terminals)
    config = GatewayConfig(
        host=host,
        port=port,
        data=data,
        max_frame=max_frame,
        idle_timeout_s=idle_timeout_s,
        auth_timeout_s=auth_timeout_s,
        frame_timeout_s=frame_timeout_s,
        max_reports_per_s=max_reports_per_s,
        compact_s=compact_s,
        load_sensing="none" if no_load_bits else load_sensing,
        load_sensors=frozenset() if listed is None else listed.load_sensors,
        known_vehicles=None if vehicles is None else known_vehicles(vehicles),
        known_terminals=None if listed is None else listed.phones,
        dedup_months=dedup_months,
        partial_timeout_s=partial_timeout_s,
        max_partial_messages=max_partial_messages,
        max_partial_bytes=max_partial_bytes,
        max_partial_bytes_total=max_partial_bytes_total,
        max_connections=max_connections,
        max_connections_per_address=max_connections_per_address,
        max_preauth_bytes=max_preauth_bytes,
        limits=Limits(max_age_s=max_age_days * 86400.0, max_future_s=max_future_s),
        metrics_host=metrics_host,
        metrics_port=metrics_port,
    )
    if workers > 1:
        run_workers(config, workers)
    else:
        run_gateway(config)


@friendly
def gateway_terminals_list(
    data: Annotated[Path, typer.Option(help="The gateway's --data folder.")],
) -> None:
    """The terminals bound to vehicles (phone, vehicle id, plate, terminal id; never a code)."""
    import datetime as dt

    from truckcarbon.jt808.registry import read_bindings

    rows = read_bindings(data)
    table = Table("phone", "vehicle id", "plate", "terminal id", "registered (UTC)", "release")
    for r in rows:
        when = "" if r["registered_at"] is None else dt.datetime.fromtimestamp(r["registered_at"], dt.UTC)
        table.add_row(r["phone"], str(r["vehicle_id"]), r["plate"], r["terminal_id"], str(when)[:19],
                      "pending" if r["release_pending"] else "")  # fmt: skip
    console.print(table)
    console.print(f"{len(rows):,} terminals bound")


@friendly
def gateway_terminals_release(
    phones: Annotated[list[str], typer.Argument(help="Terminal phone numbers to release.")],
    data: Annotated[Path, typer.Option(help="The gateway's --data folder.")],
) -> None:
    """Unbind terminals: their vehicle and plate are free, the terminal (or its replacement) may register again.

    The running gateway carries it out within a second (and closes the terminal's
    connection), a stopped one when it next starts.
    """
    from truckcarbon.jt808.registry import queue_release

    path = queue_release(data, phones)
    console.print(f"release of {', '.join(phones)} queued ({path.name}); the gateway applies it within a second")


@friendly
def replay(
    pings: Annotated[Path, typer.Option(help="Pings dataset written by `truckcarbon simulate`.")],
    vehicles: Annotated[Path, typer.Option(help="Its vehicles table.")],
    to: Annotated[str, typer.Option(help="Gateway HOST:PORT.")],
    terminals: Annotated[int, typer.Option(help="Terminals connected at once.")] = 100,
    speedup: Annotated[
        float, typer.Option(help="Replay at this multiple of real time (0: as fast as possible).")
    ] = 0.0,
    acked_out: Annotated[
        Path | None, typer.Option(help="Write the acknowledged (vehicle_id, ts_ms) pairs to this CSV file.")
    ] = None,
    codes: Annotated[
        Path | None,
        typer.Option(help="Keep the terminals' authentication codes in this file (to replay again later)."),
    ] = None,
    reconnect_s: Annotated[float, typer.Option(help="Give up after the gateway is unreachable this long.")] = 60.0,
) -> None:
    """Send a fleet's pings to a gateway over JT/T 808 from many concurrent terminals (reconnecting as needed)."""
    from truckcarbon.jt808.replay import replay as run_replay

    summary = run_replay(pings, vehicles, to, terminals, speedup, acked_out, codes, reconnect_s)
    console.print(
        f"{summary.terminals:,} terminals: sent {summary.sent:,}, acknowledged {summary.acked:,}, "
        f"resent {summary.resent:,} ({summary.reconnects:,} reconnections), refused {summary.refused:,}, "
        f"given up {summary.unsent:,}, skipped {summary.skipped:,} (bad coordinates) in {summary.seconds:.1f} s "
        f"({summary.acked / max(summary.seconds, 1e-9):,.0f} reports/s)"
    )
    if summary.failed:
        raise typer.Exit(code=1)
