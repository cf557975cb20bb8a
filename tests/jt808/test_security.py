"""The gateway attacked end to end: impersonation, other phones, bad codes, bad values, slow and greedy connections."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import struct
from pathlib import Path

import pytest

from truckcarbon.jt808.client import AuthenticationRefusedError, Terminal
from truckcarbon.jt808.frame import Header, check_code, encode_frame, escape, frame_bytes, split_message, unescape
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_DEREGISTER,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    Authentication,
    GeneralResponse,
    RegisterResult,
    Registration,
    RegistrationResponse,
)
from truckcarbon.jt808.process import GatewayProcess
from truckcarbon.jt808.registry import queue_release
from truckcarbon.jt808.validation import Limits

from .gwkit import (
    NOW,
    OTHER,
    PHONE,
    PLATE,
    acks,
    closed_by_gateway,
    dataset_rows,
    ms,
    poll,
    raw_location,
    report,
    running,
)

VICTIM, ATTACKER = PHONE, OTHER


async def register(term: Terminal, terminal_id: str = "7", plate: str = PLATE) -> RegistrationResponse:
    reg = Registration(0, 0, "M", "X", terminal_id, 1, plate).encode()
    body = await term.ask(encode_frame(Header(MSG_REGISTER, term.phone, 1), reg), MSG_REGISTER_RESPONSE)
    return RegistrationResponse.decode(body)


# --------------------------------------------------------------------------- identity


def test_impersonation_with_a_public_plate_gets_nothing(tmp_path: Path) -> None:
    """Registering as the victim (its phone, plate and terminal id) is refused, no code is revealed, nothing stored."""

    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            victim = await Terminal.open("127.0.0.1", port, VICTIM)
            code = await victim.login("7", PLATE)
            victim.writer.write(report(VICTIM, 10))
            assert (await acks(victim))[0].result == 0
            attacker = await Terminal.open("127.0.0.1", port, VICTIM)  # the victim's phone in every header
            answer = await register(attacker)
            assert answer.result == RegisterResult.TERMINAL_REGISTERED and answer.auth_code == ""
            raw = await attacker.ask(
                encode_frame(Header(MSG_REGISTER, VICTIM, 5), Registration(0, 0, "M", "X", "7", 1, PLATE).encode()),
                MSG_REGISTER_RESPONSE,
            )
            assert raw == struct.pack(">HB", 5, 3)  # serial and result only: no code
            with pytest.raises(AuthenticationRefusedError):
                await attacker.authenticate("0" * 16)
            attacker.writer.write(report(VICTIM, 11, NOW + dt.timedelta(seconds=30), lat=39.0))
            assert (await acks(attacker))[0].result == 1  # not authenticated
            # Another phone with the victim's plate: the vehicle is bound.
            other = await Terminal.open("127.0.0.1", port, ATTACKER)
            assert (await register(other, "66")).result == RegisterResult.VEHICLE_REGISTERED
            assert gw.metrics.rejects["register_terminal_registered"] == 2
            assert gw.metrics.rejects["not_authenticated"] == 1 and gw.metrics.acked == 1
            for t in (victim, attacker, other):
                t.close()
            stored = (tmp_path / "gw" / "terminals.jsonl").read_text(encoding="utf-8")
            assert code not in stored and "auth_hash" in stored

    asyncio.run(scenario())
    rows = dataset_rows(tmp_path / "gw")
    assert [(r["vehicle_id"], r["ts"], r["lat"]) for r in rows] == [(7, ms(NOW), 30.5)]


def test_a_bound_terminal_registers_again_only_from_its_own_session(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw") as (_, port):
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            old = await term.login("7", PLATE)
            again = await register(term)  # from its authenticated session: a new code
            assert again.result == 0 and again.auth_code and again.auth_code != old
            term.close()
            late = await Terminal.open("127.0.0.1", port, VICTIM)
            with pytest.raises(AuthenticationRefusedError):
                await late.authenticate(old)  # void now
            late.close()
            fresh = await Terminal.open("127.0.0.1", port, VICTIM)
            await fresh.authenticate(again.auth_code)
            fresh.writer.write(report(VICTIM, 3))
            assert (await acks(fresh))[0].result == 0
            fresh.close()

    asyncio.run(scenario())


def test_operator_release_and_terminal_deregistration_free_the_vehicle(tmp_path: Path) -> None:
    """A replaced terminal: the new one is refused until the old is released, then registers; 0x0003 likewise."""
    data = tmp_path / "gw"

    async def scenario() -> None:
        async with running(data, known_vehicles={PLATE: 7}) as (gw, port):
            old = await Terminal.open("127.0.0.1", port, VICTIM)
            await old.login("7", PLATE)
            new = await Terminal.open("127.0.0.1", port, "013800000008")
            assert (await register(new, "8")).result == RegisterResult.VEHICLE_REGISTERED
            queue_release(data, [VICTIM])
            assert await closed_by_gateway(old)  # released: the old terminal's connection is closed
            assert gw.registry.get(VICTIM) is None and gw.metrics.rejects["released"] == 1
            code = await new.login("8", PLATE)
            new.writer.write(report(new.phone, 4))
            assert (await acks(new))[0].result == 0
            # The terminal deregisters itself (0x0003) from its session: its rights end, the vehicle is free.
            new.writer.write(frame_bytes(MSG_DEREGISTER, new.phone, 5, None, b""))
            assert (await acks(new))[0] == GeneralResponse(5, MSG_DEREGISTER, 0)
            new.writer.write(report(new.phone, 6, NOW + dt.timedelta(seconds=1)))
            assert (await acks(new))[0].result == 1
            with pytest.raises(AuthenticationRefusedError):
                await new.authenticate(code)
            new.close()
            old.close()
            again = await Terminal.open("127.0.0.1", port, VICTIM)
            await again.login("7", PLATE)  # the original terminal back in service
            again.close()
            # A 0x0003 from a session that is not authenticated is refused.
            anon = await Terminal.open("127.0.0.1", port, VICTIM)
            anon.writer.write(frame_bytes(MSG_DEREGISTER, VICTIM, 9, None, b""))
            assert (await acks(anon))[0].result == 1 and gw.registry.get(VICTIM) is not None
            anon.close()

    asyncio.run(scenario())
    assert [r["vehicle_id"] for r in dataset_rows(data)] == [7]


def test_a_session_is_bound_to_the_phone_it_authenticated(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            other = await Terminal.open("127.0.0.1", port, ATTACKER)
            await other.login("66", "京A00066")
            other.close()
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            await term.login("7", PLATE)
            term.writer.write(report(ATTACKER, 20) + report(VICTIM, 21))  # another phone, then its own
            assert [(a.serial, a.result) for a in await acks(term, 2)] == [(20, 1), (21, 0)]
            # The 2019 spelling of its own phone is its own phone.
            loc = Location(lat=30.5, lon=114.3, time=NOW + dt.timedelta(seconds=5)).encode()
            term.writer.write(frame_bytes(MSG_LOCATION, "00000000" + VICTIM, 22, 1, loc))
            assert (await acks(term))[0].result == 0
            assert gw.metrics.rejects["phone_mismatch"] == 1
            term.close()

    asyncio.run(scenario())
    assert sorted(r["vehicle_id"] for r in dataset_rows(tmp_path / "gw")) == [7, 7]


def test_failed_reauthentication_ends_the_sessions_rights(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", max_auth_failures=3) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            code = await term.login("7", PLATE)
            with pytest.raises(AuthenticationRefusedError):
                await term.authenticate(code[::-1])
            term.writer.write(report(VICTIM, 30))
            assert (await acks(term))[0].result == 1
            assert gw.metrics.rejects["not_authenticated"] == 1
            await term.authenticate(code)  # the right code gives the rights back
            with pytest.raises(AuthenticationRefusedError):
                await term.authenticate("x")
            term.writer.write(encode_frame(Header(MSG_AUTH, VICTIM, 31), Authentication("y").encode()))
            assert await closed_by_gateway(term)  # the third failure on the connection closes it
            assert gw.metrics.rejects["auth_failures"] == 1 and gw.metrics.reports == 0
            term.close()

    asyncio.run(scenario())


def test_garbage_authentication_codes_are_wrong_codes_and_the_rest_of_the_read_is_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", max_auth_failures=100) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            code = await term.login("7", PLATE)
            bodies = [bytes.fromhex("b9fabcd2"), b"", b"\x00" * 40, b"\xff" * 300, code.encode() + b"\x80"]
            frames = [encode_frame(Header(MSG_AUTH, VICTIM, 40 + k), b) for k, b in enumerate(bodies)]
            frames += [frame_bytes(MSG_AUTH, "0" * 8 + VICTIM, 50, 1, b) for b in (b"\x09ab", b"\x00", b"")]
            frames.append(encode_frame(Header(MSG_AUTH, VICTIM, 60), code.encode()))  # then the right code
            frames.append(report(VICTIM, 61))  # and a report, in the same write
            term.writer.write(b"".join(frames))
            got = await acks(term, len(frames))
            assert [(a.serial, a.result) for a in got] == [(40 + k, 1) for k in range(5)] + [
                (50, 2), (50, 1), (50, 2), (60, 0), (61, 0),  # 2019 bodies too short are malformed: result 2
            ]  # fmt: skip
            assert gw.metrics.internal_errors == 0 and gw.metrics.rejects["bad_authentication"] == 6
            term.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- values


def test_out_of_range_reports_are_acknowledged_and_quarantined_with_their_reason(tmp_path: Path) -> None:
    t = NOW
    cases = {
        "ok": raw_location(30_500_000, 114_300_000, t, 600, 0b10 | (0b11 << 8)),
        "bad_coordinates": raw_location(0xFFFFFFFF, 0xFFFFFFFF, t + dt.timedelta(seconds=1)),
        "bad_coordinates lat 95": raw_location(95_000_000, 114_300_000, t + dt.timedelta(seconds=2)),
        "bad_coordinates lon 190": raw_location(30_000_000, 190_000_000, t + dt.timedelta(seconds=3)),
        "zero_fix": raw_location(0, 0, t + dt.timedelta(seconds=4)),
        "time_in_future": raw_location(30_500_000, 114_300_000, dt.datetime(2099, 6, 1, tzinfo=dt.UTC)),
        "time_too_old": raw_location(30_500_000, 114_300_000, t - dt.timedelta(days=400)),
        "bad_speed": raw_location(30_500_000, 114_300_000, t + dt.timedelta(seconds=5), 0xFFFF),
        "reserved_load_bits": raw_location(30_500_000, 114_300_000, t + dt.timedelta(seconds=6), 0, 0b10 << 8),
        "encrypted_coordinates": raw_location(30_500_000, 114_300_000, t + dt.timedelta(seconds=7), 0, 0b100010),
        "bad_odometer": raw_location(
            30_500_000, 114_300_000, t + dt.timedelta(seconds=8), items=bytes((1, 4)) + struct.pack(">I", 0xFFFFFFFF)
        ),
        "bad_fuel": raw_location(
            30_500_000, 114_300_000, t + dt.timedelta(seconds=9), items=bytes((2, 2)) + struct.pack(">H", 0xFFFF)
        ),
    }

    async def scenario() -> None:
        async with running(tmp_path / "gw", limits=Limits()) as (gw, port):
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            await term.login("7", PLATE)
            term.writer.write(b"".join(frame_bytes(MSG_LOCATION, VICTIM, 100 + k, None, body)
                                       for k, body in enumerate(cases.values())))  # fmt: skip
            answers = await acks(term, len(cases))
            assert [(a.serial, a.result) for a in answers] == [(100 + k, 0) for k in range(len(cases))]
            assert sum(gw.metrics.quarantine_reasons.values()) == len(cases) - 1
            term.close()

    asyncio.run(scenario())
    data = tmp_path / "gw"
    pings = dataset_rows(data)
    assert [(r["ts"], r["speed_kmh"], r["load_state"]) for r in pings] == [(ms(t), 60.0, "full")]
    month = t.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
    assert [p.name for p in (data / "pings").iterdir()] == [f"month={month}"]  # no month=2099-06
    aside = sorted(r["reason"] for r in dataset_rows(data, "quarantine"))
    assert aside == sorted(k.split()[0] for k in cases if k != "ok")


# --------------------------------------------------------------------------- resources


def test_a_trickling_connection_is_closed_at_its_deadline(tmp_path: Path) -> None:
    """One byte at a time never completes a frame: closed by the frame deadline, authenticated or not."""

    async def trickle(port: int, payload: bytes, login: bool) -> bool:
        term = await Terminal.open("127.0.0.1", port, VICTIM)
        try:
            if login:
                await term.login("7", PLATE)
            for k in range(200):
                try:
                    term.writer.write(payload[k % len(payload) : k % len(payload) + 1])
                    await term.writer.drain()
                except ConnectionError:
                    return True
                try:
                    async with asyncio.timeout(0.1):
                        if not await term.reader.read(100):
                            return True
                except TimeoutError:
                    pass
                except ConnectionError:
                    return True
            return False
        finally:
            term.close()

    async def scenario() -> None:
        async with running(tmp_path / "gw", frame_timeout_s=0.4, auth_timeout_s=1.0, idle_timeout_s=60) as (gw, port):
            frame = report(VICTIM, 1)
            assert await trickle(port, frame, login=True)
            assert gw.metrics.rejects.get("frame_timeout") == 1
            assert await trickle(port, b"junk-without-delimiters", login=False)  # no frame at all: auth deadline
            assert gw.metrics.rejects.get("auth_timeout") == 1
            assert gw.metrics.reports == 0

    asyncio.run(scenario())


def test_connection_caps_and_bytes_before_authentication(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw", max_connections=3, max_connections_per_address=2,
                           max_preauth_bytes=600) as (gw, port):  # fmt: skip
            a = await Terminal.open("127.0.0.1", port, VICTIM)
            b = await Terminal.open("127.0.0.1", port, ATTACKER)
            c = await Terminal.open("127.0.0.1", port, "013800000009")
            assert await closed_by_gateway(c)  # a third connection from 127.0.0.1
            assert gw.metrics.rejects == {"address_cap": 1}
            # Heartbeats before authenticating: answered until 600 bytes of frames, then closed.
            beat = frame_bytes(MSG_HEARTBEAT, ATTACKER, 1, None, b"")
            b.writer.write(beat * 60)
            assert await closed_by_gateway(b)
            assert gw.metrics.rejects["preauth_bytes"] == 1
            await a.login("7", PLATE)  # the first one is not disturbed
            a.writer.write(report(VICTIM, 3))
            assert (await acks(a))[0].result == 0
            for t in (a, b, c):
                t.close()
        assert gw.server.connection_cap == 3

    asyncio.run(scenario())


def test_sub_packages_are_refused_before_authentication_and_bounded_over_all_connections(tmp_path: Path) -> None:
    body = b"".join(
        struct.pack(">H", 28) + Location(lat=30, lon=114, time=NOW + dt.timedelta(seconds=k)).encode()
        for k in range(100)
    )
    body = struct.pack(">HB", 100, 1) + body
    frames = split_message(Header(MSG_BATCH_LOCATION, VICTIM, 10), body, 500)

    async def scenario() -> None:
        async with running(tmp_path / "gw", max_partial_bytes_total=1200) as (gw, port):
            anon = await Terminal.open("127.0.0.1", port, VICTIM)
            anon.writer.write(frames[0])
            assert (await acks(anon))[0] == GeneralResponse(10, MSG_BATCH_LOCATION, 1)
            assert gw.server.budget.used == 0 and gw.metrics.rejects["not_authenticated"] == 1
            anon.close()
            one = await Terminal.open("127.0.0.1", port, VICTIM)
            await one.login("7", PLATE)
            two = await Terminal.open("127.0.0.1", port, ATTACKER)
            await two.login("8", "")
            one.writer.write(frames[0] + frames[1])  # 1000 bytes held
            await asyncio.sleep(0.2)
            assert gw.server.budget.used == 1000
            other = split_message(Header(MSG_BATCH_LOCATION, ATTACKER, 10), body, 500)
            two.writer.write(other[0])  # 500 more would pass 1200 over all connections
            assert (await acks(two))[0].result == 1 and gw.metrics.rejects["subpackage_overflow"] == 1
            one.close()
            await asyncio.sleep(0.2)
            assert gw.server.budget.used == 0  # given back when the connection closed
            two.close()

    asyncio.run(scenario())


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


# --------------------------------------------------------------------------- protocol answers


def with_length(frame: bytes, delta: int) -> bytes:
    raw = bytearray(unescape(frame[1:-1]))
    props = int.from_bytes(raw[2:4], "big")
    raw[2:4] = ((props & ~0x3FF) | ((props & 0x3FF) + delta) & 0x3FF).to_bytes(2, "big")
    raw[-1] = check_code(bytes(raw[:-1]))
    return b"\x7e" + escape(bytes(raw)) + b"\x7e"


def test_a_wrong_length_is_answered_with_result_2_and_an_encrypted_body_with_3(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            await term.login("7", PLATE)
            enc = Header(MSG_LOCATION, VICTIM, 72, encryption=1)
            term.writer.write(with_length(report(VICTIM, 70), 1) + with_length(report(VICTIM, 71), -3)
                              + encode_frame(enc, Location(lat=30, lon=114, time=NOW).encode()))  # fmt: skip
            got = await acks(term, 3)
            assert got == [GeneralResponse(70, MSG_LOCATION, 2), GeneralResponse(71, MSG_LOCATION, 2),
                           GeneralResponse(72, MSG_LOCATION, 3)]  # fmt: skip
            assert gw.metrics.rejects["bad_length"] == 2 and gw.metrics.rejects["encrypted_body"] == 1
            term.close()

    asyncio.run(scenario())
