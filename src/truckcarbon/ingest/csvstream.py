"""A CSV file streamed as Arrow's CSV reader gets it: decompressed, decoded, lines that are not rows out.

CSV files are read in bounded blocks (never whole), through these steps:

* **Decompression** of ``.csv.gz`` (gzip) and ``.csv.zst`` (Zstandard). Byte
  offsets in messages are then offsets in the decompressed data.
* **Decoding** to UTF-8, the encoding given or detected (:mod:`.encoding`).
* **Lines.** Lines end with ``\\n`` or ``\\r\\n`` (or ``\\r`` alone throughout a
  file, as old Mac Excel writes). A line that leaves a quoted value open has an
  unterminated quote (:mod:`.csvquotes`): it is taken out of the stream and
  returned with reason ``unterminated_quote``, and the lines after it are read
  as usual (Arrow's parser would read on into them as one quoted value). **A
  quoted value cannot hold a line break** (pings exports have none; its lines
  are taken out as unterminated quotes). Blank lines are skipped. A line with
  the wrong number of fields is returned by the reader (:mod:`.sources`) with
  reason ``malformed_line``; both are kept in :class:`MalformedLines`.

Row numbers: data row ``n`` (1-based) is physical line ``n + 1`` of the file (the
header being line 1; ``n + header_line`` when blank lines precede the header),
whatever lines were taken out around it; :class:`RowMap` gives the data row of
each row read.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.csvquotes import opens_quote, unterminated
from truckcarbon.ingest.encoding import DETECT_BYTES, TextDecoder
from truckcarbon.ingest.quarantine import UNTERMINATED_QUOTE

_COMPRESSION = {".gz": "gzip", ".zst": "zstd"}
READ_BLOCK = 1 << 20  # bytes read, decoded and filtered at a time (small enough for the CPU caches)
MAX_LINE = 1 << 24  # a longer line means the file is not one row per line


@dataclass
class MalformedLines:
    """CSV lines that are not rows: ``(1-based data row, text, reason)``, reason ``unterminated_quote``
    or ``malformed_line`` (wrong number of fields), in the order they were found.

    ``header_line`` is the physical line of the header (1 unless blank lines precede it);
    data row ``n`` is line ``n + header_line``.
    """

    lines: list[tuple[int, str, str]] = field(default_factory=list)
    header_line: int = 1

    def counts(self) -> dict[str, int]:
        """Lines by reason."""
        out: dict[str, int] = {}
        for _, _, reason in self.lines:
            out[reason] = out.get(reason, 0) + 1
        return out


class RowMap:
    """The 1-based data rows of the file of the rows read (counted 1, 2, ...) when the data rows given to
    :meth:`skip` were not read, for rows asked for in increasing order (memory: the skipped rows not yet
    passed)."""

    def __init__(self) -> None:
        self.passed = 0  # skipped rows before the rows asked for so far
        self.pending = np.empty(0, np.int64)  # later skipped rows, sorted
        self.new: list[int] = []

    def skip(self, row: int) -> None:
        """Data row ``row`` is not read (rows arrive in any order, but after the rows asked for so far)."""
        self.new.append(row)

    def rows(self, first: int, n: int) -> npt.NDArray[np.int64] | None:
        """Data rows of the rows ``first + 1 .. first + n`` read; None when no row was skipped so far."""
        if self.new:
            self.pending = np.sort(np.concatenate((self.pending, np.array(self.new, np.int64))))
            self.new = []
        if not self.passed and not self.pending.size:
            return None
        k = first + 1 + np.arange(n, dtype=np.int64)
        adjusted = self.pending - (self.passed + np.arange(self.pending.size, dtype=np.int64))
        out = k + self.passed + np.searchsorted(adjusted, k, side="right")
        if n:
            done = int(np.searchsorted(self.pending, out[-1], side="right"))
            self.passed += done
            self.pending = self.pending[done:]
        return out


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


class CsvStream(io.RawIOBase):
    """A CSV file's bytes as Arrow's CSV reader gets them: decompressed, decoded to UTF-8, with CR-only
    line ends made LF, and blank lines and lines with an unterminated quote taken out (see the module
    docstring). ``header`` is the header line (None for a file without one); ``skipped`` the 1-based data
    rows taken out, in order."""

    def __init__(self, path: Path, encoding: str | None, bad: MalformedLines) -> None:
        super().__init__()
        self.path = path
        self.bad = bad
        self.compression = _COMPRESSION.get(path.suffix.lower())
        self.header: bytes | None = None
        self.skipped = RowMap()  # the data rows taken out, for the rows of the batches
        self._taken = 0  # data rows taken out so far
        self._taken_adjusted: deque[int] = deque()  # row - (rows taken out before) of those not yet passed
        self._taken_passed = 0
        self.decoder = TextDecoder(path, encoding, self.compression)
        self._pos = 0  # bytes of the (decompressed) file read so far
        self._raw_eof = False
        self._started = False
        self._text_pos = 0  # bytes of text split into lines so far (in UTF-8 files: file offset - BOM)
        self._cr = False  # the file's lines end with CR alone
        self._carry = b""  # an incomplete last line
        self._head = b""  # the header line, until it goes out with the first block
        self._line = 0  # physical lines before the carry
        self._out: deque[bytes | memoryview] = deque()  # filtered blocks for Arrow
        self._eof = False
        self._raw = self._open()
        try:
            while self.header is None and not self._eof:
                self._fill()
        except BaseException:
            self.close()
            raise

    # -- raw bytes

    def _open(self) -> _Readable:
        try:
            if self.compression is None:
                raw: BinaryIO = self.path.open("rb", buffering=0)
                return raw
            return pa.CompressedInputStream(pa.OSFile(str(self.path)), self.compression)  # type: ignore[no-any-return]
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: cannot open the file ({exc})") from None

    def _read_raw(self) -> bytes:
        if self._raw_eof:
            return b""
        try:
            data = self._raw.read(READ_BLOCK)
        except (OSError, pa.ArrowException) as exc:
            if self.compression is None:
                raise InputError(f"{self.path}: read failed after byte {self._pos} ({exc})") from None
            raise InputError(
                f"{self.path}: cannot decompress ({self.compression}) after {self._pos} bytes of data ({exc}); "
                "the file is damaged or truncated; download or compress it again"
            ) from None
        if not data:
            self._raw_eof = True
        return bytes(data)

    def _fill(self) -> None:
        """Read, decode and split into lines the next block of the file."""
        start = self._pos
        data = self._read_raw()
        if not self._started:
            while len(data) < 4 and not self._raw_eof:
                data += self._read_raw()
            self._started = True
            mark = self.decoder.byte_order_mark(data)
            if mark:
                data, start = data[mark:], start + mark
                self._pos += mark
        if self.decoder.mode is None and data and not data.isascii():
            first = int(np.argmax(np.frombuffer(data, np.uint8) >= 0x80))
            while len(data) - first < DETECT_BYTES and not self._raw_eof:
                data += self._read_raw()
            self.decoder.detect(data[first : first + DETECT_BYTES])
        self._pos += len(data)
        final = self._raw_eof
        text = self.decoder.decode(data, start, final)
        self._lines(text, final)
        if final:
            self._eof = True

    # -- lines

    def _lines(self, data: bytes, final: bool) -> None:
        """Split ``data`` into complete lines (passed on without a copy, apart from the line that the
        end of the block before began) and the incomplete last line (kept)."""
        if not self._cr and self._line == 0 and not self._carry and b"\n" not in data:
            cr = data.find(b"\r")
            self._cr = 0 <= cr < len(data) - 1  # a CR followed by something else than LF: CR line ends
        if self._cr:
            data = data.replace(b"\r", b"\n")
        cut = len(data) if final else data.rfind(b"\n") + 1
        if cut == 0 and not final:  # no line end: all of it belongs to the line being read
            self._carry += data
            self._check_length()
            return
        pos = 0
        if self._carry:
            pos = data.find(b"\n", 0, cut) + 1 or cut  # the end of the line the carry begins
            head = b"".join((self._carry, memoryview(data)[:pos]))
            self._carry = b""
            self._piece(head, 0, len(head))
        if pos < cut:
            self._piece(data, pos, cut)
        if cut < len(data):
            self._carry = data[cut:]
            self._check_length()
        if final and self._head:
            self._emit(b"")

    def _check_length(self) -> None:
        if len(self._carry) > MAX_LINE:
            raise InputError(
                f"{self.path}: line {self._line + 1} is longer than {MAX_LINE:,} bytes; the file is not a CSV "
                "with one row per line (check its line ends and quotes); re-export it"
            )

    def _piece(self, buf: bytes, start: int, end: int) -> None:
        """Check, filter and pass on the complete lines ``buf[start:end]`` (at the end of the file the last
        one may lack its line end)."""
        if self.decoder.mode == "utf-8":
            self.decoder.check_utf8(buf, start, end, self._text_pos)
        self._text_pos += end - start
        if self.header is None:
            start = self._take_header(buf, start, end)
        if start < end:
            self._block(buf, start, end)

    def _take_header(self, buf: bytes, start: int, end: int) -> int:
        """Find the header (the first line that is not blank) from ``start``; where the data then starts."""
        pos = start
        while pos < end:
            stop = buf.find(b"\n", pos, end)
            stop = end if stop < 0 else stop
            line = buf[pos:stop].rstrip(b"\r")
            self._line += 1
            pos = stop + 1
            if not line:
                continue
            if line.count(b'"') % 2 or opens_quote(line):
                raise InputError(
                    f"{self.path}: the header (line {self._line}) has an unterminated quote "
                    f"({line.decode('utf-8', 'replace')[:80]!r}); fix the header line"
                )
            self.header = line
            self.bad.header_line = self._line
            self._head = line + b"\n"
            return pos
        return end

    def _emit(self, piece: bytes | memoryview) -> None:
        if self._head:  # the header goes with the first block: Arrow reads the header from its first block
            piece, self._head = b"".join((self._head, piece)), b""
        self._out.append(piece)

    def _block(self, buf: bytes, start: int, end: int) -> None:
        a = np.frombuffer(buf, np.uint8, end - start, start)
        nl = a == 0x0A
        quoted = buf.find(b'"', start, end) >= 0
        if not quoted:
            # Blank lines: "\n\n", "\n\r\n", or one at the start (a block starts a line).
            blanks = bool(nl[0]) or buf[start : start + 2] == b"\r\n" or bool(np.any(nl[1:] & nl[:-1]))
            if not blanks and buf.find(b"\r", start, end) >= 0:
                blanks = bool(np.any(nl[:-2] & (a[1:-1] == 0x0D) & nl[2:]))
            if not blanks:
                self._emit(buf if end - start == len(buf) else memoryview(buf)[start:end])
                self._line += int(np.count_nonzero(nl)) + (a[-1] != 0x0A)
                return
        ends = np.flatnonzero(nl)
        if a[-1] != 0x0A:
            ends = np.append(ends, a.size)
        lines = ends.size
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        length = ends - starts
        drop = (length == 0) | ((length == 1) & (a[np.minimum(starts, a.size - 1)] == 0x0D))  # blank
        odd = np.zeros(lines, bool)
        if quoted:
            odd = unterminated(a, starts, ends)
            drop |= odd
        if not drop.any():
            self._emit(buf if end - start == len(buf) else memoryview(buf)[start:end])
            self._line += lines
            return
        first_row = self._line + 1 - self.bad.header_line  # data row of the block's first line
        for i in np.flatnonzero(odd).tolist():
            text = bytes(a[starts[i] : ends[i]]).rstrip(b"\r").decode("utf-8", "replace")
            self.bad.lines.append((first_row + i, text, UNTERMINATED_QUOTE))
        for row in (first_row + np.flatnonzero(drop)).tolist():
            self._taken_adjusted.append(row - self._taken)
            self._taken += 1
            self.skipped.skip(row)
        sizes = np.diff(np.append(starts, a.size))
        self._emit(a[np.repeat(~drop, sizes)].tobytes())
        self._line += lines

    def names(self) -> list[str]:
        """The column names of the header; a clear error for an empty file or a header Arrow cannot read."""
        if self.header is None:
            raise InputError(f"{self.path}: empty file (no header line); remove it or add the data")
        try:
            names: list[str] = pacsv.read_csv(
                io.BytesIO(self.header + b"\n"), read_options=pacsv.ReadOptions(use_threads=False)
            ).column_names
        except pa.ArrowInvalid as exc:
            raise InputError(f"{self.path}: cannot read the CSV header ({exc}); fix the header line") from None
        return names

    def source_row(self, row: int) -> int:
        """The data row of the file of data row ``row`` of the stream (1-based; asked in increasing order)."""
        while self._taken_adjusted and self._taken_adjusted[0] <= row:
            self._taken_adjusted.popleft()
            self._taken_passed += 1
        return row + self._taken_passed

    # -- the file interface Arrow reads

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """The next filtered blocks, joined (at most ``size`` bytes; all that is left when ``size`` is
        negative)."""
        limit = size if size is not None and size >= 0 else -1
        parts: list[bytes | memoryview] = []
        total = 0
        while True:
            if not self._out:
                if self._eof:
                    break
                self._fill()
                continue
            if limit >= 0 and total + len(self._out[0]) > limit:
                if not parts:  # a block larger than asked for: split it
                    piece = self._out.popleft()
                    self._out.appendleft(piece[limit:])
                    parts.append(piece[:limit])
                break
            parts.append(self._out.popleft())
            total += len(parts[-1])
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)  # the one copy of the bytes passed on

    def close(self) -> None:
        if not self.closed and hasattr(self, "_raw"):
            self._raw.close()
        super().close()


def csv_header(path: Path, encoding: str | None = None) -> list[str]:
    """The column names of a CSV file's header (nothing else is read)."""
    with CsvStream(path, encoding, MalformedLines()) as stream:
        return stream.names()


__all__ = ["MAX_LINE", "READ_BLOCK", "CsvStream", "MalformedLines", "RowMap", "csv_header"]
