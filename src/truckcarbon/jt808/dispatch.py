"""What the gateway answers to each frame of a connection: identity, reports, sub-packages, protocol errors.

Identity (:mod:`truckcarbon.jt808.registry`)
  A terminal registers once (0x0100 -> 0x8100 with a code that is never sent
  again) and authenticates (0x0102) on every connection. A connection is bound to
  the phone it authenticated: a frame whose header carries another phone is
  refused (result 1, reject ``phone_mismatch``); a failed authentication ends the
  connection's rights, and ``max_auth_failures`` of them close it. Reports before
  authentication are refused (``not_authenticated``). A newer connection
  authenticated as the same terminal closes the older one. A terminal deregisters
  itself with 0x0003 from its authenticated session.

Values (:mod:`truckcarbon.jt808.validation`)
  Every report is checked; one out of range is acknowledged and written to
  ``DATA/quarantine/`` with its reason, never to the pings. Load state (status
  bits 8-9): 01 half and 11 full; 00 is empty only for a terminal the terminal
  list marks ``load-sensor`` (``load_sensing="listed"``), otherwise unknown. The
  ignition (status bit 0, ACC) goes to the pings' ``acc_on``.
  Reports are taken in at most ``max_reports_per_s`` per connection
  (``rate_limited``), and not at all while the compaction fails
  (``storage_unavailable``): the terminal keeps them and sends them again.

Sub-packages
  Sub-packaged messages (bit 13 of the body properties) are reassembled per
  connection (:mod:`truckcarbon.jt808.reassembly`), pieces in any order, and
  handled as if they had come in one frame. Every piece is answered once the
  whole message is handled: for location reports, once durable. When the last
  piece of a message is in but others are missing the gateway asks for them once
  with 0x8003. An incomplete message is dropped ``partial_timeout_s`` after its
  first piece (``subpackage_timeout``; ``subpackage_abandoned`` when the
  connection closes); a piece over a bound is answered with result 1
  (``subpackage_overflow``). Sub-packages are refused before authentication.

Protocol answers
  A frame whose check code is right but whose length or package fields are not is
  answered with 0x8001 result 2; an encrypted body (bits 10-12) with result 3; a
  message the gateway does not handle with result 3 (``unsupported_message``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.frame import FrameError, Header, decode_frame
from truckcarbon.jt808.location import batch_items, location_values
from truckcarbon.jt808.messages import (
    MSG_AUTH,
    MSG_BATCH_LOCATION,
    MSG_DEREGISTER,
    MSG_HEARTBEAT,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    MSG_RESEND_REQUEST,
    RESULT_BAD_MESSAGE,
    RESULT_FAILURE,
    RESULT_OK,
    RESULT_UNSUPPORTED,
    RegisterResult,
    Registration,
    RegistrationResponse,
    ResendRequest,
    auth_code_bytes,
)
from truckcarbon.jt808.observe import Metrics, event
from truckcarbon.jt808.reassembly import ReassemblyFullError
from truckcarbon.jt808.registry import Registry, canonical_phone
from truckcarbon.jt808.session import Held, Session
from truckcarbon.jt808.validation import LAT, LON, QUARANTINE_REASONS, STATUS_ENCRYPTED, check
from truckcarbon.jt808.wal import RECORD


class Dispatcher:
    """Frames in, replies gathered on their session; location reports returned as log records to acknowledge later.

    ``by_phone`` holds the authenticated sessions by canonical phone (one per
    terminal). ``accepting_reports`` says whether reports may be taken in now;
    ``clock`` is the deadlines' clock (monotonic seconds).
    """

    def __init__(self, config: GatewayConfig, metrics: Metrics, registry: Registry,
                 accepting_reports: Callable[[], bool], clock: Callable[[], float]) -> None:  # fmt: skip
        self.config, self.metrics, self.registry = config, metrics, registry
        self.limits = config.limits
        self.load_sensors = {canonical_phone(p) for p in config.load_sensors}
        self.accepting_reports = accepting_reports
        self.clock = clock
        self.by_phone: dict[str, Session] = {}

    def close_session(self, session: Session, reason: str) -> None:
        """Close a connection once (after the replies gathered so far), counting why."""
        if session.closing is None:
            session.closing = reason
            self.metrics.reject(reason)
            session.flush()
            session.writer.close()

    def dispatch(self, frame: bytes, session: Session, now: float = 0.0, now_ms: int | None = None) -> Held | None:
        """Answer a frame; for location reports return their records and acknowledgement, to send once durable.

        A sub-package is held until its message is whole; then the message is
        handled and every piece answered (see the module docstring).
        """
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        try:
            header, body = decode_frame(frame)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            if exc.header is not None:  # the check code is right: the header is the terminal's
                session.answer(exc.header, (exc.header.serial,), RESULT_BAD_MESSAGE)
            return None
        session.last_frame = now or self.clock()
        if (
            session.phone is not None
            and header.phone != session.raw_phone
            and (canonical_phone(header.phone) != session.phone)
        ):
            self.metrics.reject("phone_mismatch")
            session.answer(header, (header.serial,), RESULT_FAILURE)
            return None
        if header.encryption:
            self.metrics.reject("encrypted_body")
            session.answer(header, (header.serial,), RESULT_UNSUPPORTED)
            return None
        if header.package_total is None:
            return self.handle_message(header, body, (header.serial,), session, now_ms)
        if session.auth is None:  # nothing a terminal sends before authenticating needs sub-packages
            self.metrics.reject("not_authenticated")
            session.answer(header, (header.serial,), RESULT_FAILURE)
            return None
        try:
            message = session.parts.add(header, body, now or self.clock())
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            full = isinstance(exc, ReassemblyFullError)
            session.answer(header, (header.serial,), RESULT_FAILURE if full else RESULT_BAD_MESSAGE)
            return None
        if message is None:
            return None
        self.metrics.reassembled += 1
        return self.handle_message(message.header, message.body, message.serials, session, now_ms)

    def handle_message(self, header: Header, body: bytes, serials: tuple[int, ...], session: Session,
                       now_ms: int) -> Held | None:  # fmt: skip
        """Answer one whole message that came in the frames ``serials``; location reports as in :meth:`dispatch`."""
        v2019 = header.version is not None

        def ack(result: int) -> None:
            session.answer(header, serials, result)

        try:
            msg_id = header.msg_id
            if msg_id in (MSG_LOCATION, MSG_BATCH_LOCATION):
                if session.auth is None:
                    self.metrics.reject("not_authenticated")
                    ack(RESULT_FAILURE)
                    return None
                items = [body] if msg_id == MSG_LOCATION else batch_items(body)
                if not self.accepting_reports():
                    self.metrics.reject("storage_unavailable")
                    ack(RESULT_FAILURE)
                    return None
                if not session.take_tokens(len(items), self.clock(), self.config.max_reports_per_s):
                    self.metrics.reject("rate_limited")
                    ack(RESULT_FAILURE)
                    return None
                records = self.records(session, items, now_ms)
                self.metrics.reports += len(items)
                return Held(records, len(items), ack)
            if msg_id == MSG_HEARTBEAT:
                ack(RESULT_OK)
            elif msg_id == MSG_AUTH:
                ok = self.authenticate(session, header, auth_code_bytes(body, v2019))
                ack(RESULT_OK if ok else RESULT_FAILURE)
                if not ok and session.auth_failures >= self.config.max_auth_failures:
                    self.close_session(session, "auth_failures")
            elif msg_id == MSG_REGISTER:
                session.registrations += 1
                if session.registrations > self.config.max_registrations:
                    self.close_session(session, "registrations")
                    return None
                reg = Registration.decode(body, v2019)
                result, code, entry = self.registry.register(header.phone, reg, authenticated=session.auth is not None)
                if result != RegisterResult.OK:
                    self.metrics.reject(f"register_{result.name.lower()}")
                elif session.auth is not None:  # a new code from its own session: the old one is void
                    session.auth = entry
                    event("terminal_registered_again", phone=header.phone)
                response = RegistrationResponse(serials[0], result, code).encode()
                session.reply(header, MSG_REGISTER_RESPONSE, response)
            elif msg_id == MSG_DEREGISTER:
                if session.auth is None:
                    self.metrics.reject("not_authenticated")
                    ack(RESULT_FAILURE)
                else:
                    entry = self.registry.release(header.phone)
                    event("terminal_released", phone=header.phone, by="terminal",
                          vehicle_id=None if entry is None else entry["vehicle_id"])  # fmt: skip
                    self.unbind(session)
                    ack(RESULT_OK)
            else:
                self.metrics.reject("unsupported_message")
                ack(RESULT_UNSUPPORTED)
        except FrameError as exc:
            self.metrics.reject(exc.reason)
            ack(RESULT_BAD_MESSAGE)
        return None

    def authenticate(self, session: Session, header: Header, code: bytes) -> bool:
        """Bind the session to the terminal whose code ``code`` is; a wrong code ends the session's rights."""
        entry = self.registry.authenticate(header.phone, code)
        if entry is not None:
            key = canonical_phone(header.phone)
            older = self.by_phone.get(key)
            if older is not None and older is not session:
                self.close_session(older, "superseded")  # the terminal reconnected: its old connection goes
            self.unbind(session)
            session.auth, session.phone, session.raw_phone = entry, key, header.phone
            session.vid = str(entry["vehicle_id"]).encode()
            sensor = self.config.load_sensing == "all" or (self.config.load_sensing == "listed" and
                                                          key in self.load_sensors)  # fmt: skip
            session.load_codes = (0 if sensor else -1, 1, -1, 2)
            if self.config.load_sensing == "none":
                session.load_codes = (-1, -1, -1, -1)
            self.by_phone[key] = session
            return True
        self.metrics.reject("bad_authentication")
        self.unbind(session)
        session.auth_failures += 1
        return False

    def unbind(self, session: Session) -> None:
        """End the session's rights: it is no longer the connection of the terminal it authenticated as."""
        if session.phone is not None and self.by_phone.get(session.phone) is session:
            del self.by_phone[session.phone]
        session.auth, session.phone, session.raw_phone, session.vid = None, None, "", b""

    def request_missing(self, session: Session) -> None:
        """0x8003 for messages whose last package is in and others are not (once per message)."""
        for part in session.parts.resend_due():
            v2019 = part.header.version is not None
            missing = tuple(part.missing()[: 0xFFFF if v2019 else 0xFF])  # the 2013 count is one byte
            session.reply(part.header, MSG_RESEND_REQUEST, ResendRequest(part.first_serial, missing).encode(v2019))
            self.metrics.resend_requests += 1

    def records(self, session: Session, items: list[bytes], now_ms: int) -> bytes:
        """The log records of location bodies, checked (the hot path: :func:`check` only for a report out of range)."""
        lim = self.limits
        lo = now_ms - int(lim.max_age_s * 1000) if lim.max_age_s > 0 else -(1 << 62)
        hi = now_ms + int(lim.max_future_s * 1000)
        max_speed, max_odometer, max_fuel = lim.max_speed_kmh, lim.max_odometer_km, lim.max_fuel_l
        pack, vid, codes = RECORD.pack, session.vid, session.load_codes
        (lat_lo, lat_hi), (lon_lo, lon_hi) = LAT, LON
        out = []
        for item in items:
            values = location_values(item)
            ts_ms, lon, lat, speed, status, odometer, fuel = values
            if (
                lat_lo <= lat <= lat_hi and lon_lo <= lon <= lon_hi and (lat != 0.0 or lon != 0.0) and lo <= ts_ms <= hi
                and speed <= max_speed and not odometer > max_odometer and not fuel > max_fuel
                and not status & STATUS_ENCRYPTED and status & 0x300 != 0x200
            ):  # fmt: skip
                reason = 0
            else:
                reason = check(values, now_ms, lim)
                if reason:
                    self.metrics.quarantine(QUARANTINE_REASONS[reason])
            out.append(pack(vid, ts_ms, lon, lat, speed, codes[(status >> 8) & 0b11], odometer, fuel, reason, status,
                            now_ms))  # fmt: skip
        return b"".join(out)
