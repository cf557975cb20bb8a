"""The gateway attacked: impersonation, other phones, bad codes, bad values, slow and greedy connections, fuzz."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from gwkit import NOW, acks, closed_by_gateway, dataset_rows, ms, report, running
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.client import AuthenticationRefusedError, Terminal
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.frame import Header, check_code, encode_frame, escape, frame_bytes, split_message, unescape
from truckcarbon.jt808.gateway import Gateway
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
from truckcarbon.jt808.observe import Metrics
from truckcarbon.jt808.reassembly import Reassembler
from truckcarbon.jt808.registry import Registry, known_vehicles, queue_release, read_terminal_list
from truckcarbon.jt808.server import Server
from truckcarbon.jt808.session import Session
from truckcarbon.jt808.validation import Limits

VICTIM, ATTACKER = "013800000007", "013800000666"
PLATE = "京A00007"


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


def test_codes_are_stored_hashed_and_plain_ones_of_older_versions_are_hashed_on_start(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    path.write_text(json.dumps({VICTIM: {"vehicle_id": 7, "plate": PLATE, "terminal_id": "7",
                                         "auth_code": "0123456789abcdef"}}), encoding="utf-8")  # fmt: skip
    registry = Registry(path)
    assert "0123456789abcdef" not in path.read_text(encoding="utf-8")
    entry = registry.get("13800000007")  # compared without the BCD zero padding
    assert entry is not None and entry["phone"] == VICTIM
    assert registry.verify(entry, b"0123456789abcdef") and not registry.verify(entry, b"0123456789abcdeF")
    assert not registry.verify(entry, bytes.fromhex("b9fabcd2"))


# --------------------------------------------------------------------------- vehicle ids as text


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


# --------------------------------------------------------------------------- values


def raw_location(lat_raw: int, lon_raw: int, when: dt.datetime, speed_raw: int = 0, status: int = 0b10,
                 items: bytes = b"") -> bytes:  # fmt: skip
    stamp = bytes.fromhex(when.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%y%m%d%H%M%S"))
    return struct.pack(">IIIIHHH", 0, status, lat_raw, lon_raw, 0, speed_raw, 0) + stamp + items


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


def test_load_bits_00_are_unknown_unless_the_terminal_list_says_it_has_a_sensor(tmp_path: Path) -> None:
    listed = tmp_path / "terminals.txt"
    listed.write_text(f"{VICTIM} load-sensor  # weighs its load\n{ATTACKER}\n", encoding="utf-8")
    terminals = read_terminal_list(listed)
    assert terminals.load_sensors == frozenset({VICTIM})

    async def scenario() -> None:
        async with running(tmp_path / "gw", known_terminals=terminals.phones,
                           load_sensors=terminals.load_sensors) as (_, port):  # fmt: skip
            for phone, tid in ((VICTIM, "7"), (ATTACKER, "8")):
                term = await Terminal.open("127.0.0.1", port, phone)
                await term.login(tid, "")
                term.writer.write(report(phone, 1, status=0) + report(phone, 2, NOW + dt.timedelta(seconds=1),
                                                                     status=0b01 << 8))  # fmt: skip
                assert [a.result for a in await acks(term, 2)] == [0, 0]
                term.close()

    asyncio.run(scenario())
    got = sorted((r["vehicle_id"], r["ts"], r["load_state"]) for r in dataset_rows(tmp_path / "gw"))
    assert got == [(7, ms(NOW), "empty"), (7, ms(NOW) + 1000, "half"), (8, ms(NOW), None), (8, ms(NOW) + 1000, "half")]


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


# --------------------------------------------------------------------------- fuzz


class FakeWriter:
    def __init__(self) -> None:
        self.out = bytearray()

    def write(self, data: bytes) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(unescape(frame[1:-1]))
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(5)
        if kind == 0 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1 and data:
            del data[rng.randrange(len(data)) :]
        elif kind == 2:
            data[rng.randrange(len(data) + 1) : 0] = rng.randbytes(rng.randrange(1, 40))
        elif kind == 3 and len(data) > 4:
            data[2:4] = rng.randbytes(2)  # body properties: length, encryption, sub-package, version bits
        else:
            data[0:2] = rng.choice([0x0100, 0x0102, 0x0002, 0x0003, 0x0200, 0x0704, 0x8001, 0x0001]).to_bytes(2)
    if rng.random() < 0.8 and data:  # mostly with a right check code, to get past it
        data[-1] = check_code(bytes(data[:-1]))
    return b"\x7e" + escape(bytes(data)) + b"\x7e"


def test_no_frame_raises_fuzz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated frames of every message, with a right check code, against fresh and authenticated sessions."""
    monkeypatch.setattr("truckcarbon.jt808.registry.os.fsync", lambda fd: None)  # registrations by the thousand
    gw = Gateway(GatewayConfig(data=tmp_path / "gw", limits=Limits(max_age_s=0)))
    rng = random.Random(808)
    code = gw.registry.register(VICTIM, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]
    seeds = [
        encode_frame(Header(MSG_REGISTER, VICTIM, 1), Registration(1, 2, "M", "X", "7", 1, PLATE).encode()),
        encode_frame(Header(MSG_REGISTER, VICTIM, 1, 1), Registration(1, 2, "M", "X", "7", 1, PLATE).encode(True)),
        encode_frame(Header(MSG_AUTH, VICTIM, 2), Authentication(code).encode()),
        encode_frame(Header(MSG_AUTH, VICTIM, 2, 1), Authentication(code, "1" * 15, "v").encode(True)),
        report(VICTIM, 3, odometer_km=5.0, fuel_l=9.0),
        *split_message(Header(MSG_BATCH_LOCATION, VICTIM, 4),
                       struct.pack(">HB", 2, 0) + 2 * (struct.pack(">H", 28) + Location(30, 114, NOW).encode()), 20),
        frame_bytes(MSG_HEARTBEAT, VICTIM, 5, None, b""),
        frame_bytes(MSG_DEREGISTER, VICTIM, 6, None, b""),
    ]  # fmt: skip
    results: list[Any] = []
    for k in range(6000):
        session = Session(FakeWriter(), "fuzz", Reassembler(4, 1 << 14, 60, gw.server.budget), 1e9)  # type: ignore[arg-type]
        if k % 2:
            gw.server.dispatcher.authenticate(session, Header(MSG_AUTH, VICTIM, 0), code.encode())
        for _ in range(5):
            frame = mutate(rng.choice(seeds), rng) if rng.random() < 0.9 else rng.choice(seeds)
            results.append(gw.server.dispatcher.dispatch(frame, session, 1.0))  # raises nothing: no safety net here
        entry = gw.registry.get(VICTIM)
        if entry is None or not gw.registry.verify(entry, code.encode()):  # deregistered, or given a new code
            gw.registry.release(VICTIM)
            code = gw.registry.register(VICTIM, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]
    assert gw.metrics.internal_errors == 0
    assert any(r is not None for r in results) and len(gw.metrics.rejects) > 8


def test_an_unexpected_error_is_caught_at_the_frame_logged_in_one_line_and_the_read_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from truckcarbon.jt808.observe import JsonFormatter

    def broken(cls: type, body: bytes, v2019: bool = False) -> Registration:
        raise RuntimeError("a defect")

    async def scenario() -> None:
        async with running(tmp_path / "gw") as (gw, port):
            monkeypatch.setattr(Registration, "decode", classmethod(broken))
            term = await Terminal.open("127.0.0.1", port, VICTIM)
            reg = encode_frame(Header(MSG_REGISTER, VICTIM, 1), b"\x00" * 40)
            term.writer.write(reg + frame_bytes(MSG_HEARTBEAT, VICTIM, 2, None, b""))
            assert (await acks(term))[0] == GeneralResponse(2, MSG_HEARTBEAT, 0)  # the next frame is answered
            assert gw.metrics.internal_errors == 1 and gw.metrics.rejects["internal_error"] == 1
            term.close()

    asyncio.run(scenario())
    records = [r for r in caplog.records if '"internal_error"' in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is None
    line = JsonFormatter().format(records[0])
    assert "\n" not in line and json.loads(line)["error"] == "RuntimeError: a defect"


def test_log_lines_are_json_and_carry_no_traceback() -> None:
    import logging

    from truckcarbon.jt808.observe import JsonFormatter

    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Task exception was never retrieved", None,
                                sys.exc_info())  # fmt: skip
    out = JsonFormatter().format(rec)
    assert "Traceback" not in out and "\n" not in out
    want = {"level": "error", "logger": "asyncio", "event": "log", "message": "Task exception was never retrieved"}
    assert json.loads(out) | {"ts": ""} == {"ts": "", **want, "error": "ValueError: bad"}


class StreamWriterStub(FakeWriter):
    async def drain(self) -> None:
        pass


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
        beats = b"".join(frame_bytes(MSG_HEARTBEAT, VICTIM, k, None, b"") for k in range(40))
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


@pytest.fixture(scope="module")
def fast_gw(tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    return Gateway(GatewayConfig(data=tmp_path_factory.mktemp("fast-check")))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
    st.integers(-400 * 86400, 2 * 86400), st.sampled_from([None, 0, 5000, 2**32 - 1]),
    st.sampled_from([None, 0, 49999, 50001, 0xFFFF]),
)  # fmt: skip
def test_the_gateways_fast_check_equals_check(
    fast_gw: Gateway, lat: int, lon: int, speed: int, status: int, age_s: int, odometer: int | None, fuel: int | None
) -> None:
    """The report path checks valid reports inline; it gives the reason :func:`check` gives, on any values."""
    from truckcarbon.jt808.location import location_values
    from truckcarbon.jt808.validation import check
    from truckcarbon.jt808.wal import RECORD

    now_ms = ms(NOW)
    items = (bytes((1, 4)) + struct.pack(">I", odometer) if odometer is not None else b"") + (
        bytes((2, 2)) + struct.pack(">H", fuel) if fuel is not None else b""
    )
    body = raw_location(lat % 200_000_000, lon % 400_000_000, NOW - dt.timedelta(seconds=age_s), speed, status, items)
    gw = fast_gw
    session = Session(FakeWriter(), "x", Reassembler(1, 1, 1), 1e9)  # type: ignore[arg-type]
    session.vid = b"7"
    got = RECORD.unpack(gw.server.dispatcher.records(session, [body], now_ms))[8]
    assert got == check(location_values(body), now_ms, gw.server.dispatcher.limits)
