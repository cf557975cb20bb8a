"""The gateway end to end: replayed fleet lands once; SIGKILL loses no acknowledged report; bad input is survived."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from truckcarbon.core.months import month_number
from truckcarbon.jt808.client import RegistrationRefusedError, Terminal
from truckcarbon.jt808.codec import (
    MSG_BATCH_LOCATION,
    MSG_GENERAL_RESPONSE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    MSG_RESEND_REQUEST,
    BatchLocation,
    GeneralResponse,
    Header,
    Location,
    RegisterResult,
    Registration,
    ResendRequest,
    check_code,
    decode_frame,
    encode_frame,
    frame_bytes,
    split_frames,
    split_message,
)
from truckcarbon.jt808.gateway import RECORD, Compactor, Gateway, GatewayConfig, Metrics, Registry, Wal, record
from truckcarbon.jt808.process import GatewayProcess, free_port
from truckcarbon.jt808.replay import replay_async
from truckcarbon.jt808.validation import Limits
from truckcarbon.sim.config import SimConfig
from truckcarbon.sim.run import simulate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gw") / "world"
    simulate(out, SimConfig(trucks=8, start_month="2022-03", end_month="2022-03", interval_s=300, seed=4))
    return out


class Server(GatewayProcess):
    """A gateway child process that compacts every second and takes reports of any age (the world is of 2022)."""

    def __init__(self, data: Path, port: int, *options: str) -> None:
        super().__init__(data, "--compact-s", "1", "--max-age-days", "0", *options, port=port)


def dataset_keys(data: Path) -> list[tuple[int, int]]:
    if not (data / "pings").exists():
        return []
    t = ds.dataset(data / "pings", format="parquet", partitioning="hive").to_table(columns=["vehicle_id", "ts"])
    return list(zip(t["vehicle_id"].to_pylist(), pc.cast(t["ts"], "int64").to_pylist(), strict=True))


def quarantine_rows(data: Path) -> list[dict[str, Any]]:
    if not (data / "quarantine").exists():
        return []
    t = ds.dataset(data / "quarantine", format="parquet").to_table()
    t = t.set_column(t.column_names.index("ts"), "ts", pc.cast(t["ts"], "int64"))
    return t.to_pylist()


def test_replayed_fleet_lands_in_the_dataset_once(world: Path, tmp_path: Path) -> None:
    server = Server(tmp_path / "gw", free_port())
    summary = asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", server.port, 8))
    final = server.stop()
    assert summary.sent > 1000 and summary.acked == summary.sent and summary.failed == 0
    keys = dataset_keys(tmp_path / "gw")
    assert len(keys) == len(set(keys))  # deduplicated on (vehicle, time)
    # The simulator's deliberate (0, 0) fixes are acknowledged and set aside, like the pipeline's ingest does.
    aside = quarantine_rows(tmp_path / "gw")
    assert aside and {r["reason"] for r in aside} == {"zero_fix"}
    assert set(keys) | {(int(r["vehicle_id"]), r["ts"]) for r in aside} == set(summary.acked_keys)
    assert final["event"] == "stopped" and final["acked"] == summary.acked
    # The dataset is what `truckcarbon run` reads.
    t = ds.dataset(tmp_path / "gw" / "pings", format="parquet", partitioning="hive").to_table()
    assert {"vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km"} <= set(t.column_names)


def test_malformed_input_is_counted_and_the_server_stays_up(tmp_path: Path) -> None:
    server = Server(tmp_path / "gw", free_port())
    phone = "000000000042"
    loc = Location(
        lat=39.9, lon=116.4, time=__import__("datetime").datetime(2022, 3, 1, tzinfo=__import__("datetime").UTC)
    )
    good = encode_frame(Header(MSG_LOCATION, phone, 7), loc.encode())
    bad_check = good[:-2] + bytes([good[-2] ^ 0x55]) + b"\x7e"
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        # Junk, then a frame of random bytes without escapes (a 0x7d would be a bad escape) and a wrong check code.
        junk = os.urandom(49).replace(b"\x7e", b"\x01").replace(b"\x7d", b"\x01")
        junk += bytes([check_code(junk) ^ 0x01]).replace(b"\x7e", b"\x01").replace(b"\x7d", b"\x01")
        s.sendall(os.urandom(3000).replace(b"\x7e", b"\x00") + b"\x7e" + junk + b"\x7e")
        s.sendall(bad_check)
        s.sendall(b"\x7e\x02\x00\x7d\x05\x7e")  # bad escape
        s.sendall(good)  # a report before registration and authentication
        buffer, reply = b"", None
        while reply is None:
            frames, buffer, _ = split_frames(buffer + s.recv(4096))
            for f in frames:
                header, body = decode_frame(f)
                if header.msg_id == MSG_GENERAL_RESPONSE:
                    reply = GeneralResponse.decode(body)
        assert reply.serial == 7 and reply.result == 1  # refused: not authenticated
        # The same connection still works: registration is answered.
        reg = Registration(0, 0, "TEST", "M", "42", 1, "京A00042")
        s.sendall(encode_frame(Header(MSG_REGISTER, phone, 8), reg.encode()))
        got = None
        while got is None:
            frames, buffer, _ = split_frames(buffer + s.recv(4096))
            got = next((f for f in frames if decode_frame(f)[0].msg_id == MSG_REGISTER_RESPONSE), None)
    final = server.stop()
    assert server.tracebacks() == 0 and all(e.get("event") != "torn_line" for e in server.events())  # JSON lines
    rejects = final["rejects"]
    assert isinstance(rejects, dict)
    assert rejects.get("bad_check_code", 0) >= 2 and rejects.get("not_authenticated") == 1
    assert rejects.get("bad_escape") == 1


def test_simulate_replay_gateway_run_gives_the_inventory_of_the_files(world: Path, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from truckcarbon.pipeline import run_pipeline

    # The simulated terminals have load sensors: status bits 8-9 = 00 is "empty" for every one of them.
    server = Server(tmp_path / "gw", free_port(), "--load-sensing", "all")
    summary = asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", server.port, 8))
    server.stop()
    assert summary.failed == 0
    run_pipeline(tmp_path / "gw" / "pings", world / "vehicles.parquet", tmp_path / "via-gateway")
    run_pipeline(world / "pings", world / "vehicles.parquet", tmp_path / "direct")
    keys = [("month", "ascending"), ("view", "ascending"), ("city_adcode", "ascending"),
            ("emission_standard", "ascending"), ("method", "ascending")]  # fmt: skip
    a = pq.read_table(tmp_path / "via-gateway" / "inventory").sort_by(keys)
    b = pq.read_table(tmp_path / "direct" / "inventory").sort_by(keys)
    for col in ("month", "view", "city_adcode", "emission_standard", "method", "vehicles"):
        assert a[col].to_pylist() == b[col].to_pylist(), col
    # JT/T 808 carries coordinates to 1e-6 degree, speed to 0.1 km/h, fuel to 0.1 L: the same figures to 1e-4.
    for col in ("distance_km", "fuel_l", "co2_t"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-4)


# --------------------------------------------------------------------------- in-process gateway

PHONE = "013800000007"
T0 = dt.datetime(2022, 3, 1, tzinfo=dt.UTC)


@contextlib.asynccontextmanager
async def running(data: Path, **options: Any) -> AsyncIterator[tuple[Gateway, int]]:
    """A gateway on a free port in this event loop; stopped (log compacted) on exit.

    Reports of any age are taken (the tests' reports are of 2022) unless ``limits`` is given.
    """
    options.setdefault("limits", Limits(max_age_s=0))
    gateway = Gateway(GatewayConfig(data=data, port=0, **options))
    port = await gateway.start()
    try:
        yield gateway, port
    finally:
        await gateway.stop()


async def replies(term: Terminal, want: int, count: int = 1, timeout_s: float = 10.0) -> list[tuple[Header, bytes]]:
    """Frames from the gateway until ``count`` of message id ``want`` have come (all frames read are returned)."""
    got: list[tuple[Header, bytes]] = []
    async with asyncio.timeout(timeout_s):
        while sum(h.msg_id == want for h, _ in got) < count:
            got += [decode_frame(f) for f in await term.frames()]
    return got


def test_registration_result_codes(tmp_path: Path) -> None:
    known_vehicles = {"京A00001": 101, "京A00002": 102}
    known_terminals = frozenset({"13800000001", "13800000002"})

    async def scenario() -> list[int]:
        async with running(tmp_path / "gw", known_vehicles=known_vehicles, known_terminals=known_terminals) as (
            gw,
            port,
        ):

            async def login(phone: str, terminal_id: str, plate: str) -> int:
                term = await Terminal.open("127.0.0.1", port, phone)
                try:
                    await term.login(terminal_id, plate)
                    return 0
                except RegistrationRefusedError as exc:
                    assert f"result {exc.result} (" in str(exc)
                    return exc.result
                finally:
                    term.close()

            codes = [await login("013800000001", "T1", "京A00001")]
            code_before = gw.registry.get("013800000001")["auth_hash"]  # type: ignore[index]
            codes += [
                await login("013800000001", "T1", "京A00001"),  # again, not from its own session: refused
                await login("013800000001", "T1", "京A00002"),  # this terminal is bound to another vehicle
                await login("013800000002", "T2", "京A00001"),  # this vehicle is bound to another terminal
                await login("013800000002", "T2", "京B99999"),  # a plate not in the vehicle list
                await login("013900000009", "T9", "京A00002"),  # a phone not in the terminal list
                await login("013800000002", "T2", "京A00002"),
            ]
            assert gw.registry.get("013800000001")["auth_hash"] == code_before  # type: ignore[index]
            assert gw.registry.get("13800000002")["vehicle_id"] == 102  # type: ignore[index]  # from the vehicle list
            assert gw.metrics.rejects == {"register_terminal_registered": 2, "register_vehicle_registered": 1,
                                          "register_no_such_vehicle": 1, "register_no_such_terminal": 1}  # fmt: skip
            return codes

    assert asyncio.run(scenario()) == [0, 3, 3, 1, 2, 4, 0]


def test_registry_without_lists_binds_one_vehicle_to_one_terminal(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    registry = Registry(path)
    result, code, entry = registry.register("000000000001", Registration(0, 0, "M", "X", "5", 1, "鲁Q00001"))
    assert result == RegisterResult.OK and entry is not None and entry["vehicle_id"] == 5 and len(code) == 16
    # Terminal id 5 is vehicle 5, which terminal 1 has: vehicle already registered.
    result, code, entry = registry.register("000000000002", Registration(0, 0, "M", "X", "5", 1, "鲁Q00002"))
    assert (result, code, entry) == (RegisterResult.VEHICLE_REGISTERED, "", None)
    # Without a plate and with a terminal id that is not a number: the next free vehicle id.
    result, code, entry = registry.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, ""))
    assert result == RegisterResult.OK and entry is not None and entry["vehicle_id"] == 6
    # The bindings survive a restart; the same registration is refused (its code is never sent again) ...
    again = Registry(path)
    assert again.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, "")) == (
        RegisterResult.TERMINAL_REGISTERED, "", None,
    )  # fmt: skip
    assert again.verify(again.get("000000000002"), code.encode())  # type: ignore[arg-type]
    # ... unless it comes from the terminal's authenticated session: a new code, the old one void.
    result, new, entry2 = again.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, ""), True)
    assert result == RegisterResult.OK and new != code and entry2 is not None and entry2["vehicle_id"] == 6
    assert again.verify(entry2, new.encode()) and not again.verify(entry2, code.encode())
    assert again.register("000000000002", Registration(0, 0, "M", "X", "ABD", 1, ""), True)[0] == (
        RegisterResult.TERMINAL_REGISTERED
    )
    # No code is stored in the clear.
    stored = path.read_text(encoding="utf-8") + path.with_suffix(".jsonl").read_text(encoding="utf-8")
    assert code not in stored and new not in stored


def batch(n: int) -> BatchLocation:
    return BatchLocation(tuple(
        Location(lat=30 + k * 1e-3, lon=120.0, time=T0 + dt.timedelta(seconds=30 * k), speed_kmh=50.0,
                 odometer_km=float(k), fuel_l=100.0)
        for k in range(n)
    ))  # fmt: skip


def test_sub_packaged_batch_is_reassembled_and_each_piece_acked_once_durable(tmp_path: Path) -> None:
    data = tmp_path / "gw"
    frames = split_message(Header(MSG_BATCH_LOCATION, PHONE, 100), batch(120).encode())
    n = len(frames)
    assert n == 5  # 120 reports of 40 bytes: 4803 bytes, five frames

    async def scenario() -> None:
        async with running(data, commit_interval_s=0.2, compact_s=60) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, PHONE)
            await term.login("7", "京A00007")
            # Every piece but the second, out of order: nothing is taken in, the second is asked for.
            term.writer.write(b"".join(frames[k] for k in (3, 0, 2, 4)))
            got = await replies(term, MSG_RESEND_REQUEST)
            assert [h.msg_id for h, _ in got] == [MSG_RESEND_REQUEST]
            assert ResendRequest.decode(got[0][1]) == ResendRequest(100, (2,))
            assert gw.metrics.reports == 0
            term.writer.write(frames[1])
            got = await replies(term, MSG_GENERAL_RESPONSE, n)
            # Every piece is answered, and only once all the reports are fsynced in the log.
            wal_bytes = sum(p.stat().st_size for p in (data / "wal").glob("segment-*.log"))
            assert wal_bytes == 120 * RECORD.size
            acks = [GeneralResponse.decode(b) for _, b in got]
            assert sorted(a.serial for a in acks) == list(range(100, 100 + n))
            assert {(a.msg_id, a.result) for a in acks} == {(MSG_BATCH_LOCATION, 0)}
            assert (gw.metrics.reassembled, gw.metrics.resend_requests, gw.metrics.acked) == (1, 1, 120)
            term.close()

    asyncio.run(scenario())
    keys = dataset_keys(data)
    assert sorted(keys) == [(7, int((T0 + dt.timedelta(seconds=30 * k)).timestamp() * 1000)) for k in range(120)]


def test_incomplete_sub_packaged_message_times_out_and_bounds_refuse_more(tmp_path: Path) -> None:
    frames = split_message(Header(MSG_BATCH_LOCATION, PHONE, 100), batch(60).encode())  # three pieces
    other = split_message(Header(MSG_BATCH_LOCATION, PHONE, 200), batch(60).encode())
    third = split_message(Header(MSG_BATCH_LOCATION, PHONE, 300), batch(60).encode())

    async def scenario() -> None:
        async with running(tmp_path / "gw", partial_timeout_s=0.3, max_partial_messages=2) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, PHONE)
            await term.login("7", "京A00007")
            term.writer.write(frames[0])
            await asyncio.sleep(1.0)  # no more pieces: the first is dropped
            assert gw.metrics.rejects.get("subpackage_timeout") == 1
            # The rest alone cannot complete it: piece 1 is asked for again.
            term.writer.write(frames[1] + frames[2])
            got = await replies(term, MSG_RESEND_REQUEST)
            assert ResendRequest.decode(got[-1][1]) == ResendRequest(100, (1,))
            # Two messages incomplete: a third is refused, piece by piece, with result 1.
            term.writer.write(other[0] + third[0])
            got = await replies(term, MSG_GENERAL_RESPONSE)
            assert GeneralResponse.decode(got[-1][1]) == GeneralResponse(300, MSG_BATCH_LOCATION, 1)
            assert gw.metrics.rejects.get("subpackage_overflow") == 1 and gw.metrics.reports == 0
            term.close()
            await asyncio.sleep(0.1)
            assert gw.metrics.rejects.get("subpackage_abandoned") == 2  # dropped with the connection

    asyncio.run(scenario())


def write_segment(path: Path, rows: list[tuple[int, dt.datetime]]) -> Path:
    path = path.with_suffix(".v2.log")
    path.write_bytes(b"".join(record(v, Location(lat=30.0, lon=120.0, time=t)) for v, t in rows))
    return path


def test_compactor_keeps_keys_of_recent_months_only_and_writes_no_duplicate(tmp_path: Path) -> None:
    metrics = Metrics()
    compactor = Compactor(tmp_path, metrics, dedup_months=2)
    month_rows = {
        m: [(1, dt.datetime(2022, m, 10, h, tzinfo=dt.UTC)) for h in range(5)] for m in range(1, 13)
    }  # fmt: skip
    held = []
    for m, rows in month_rows.items():
        assert compactor.compact([write_segment(tmp_path / f"s{m}.log", rows + rows[:2])]) == 5
        held.append(len(compactor.seen))
    assert max(held) == 2 and set(compactor.seen) == {month_number(2022, 11), month_number(2022, 12)}
    assert metrics.duplicates == 12 * 2 and metrics.months_loaded == 12
    # Late reports for January, whose keys were evicted: the ones written are recognised from its files.
    late = [*month_rows[1], (1, dt.datetime(2022, 1, 20, tzinfo=dt.UTC))]
    assert compactor.compact([write_segment(tmp_path / "late.log", late)]) == 1
    assert metrics.duplicates == 12 * 2 + 5 and metrics.months_loaded == 13
    assert month_number(2022, 1) not in compactor.seen  # evicted again
    # A restart reads the keys of a month only when reports for it come.
    restarted = Compactor(tmp_path, Metrics())
    assert restarted.seen == {}
    assert restarted.compact([write_segment(tmp_path / "again.log", month_rows[12])]) == 0
    assert set(restarted.seen) == {month_number(2022, 12)}
    keys = dataset_keys(tmp_path)
    assert len(keys) == len(set(keys)) == 12 * 5 + 1


def test_idle_connections_are_closed_by_the_sweeper(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", idle_timeout_s=0.4) as (gw, port):
            idle = await Terminal.open("127.0.0.1", port, PHONE)
            busy = await Terminal.open("127.0.0.1", port, "013800000008")
            await busy.login("8", "京A00008")
            for _ in range(6):  # the busy terminal keeps talking for 0.9 s
                busy.writer.write(frame_bytes(MSG_HEARTBEAT, busy.phone, 1, None, b""))
                await replies(busy, MSG_GENERAL_RESPONSE)
                await asyncio.sleep(0.15)
            async with asyncio.timeout(2.0):
                assert await idle.reader.read(100) == b""  # closed by the gateway
            assert gw.metrics.rejects.get("idle_timeout") == 1 and gw.metrics.connections == 1
            idle.close()
            busy.close()

    asyncio.run(scenario())


def test_a_failed_log_write_is_never_acknowledged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Wal, records: list[bytes]) -> None:
        raise OSError(28, "No space left on device")

    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            term = await Terminal.open("127.0.0.1", port, PHONE)
            await term.login("7", "京A00007")
            monkeypatch.setattr(Wal, "write", full_disk)
            term.writer.write(encode_frame(Header(MSG_LOCATION, PHONE, 5), batch(1).items[0].encode()))
            got: list[tuple[Header, bytes]] = []
            async with asyncio.timeout(5.0):
                while True:
                    chunk = await term.reader.read(1 << 16)
                    if not chunk:
                        break  # the gateway closed the connection
                    got += [decode_frame(f) for f in split_frames(chunk)[0]]
            assert all(h.msg_id != MSG_GENERAL_RESPONSE for h, _ in got)  # no acknowledgement
            assert gw.metrics.rejects.get("storage_error") == 1 and gw.metrics.acked == 0
            term.close()
            monkeypatch.undo()

    asyncio.run(scenario())


def test_known_vehicle_and_terminal_lists_are_read_with_clear_errors(tmp_path: Path) -> None:
    from truckcarbon.core.errors import InputError
    from truckcarbon.jt808.gateway import known_terminals, known_vehicles

    good = tmp_path / "vehicles.csv"
    good.write_text("vehicle_id,plate\n7,京A00007\n8,鲁Q00008\n", encoding="utf-8")
    assert known_vehicles(good) == {"京A00007": 7, "鲁Q00008": 8}
    bad = tmp_path / "bad.csv"
    bad.write_text("vehicle_id,plat\n7,京A00007\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"missing column.*plate"):
        known_vehicles(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("vehicle_id,plate\n7,京A00007\n9,京A00007\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 2: plate 京A00007 is listed for vehicles 7 and 9"):
        known_vehicles(twice)
    with pytest.raises(InputError, match="no such file"):
        known_vehicles(tmp_path / "none.parquet")
    phones = tmp_path / "terminals.txt"
    phones.write_text("# fleet A\n013800000007\n\n013800000008  # spare\n", encoding="utf-8")
    assert known_terminals(phones) == frozenset({"013800000007", "013800000008"})
    phones.write_text("013800000007\n01380000x\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        known_terminals(phones)
