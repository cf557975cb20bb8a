"""CSV text decoding: encodings given or detected (UTF-8, BOM, GBK/GB18030, UTF-16), bad bytes named by
their offset, through the reader and on the decoder alone."""

from __future__ import annotations

import codecs
import gzip
import re
from pathlib import Path

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.ingest import encoding
from truckcarbon.ingest.encoding import TextDecoder
from truckcarbon.ingest.sources import SourceOptions, mapped_names, read_batches

from .csvdata import WANT_ZH, read_rows, zh_text


@pytest.mark.parametrize(
    ("name", "data", "encoding"),
    [
        ("utf8.csv", zh_text().encode("utf-8"), None),
        ("bom.csv", codecs.BOM_UTF8 + zh_text().encode("utf-8"), None),
        ("bom-given.csv", codecs.BOM_UTF8 + zh_text().encode("utf-8"), "utf-8"),
        ("gbk.csv", zh_text().encode("gbk"), None),
        ("gbk-given.csv", zh_text().encode("gbk"), "gbk"),
        ("gb18030.csv", zh_text().encode("gb18030"), "gb18030"),
        ("utf16.csv", zh_text().encode("utf-16"), None),
        ("crlf.csv", zh_text().replace("\n", "\r\n").encode("gbk"), None),
        ("cr.csv", zh_text().replace("\n", "\r").encode("utf-8"), None),
        ("no-final-newline.csv", zh_text().rstrip("\n").encode("gb18030"), None),
    ],
)
def test_encodings_are_detected_or_given_and_headers_decoded(tmp_path: Path, name: str, data: bytes, encoding) -> None:
    f = tmp_path / name
    f.write_bytes(data)
    rows, source, bad = read_rows(f, encoding=encoding)
    assert rows == WANT_ZH and source == [1, 2] and bad == []
    assert mapped_names(f, SourceOptions(encoding=encoding)) == {
        "车辆ID": "vehicle_id",
        "GPS时间": "ts",
        "经度": "lon",
        "纬度": "lat",
        "速度": "speed_kmh",
    }


def test_gbk_after_a_long_ascii_start_is_still_detected(tmp_path: Path) -> None:
    """The encoding is decided at the first non-ASCII byte, however far into the file it is."""
    lines = ["vehicle_id,ts,lon,lat"] + [f"{i},2022-03-10 08:00:00,116.3,39.9" for i in range(100_000)]
    lines.append("京A12345,2022-03-10 08:00:00,116.3,39.9")
    f = tmp_path / "late.csv"
    f.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    rows, source, bad = read_rows(f)
    assert len(rows) == 100_001 and rows[-1]["vehicle_id"] == "京A12345" and source[-1] == 100_001 and not bad


def test_a_bad_byte_after_the_detection_window_names_its_offset(tmp_path: Path) -> None:
    good = ("车辆ID,ts\n" + "京A12345,1\n" * 200_000).encode("utf-8")
    assert len(good) > 2 * encoding.DETECT_BYTES
    f = tmp_path / "late-bad.csv"
    f.write_bytes(good + b"\xb3\xb5,2\n" + b"x,3\n")
    with pytest.raises(InputError) as err:
        list(read_batches(f)[0])
    msg = str(err.value)
    assert msg.startswith(f"{f}: the byte 0xb3 at byte offset {len(good)} is not valid utf-8")
    assert "--encoding gb18030" in msg and "re-export it as UTF-8" in msg
    gz = tmp_path / "late-bad.csv.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    with pytest.raises(InputError, match=f"byte offset {len(good)} of the decompressed \\(gzip\\) data"):
        list(read_batches(gz)[0])


@pytest.mark.parametrize(
    ("data", "encoding", "offset", "message"),
    [
        (zh_text().encode("gbk"), "utf-8", 0, "is not valid utf-8 (the encoding given)"),
        ("车辆ID,ts\n".encode("gbk") + b"a,\x80\n", None, 12, "is not valid gb18030 (the encoding detected"),
        ("车辆ID,ts\n".encode("gbk") + b"a,\xff\xff\n", "gbk", 12, "is not valid gbk (the encoding given)"),
        (b"a,b\n1,\xe8\xbd", None, 6, "is not valid utf-8"),  # a character cut at the end of the file
        (codecs.BOM_UTF8 + b"a,b\n1,\xff\n", None, 9, "(the encoding of its byte order mark)"),
    ],
)
def test_undecodable_bytes_are_a_clear_error(tmp_path: Path, data: bytes, encoding, offset: int, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(data)
    with pytest.raises(InputError) as err:
        list(read_batches(f, options=SourceOptions(encoding=encoding))[0])
    msg = str(err.value)
    assert msg.startswith(f"{f}: ") and f"at byte offset {offset} " in msg and message in msg


def test_an_unknown_encoding_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{f}: unknown encoding 'gbkk'")):
        list(read_batches(f, options=SourceOptions(encoding="gbkk"))[0])
    with pytest.raises(InputError, match="is not a text encoding"):
        list(read_batches(f, options=SourceOptions(encoding="base64"))[0])


def test_byte_order_marks_choose_the_encoding_and_the_utf8_one_is_dropped(tmp_path: Path) -> None:
    d = TextDecoder(tmp_path / "a.csv", None, None)
    assert d.mode is None and d.encoding == ""
    assert d.byte_order_mark(codecs.BOM_UTF8 + b"a,b") == 3
    assert (d.mode, d.encoding, d.bom, d.bom_bytes) == ("utf-8", "utf-8", True, 3)
    d = TextDecoder(tmp_path / "a.csv", None, None)
    assert d.byte_order_mark(codecs.BOM_UTF16_LE + "a".encode("utf-16-le")) == 0  # the UTF-16 decoder reads it
    assert (d.mode, d.encoding, d.bom) == ("transcode", "utf-16", True)
    d = TextDecoder(tmp_path / "a.csv", "gbk", None)
    assert d.byte_order_mark(codecs.BOM_UTF8 + b"a") == 0 and d.encoding == "gbk"  # a given encoding wins
    d = TextDecoder(tmp_path / "a.csv", "utf-8", None)
    assert d.byte_order_mark(codecs.BOM_UTF8 + b"a") == 3 and not d.bom  # given, not read from the mark


def test_detection_picks_utf8_only_for_valid_utf8(tmp_path: Path) -> None:
    d = TextDecoder(tmp_path / "a.csv", None, None)
    d.detect("京A12345".encode())
    assert (d.mode, d.encoding) == ("utf-8", "utf-8")
    d = TextDecoder(tmp_path / "a.csv", None, None)
    d.detect("京A12345".encode("gbk"))
    assert (d.mode, d.encoding) == ("transcode", "gb18030")
    assert d.decode("京A12345\n".encode("gbk"), 0, True) == "京A12345\n".encode()


def test_a_character_split_between_reads_is_decoded_whole_and_offsets_count_from_the_file_start(
    tmp_path: Path,
) -> None:
    d = TextDecoder(tmp_path / "a.csv", "gbk", "gzip")
    data = "车辆".encode("gbk")  # 4 bytes: two 2-byte characters
    assert d.decode(data[:3], 0, False) + d.decode(data[3:], 3, False) == "车辆".encode()
    with pytest.raises(InputError) as err:
        d.decode(b"ab\x81", 4, True)  # a lead byte without its trail byte, at file offset 6
    msg = str(err.value)
    assert "the byte 0x81 at byte offset 6 of the decompressed (gzip) data is not valid gbk" in msg
    assert "(the encoding given)" in msg


def test_utf8_check_names_the_offset_after_the_byte_order_mark(tmp_path: Path) -> None:
    d = TextDecoder(tmp_path / "a.csv", None, None)
    d.byte_order_mark(codecs.BOM_UTF8)
    d.check_utf8(b"ok,\xc3\xa9\n", 0, 6, 0)  # valid: no error
    with pytest.raises(InputError, match=re.escape("the byte 0xff at byte offset 15 is not valid utf-8")):
        d.check_utf8(b"xxab\xff\n", 2, 6, 10)  # BOM 3 + 10 bytes before + 2 into the piece


def test_codec_names_are_checked(tmp_path: Path) -> None:
    assert encoding.codec("GBK", tmp_path).name == "gbk"
    with pytest.raises(InputError, match="unknown encoding 'nope'"):
        encoding.codec("nope", tmp_path)
    with pytest.raises(InputError, match=re.escape("'hex' is not a text encoding")):
        encoding.codec("hex", tmp_path)


def test_gzip_of_gbk_is_read_like_the_plain_file(tmp_path: Path) -> None:
    f = tmp_path / "p.csv.gz"
    f.write_bytes(gzip.compress(zh_text().encode("gbk")))
    rows, source, bad = read_rows(f)
    assert rows == WANT_ZH and source == [1, 2] and bad == []
