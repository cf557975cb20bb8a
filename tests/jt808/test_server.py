"""The server: connections survive bad input, deadlines close them, a failed log write is never acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest

from truckcarbon.jt808.client import Terminal
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.frame import Header, check_code, decode_frame, encode_frame, frame_bytes, split_frames
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_GENERAL_RESPONSE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    GeneralResponse,
    Registration,
)
from truckcarbon.jt808.observe import Metrics
from truckcarbon.jt808.reassembly import Reassembler
from truckcarbon.jt808.registry import Registry, queue_release
from truckcarbon.jt808.server import Server
from truckcarbon.jt808.session import Session
from truckcarbon.jt808.wal import Wal

from .gwkit import (
    PHONE,
    PLATE,
    FakeWriter,
    StreamWriterStub,
    acks,
    batch,
    child_gateway,
    frames_until,
    running,
)


def test_malformed_input_is_counted_and_the_server_stays_up(tmp_path: Path) -> None:
    server = child_gateway(tmp_path / "gw")
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


def test_idle_connections_are_closed_by_the_sweeper(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", idle_timeout_s=0.4) as (gw, port):
            idle = await Terminal.open("127.0.0.1", port, PHONE)
            busy = await Terminal.open("127.0.0.1", port, "013800000008")
            await busy.login("8", "京A00008")
            for _ in range(6):  # the busy terminal keeps talking for 0.9 s
                busy.writer.write(frame_bytes(MSG_HEARTBEAT, busy.phone, 1, None, b""))
                await frames_until(busy, MSG_GENERAL_RESPONSE)
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


def test_an_unexpected_error_is_caught_at_the_frame_logged_in_one_line_and_the_read_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from truckcarbon.jt808.observe import JsonFormatter

    def broken(cls: type, body: bytes, v2019: bool = False) -> Registration:
        raise RuntimeError("a defect")

    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            monkeypatch.setattr(Registration, "decode", classmethod(broken))
            term = await Terminal.open("127.0.0.1", port, PHONE)
            reg = encode_frame(Header(MSG_REGISTER, PHONE, 1), b"\x00" * 40)
            term.writer.write(reg + frame_bytes(MSG_HEARTBEAT, PHONE, 2, None, b""))
            assert (await acks(term))[0] == GeneralResponse(2, MSG_HEARTBEAT, 0)  # the next frame is answered
            assert gw.metrics.internal_errors == 1 and gw.metrics.rejects["internal_error"] == 1
            term.close()

    asyncio.run(scenario())
    records = [r for r in caplog.records if '"internal_error"' in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    line = JsonFormatter().format(records[0])
    assert "\n" not in line and json.loads(line)["error"] == "RuntimeError: a defect"


def test_the_frame_deadline_counts_from_each_frame_not_from_a_busy_stream(tmp_path: Path) -> None:
    """Reads that end inside a frame, for longer than the deadline in all: open; one frame slower than it: closed."""

    async def scenario() -> None:
        config = GatewayConfig(data=tmp_path / "gw", frame_timeout_s=10, idle_timeout_s=1e9, auth_timeout_s=1e9)
        clock = [0.0]
        gw = Server(config, Metrics(), Registry(tmp_path / "terminals.json"), lambda: True, clock=lambda: clock[0])
        session = Session(StreamWriterStub(), "x", Reassembler(4, 1 << 14, 60, gw.budget), 1e9, 0.0)  # type: ignore[arg-type]
        gw.sessions[id(session)] = session  # as handle() does: the sweeper sees it
        reader = asyncio.StreamReader()
        served = asyncio.create_task(gw.serve_connection(reader, session.writer, session))
        beats = b"".join(frame_bytes(MSG_HEARTBEAT, PHONE, k, None, b"") for k in range(40))
        size = len(beats) // 40
        step = size + 4  # 15-byte frames: the first 14 reads all end inside a frame
        for k in range(14):  # 8 s apart: 112 s of a stream that is never at a frame's end
            reader.feed_data(beats[k * step : (k + 1) * step])
            assert (k + 1) * step % size
            for _ in range(5):
                await asyncio.sleep(0)
            clock[0] += 8
            gw.sweep(clock[0])
            assert session.closing is None, k
        reader.feed_data(b"\x00")  # the last frame goes on, but is not complete 19 s after its first byte
        for _ in range(5):
            await asyncio.sleep(0)
        clock[0] += 11
        gw.sweep(clock[0])
        assert session.closing == "frame_timeout"
        assert gw.metrics.rejects == {"frame_timeout": 1} and len(session.writer.out) > 0  # heartbeats answered
        reader.feed_eof()
        await served

    asyncio.run(scenario())


def server_with_clock(data: Path, clock: list[float], **options: float) -> Server:
    """A server that does not listen, its deadlines read from ``clock[0]``."""
    config = GatewayConfig(data=data, **options)  # type: ignore[arg-type]
    data.mkdir(parents=True, exist_ok=True)
    return Server(config, Metrics(), Registry(data / "terminals.json"), lambda: True, clock=lambda: clock[0])


def session_of(server: Server) -> Session:
    """A session as :meth:`Server.handle` makes one, seen by the sweeper."""
    c = server.config
    parts = Reassembler(c.max_partial_messages, c.max_partial_bytes, c.partial_timeout_s, server.budget)
    session = Session(FakeWriter(), "x", parts, c.max_reports_per_s, server.clock())  # type: ignore[arg-type]
    server.sessions[id(session)] = session
    return session


def test_the_sweeper_closes_at_the_authentication_and_idle_deadlines_and_drops_stale_sub_packages(
    tmp_path: Path,
) -> None:
    clock = [0.0]
    server = server_with_clock(tmp_path / "gw", clock, auth_timeout_s=10, idle_timeout_s=100, partial_timeout_s=50)
    anonymous, known = session_of(server), session_of(server)
    known.auth = {"phone": PHONE}  # authenticated: no authentication deadline
    piece = Header(MSG_BATCH_LOCATION, PHONE, 10, package_total=2, package_index=1)
    assert known.parts.add(piece, b"\x00" * 100, 0.0) is None and server.budget.used == 100
    server.sweep(10.0)  # deadlines are "more than": nothing yet
    assert (anonymous.closing, known.closing, server.metrics.rejects) == (None, None, {})
    server.sweep(10.5)
    assert anonymous.closing == "auth_timeout" and known.closing is None
    server.sweep(50.0)  # the incomplete message is 50 s old: dropped, its bytes given back
    assert server.metrics.rejects == {"auth_timeout": 1, "subpackage_timeout": 1} and server.budget.used == 0
    server.sweep(100.5)
    assert known.closing == "idle_timeout"
    assert server.metrics.rejects == {"auth_timeout": 1, "subpackage_timeout": 1, "idle_timeout": 1}


def test_an_operator_release_closes_the_released_terminals_connection(tmp_path: Path) -> None:
    clock = [0.0]
    data = tmp_path / "gw"
    server = server_with_clock(data, clock)
    code = server.registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]
    session = session_of(server)
    assert server.dispatcher.authenticate(session, Header(MSG_AUTH, PHONE, 1), code.encode())
    server.apply_operator_requests()  # nothing queued
    assert session.closing is None
    queue_release(data, ["13800000007"])  # without the zero padding: the same terminal
    server.apply_operator_requests()
    assert session.closing == "released" and server.registry.get(PHONE) is None
    assert server.metrics.rejects == {"released": 1} and list((data / "operator").iterdir()) == []


@pytest.mark.parametrize("reads", [1, 3])
def test_a_read_of_several_frames_is_answered_in_one_write(tmp_path: Path, reads: int) -> None:
    async def scenario() -> list[bytes]:
        server = server_with_clock(tmp_path / "gw", [0.0])
        session = session_of(server)
        session.writer = StreamWriterStub()  # type: ignore[assignment]
        writes: list[bytes] = []
        session.writer.write = writes.append  # type: ignore[method-assign]
        reader = asyncio.StreamReader()
        served = asyncio.create_task(server.serve_connection(reader, session.writer, session))
        beats = [frame_bytes(MSG_HEARTBEAT, PHONE, k, None, b"") for k in range(6)]
        per_read = len(beats) // reads
        for k in range(reads):
            reader.feed_data(b"".join(beats[k * per_read : (k + 1) * per_read]))
            for _ in range(5):
                await asyncio.sleep(0)
        reader.feed_eof()
        await served
        return writes

    writes = asyncio.run(scenario())
    assert len(writes) == reads  # one write per read, however many frames it held
    answers = [GeneralResponse.decode(b) for w in writes for h, b in map(decode_frame, split_frames(w)[0])]
    assert answers == [GeneralResponse(k, MSG_HEARTBEAT, 0) for k in range(6)]
