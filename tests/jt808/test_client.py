"""The terminal side: frames from the stream, refused registrations and authentications as errors."""

from __future__ import annotations

import asyncio

import pytest

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.jt808.client import AuthenticationRefusedError, RegistrationRefusedError, Terminal
from truckcarbon.jt808.frame import Header, encode_frame
from truckcarbon.jt808.messages import MSG_REGISTER_RESPONSE, RegistrationResponse

from .gwkit import PHONE, StreamWriterStub


def test_refusals_are_truckcarbon_and_connection_errors() -> None:
    err = RegistrationRefusedError(PHONE, 3)
    assert isinstance(err, TruckcarbonError) and isinstance(err, ConnectionError) and err.result == 3
    assert str(err) == f"terminal {PHONE}: registration refused with result 3 (terminal registered)"
    assert "result 9 (unknown result)" in str(RegistrationRefusedError(PHONE, 9))
    assert issubclass(AuthenticationRefusedError, TruckcarbonError) and issubclass(AuthenticationRefusedError, OSError)


def test_frames_come_whole_across_reads_and_a_refused_registration_raises() -> None:
    async def scenario() -> None:
        reader = asyncio.StreamReader()
        term = Terminal(reader, StreamWriterStub(), PHONE)  # type: ignore[arg-type]
        refused = encode_frame(Header(MSG_REGISTER_RESPONSE, PHONE, 1), RegistrationResponse(1, 1).encode())
        reader.feed_data(refused[:5])  # the answer comes in two reads
        asked = asyncio.create_task(term.register("7"))
        await asyncio.sleep(0)
        reader.feed_data(refused[5:])
        with pytest.raises(RegistrationRefusedError) as err:
            await asked
        assert err.value.result == 1
        reader.feed_eof()
        with pytest.raises(ConnectionError, match="closed the connection"):
            await term.frames()

    asyncio.run(scenario())
