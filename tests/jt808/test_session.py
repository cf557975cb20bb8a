"""A session's replies (serials, 0x8001 bodies, one write) and its report-rate tokens."""

from __future__ import annotations

from truckcarbon.jt808.frame import Header, decode_frame
from truckcarbon.jt808.messages import MSG_GENERAL_RESPONSE, MSG_LOCATION, GeneralResponse
from truckcarbon.jt808.reassembly import Reassembler
from truckcarbon.jt808.session import Session

from .gwkit import PHONE, FakeWriter


def new_session(rate: float = 10.0) -> tuple[Session, FakeWriter]:
    writer = FakeWriter()
    return Session(writer, "x", Reassembler(1, 1, 1), rate, 0.0), writer  # type: ignore[arg-type]


def test_answers_carry_the_platforms_serial_and_the_terminals_and_go_out_in_one_write() -> None:
    session, writer = new_session()
    session.serial = 0xFFFE  # the platform's serial wraps at 65536
    header = Header(MSG_LOCATION, PHONE, 40, version=1)
    session.answer(header, (40, 41, 42), 0)
    got = [decode_frame(f) for f in session.out]
    assert [h.serial for h, _ in got] == [0xFFFF, 0, 1]
    assert {(h.msg_id, h.phone, h.version) for h, _ in got} == {(MSG_GENERAL_RESPONSE, "00000000" + PHONE, 1)}
    assert [GeneralResponse.decode(b) for _, b in got] == [GeneralResponse(s, MSG_LOCATION, 0) for s in (40, 41, 42)]
    assert writer.out == b""  # nothing written before flush
    frames = list(session.out)
    session.flush()
    assert writer.out == b"".join(frames) and session.out == []
    session.flush()  # nothing gathered: nothing written
    assert writer.out == b"".join(frames)


def test_replies_to_a_closing_connection_are_dropped() -> None:
    session, writer = new_session()
    writer.is_closing = lambda: True  # type: ignore[method-assign]
    session.answer(Header(MSG_LOCATION, PHONE, 1), (1,), 1)
    session.flush()
    assert writer.out == b"" and session.out == []


def test_the_token_bucket_holds_one_seconds_worth() -> None:
    session, _ = new_session(rate=4.0)
    assert session.take_tokens(3, 0.0, 4.0) and not session.take_tokens(2, 0.0, 4.0)  # 4 to start with
    assert session.take_tokens(1, 0.0, 4.0) and not session.take_tokens(1, 0.125, 4.0)  # 0.5 refilled
    assert session.take_tokens(1, 0.25, 4.0)  # 0.5 + 0.5
    assert not session.take_tokens(5, 100.0, 4.0) and session.take_tokens(4, 100.0, 4.0)  # never above 4
