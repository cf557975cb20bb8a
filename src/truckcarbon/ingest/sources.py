"""Input files: discovery, hashing and streaming reads with row numbers.

A pings or vehicles input is one file or a folder (searched recursively, e.g. a
``month=YYYY-MM`` partitioned dataset) of Parquet (``.parquet``, ``.pq``) and CSV
(``.csv``, ``.csv.gz``, ``.csv.zst``) files. Parquet is read by DuckDB; CSV by
Arrow with every column as text (validation parses it), so one odd value never
fails a file. Columns are renamed to the contract names on the way
(:mod:`truckcarbon.ingest.columns`, :class:`SourceOptions`).

CSV files are streamed in bounded blocks (never read whole), through these steps:

* **Decompression** of ``.csv.gz`` (gzip) and ``.csv.zst`` (Zstandard). Byte
  offsets in messages are then offsets in the decompressed data.
* **Decoding** to UTF-8. The encoding is given (``SourceOptions.encoding``, e.g.
  ``"gbk"``, ``"gb18030"``, ``"utf-8"``) or detected: a UTF-8 byte order mark
  means UTF-8 (the mark is dropped), a UTF-16 one UTF-16; otherwise the first
  :data:`DETECT_BYTES` from the first non-ASCII byte decide: UTF-8 when they are
  valid UTF-8, else GB18030 (a superset of GBK and GB2312, what Chinese Excel
  writes). Bytes that do not decode stop the read with an :class:`InputError`
  giving the byte offset of the first bad byte and the encoding tried.
* **Lines.** Lines end with ``\\n`` or ``\\r\\n`` (or ``\\r`` alone throughout a
  file, as old Mac Excel writes). A line that leaves a quoted value open has an
  unterminated quote: it is taken out of the stream and returned with reason
  ``unterminated_quote``, and the lines after it are read as usual (Arrow's
  parser would read on into them as one quoted value). That is a line with an
  odd number of ``"``, or an even one where a quote inside an unquoted value
  (text, as in ``x"y``) leaves a later opening quote unclosed (``x"y,"z``).
  Quoted values with commas and doubled ``""`` quotes are read as usual; **a
  quoted value cannot hold a line break** (pings exports have none; its lines
  are taken out as unterminated quotes). Blank lines are skipped. A line with
  the wrong number of fields is returned with reason ``malformed_line``.

Row numbers: data row ``n`` (1-based) is physical line ``n + 1`` of the file (the
header being line 1; ``n + header_line`` when blank lines precede the header),
whatever lines were taken out around it.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import blake3
import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.ingest.columns import CONTRACT, map_columns

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".csv.zst")
_COMPRESSION = {".gz": "gzip", ".zst": "zstd"}
_HIVE_MONTH = re.compile(r"month=(\d{4})-(\d{2})")
BATCH_ROWS = 1 << 20
READ_BLOCK = 1 << 20  # bytes read, decoded and filtered at a time (small enough for the CPU caches)
CSV_BLOCK = 1 << 24  # bytes per block of Arrow's CSV parser (one batch): filtered blocks joined
DETECT_BYTES = 1 << 20  # bytes from the first non-ASCII byte that decide the encoding
MAX_LINE = 1 << 24  # a longer line means the file is not one row per line
UNTERMINATED_QUOTE = "unterminated_quote"
MALFORMED_LINE = "malformed_line"


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET):
        return "parquet"
    if name.endswith(CSV):
        return "csv"
    return None


def discover(path: Path, what: str) -> list[Path]:
    """The data files of an input, sorted by path; a clear error when there are none."""
    if not path.exists():
        raise InputError(f"{what}: {path} does not exist")
    if path.is_file():
        if _kind(path) is None:
            raise InputError(
                f"{what}: {path} is neither Parquet (.parquet, .pq) nor CSV (.csv, .csv.gz, .csv.zst); "
                "rename it if it is one of them"
            )
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p) and not p.name.startswith((".", "_")))
    if not files:
        raise InputError(f"{what}: no .parquet, .pq, .csv, .csv.gz or .csv.zst files under {path}")
    return files


def hive_month(path: Path) -> int | None:
    """Month number of a ``month=YYYY-MM`` folder in the path, if any."""
    m = None
    for part in path.parts:
        hit = _HIVE_MONTH.fullmatch(part)
        if hit:
            m = int(hit.group(1)) * 12 + int(hit.group(2)) - 1
    return m


DIGEST_PREFIX = "blake3:"


def file_digest(path: Path) -> str:
    """``blake3:<hex>`` of a file's bytes (BLAKE3, 256 bits).

    A cryptographic hash like SHA-256, at about twice its speed on inputs of
    gigabytes (the manifest hashes every input file of a run).
    """
    with path.open("rb") as f:
        # blake3's stubs declare digest(length=...), not hashlib's protocol; the object is a hashlib-style hash.
        return DIGEST_PREFIX + hashlib.file_digest(f, blake3.blake3).hexdigest()  # type: ignore[arg-type]


def bytes_digest(data: bytes) -> str:
    """``blake3:<hex>`` of ``data`` (see :func:`file_digest`)."""
    return DIGEST_PREFIX + blake3.blake3(data).hexdigest()


def estimated_rows(path: Path) -> int:
    """Rows of a Parquet file (from its footer) or an estimate for CSV (bytes / 40)."""
    if _kind(path) == "parquet":
        try:
            return int(pq.read_metadata(path).num_rows)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}); re-export or remove it") from None
    return max(1, path.stat().st_size // 40)


@dataclass(frozen=True)
class SourceOptions:
    """How to read an input file.

    ``encoding``: the CSV text encoding (a Python codec name such as ``"utf-8"``,
    ``"gbk"``, ``"gb18030"``); None detects it (see the module docstring).
    ``columns``: the user's column mapping ``{source header: contract name}``.
    ``kind``: ``"pings"`` or ``"vehicles"`` (which built-in header aliases apply and
    which names ``columns`` may give), or None for other tables (no aliases).
    """

    encoding: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    kind: str | None = "pings"


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


@dataclass
class Batch:
    """A batch of a file's rows; ``first_row`` data rows of the file precede it.

    ``rows`` holds each row's 1-based data row number in the file when lines were
    skipped before or within the batch (CSV lines that are not rows, blank lines),
    else None (row ``i`` of the batch is data row ``first_row + i + 1``).
    """

    table: pa.Table
    first_row: int
    rows: npt.NDArray[np.int64] | None = None

    def source_rows(self, local: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """1-based data row numbers of the batch rows ``local`` (0-based)."""
        return self.rows[local] if self.rows is not None else self.first_row + local + 1


class _RowMap:
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


def _codec(name: str, path: Path) -> codecs.CodecInfo:
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(
            f"{path}: unknown encoding {name!r}; give a text encoding such as utf-8, gb18030 or gbk"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"{path}: {name!r} is not a text encoding; give one such as utf-8, gb18030 or gbk")
    return info


class _CsvStream(io.RawIOBase):
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
        self.skipped = _RowMap()  # the data rows taken out, for the rows of the batches
        self._taken = 0  # data rows taken out so far
        self._taken_adjusted: deque[int] = deque()  # row - (rows taken out before) of those not yet passed
        self._taken_passed = 0
        self._given = encoding
        self._mode: str | None = None  # None: only ASCII so far (no encoding chosen); "utf-8"; "transcode"
        self._encoding = ""  # the encoding used, for messages
        self._decoder: codecs.IncrementalDecoder | None = None
        if encoding is not None:
            info = _codec(encoding, path)
            self._set_encoding(info.name)
        self._pos = 0  # bytes of the (decompressed) file read so far
        self._raw_eof = False
        self._started = False
        self._bom = False  # the encoding came from a byte order mark
        self._bom_bytes = 0  # bytes of a UTF-8 byte order mark dropped
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

    # -- decoding

    def _set_encoding(self, name: str) -> None:
        self._encoding = name
        if name in ("utf-8", "utf-8-sig"):
            self._mode = "utf-8"
            self._decoder = codecs.getincrementaldecoder("utf-8")()
        else:
            self._mode = "transcode"
            self._decoder = codecs.getincrementaldecoder(name)()

    def _undecodable(self, offset: int, exc: UnicodeDecodeError) -> InputError:
        decompressed = f" of the decompressed ({self.compression}) data" if self.compression else ""
        byte = exc.object[exc.start : exc.start + 1].hex()
        if self._given is not None:
            why = "the encoding given"
            todo = (
                "give the file's encoding with --encoding (gb18030 covers GBK and GB2312, what Chinese Excel "
                "writes) or re-export it as UTF-8 CSV"
            )
        elif self._bom:
            why = "the encoding of its byte order mark"
            todo = "the file is damaged or mixes encodings; re-export it as UTF-8 CSV"
        elif self._encoding == "utf-8":
            why = "the encoding detected from its first non-ASCII bytes"
            todo = (
                "if the file is a GBK/GB18030 export (Chinese Excel), give --encoding gb18030; "
                "else re-export it as UTF-8 CSV"
            )
        else:
            why = "the encoding detected: the file is not UTF-8"
            todo = "give the file's encoding with --encoding or re-export it as UTF-8 CSV"
        return InputError(
            f"{self.path}: the byte 0x{byte} at byte offset {offset}{decompressed} is not valid {self._encoding} "
            f"({why}); {todo}"
        )

    def _decode(self, data: bytes, start: int, final: bool) -> bytes:
        """``data`` (at byte ``start`` of the file) as UTF-8 (UTF-8 itself is checked by :meth:`_check_utf8`)."""
        if self._mode != "transcode" or self._decoder is None:
            return data  # ASCII (checked by the caller) or UTF-8
        pending = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._undecodable(start - len(pending) + exc.start, exc) from None

    def _check_utf8(self, buf: bytes, start: int, end: int) -> None:
        """Raise the decoding error when ``buf[start:end]`` (complete lines of a UTF-8 file) is not UTF-8."""
        if buf.isascii():
            return
        offsets = pa.py_buffer(np.array([start, end], np.int32).tobytes())
        try:  # Arrow's check is several times faster than Python's decoder
            pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(buf)]).validate(full=True)
        except pa.ArrowInvalid:
            try:
                codecs.utf_8_decode(memoryview(buf)[start:end], "strict", True)
            except UnicodeDecodeError as exc:
                raise self._undecodable(self._bom_bytes + self._text_pos + exc.start, exc) from None

    def _detect(self, window: bytes) -> None:
        try:
            codecs.utf_8_decode(window, "strict", False)
        except UnicodeDecodeError:
            self._set_encoding("gb18030")
        else:
            self._set_encoding("utf-8")

    def _fill(self) -> None:
        start = self._pos
        data = self._read_raw()
        if not self._started:
            while len(data) < 4 and not self._raw_eof:
                data += self._read_raw()
            self._started = True
            if data.startswith(codecs.BOM_UTF8) and self._mode in (None, "utf-8"):
                if self._mode is None:
                    self._set_encoding("utf-8")
                data, start = data[3:], start + 3
                self._pos += 3
                self._bom_bytes = 3
                self._bom = self._given is None
            elif self._given is None and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                self._set_encoding("utf-16")
                self._bom = True
        if self._mode is None and data and not data.isascii():
            first = int(np.argmax(np.frombuffer(data, np.uint8) >= 0x80))
            while len(data) - first < DETECT_BYTES and not self._raw_eof:
                data += self._read_raw()
            self._detect(data[first : first + DETECT_BYTES])
        self._pos += len(data)
        final = self._raw_eof
        text = self._decode(data, start, final)
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
        if self._mode == "utf-8":
            self._check_utf8(buf, start, end)
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
            if line.count(b'"') % 2 or _opens_quote(line):
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
            odd = self._unterminated(a, starts, ends)
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

    @staticmethod
    def _unterminated(
        a: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Where a line of ``a`` (from ``starts`` to ``ends``) leaves a quoted value open.

        A line with an odd number of quotes does. So does an even one where a stray quote inside an
        unquoted value (``x"y``, read as text) upsets the pairing, so that a later quote opening a value
        is never closed (``x"y,"z``): such lines are found as those whose quotes are not, taken in pairs,
        one opening a value (after a comma, the line start or a quote) and one closing it (before a comma,
        the line end or a quote); they are then read as the CSV parser reads them (:func:`_opens_quote`).
        """
        q = np.flatnonzero(a == 0x22)
        before = np.searchsorted(q, ends)  # quotes before each line end
        odd = (np.diff(before, prepend=0) & 1).astype(bool)
        # The quotes taken in pairs within each line: the first of a pair must open a value, the second
        # close it. (Without odd lines the pairs of the block are those of its lines.)
        if odd.any():
            first_quote = np.concatenate(([0], before[:-1]))  # index in q of each line's first quote
            second = ((np.arange(q.size) - first_quote[np.searchsorted(ends, q)]) & 1).astype(bool)
            openers, closers = q[~second], q[second]
        else:
            openers, closers = q[0::2], q[1::2]
        left = a[np.maximum(openers - 1, 0)]
        right = a[np.minimum(closers + 1, a.size - 1)]
        stray_open = ~((openers == 0) | (left == 0x2C) | (left == 0x0A) | (left == 0x22))
        stray_close = ~((closers == a.size - 1) | (right == 0x2C) | (right == 0x0A) | (right == 0x0D) | (right == 0x22))
        if stray_open.any() or stray_close.any():
            stray = np.concatenate((openers[stray_open], closers[stray_close]))
            for i in sorted(set(np.searchsorted(ends, stray).tolist())):
                if not odd[i]:
                    odd[i] = _opens_quote(a[starts[i] : ends[i]].tobytes())
        return odd

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


def _opens_quote(line: bytes) -> bool:
    """Whether Arrow's CSV parser ends ``line`` inside a quoted value: a quote opens a value only at its
    start, ``""`` in a quoted value is a quote, and after the closing quote (or in an unquoted value)
    quotes are text."""
    quoted = False
    field_start = True
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quoted:
            if c == 0x22:
                if i + 1 < n and line[i + 1] == 0x22:
                    i += 1
                else:
                    quoted = False
        elif c == 0x2C:
            field_start = True
            i += 1
            continue
        elif c == 0x22 and field_start:
            quoted = True
        field_start = False
        i += 1
    return quoted


def _header_names(path: Path, header: bytes) -> list[str]:
    try:
        names: list[str] = pacsv.read_csv(
            io.BytesIO(header + b"\n"), read_options=pacsv.ReadOptions(use_threads=False)
        ).column_names
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read the CSV header ({exc}); fix the header line") from None
    return names


def _wanted(names: list[str], rename: Mapping[str, str], columns: list[str] | None) -> list[str]:
    """The file columns to read: those giving ``columns`` (every column when none does, so that a
    caller's message about missing columns can list them)."""
    wanted = [c for c in names if columns is None or rename.get(c, c) in columns]
    return wanted or names


def _csv_batches(path: Path, columns: list[str] | None, bad: MalformedLines, options: SourceOptions) -> Iterator[Batch]:
    stream = _CsvStream(path, options.encoding, bad)
    try:
        if stream.header is None:
            raise InputError(f"{path}: empty file (no header line); remove it or add the data")
        names = _header_names(path, stream.header)
        rename = map_columns(names, options.columns, options.kind, str(path))
        wanted = _wanted(names, rename, columns)

        def on_invalid(row: pacsv.InvalidRow) -> str:
            # ``number`` is the stream's line (header = line 1): its data row is number - 1.
            n = stream.source_row(int(row.number) - 1) if row.number is not None else -1
            bad.lines.append((n, row.text, MALFORMED_LINE))
            if n > 0:
                stream.skipped.skip(n)
            return "skip"

        row = 0
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(wanted, pa.string()),
                    include_columns=wanted,
                    strings_can_be_null=True,
                    check_utf8=False,  # the stream is valid UTF-8 (decoded or checked)
                ),
            )
            for rb in reader:
                rows = stream.skipped.rows(row, rb.num_rows)
                table = pa.Table.from_batches([rb])
                if rename:
                    table = table.rename_columns([rename.get(c, c) for c in table.column_names])
                yield Batch(table, row, rows)
                row += rb.num_rows
        except pa.ArrowException as exc:
            raise InputError(
                f"{path}: CSV read failed after data row {row} ({exc}); check the file's quoting and separators "
                "or re-export it"
            ) from None
    finally:
        stream.close()


def _parquet_names(path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes); remove it or re-export it")
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}); it may be truncated; re-export it") from None


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parquet_batches(
    path: Path, columns: list[str] | None, con: duckdb.DuckDBPyConnection, options: SourceOptions
) -> Iterator[Batch]:
    names = _parquet_names(path)
    rename = map_columns(names, options.columns, options.kind, str(path))
    wanted = _wanted(names, rename, columns)
    select = ", ".join(_sql_name(c) + (f" AS {_sql_name(rename[c])}" if c in rename else "") for c in wanted)
    literal = "'" + str(path).replace("'", "''") + "'"
    row = 0
    try:
        reader = con.sql(f"SELECT {select} FROM read_parquet({literal})").to_arrow_reader(BATCH_ROWS)
        for rb in reader:
            yield Batch(pa.Table.from_batches([rb]), row)
            row += rb.num_rows
    except duckdb.Error as exc:
        raise InputError(
            f"{path}: Parquet read failed after data row {row} ({exc}); the file may be truncated; re-export it"
        ) from None


def read_batches(
    path: Path,
    columns: list[str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    options: SourceOptions | None = None,
) -> tuple[Iterator[Batch], MalformedLines]:
    """Stream a file's rows in input order, columns renamed to their contract names.

    ``columns`` (contract names) limits the columns read to those that exist
    (all of them when none does); ``options`` gives the encoding and column
    mapping (default :class:`SourceOptions`: detected encoding, pings aliases).
    Returns the batch iterator and the (initially empty) list it fills with the
    CSV lines that are not rows as it goes. Errors (:class:`InputError`) are
    raised by the iterator.
    """
    opts = options or SourceOptions()
    bad = MalformedLines()
    if _kind(path) == "csv":
        return _csv_batches(path, columns, bad, opts), bad
    return _parquet_batches(path, columns, con or duckdb.connect(), opts), bad


def column_names(path: Path, encoding: str | None = None) -> list[str]:
    """A file's own column names, in order (the CSV header or the Parquet schema; nothing else is read)."""
    if _kind(path) == "csv":
        bad = MalformedLines()
        with _CsvStream(path, encoding, bad) as stream:
            if stream.header is None:
                raise InputError(f"{path}: empty file (no header line); remove it or add the data")
            return list(_header_names(path, stream.header))
    return list(_parquet_names(path))


def mapped_names(path: Path, options: SourceOptions | None = None) -> dict[str, str]:
    """``{source column: contract name}`` of a file's columns that give contract columns (unchanged names
    included; with ``kind`` None, the user's mapping only), e.g. to read a Parquet file by its own
    column names. Reads only the header (CSV) or schema (Parquet)."""
    opts = options or SourceOptions()
    if _kind(path) == "csv":
        bad = MalformedLines()
        with _CsvStream(path, opts.encoding, bad) as stream:
            if stream.header is None:
                raise InputError(f"{path}: empty file (no header line); remove it or add the data")
            names = _header_names(path, stream.header)
    else:
        names = _parquet_names(path)
    rename = map_columns(names, opts.columns, opts.kind, str(path))
    contract = set(CONTRACT[opts.kind]) if opts.kind is not None else set(rename.values())
    return {c: rename.get(c, c) for c in names if rename.get(c, c) in contract}


def read_table(path: Path, what: str, *, options: SourceOptions | None = None) -> pa.Table:
    """A whole (small) table, e.g. vehicles, from one Parquet or CSV file.

    ``options`` default: detected encoding, no built-in column aliases
    (``SourceOptions(kind=None)``). A CSV line that is not a row is an error.
    """
    files = discover(path, what)
    if len(files) > 1:
        raise InputError(f"{what}: {path} holds {len(files)} files; give one file")
    batches, bad = read_batches(files[0], options=options or SourceOptions(kind=None))
    parts = [b.table for b in batches]
    if bad.lines:
        row, text, reason = min(bad.lines)
        problem = "has an unterminated quote" if reason == UNTERMINATED_QUOTE else "has the wrong number of fields"
        counts = ", ".join(f"{n} {r}" for r, n in sorted(bad.counts().items()))
        raise InputError(
            f"{files[0]}: line {row + bad.header_line} (data row {row}) {problem} ({text[:80]!r}); "
            f"lines that are not rows: {counts}; fix the file"
        )
    if not parts or sum(t.num_rows for t in parts) == 0:
        raise InputError(f"{what}: {files[0]} has no rows")
    return pa.concat_tables(parts)


__all__ = [
    "CSV",
    "MALFORMED_LINE",
    "PARQUET",
    "UNTERMINATED_QUOTE",
    "Batch",
    "MalformedLines",
    "SourceOptions",
    "column_names",
    "discover",
    "estimated_rows",
    "file_digest",
    "hive_month",
    "mapped_names",
    "read_batches",
    "read_table",
]
