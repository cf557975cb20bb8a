"""A JT/T 808 terminal's side of a connection: frames in, the register-and-authenticate handshake."""

from __future__ import annotations

import asyncio

from truckcarbon.core.errors import TruckcarbonError
from truckcarbon.jt808.frame import Header, decode_frame, encode_frame, split_frames
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_GENERAL_RESPONSE,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    Authentication,
    GeneralResponse,
    RegisterResult,
    Registration,
    RegistrationResponse,
)


class RegistrationRefusedError(TruckcarbonError, ConnectionError):
    """The gateway answered a registration (0x0100) with a result other than success; ``result`` is the code."""

    def __init__(self, phone: str, result: int) -> None:
        try:
            name = RegisterResult(result).name.lower().replace("_", " ")
        except ValueError:
            name = "unknown result"
        super().__init__(f"terminal {phone}: registration refused with result {result} ({name})")
        self.phone, self.result = phone, result


class AuthenticationRefusedError(TruckcarbonError, ConnectionError):
    """The gateway answered an authentication (0x0102) with a result other than success."""


class Terminal:
    """One connection to a gateway, as terminal ``phone`` (12 digits)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, phone: str) -> None:
        self.reader, self.writer, self.phone = reader, writer, phone
        self.buffer = b""

    @classmethod
    async def open(cls, host: str, port: int, phone: str) -> Terminal:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, phone)

    async def frames(self) -> list[bytes]:
        """The next complete frames from the gateway (waits for at least one read)."""
        chunk = await self.reader.read(1 << 16)
        if not chunk:
            raise ConnectionError("the gateway closed the connection")
        frames, self.buffer, _ = split_frames(self.buffer + chunk)
        return frames

    async def ask(self, frame: bytes, want: int) -> bytes:
        """Send a frame and return the body of the first reply with message id ``want``."""
        self.writer.write(frame)
        await self.writer.drain()
        while True:
            for f in await self.frames():
                header, body = decode_frame(f)
                if header.msg_id == want:
                    return body

    async def register(self, terminal_id: str, plate: str = "", maker: str = "TRKCB", model: str = "SIM") -> str:
        """Register (0x0100 -> 0x8100); the authentication code the gateway gives (once: keep it).

        Raises
        ------
        RegistrationRefusedError
            The registration was answered with a result code other than 0.
        """
        reg = Registration(0, 0, maker, model, terminal_id, 1, plate).encode()
        body = await self.ask(encode_frame(Header(MSG_REGISTER, self.phone, 1), reg), MSG_REGISTER_RESPONSE)
        response = RegistrationResponse.decode(body)
        if response.result != RegisterResult.OK:
            raise RegistrationRefusedError(self.phone, response.result)
        return response.auth_code

    async def authenticate(self, code: str) -> None:
        """Authenticate (0x0102) with ``code``.

        Raises
        ------
        AuthenticationRefusedError
            The gateway answered with a result other than 0.
        """
        auth = encode_frame(Header(MSG_AUTH, self.phone, 2), Authentication(code).encode())
        if GeneralResponse.decode(await self.ask(auth, MSG_GENERAL_RESPONSE)).result != 0:
            raise AuthenticationRefusedError(f"terminal {self.phone}: authentication refused")

    async def login(self, terminal_id: str, plate: str = "", maker: str = "TRKCB", model: str = "SIM") -> str:
        """:meth:`register`, then :meth:`authenticate` with the code given; the code."""
        code = await self.register(terminal_id, plate, maker, model)
        await self.authenticate(code)
        return code

    def close(self) -> None:
        self.writer.close()
