"""The answers to each frame: registration results, sub-packages, load bits, fuzzed frames, the report checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.client import RegistrationRefusedError, Terminal
from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.dispatch import Dispatcher
from truckcarbon.jt808.frame import (
    Header,
    check_code,
    decode_frame,
    encode_frame,
    escape,
    frame_bytes,
    split_message,
    unescape,
)
from truckcarbon.jt808.location import Location, location_values
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_DEREGISTER,
    MSG_GENERAL_RESPONSE,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_RESEND_REQUEST,
    Authentication,
    GeneralResponse,
    Registration,
    ResendRequest,
)
from truckcarbon.jt808.observe import Metrics
from truckcarbon.jt808.reassembly import ByteBudget, Reassembler
from truckcarbon.jt808.registry import Registry, read_terminal_list
from truckcarbon.jt808.session import Session
from truckcarbon.jt808.validation import Limits, check
from truckcarbon.jt808.wal import RECORD

from .gwkit import (
    NOW,
    OTHER,
    PHONE,
    PLATE,
    T0,
    FakeWriter,
    acks,
    batch,
    dataset_keys,
    dataset_rows,
    frames_until,
    ms,
    raw_location,
    report,
    running,
)


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
            got = await frames_until(term, MSG_RESEND_REQUEST)
            assert [h.msg_id for h, _ in got] == [MSG_RESEND_REQUEST]
            assert ResendRequest.decode(got[0][1]) == ResendRequest(100, (2,))
            assert gw.metrics.reports == 0
            term.writer.write(frames[1])
            got = await frames_until(term, MSG_GENERAL_RESPONSE, n)
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
            got = await frames_until(term, MSG_RESEND_REQUEST)
            assert ResendRequest.decode(got[-1][1]) == ResendRequest(100, (1,))
            # Two messages incomplete: a third is refused, piece by piece, with result 1.
            term.writer.write(other[0] + third[0])
            got = await frames_until(term, MSG_GENERAL_RESPONSE)
            assert GeneralResponse.decode(got[-1][1]) == GeneralResponse(300, MSG_BATCH_LOCATION, 1)
            assert gw.metrics.rejects.get("subpackage_overflow") == 1 and gw.metrics.reports == 0
            term.close()
            await asyncio.sleep(0.1)
            assert gw.metrics.rejects.get("subpackage_abandoned") == 2  # dropped with the connection

    asyncio.run(scenario())


def test_load_bits_00_are_unknown_unless_the_terminal_list_says_it_has_a_sensor(tmp_path: Path) -> None:
    listed = tmp_path / "terminals.txt"
    listed.write_text(f"{PHONE} load-sensor  # weighs its load\n{OTHER}\n", encoding="utf-8")
    terminals = read_terminal_list(listed)
    assert terminals.load_sensors == frozenset({PHONE})

    async def scenario() -> None:
        async with running(tmp_path / "gw", known_terminals=terminals.phones,
                           load_sensors=terminals.load_sensors) as (_, port):  # fmt: skip
            for phone, tid in ((PHONE, "7"), (OTHER, "8")):
                term = await Terminal.open("127.0.0.1", port, phone)
                await term.login(tid, "")
                term.writer.write(report(phone, 1, status=0) + report(phone, 2, NOW + dt.timedelta(seconds=1),
                                                                     status=0b01 << 8))  # fmt: skip
                assert [a.result for a in await acks(term, 2)] == [0, 0]
                term.close()

    asyncio.run(scenario())
    got = sorted((r["vehicle_id"], r["ts"], r["load_state"]) for r in dataset_rows(tmp_path / "gw"))
    assert got == [(7, ms(NOW), "empty"), (7, ms(NOW) + 1000, "half"), (8, ms(NOW), None), (8, ms(NOW) + 1000, "half")]


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
    config = GatewayConfig(data=tmp_path / "gw", limits=Limits(max_age_s=0))
    gw = Dispatcher(config, Metrics(), Registry(tmp_path / "terminals.json"), lambda: True, time.monotonic)
    budget = ByteBudget(config.max_partial_bytes_total)
    rng = random.Random(808)
    code = gw.registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]
    seeds = [
        encode_frame(Header(MSG_REGISTER, PHONE, 1), Registration(1, 2, "M", "X", "7", 1, PLATE).encode()),
        encode_frame(Header(MSG_REGISTER, PHONE, 1, 1), Registration(1, 2, "M", "X", "7", 1, PLATE).encode(True)),
        encode_frame(Header(MSG_AUTH, PHONE, 2), Authentication(code).encode()),
        encode_frame(Header(MSG_AUTH, PHONE, 2, 1), Authentication(code, "1" * 15, "v").encode(True)),
        report(PHONE, 3, odometer_km=5.0, fuel_l=9.0),
        *split_message(Header(MSG_BATCH_LOCATION, PHONE, 4),
                       struct.pack(">HB", 2, 0) + 2 * (struct.pack(">H", 28) + Location(30, 114, NOW).encode()), 20),
        frame_bytes(MSG_HEARTBEAT, PHONE, 5, None, b""),
        frame_bytes(MSG_DEREGISTER, PHONE, 6, None, b""),
    ]  # fmt: skip
    results: list[Any] = []
    for k in range(6000):
        session = Session(FakeWriter(), "fuzz", Reassembler(4, 1 << 14, 60, budget), 1e9)  # type: ignore[arg-type]
        if k % 2:
            gw.authenticate(session, Header(MSG_AUTH, PHONE, 0), code.encode())
        for _ in range(5):
            frame = mutate(rng.choice(seeds), rng) if rng.random() < 0.9 else rng.choice(seeds)
            results.append(gw.dispatch(frame, session, 1.0))  # raises nothing: no safety net here
        entry = gw.registry.get(PHONE)
        if entry is None or not gw.registry.verify(entry, code.encode()):  # deregistered, or given a new code
            gw.registry.release(PHONE)
            code = gw.registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]
    assert gw.metrics.internal_errors == 0
    assert any(r is not None for r in results) and len(gw.metrics.rejects) > 8


@pytest.fixture(scope="module")
def fast_dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Dispatcher:
    data = tmp_path_factory.mktemp("fast-check")
    registry = Registry(data / "terminals.json")
    return Dispatcher(GatewayConfig(data=data), Metrics(), registry, lambda: True, time.monotonic)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
    st.integers(-400 * 86400, 2 * 86400), st.sampled_from([None, 0, 5000, 2**32 - 1]),
    st.sampled_from([None, 0, 49999, 50001, 0xFFFF]),
)  # fmt: skip
def test_the_gateways_fast_check_equals_check(
    fast_dispatcher: Dispatcher,
    lat: int,
    lon: int,
    speed: int,
    status: int,
    age_s: int,
    odometer: int | None,
    fuel: int | None,
) -> None:
    """The report path checks valid reports inline; it gives the reason :func:`check` gives, on any values."""
    from truckcarbon.jt808.wal import RECORD

    now_ms = ms(NOW)
    items = (bytes((1, 4)) + struct.pack(">I", odometer) if odometer is not None else b"") + (
        bytes((2, 2)) + struct.pack(">H", fuel) if fuel is not None else b""
    )
    body = raw_location(lat % 200_000_000, lon % 400_000_000, NOW - dt.timedelta(seconds=age_s), speed, status, items)
    gw = fast_dispatcher
    session = Session(FakeWriter(), "x", Reassembler(1, 1, 1), 1e9)  # type: ignore[arg-type]
    session.vid = b"7"
    got = RECORD.unpack(gw.records(session, [body], now_ms))[8]
    assert got == check(location_values(body), now_ms, gw.limits)


class Terminals:
    """A dispatcher with one registered terminal, sessions on fake connections, and a clock to set."""

    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.clock = [0.0]
        self.accepting = True
        config = GatewayConfig(data=tmp_path, **options)
        self.dispatcher = Dispatcher(config, Metrics(), Registry(tmp_path / "terminals.json"),
                                     lambda: self.accepting, lambda: self.clock[0])  # fmt: skip
        self.code = self.dispatcher.registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))[1]

    def session(self, authenticated: bool = True) -> Session:
        c = self.dispatcher.config
        session = Session(FakeWriter(), "x", Reassembler(4, 1 << 14, 60), c.max_reports_per_s, self.clock[0])  # type: ignore[arg-type]
        if authenticated:
            assert self.dispatcher.authenticate(session, Header(MSG_AUTH, PHONE, 1), self.code.encode())
        return session

    def answers(self, session: Session) -> list[GeneralResponse]:
        """The 0x8001 answers gathered on ``session`` (taken)."""
        got = [decode_frame(f) for f in session.out]
        session.out.clear()
        return [GeneralResponse.decode(b) for h, b in got if h.msg_id == MSG_GENERAL_RESPONSE]


def test_a_heartbeat_is_answered_and_reports_need_authentication(tmp_path: Path) -> None:
    t = Terminals(tmp_path)
    session = t.session(authenticated=False)
    assert t.dispatcher.dispatch(frame_bytes(MSG_HEARTBEAT, PHONE, 5, None, b""), session, 1.0) is None
    reply = decode_frame(session.out[0])[0]
    assert (reply.msg_id, reply.phone, reply.serial) == (MSG_GENERAL_RESPONSE, PHONE, 1)  # the platform's serial 1
    assert t.answers(session) == [GeneralResponse(5, MSG_HEARTBEAT, 0)]
    assert t.dispatcher.dispatch(report(PHONE, 6), session, 1.0) is None
    assert t.answers(session) == [GeneralResponse(6, MSG_LOCATION, 1)]
    assert t.dispatcher.metrics.rejects == {"not_authenticated": 1} and t.dispatcher.metrics.reports == 0


def test_reports_wait_while_storage_is_unavailable_and_beyond_the_rate(tmp_path: Path) -> None:
    t = Terminals(tmp_path, max_reports_per_s=2.0)
    session = t.session()
    send = t.dispatcher.dispatch
    t.accepting = False
    assert send(report(PHONE, 1), session, 1.0) is None
    assert t.answers(session) == [GeneralResponse(1, MSG_LOCATION, 1)]
    t.accepting = True
    held = [send(report(PHONE, k, NOW + dt.timedelta(seconds=k)), session, 1.0) for k in (2, 3, 4)]
    assert held[0] is not None and held[1] is not None and held[2] is None  # two tokens a second
    t.clock[0] = 0.5  # half a second: one more token
    assert send(report(PHONE, 5, NOW + dt.timedelta(seconds=5)), session, 1.0) is not None
    assert send(report(PHONE, 6, NOW + dt.timedelta(seconds=6)), session, 1.0) is None
    assert t.answers(session) == [GeneralResponse(4, MSG_LOCATION, 1), GeneralResponse(6, MSG_LOCATION, 1)]
    assert t.dispatcher.metrics.rejects == {"storage_unavailable": 1, "rate_limited": 2}
    # A held report is answered only when told (once durable), with its serial; its record is the report.
    held[0].ack(0)
    assert t.answers(session) == [GeneralResponse(2, MSG_LOCATION, 0)] and held[0].reports == 1
    vid, ts_ms, lon, lat = RECORD.unpack(held[0].records)[:4]
    assert (vid.rstrip(b"\x00"), ts_ms, lon, lat) == (b"7", ms(NOW + dt.timedelta(seconds=2)), 114.3, 30.5)


def test_a_newer_connection_of_the_terminal_closes_the_older_and_a_wrong_code_ends_the_rights(tmp_path: Path) -> None:
    t = Terminals(tmp_path)
    old, new = t.session(), t.session()
    assert old.closing == "superseded" and new.closing is None
    assert t.dispatcher.by_phone == {"13800000007": new}
    assert not t.dispatcher.authenticate(new, Header(MSG_AUTH, PHONE, 2), b"wrong")
    assert new.auth is None and new.auth_failures == 1 and t.dispatcher.by_phone == {}
    assert t.dispatcher.metrics.rejects == {"superseded": 1, "bad_authentication": 1}


def test_an_unsupported_message_is_answered_with_result_3(tmp_path: Path) -> None:
    t = Terminals(tmp_path)
    session = t.session()
    t.dispatcher.dispatch(frame_bytes(0x0900, PHONE, 9, None, b"\x01"), session, 1.0)
    assert t.answers(session)[-1] == GeneralResponse(9, 0x0900, 3)
    assert t.dispatcher.metrics.rejects == {"unsupported_message": 1}
