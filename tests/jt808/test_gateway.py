"""The gateway end to end: a replayed fleet lands once, SIGKILL loses no acknowledged report, operations.

Operations: compaction failures are retried and visible, the metrics, health
and readiness endpoints, compaction under a file-descriptor limit, vehicle ids
as text.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.compactor import Compactor
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.gateway import Gateway
from truckcarbon.jt808.process import GatewayProcess, free_port
from truckcarbon.jt808.registry import known_vehicles
from truckcarbon.jt808.replay import replay_async

from .gwkit import (
    NOW,
    PHONE,
    BackgroundReplay,
    acks,
    child_gateway,
    dataset_keys,
    dataset_rows,
    ms,
    poll,
    report,
    running,
    terminal,
)


def test_replayed_fleet_lands_in_the_dataset_once(fleet: Path, tmp_path: Path) -> None:
    server = child_gateway(tmp_path / "gw")
    summary = asyncio.run(replay_async(fleet / "pings", fleet / "vehicles.parquet", "127.0.0.1", server.port, 8))
    final = server.stop()
    assert summary.sent > 1000 and summary.acked == summary.sent and summary.failed == 0
    keys = dataset_keys(tmp_path / "gw")
    assert len(keys) == len(set(keys))  # deduplicated on (vehicle, time)
    # The simulator's deliberate (0, 0) fixes are acknowledged and set aside, like the pipeline's ingest does.
    aside = dataset_rows(tmp_path / "gw", "quarantine")
    assert aside and {r["reason"] for r in aside} == {"zero_fix"}
    assert set(keys) | {(int(r["vehicle_id"]), r["ts"]) for r in aside} == set(summary.acked_keys)
    assert final["event"] == "stopped" and final["acked"] == summary.acked
    # The dataset is what `truckcarbon run` reads.
    t = ds.dataset(tmp_path / "gw" / "pings", format="parquet", partitioning="hive").to_table()
    assert {"vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km", "acc_on"} <= set(t.column_names)
    # The simulated ignition (status bit 0) arrives: on while driving, off while parked.
    assert 0 < pc.sum(t["acc_on"]).as_py() < t.num_rows


def test_simulate_replay_gateway_run_gives_the_inventory_of_the_files(fleet: Path, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from truckcarbon.pipeline import run_pipeline

    # The simulated terminals have load sensors: status bits 8-9 = 00 is "empty" for every one of them.
    server = child_gateway(tmp_path / "gw", "--load-sensing", "all")
    summary = asyncio.run(replay_async(fleet / "pings", fleet / "vehicles.parquet", "127.0.0.1", server.port, 8))
    server.stop()
    assert summary.failed == 0
    run_pipeline(tmp_path / "gw" / "pings", fleet / "vehicles.parquet", tmp_path / "via-gateway")
    run_pipeline(fleet / "pings", fleet / "vehicles.parquet", tmp_path / "direct")
    keys = [("month", "ascending"), ("view", "ascending"), ("city_adcode", "ascending"),
            ("emission_standard", "ascending"), ("method", "ascending")]  # fmt: skip
    a = pq.read_table(tmp_path / "via-gateway" / "inventory").sort_by(keys)
    b = pq.read_table(tmp_path / "direct" / "inventory").sort_by(keys)
    for col in ("month", "view", "city_adcode", "emission_standard", "method", "vehicles"):
        assert a[col].to_pylist() == b[col].to_pylist(), col
    # JT/T 808 carries coordinates to 1e-6 degree, speed to 0.1 km/h, fuel to 0.1 L: the same figures to 1e-4.
    for col in ("distance_km", "fuel_l", "co2_t"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-4)


def test_sigkill_three_times_replay_reconnects_and_every_acknowledged_report_lands_once(
    world: Path, tmp_path: Path
) -> None:
    data, port = tmp_path / "gw", free_port()
    options = ("--compact-s", "1", "--max-age-days", "0")
    server = GatewayProcess(data, *options, port=port)
    load = BackgroundReplay(world, port)
    try:
        for share in (0.15, 0.4, 0.65):
            load.wait_for(share)
            server.stop(signal.SIGKILL, timeout_s=30)  # in the middle of the load
            server = GatewayProcess(data, *options, port=port)  # recovers the log left by the kill
        load.thread.join(timeout=120)
    finally:
        server.stop()
    assert load.summary.reconnects >= 3 and load.summary.resent > 0
    load.check_every_acknowledged_report_landed_once(data)


def test_compaction_failures_are_retried_visible_and_stop_acknowledgements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "gw"
    failing = {"on": False}
    real_write = Compactor.write

    def flaky_write(self: Compactor, month: int, sel: Any, vids: list[Any]) -> None:
        if failing["on"]:
            raise OSError(24, "Too many open files")
        real_write(self, month, sel, vids)

    monkeypatch.setattr(Compactor, "write", flaky_write)

    async def scenario() -> None:
        async with (
            running(data, compact_s=0.1, compaction_retry_max_s=0.2, metrics_port=0) as (gw, port),
            terminal(port, PHONE) as term,
        ):
            await term.login("7", "京A00007")
            failing["on"] = True
            term.writer.write(report(PHONE, 1))
            assert (await acks(term))[0].result == 0  # durable in the log
            await poll(lambda: gw.metrics.compaction_failures >= 2)  # retried
            status = gw.status()
            assert status["healthy"] == 0 and status["ready"] == 0 and "Too many open files" in status["problems"][0]
            assert status["wal_bytes"] > 0
            assert (await asyncio.to_thread(http_get, gw.http_port, "/healthz"))[0] == 503
            term.writer.write(report(PHONE, 2, NOW + dt.timedelta(seconds=30)))
            assert (await acks(term))[0].result == 1  # not taken in while the log cannot be compacted
            failing["on"] = False
            await poll(lambda: gw.compactor.error is None)  # resumes by itself, no restart
            await poll(lambda: len(dataset_rows(data)) == 1)
            assert (await asyncio.to_thread(http_get, gw.http_port, "/healthz"))[0] == 200
            assert (await asyncio.to_thread(http_get, gw.http_port, "/readyz"))[0] == 200
            term.writer.write(report(PHONE, 3, NOW + dt.timedelta(seconds=30)))
            assert (await acks(term))[0].result == 0
            assert gw.metrics.rejects["storage_unavailable"] == 1

    asyncio.run(scenario())
    assert sorted(r["ts"] for r in dataset_rows(data)) == [ms(NOW), ms(NOW) + 30_000]


def http_get(port: int | None, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_metrics_health_and_readiness_endpoints(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", metrics_port=0) as (gw, port), terminal(port, PHONE) as term:
            await term.login("7", "京A00007")
            term.writer.write(report(PHONE, 1) + report("013800000666", 2) + report(PHONE, 3, lat=95.0))
            assert sorted((a.serial, a.result) for a in await acks(term, 3)) == [(1, 0), (2, 1), (3, 0)]
            status, text = await asyncio.to_thread(http_get, gw.http_port, "/metrics")
            assert status == 200
            for line in ("jt808_reports_total 2.0", "jt808_acked_total 2.0", "jt808_connections 1.0",
                         'jt808_rejects_total{reason="phone_mismatch"} 1.0',
                         'jt808_quarantine_reasons_total{reason="bad_coordinates"} 1.0',
                         "jt808_healthy 1.0", "jt808_terminals_registered 1.0"):  # fmt: skip
                assert line in text, line
            assert "jt808_wal_bytes" in text and "jt808_compaction_lag_seconds" in text
            status, body = await asyncio.to_thread(http_get, gw.http_port, "/readyz")
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert (await asyncio.to_thread(http_get, gw.http_port, "/nothing"))[0] == 404

    asyncio.run(scenario())


def test_compaction_goes_on_under_a_64_descriptor_limit_with_connections_flooding(tmp_path: Path) -> None:
    """The connection cap keeps descriptors for the log and the compaction; reports reach the dataset while running."""
    data = tmp_path / "gw"
    server = GatewayProcess(data, "--compact-s", "0.3", "--max-age-days", "0", max_open_files=64)
    hogs: list[socket.socket] = []

    async def scenario() -> None:
        async with terminal(server.port, PHONE) as term:
            await term.login("7", "京A00007")
            for _ in range(80):  # more connections than descriptors
                hogs.append(socket.create_connection(("127.0.0.1", server.port)))
            for round_ in range(2):
                frames = [
                    report(PHONE, 10 * round_ + k, NOW + dt.timedelta(seconds=100 * round_ + k)) for k in range(10)
                ]
                term.writer.write(b"".join(frames))
                assert [a.result for a in await acks(term, 10)] == [0] * 10
                await poll(lambda n=10 * (round_ + 1): len(dataset_rows(data)) == n)  # compacted without a restart
                for s in hogs:
                    s.close()
                hogs.clear()

    try:
        asyncio.run(scenario())
        assert server.alive
    finally:
        for s in hogs:
            s.close()
        final = server.stop()
    listening = next(e for e in server.events() if e.get("event") == "listening")
    assert 1 <= listening["connection_cap"] < 64
    assert final["rejects"].get("connection_cap", 0) > 0 and final["compaction_failures"] == 0
    assert server.tracebacks() == 0 and all(e.get("event") != "torn_line" for e in server.events())


def test_text_vehicle_ids_and_a_leading_zero_phone_end_to_end(tmp_path: Path) -> None:
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text("vehicle_id,plate\n013912345678,鲁A12345\n鲁B00001,鲁B00001\n", encoding="utf-8")
    table = known_vehicles(vehicles)
    assert table == {"鲁A12345": "013912345678", "鲁B00001": "鲁B00001"}  # text, leading zero kept

    async def scenario() -> None:
        async with running(tmp_path / "gw", known_vehicles=table) as (gw, port):
            assert gw.registry.id_kind == "text"
            for phone, plate, tid in (("013912345678", "鲁A12345", "T1"), ("000000000042", "鲁B00001", "T2")):
                term = await Terminal.open("127.0.0.1", port, phone)
                await term.login(tid, plate)
                term.writer.write(report(phone, 7))
                assert (await acks(term))[0].result == 0
                term.close()

    asyncio.run(scenario())
    rows = dataset_rows(tmp_path / "gw")
    assert sorted((r["vehicle_id"], r["ts"]) for r in rows) == [("013912345678", ms(NOW)), ("鲁B00001", ms(NOW))]
    # The same folder cannot be reopened with integer vehicle ids.
    from truckcarbon.core.errors import InputError

    with pytest.raises(InputError, match="one kind"):
        Gateway(GatewayConfig(data=tmp_path / "gw", known_vehicles={"鲁A12345": 1}))
