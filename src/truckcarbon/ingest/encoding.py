"""CSV text decoding: the encoding given or detected, bytes to UTF-8, the first bad byte named.

The encoding is given (``SourceOptions.encoding``, e.g. ``"gbk"``, ``"gb18030"``,
``"utf-8"``) or detected: a UTF-8 byte order mark means UTF-8 (the mark is
dropped), a UTF-16 one UTF-16; otherwise the first :data:`DETECT_BYTES` from the
first non-ASCII byte decide: UTF-8 when they are valid UTF-8, else GB18030 (a
superset of GBK and GB2312, what Chinese Excel writes). Until a non-ASCII byte
comes no encoding is chosen (ASCII is the same in all of them). UTF-8 text is
checked and passed on as it is; other encodings are transcoded to UTF-8. Bytes
that do not decode are an :class:`InputError` giving the byte offset of the
first bad byte, the encoding tried, why it was tried and what to do.
:class:`TextDecoder` holds this state for one file; :mod:`.csvstream` feeds it.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pyarrow as pa

from truckcarbon.core.errors import InputError

DETECT_BYTES = 1 << 20  # bytes from the first non-ASCII byte that decide the encoding


def codec(name: str, path: Path) -> codecs.CodecInfo:
    """The text codec ``name`` (for ``path``'s messages); a clear error for an unknown or non-text codec."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(
            f"{path}: unknown encoding {name!r}; give a text encoding such as utf-8, gb18030 or gbk"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise InputError(f"{path}: {name!r} is not a text encoding; give one such as utf-8, gb18030 or gbk")
    return info


class TextDecoder:
    """The decoding of one file's bytes (after decompression, ``compression`` naming it for messages).

    ``mode`` is None while only ASCII was seen and no encoding is given, ``"utf-8"`` when the bytes are
    UTF-8 (checked by :meth:`check_utf8`, passed on as they are), ``"transcode"`` otherwise (decoded by
    :meth:`decode`).
    """

    def __init__(self, path: Path, given: str | None, compression: str | None) -> None:
        self.path = path
        self.compression = compression
        self.given = given
        self.mode: str | None = None
        self.encoding = ""  # the encoding used, for messages
        self._decoder: codecs.IncrementalDecoder | None = None
        self.bom = False  # the encoding came from a byte order mark
        self.bom_bytes = 0  # bytes of a UTF-8 byte order mark dropped
        if given is not None:
            self._set_encoding(codec(given, path).name)

    def _set_encoding(self, name: str) -> None:
        self.encoding = name
        if name in ("utf-8", "utf-8-sig"):
            self.mode = "utf-8"
            self._decoder = codecs.getincrementaldecoder("utf-8")()
        else:
            self.mode = "transcode"
            self._decoder = codecs.getincrementaldecoder(name)()

    def byte_order_mark(self, data: bytes) -> int:
        """Read the byte order mark at the start of the file's first bytes ``data`` (at least 4 of them
        unless the file is shorter): the bytes to drop (a UTF-8 mark; a UTF-16 one is the decoder's)."""
        if data.startswith(codecs.BOM_UTF8) and self.mode in (None, "utf-8"):
            if self.mode is None:
                self._set_encoding("utf-8")
            self.bom_bytes = 3
            self.bom = self.given is None
            return 3
        if self.given is None and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self._set_encoding("utf-16")
            self.bom = True
        return 0

    def detect(self, window: bytes) -> None:
        """Choose UTF-8 or GB18030 from ``window``, the bytes from the first non-ASCII one."""
        try:
            codecs.utf_8_decode(window, "strict", False)
        except UnicodeDecodeError:
            self._set_encoding("gb18030")
        else:
            self._set_encoding("utf-8")

    def undecodable(self, offset: int, exc: UnicodeDecodeError) -> InputError:
        """The error for the bad byte of ``exc`` at byte ``offset`` of the file: where, why, what to do."""
        decompressed = f" of the decompressed ({self.compression}) data" if self.compression else ""
        byte = exc.object[exc.start : exc.start + 1].hex()
        if self.given is not None:
            why = "the encoding given"
            todo = (
                "give the file's encoding with --encoding (gb18030 covers GBK and GB2312, what Chinese Excel "
                "writes) or re-export it as UTF-8 CSV"
            )
        elif self.bom:
            why = "the encoding of its byte order mark"
            todo = "the file is damaged or mixes encodings; re-export it as UTF-8 CSV"
        elif self.encoding == "utf-8":
            why = "the encoding detected from its first non-ASCII bytes"
            todo = (
                "if the file is a GBK/GB18030 export (Chinese Excel), give --encoding gb18030; "
                "else re-export it as UTF-8 CSV"
            )
        else:
            why = "the encoding detected: the file is not UTF-8"
            todo = "give the file's encoding with --encoding or re-export it as UTF-8 CSV"
        return InputError(
            f"{self.path}: the byte 0x{byte} at byte offset {offset}{decompressed} is not valid {self.encoding} "
            f"({why}); {todo}"
        )

    def decode(self, data: bytes, start: int, final: bool) -> bytes:
        """``data`` (at byte ``start`` of the file) as UTF-8 (UTF-8 itself is checked by :meth:`check_utf8`)."""
        if self.mode != "transcode" or self._decoder is None:
            return data  # ASCII (checked by the caller) or UTF-8
        pending = self._decoder.getstate()[0]
        try:
            return self._decoder.decode(data, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.undecodable(start - len(pending) + exc.start, exc) from None

    def check_utf8(self, buf: bytes, start: int, end: int, text_pos: int) -> None:
        """Raise the decoding error when ``buf[start:end]`` (complete lines of a UTF-8 file, ``text_pos``
        bytes of text after the byte order mark) is not UTF-8."""
        if buf.isascii():
            return
        offsets = pa.py_buffer(np.array([start, end], np.int32).tobytes())
        try:  # Arrow's check is several times faster than Python's decoder
            pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(buf)]).validate(full=True)
        except pa.ArrowInvalid:
            try:
                codecs.utf_8_decode(memoryview(buf)[start:end], "strict", True)
            except UnicodeDecodeError as exc:
                raise self.undecodable(self.bom_bytes + text_pos + exc.start, exc) from None


__all__ = ["DETECT_BYTES", "TextDecoder", "codec"]
