"""``truckcarbon gateway --workers 2``: one port, a shared registry, one deduplicated dataset, no acked report lost."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from truckcarbon.jt808.client import AuthenticationRefusedError, Terminal
from truckcarbon.jt808.frame import Header, encode_frame
from truckcarbon.jt808.messages import MSG_DEREGISTER
from truckcarbon.jt808.process import GatewayProcess, free_port
from truckcarbon.jt808.registry import Registry

from .gwkit import NOW, PHONE, PLATE, BackgroundReplay, acks, dataset_keys, dataset_rows, ms, report
from .test_gateway import http_get

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="SO_REUSEPORT workers: Linux")


def dt_s(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


OPTIONS = ("--compact-s", "1", "--max-age-days", "0", "--workers", "2")


def served_by(data: Path) -> dict[int, int]:
    """Connections each running worker accepted so far (its status file)."""
    out = {}
    for f in sorted((data / "run").glob("worker-*.json")):
        status: dict[str, Any] = json.loads(f.read_text())
        out[int(f.stem.split("-")[1])] = int(status["metrics"]["connections_accepted"])
    return out


async def connect(port: int, code: str | None = None) -> Terminal:
    term = await Terminal.open("127.0.0.1", port, PHONE)
    if code is not None:
        await term.authenticate(code)
    return term


async def refusals(port: int, code: str, tries: int = 8) -> int:
    """How many of ``tries`` new connections (to either worker) are refused authenticating with ``code``."""
    refused = 0
    for _ in range(tries):
        term = await connect(port)
        try:
            await term.authenticate(code)
        except AuthenticationRefusedError:
            refused += 1
        term.close()
    return refused


def test_registrations_renewals_and_releases_are_seen_by_every_process_sharing_the_registry(tmp_path: Path) -> None:
    from truckcarbon.jt808.messages import RegisterResult, Registration

    path = tmp_path / "terminals.json"
    a, b = Registry(path), Registry(path, fold=False)  # two workers' registries
    reg = Registration(0, 0, "M", "X", "7", 1, PLATE)
    result, code, _ = a.register(PHONE, reg)
    assert result == RegisterResult.OK
    assert b.authenticate(PHONE, code.encode()) is not None  # registered in a, known in b
    assert b.register("013800000008", Registration(0, 0, "M", "X", "8", 1, PLATE))[0] == (
        RegisterResult.VEHICLE_REGISTERED  # the plate is taken in a
    )
    assert b.register(PHONE, reg)[0] == RegisterResult.TERMINAL_REGISTERED  # not from its own session
    _, renewed, _ = b.register(PHONE, reg, authenticated=True)  # a new code from its session in b
    assert a.authenticate(PHONE, code.encode()) is None  # the old code is void in a at once
    assert a.authenticate(PHONE, renewed.encode()) is not None
    assert a.release(PHONE) is not None
    assert b.authenticate(PHONE, renewed.encode()) is None and b.refresh() == set()  # seen on authenticating
    assert b.register(PHONE, reg)[0] == RegisterResult.OK  # free again, in b
    # A new start folds the journal; what it holds is every change, in order.
    assert len(Registry(path).terminals) == 1 and not path.with_suffix(".jsonl").exists()


def test_two_workers_share_the_port_the_registry_and_one_deduplicated_dataset(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    server = GatewayProcess(data, *OPTIONS)
    sends = 24
    reports = [report(PHONE, k, NOW.replace(second=0) - dt_s(60 * k)) for k in range(1, 6)]

    async def scenario() -> tuple[int, int]:
        first = await connect(server.port)
        code = await first.login("7", PLATE)
        first.close()
        refused = 0
        for _ in range(sends):  # the terminal reconnects (to either worker) and sends the same reports again
            term = await connect(server.port, code)
            term.writer.write(b"".join(reports))
            assert [a.result for a in await acks(term, len(reports))] == [0] * len(reports)
            term.close()
        # A new code given by one worker voids the old one on both.
        term = await connect(server.port, code)
        renewed = await term.register("7", PLATE)
        term.close()
        refused += await refusals(server.port, code)
        # The terminal deregisters (0x0003) on one worker: it is unknown on both.
        term = await connect(server.port, renewed)
        term.writer.write(encode_frame(Header(MSG_DEREGISTER, PHONE, 9), b""))
        assert (await acks(term))[0].result == 0
        term.close()
        refused += await refusals(server.port, renewed)
        return refused, len(served_by(data))

    try:
        refused, workers_seen = asyncio.run(scenario())
        time.sleep(1.5)  # the workers write their counters every second
        accepted = served_by(data)
    finally:
        final = server.stop()
    assert refused == 16 and workers_seen == 2
    assert min(accepted.values()) > 0, f"a worker took no connection: {accepted}"
    keys = dataset_keys(data)
    assert sorted(k[1] for k in keys) == sorted(ms(NOW.replace(second=0) - dt_s(60 * k)) for k in range(1, 6))
    assert final["event"] == "stopped" and final["acked"] == sends * len(reports)
    assert final["compacted"] == len(reports) and final["duplicates"] == (sends - 1) * len(reports)
    assert not list((data / "wal").rglob("*.log")) and not list((data / "run").glob("*.json"))
    assert server.tracebacks() == 0


def test_sigkill_of_the_gateway_and_of_a_worker_loses_no_acknowledged_report(world: Path, tmp_path: Path) -> None:
    data, port = tmp_path / "gw", free_port()
    server = GatewayProcess(data, *OPTIONS, port=port)
    load = BackgroundReplay(world, port)
    try:
        for share in (0.2, 0.5):
            load.wait_for(share)
            server.stop(signal.SIGKILL, timeout_s=30)  # the parent: its workers die with it
            server = GatewayProcess(data, *OPTIONS, port=port)  # recovers every worker's log
        load.wait_for(0.7)
        worker = json.loads((data / "run" / "worker-1.json").read_text())["pid"]
        os.kill(worker, signal.SIGKILL)  # one worker: started again by the parent, its log handed over
        load.thread.join(timeout=120)
    finally:
        final = server.stop()
    assert any(e.get("event") == "worker_exited" for e in server.events())
    load.check_every_acknowledged_report_landed_once(data)
    assert load.summary.reconnects >= 2 and final["event"] == "stopped" and server.tracebacks() == 0


def test_workers_refuse_reports_while_the_one_compaction_fails_and_resume(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    data.mkdir()
    (data / "pings").write_text("not a folder")  # the compaction cannot write the dataset
    metrics_port = free_port()
    server = GatewayProcess(data, *OPTIONS, "--metrics-port", str(metrics_port))
    seen: dict[str, Any] = {}

    async def scenario() -> list[int]:
        term = await connect(server.port)
        code = await term.login("7", PLATE)
        term.writer.write(report(PHONE, 1))
        results = [(await acks(term))[0].result]  # durable in the worker's log
        term.close()
        deadline = time.monotonic() + 30
        while not (data / "wal" / "compaction-failed").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # each worker reads the flag within a second
        for serial in (2, 3, 4, 5):  # on both workers: refused, the terminal keeps them
            term = await connect(server.port, code)
            term.writer.write(report(PHONE, serial, NOW - dt_s(serial)))
            results.append((await acks(term))[0].result)
            term.close()
        seen["failing"] = await asyncio.to_thread(http_get, metrics_port, "/healthz")
        (data / "pings").unlink()  # the disk is fixed
        while (data / "wal" / "compaction-failed").exists() and time.monotonic() < deadline + 30:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        term = await connect(server.port, code)
        term.writer.write(report(PHONE, 6, NOW - dt_s(6)))
        results.append((await acks(term))[0].result)
        term.close()
        await asyncio.sleep(1.5)  # the workers' counters reach the parent within a second
        seen["healthy"] = await asyncio.to_thread(http_get, metrics_port, "/healthz")
        seen["metrics"] = await asyncio.to_thread(http_get, metrics_port, "/metrics")
        return results

    try:
        results = asyncio.run(scenario())
    finally:
        final = server.stop()
    assert results == [0, 1, 1, 1, 1, 0]
    assert seen["failing"][0] == 503 and "compaction" in seen["failing"][1]
    assert seen["healthy"][0] == 200
    # The parent serves the sum of both workers' counters.
    metrics = seen["metrics"][1]
    for line in ("jt808_acked_total 2.0", 'jt808_rejects_total{reason="storage_unavailable"} 4.0',
                 "jt808_terminals_registered 1.0", "jt808_healthy 1.0"):  # fmt: skip
        assert line in metrics, line
    assert sorted(k[1] for k in dataset_keys(data)) == [ms(NOW - dt_s(6)), ms(NOW)]
    assert final["rejects"]["storage_unavailable"] == 4 and final["compaction_failures"] >= 1
    assert server.tracebacks() == 0


def test_a_second_gateway_on_the_same_data_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    server = GatewayProcess(data, *OPTIONS)
    try:
        with pytest.raises(RuntimeError, match="another gateway serves this data folder"):
            GatewayProcess(data, "--max-age-days", "0", timeout_s=10)
    finally:
        server.stop()
    assert not dataset_rows(data)


def test_workers_option_checks_its_value(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from truckcarbon.cli.main import app

    out = CliRunner().invoke(app, ["gateway", "--data", str(tmp_path / "gw"), "--workers", "0"])
    assert out.exit_code != 0 and "--workers 0" in out.output
