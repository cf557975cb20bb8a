"""Reassembly of sub-packaged JT/T 808 messages on one connection, in bounded memory.

The pieces of one message share its message id and carry consecutive serial
numbers, so a message is keyed by (message id, serial of package 1), and package
1's serial is ``serial - index + 1`` (mod 65536) of any piece. Pieces may arrive in
any order; a piece sent again (a terminal retrying after a timeout or after a
0x8003 request) replaces the earlier copy. Memory is bounded four ways: at most
``max_pending`` incomplete messages, at most ``max_bytes`` body bytes held for
them, at most the :class:`ByteBudget` shared by every connection, and each is
dropped ``timeout_s`` after its first piece arrived if it is still incomplete by
then.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from truckcarbon.jt808.frame import FrameError, Header


class ReassemblyFullError(FrameError):
    """A piece refused because the connection already holds as many partial messages or bytes as allowed."""

    def __init__(self, detail: str) -> None:
        super().__init__("subpackage_overflow", detail)


@dataclass
class ByteBudget:
    """Body bytes of incomplete messages held over all connections, and the most allowed."""

    limit: int
    used: int = 0


@dataclass
class Partial:
    """An incomplete message: the header of its first piece to arrive and the pieces so far."""

    header: Header
    first_serial: int
    total: int
    started_s: float
    pieces: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # package index -> (serial, body)
    resend_asked: bool = False

    @property
    def size(self) -> int:
        """Body bytes held."""
        return sum(len(body) for _, body in self.pieces.values())

    def missing(self) -> list[int]:
        """Package indices not received yet, ascending."""
        return [k for k in range(1, self.total + 1) if k not in self.pieces]


@dataclass(frozen=True)
class Message:
    """A whole message: package 1's header without package fields, the joined body, every piece's serial."""

    header: Header
    body: bytes
    serials: tuple[int, ...]


class Reassembler:
    """Sub-packages of one connection -> whole messages."""

    def __init__(self, max_pending: int, max_bytes: int, timeout_s: float, budget: ByteBudget | None = None) -> None:
        self.max_pending, self.max_bytes, self.timeout_s = max_pending, max_bytes, timeout_s
        self.budget = budget if budget is not None else ByteBudget(1 << 62)
        self.pending: dict[tuple[int, int], Partial] = {}
        self.size = 0  # body bytes held over all partial messages

    def add(self, header: Header, body: bytes, now_s: float) -> Message | None:
        """Take one sub-packaged frame; the whole message once its last missing piece is in, else None.

        Raises
        ------
        FrameError
            ``bad_package`` when the piece's package total disagrees with the
            earlier pieces of the same message; :class:`ReassemblyFullError`
            (``subpackage_overflow``) when holding it would exceed a bound.
        """
        total, index = header.package_total or 1, header.package_index or 1
        first = (header.serial - index + 1) & 0xFFFF
        if total == 1:
            return Message(_whole(header, first), body, (header.serial,))
        key = (header.msg_id, first)
        part = self.pending.get(key)
        if part is not None and part.total != total:
            raise FrameError("bad_package", f"package {index} of {total}, earlier pieces said {part.total} packages")
        if part is None and len(self.pending) >= self.max_pending:
            raise ReassemblyFullError(f"{len(self.pending)} sub-packaged messages are already incomplete")
        replaced = len(part.pieces[index][1]) if part is not None and index in part.pieces else 0
        if self.size - replaced + len(body) > self.max_bytes:
            raise ReassemblyFullError(f"{self.size} bytes held, {len(body)} more exceed {self.max_bytes}")
        if self.budget.used - replaced + len(body) > self.budget.limit:
            raise ReassemblyFullError(f"all connections hold {self.budget.used} bytes, at most {self.budget.limit}")
        if part is None:
            part = self.pending[key] = Partial(header, first, total, now_s)
        part.pieces[index] = (header.serial, body)
        self.size += len(body) - replaced
        self.budget.used += len(body) - replaced
        if len(part.pieces) < total:
            return None
        del self.pending[key]
        self.size -= part.size
        self.budget.used -= part.size
        pieces = [part.pieces[k] for k in range(1, total + 1)]
        return Message(_whole(header, first), b"".join(b for _, b in pieces), tuple(s for s, _ in pieces))

    def expire(self, now_s: float) -> list[Partial]:
        """Drop and return the messages still incomplete ``timeout_s`` after their first piece."""
        old = [key for key, part in self.pending.items() if now_s - part.started_s >= self.timeout_s]
        return [self._drop(key) for key in old]

    def drop_all(self) -> list[Partial]:
        """Drop and return every incomplete message (the connection is closing)."""
        return [self._drop(key) for key in list(self.pending)]

    def next_expiry_s(self) -> float | None:
        """When the oldest incomplete message times out (None when there is none)."""
        if not self.pending:
            return None
        return min(p.started_s for p in self.pending.values()) + self.timeout_s

    def resend_due(self) -> list[Partial]:
        """Incomplete messages whose last package is in, not yet asked for their missing pieces (marked asked).

        A terminal sends packages in order over one TCP stream, so when the last
        one is in and others are not, those were lost (refused as malformed).
        """
        due = [p for p in self.pending.values() if p.total in p.pieces and not p.resend_asked]
        for p in due:
            p.resend_asked = True
        return due

    def _drop(self, key: tuple[int, int]) -> Partial:
        part = self.pending.pop(key)
        self.size -= part.size
        self.budget.used -= part.size
        return part


def _whole(header: Header, first_serial: int) -> Header:
    return replace(header, serial=first_serial, package_total=None, package_index=None)
