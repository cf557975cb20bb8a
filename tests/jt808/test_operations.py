"""The gateway operated: compaction failures, few file descriptors, memory under abuse, metrics, replay faults."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from gwkit import NOW, acks, dataset_rows, ms, report, running

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.codec import MSG_BATCH_LOCATION, Header, Location, split_message
from truckcarbon.jt808.process import GatewayProcess, free_port
from truckcarbon.jt808.registry import read_bindings
from truckcarbon.jt808.replay import ReplaySummary, phone_for, replay, replay_async
from truckcarbon.jt808.storage import Compactor
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate

PHONE = "013800000007"


async def poll(check: Any, timeout_s: float = 30.0) -> None:
    """Wait until ``check()`` is true (a test that fails waits ``timeout_s``, one that passes does not)."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.05)


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
        async with running(data, compact_s=0.1, compaction_retry_max_s=0.2, metrics_port=0) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, PHONE)
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
            await poll(lambda: gw.compaction_error is None)  # resumes by itself, no restart
            await poll(lambda: len(dataset_rows(data)) == 1)
            assert (await asyncio.to_thread(http_get, gw.http_port, "/healthz"))[0] == 200
            assert (await asyncio.to_thread(http_get, gw.http_port, "/readyz"))[0] == 200
            term.writer.write(report(PHONE, 3, NOW + dt.timedelta(seconds=30)))
            assert (await acks(term))[0].result == 0
            assert gw.metrics.rejects["storage_unavailable"] == 1
            term.close()

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
        async with running(tmp_path / "gw", metrics_port=0) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, PHONE)
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
            term.close()

    asyncio.run(scenario())


def test_compaction_goes_on_under_a_64_descriptor_limit_with_connections_flooding(tmp_path: Path) -> None:
    """The connection cap keeps descriptors for the log and the compaction; reports reach the dataset while running."""
    data = tmp_path / "gw"
    server = GatewayProcess(data, "--compact-s", "0.3", "--max-age-days", "0", max_open_files=64)
    hogs: list[socket.socket] = []

    async def scenario() -> None:
        term = await Terminal.open("127.0.0.1", server.port, PHONE)
        await term.login("7", "京A00007")
        for _ in range(80):  # more connections than descriptors
            hogs.append(socket.create_connection(("127.0.0.1", server.port)))
        for round_ in range(2):
            frames = [report(PHONE, 10 * round_ + k, NOW + dt.timedelta(seconds=100 * round_ + k)) for k in range(10)]
            term.writer.write(b"".join(frames))
            assert [a.result for a in await acks(term, 10)] == [0] * 10
            await poll(lambda n=10 * (round_ + 1): len(dataset_rows(data)) == n)  # compacted without a restart
            for s in hogs:
                s.close()
            hogs.clear()
        term.close()

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


def rss_mib(server: GatewayProcess) -> float:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS"))) / 1024


def test_pre_authentication_sub_packages_and_abusive_connections_leave_memory_bounded(tmp_path: Path) -> None:
    """100 connections pushing sub-package pieces before authenticating, then 40 authenticated ones doing it."""
    data = tmp_path / "gw"
    server = GatewayProcess(data, "--max-partial-bytes-total", str(16 << 20), "--max-connections-per-address", "500")
    item = struct.pack(">H", 28) + Location(lat=30, lon=114, time=NOW).encode()
    body = struct.pack(">HB", 15000, 1) + item * 15000  # about 0.45 MB: 440 pieces, never completed (last one kept)

    async def push(phone: str, terminal_id: str | None) -> Terminal:
        term = await Terminal.open("127.0.0.1", server.port, phone)
        if terminal_id is not None:
            await term.login(terminal_id)
        pieces = split_message(Header(MSG_BATCH_LOCATION, phone, 1), body)[:-1]
        try:
            term.writer.write(b"".join(pieces))
            await term.writer.drain()
        except ConnectionError:
            pass
        return term

    async def scenario() -> tuple[float, float, float, float]:
        warm = await push("019900000000", "9999")  # the first connection's one-off allocations are not abuse
        warm.close()
        await asyncio.sleep(0.5)
        base = rss_mib(server)
        terms = list(await asyncio.gather(*(push(f"0199{k:08d}", None) for k in range(1, 101))))
        await asyncio.sleep(0.5)
        during_anon = rss_mib(server)
        for t in terms:
            t.close()
        terms = list(await asyncio.gather(*(push(f"0188{k:08d}", str(k + 1)) for k in range(40))))
        await asyncio.sleep(1.0)
        during = rss_mib(server)
        for t in terms:
            t.close()
        with contextlib.suppress(TimeoutError):  # the sweeper gives memory back within a second or so
            await poll(lambda: rss_mib(server) - base < 6, timeout_s=10)
        after = rss_mib(server)
        print(f"gateway RSS MiB: base {base:.1f}, 100 pre-auth {during_anon:.1f}, 40 authenticated {during:.1f}, "
              f"after closing {after:.1f}")  # fmt: skip
        return base, during_anon, during, after

    try:
        base, anon, during, after = asyncio.run(scenario())
    finally:
        final = server.stop()
    rejects = final["rejects"]
    assert rejects["not_authenticated"] >= 100 and rejects["subpackage_overflow"] > 0
    assert anon - base < 8, (base, anon)  # nothing held for connections not authenticated (45 MB offered)
    # 16 MiB of pieces allowed over all connections (40 x 0.45 MB offered), plus connection buffers.
    assert during - base < 48, (base, during)
    assert after - base < 12, (base, after)  # given back once they close


# --------------------------------------------------------------------------- replay


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ops") / "world"
    simulate(out, SimConfig(trucks=8, start_month="2022-03", end_month="2022-03", interval_s=900,
                            parked_interval_s=1800, seed=4))  # fmt: skip
    return out


def pings_and_aside(data: Path) -> tuple[list[tuple[Any, int]], set[tuple[Any, int]]]:
    pings = [(r["vehicle_id"], r["ts"]) for r in dataset_rows(data)]
    aside = {(int(r["vehicle_id"]), r["ts"]) for r in dataset_rows(data, "quarantine")}
    return pings, aside


def test_sigkill_three_times_replay_reconnects_and_every_acknowledged_report_lands_once(
    world: Path, tmp_path: Path
) -> None:
    data, port = tmp_path / "gw", free_port()
    options = ("--compact-s", "1", "--max-age-days", "0")
    server = GatewayProcess(data, *options, port=port)
    summary = ReplaySummary()
    errors: list[BaseException] = []
    total = ds.dataset(world / "pings", format="parquet", partitioning="hive").count_rows()

    def load() -> None:
        try:
            asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", port, 6, window=16,
                                     summary=summary, reconnect_s=60))  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        for share in (0.15, 0.4, 0.65):
            deadline = time.monotonic() + 60
            while summary.acked < share * total and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.01)
            server.stop(signal.SIGKILL, timeout_s=30)  # in the middle of the load
            server = GatewayProcess(data, *options, port=port)  # recovers the log left by the kill
        thread.join(timeout=120)
    finally:
        server.stop()
    assert not errors and not thread.is_alive()
    assert summary.reconnects >= 3 and summary.resent > 0
    assert summary.acked == summary.sent == total - summary.skipped and summary.failed == 0
    acked = set(summary.acked_keys)  # (the simulator repeats some rows: a set)
    pings, aside = pings_and_aside(data)
    assert len(pings) == len(set(pings)), "a report stored twice"
    assert set(pings) | aside == acked, f"{len(acked - set(pings) - aside)} acknowledged reports lost"


def test_replay_writes_what_was_acknowledged_and_replays_again_with_its_codes(world: Path, tmp_path: Path) -> None:
    data = tmp_path / "gw"
    server = GatewayProcess(data, "--max-age-days", "0")
    try:
        first = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6,
                       acked_out=tmp_path / "acked.csv", codes_file=tmp_path / "codes.json")  # fmt: skip
        again = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6,
                       codes_file=tmp_path / "codes.json")  # fmt: skip
        without = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6, reconnect_s=1)
    finally:
        server.stop()
    assert first.acked == first.sent > 0 and first.failed == 0
    lines = (tmp_path / "acked.csv").read_text().splitlines()
    assert lines[0] == "vehicle_id,ts_ms" and len(lines) == first.acked + 1
    assert again.acked == first.acked  # the codes kept let the terminals authenticate again
    assert (tmp_path / "codes.json").stat().st_mode & 0o077 == 0
    # Without the codes, every terminal is refused: it is bound already, and its code is never sent again.
    assert without.acked == without.sent == 0 and without.refused == first.sent
    assert phone_for(7) == "000000000007" and phone_for("013912345678") == "013912345678"
    assert phone_for("鲁A12345") == phone_for("鲁A12345") and len(phone_for("鲁A12345")) == 12


def test_replay_of_text_vehicle_ids_keeps_them_exactly(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from truckcarbon.jt808.registry import known_vehicles

    ids = ["013912345678", "鲁A12345"]
    (tmp_path / "pings").mkdir()
    n = 5
    ts = pa.array([ms(NOW) + 60_000 * k for _ in ids for k in range(n)], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    pq.write_table(pa.table({
        "vehicle_id": pa.array([v for v in ids for _ in range(n)], pa.string()),
        "ts": ts, "lon": pa.array([114.3] * 2 * n), "lat": pa.array([30.5] * 2 * n),
        "speed_kmh": pa.array([40.0] * 2 * n, pa.float32()),
    }), tmp_path / "pings" / "part.parquet")  # fmt: skip
    vehicles = tmp_path / "vehicles.parquet"
    pq.write_table(pa.table({"vehicle_id": ids, "plate": ["鲁A12345", "鲁B54321"]}), vehicles)

    async def scenario() -> ReplaySummary:
        async with running(tmp_path / "gw", known_vehicles=known_vehicles(vehicles)) as (gw, port):
            summary = await replay_async(tmp_path / "pings", vehicles, "127.0.0.1", port, 2)
            assert gw.registry.get("013912345678") is not None  # a text id of digits is its own phone
            return summary

    summary = asyncio.run(scenario())
    assert summary.acked == summary.sent == 2 * n and summary.failed == 0
    rows = dataset_rows(tmp_path / "gw")
    assert sorted({r["vehicle_id"] for r in rows}) == sorted(ids) and len(rows) == 2 * n
    assert set(summary.acked_keys) == {(r["vehicle_id"], r["ts"]) for r in rows}


def test_the_commands_replay_and_gateway_terminals(world: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from truckcarbon.cli.main import app

    data = tmp_path / "gw"
    server = GatewayProcess(data, "--max-age-days", "0")
    runner = CliRunner()
    try:
        args = ["--pings", str(world / "pings"), "--vehicles", str(world / "vehicles.parquet")]
        args += ["--to", f"127.0.0.1:{server.port}", "--acked-out", str(tmp_path / "acked.csv")]
        got = runner.invoke(app, ["replay", *args])
        assert got.exit_code == 0, got.output
        assert "acknowledged" in got.output and "resent 0" in got.output and "given up 0" in got.output
        phone = read_bindings(data)[0]["phone"]
        listed = runner.invoke(app, ["gateway", "terminals", "list", "--data", str(data)])
        assert listed.exit_code == 0 and phone in listed.output and "terminals bound" in listed.output
        assert "auth" not in listed.output  # never a code, nor its digest
        released = runner.invoke(app, ["gateway", "terminals", "release", phone, "--data", str(data)])
        assert released.exit_code == 0 and "queued" in released.output, released.output
        bad = runner.invoke(app, ["gateway", "terminals", "release", "12ab", "--data", str(data)])
        assert bad.exit_code == 2

        async def gone() -> None:
            await poll(lambda: all(r["phone"] != phone for r in read_bindings(data)))

        asyncio.run(gone())  # applied by the running gateway
    finally:
        server.stop()
    assert len((tmp_path / "acked.csv").read_text().splitlines()) > 1
