"""JT/T 808 message bodies: round trips (hypothesis), published layouts of both editions, malformed bodies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truckcarbon.jt808.frame import FrameError
from truckcarbon.jt808.messages import (
    MSG_LOCATION,
    Authentication,
    GeneralResponse,
    Registration,
    RegistrationResponse,
    ResendRequest,
    auth_code_bytes,
)


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        Registration,
        province=st.integers(0, 0xFFFF),
        city=st.integers(0, 0xFFFF),
        maker=st.text("ABCDE12345", max_size=5),
        model=st.text("ABCDEFGH-123", max_size=20),
        terminal_id=st.text("ABCDEF0123", max_size=7),
        plate_color=st.integers(0, 9),
        plate=st.sampled_from(["鲁Q12345", "京A0001", "粤B8H888", ""]),
    ),
    st.booleans(),
)
def test_registration_round_trip(reg: Registration, v2019: bool) -> None:
    assert Registration.decode(reg.encode(v2019), v2019) == reg


@given(st.integers(0, 0xFFFF), st.integers(0, 4), st.text("0123456789abcdef", max_size=20))
def test_responses_and_authentication_round_trip(serial: int, result: int, code: str) -> None:
    rr = RegistrationResponse(serial, result, code if result == 0 else "")
    assert RegistrationResponse.decode(rr.encode()) == rr
    gr = GeneralResponse(serial, MSG_LOCATION, result)
    assert GeneralResponse.decode(gr.encode()) == gr
    for v2019 in (False, True):
        auth = Authentication(code, "860000000000001" if v2019 else "", "1.0" if v2019 else "")
        assert Authentication.decode(auth.encode(v2019), v2019) == auth


def test_resend_request_layouts() -> None:
    req = ResendRequest(0x1234, (2, 5))
    assert req.encode() == bytes.fromhex("1234 02 0002 0005")  # 2013: the count is a BYTE
    assert req.encode(v2019=True) == bytes.fromhex("1234 0002 0002 0005")  # 2019: a WORD
    for v2019 in (False, True):
        assert ResendRequest.decode(req.encode(v2019), v2019) == req
    with pytest.raises(FrameError):
        ResendRequest.decode(bytes.fromhex("1234 03 0002 0005"))


def test_registration_fields_have_their_edition_widths() -> None:
    reg = Registration(37, 100, "TRK", "M1", "1234567", 1, "鲁Q1")
    body = reg.encode()
    # province, city, maker BYTE[5], model BYTE[20], terminal id BYTE[7], plate colour, plate (GBK)
    assert len(body) == 2 + 2 + 5 + 20 + 7 + 1 + len("鲁Q1".encode("gbk"))
    assert body[:4] == bytes.fromhex("0025 0064") and body[4:9] == b"TRK\x00\x00" and body[36] == 1
    assert len(reg.encode(v2019=True)) == 2 + 2 + 11 + 30 + 30 + 1 + len("鲁Q1".encode("gbk"))
    with pytest.raises(FrameError, match="bad_body"):
        Registration.decode(body[:30])


def test_a_refused_registration_carries_no_code() -> None:
    assert RegistrationResponse(7, 3, "secret").encode() == bytes.fromhex("0007 03")
    assert RegistrationResponse(7, 0, "ab").encode() == bytes.fromhex("0007 00") + b"ab"
    assert RegistrationResponse.decode(bytes.fromhex("0007 03") + b"xx") == RegistrationResponse(7, 3, "")


def test_auth_code_bytes_are_the_bytes_sent() -> None:
    assert auth_code_bytes(b"abc\x00\x00") == b"abc"  # 2013: the whole body, NUL padding removed
    assert auth_code_bytes(b"\xb9\xfa") == b"\xb9\xfa"  # never decoded: any bytes are a (wrong) code
    v2019 = bytes((3,)) + b"abc" + b"8" * 15 + b"v1".ljust(20, b"\x00")
    assert auth_code_bytes(v2019, v2019=True) == b"abc"  # 2019: length-prefixed
    with pytest.raises(FrameError, match="bad_body"):
        auth_code_bytes(bytes((5,)) + b"abc", v2019=True)
    assert GeneralResponse.decode(bytes.fromhex("0001 0200 00")) == GeneralResponse(1, MSG_LOCATION, 0)
