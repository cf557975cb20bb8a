"""Sub-package reassembly: any order, serial wrap-around, both editions, bounds and timeouts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.frame import FrameError, Header, decode_frame, split_message
from truckcarbon.jt808.messages import MSG_BATCH_LOCATION, MSG_LOCATION
from truckcarbon.jt808.reassembly import Reassembler, ReassemblyFullError


def pieces(body: bytes, serial: int, v2019: bool = False, max_body: int = 100) -> list[tuple[Header, bytes]]:
    phone = "7" * (20 if v2019 else 12)
    return [decode_frame(f) for f in split_message(Header(MSG_BATCH_LOCATION, phone, serial, 1 if v2019 else None),
                                                    body, max_body)]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=101, max_size=1500), st.integers(0, 0xFFFF), st.booleans(), st.randoms())
def test_pieces_in_any_order_give_the_message_once(body: bytes, serial: int, v2019: bool, rnd: object) -> None:
    parts = pieces(body, serial, v2019)
    order = list(range(len(parts)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    r = Reassembler(max_pending=4, max_bytes=1 << 16, timeout_s=60)
    done = [r.add(*parts[k], now_s=0.0) for k in order]
    assert all(d is None for d in done[:-1])
    message = done[-1]
    assert message is not None and message.body == body
    assert message.header == Header(MSG_BATCH_LOCATION, parts[0][0].phone, serial, 1 if v2019 else None)
    assert message.serials == tuple((serial + k) & 0xFFFF for k in range(len(parts)))  # in package order
    assert r.pending == {} and r.size == 0


def test_interleaved_messages_and_a_repeated_piece() -> None:
    a, b = pieces(b"a" * 250, 0xFFFE), pieces(b"b" * 250, 40)  # a's serials wrap: 65534, 65535, 0
    r = Reassembler(max_pending=2, max_bytes=1000, timeout_s=60)
    assert r.add(*a[2], now_s=0) is None
    assert r.add(*b[0], now_s=0) is None
    assert r.add(*a[2], now_s=0) is None  # sent again: replaces, does not count twice
    assert r.size == 50 + 100
    assert r.add(*a[0], now_s=0) is None and r.add(*b[1], now_s=0) is None
    got_a = r.add(*a[1], now_s=0)
    assert got_a is not None and got_a.body == b"a" * 250 and got_a.serials == (0xFFFE, 0xFFFF, 0)
    got_b = r.add(*b[2], now_s=0)
    assert got_b is not None and got_b.body == b"b" * 250


def test_a_single_package_message_is_whole_at_once() -> None:
    r = Reassembler(max_pending=0, max_bytes=0, timeout_s=60)
    msg = r.add(Header(MSG_LOCATION, "123456789012", 5, None, 0, 1, 1), b"xyz", now_s=0)
    assert msg is not None and msg.body == b"xyz" and msg.serials == (5,) and msg.header.package_total is None


def test_bounds_refuse_pieces() -> None:
    a, b, c = pieces(b"a" * 300, 10), pieces(b"b" * 300, 20), pieces(b"c" * 300, 30)
    r = Reassembler(max_pending=2, max_bytes=300, timeout_s=60)
    r.add(*a[0], now_s=0)
    r.add(*b[0], now_s=0)
    with pytest.raises(ReassemblyFullError) as err:
        r.add(*c[0], now_s=0)  # a third incomplete message
    assert err.value.reason == "subpackage_overflow"
    r.add(*a[1], now_s=0)  # 300 bytes held now
    with pytest.raises(ReassemblyFullError):
        r.add(*b[1], now_s=0)  # 100 more would exceed 300
    assert r.size == 300 and set(r.pending) == {(MSG_BATCH_LOCATION, 10), (MSG_BATCH_LOCATION, 20)}
    header, body = a[2]
    with pytest.raises(FrameError) as bad:  # the same message, another package total
        r.add(Header(header.msg_id, header.phone, header.serial, None, 0, 4, 3), body, now_s=0)
    assert bad.value.reason == "bad_package"


def test_incomplete_messages_time_out_and_are_asked_for_once() -> None:
    a, b = pieces(b"a" * 300, 10), pieces(b"b" * 300, 20)
    r = Reassembler(max_pending=4, max_bytes=10_000, timeout_s=5)
    r.add(*a[0], now_s=100)
    r.add(*b[2], now_s=103)  # b's last package: b[0] and b[1] are missing
    assert r.next_expiry_s() == 105
    due = r.resend_due()
    assert [(p.first_serial, p.missing()) for p in due] == [(20, [1, 2])]
    assert r.resend_due() == []  # asked once
    assert r.expire(104.9) == []
    assert [p.first_serial for p in r.expire(105)] == [10]
    assert r.size == 100 and r.next_expiry_s() == 108
    assert [p.first_serial for p in r.drop_all()] == [20] and r.size == 0 and r.next_expiry_s() is None
