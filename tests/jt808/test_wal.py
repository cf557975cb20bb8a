"""The write-ahead log: appended records are durable before their future resolves; a torn tail is ignored."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from truckcarbon.jt808.location import Location
from truckcarbon.jt808.wal import RECORD, RECORD_V1_DTYPE, Wal, read_segment, record

T = dt.datetime(2022, 3, 1, tzinfo=dt.UTC)


def rec(vid: int | str, seconds: int) -> bytes:
    return record(vid, Location(lat=30.0, lon=120.0 + seconds / 1000, time=T + dt.timedelta(seconds=seconds)))


def keys(segment: Path) -> list[tuple[bytes, int]]:
    got = read_segment(segment)
    return list(zip(got["vid"].tolist(), got["ts"].tolist(), strict=True))


def ms(seconds: int) -> int:
    return int((T + dt.timedelta(seconds=seconds)).timestamp() * 1000)


def test_a_record_holds_the_report_with_nan_for_absent_items() -> None:
    loc = Location(lat=-30.25, lon=120.5, time=T, speed_kmh=55.5, status=0x301, odometer_km=12.5)
    values = RECORD.unpack(record("鲁A12345", loc, load=2, reason=3, received_ms=99))
    assert values[0].rstrip(b"\x00").decode() == "鲁A12345" and values[1] == ms(0)
    assert values[2:6] == (120.5, -30.25, 55.5, 2) and values[6] == 12.5 and values[7] != values[7]  # fuel NaN
    assert values[8:] == (3, 0x301, 99)
    assert RECORD.size == 32 + 8 + 8 + 8 + 4 + 1 + 8 + 8 + 1 + 4 + 8


def test_group_commit_resolves_every_future_once_its_records_are_on_disk(tmp_path: Path) -> None:
    async def scenario() -> tuple[Wal, list[int]]:
        wal = Wal(tmp_path / "wal")
        committer = asyncio.create_task(wal.committing(0.01))
        sizes: list[int] = []
        futures = [wal.append(rec(1, 1)), wal.append(rec(1, 2) + rec(2, 2))]  # one record, then two as one entry
        for fut in futures:
            fut.add_done_callback(lambda _: sizes.append(wal.current.stat().st_size))
        await asyncio.gather(*futures)
        await wal.append(rec(1, 3))
        committer.cancel()
        return wal, sizes

    wal, sizes = asyncio.run(scenario())
    assert sizes == [3 * RECORD.size, 3 * RECORD.size]  # both in one write, on disk when resolved
    wal.close()
    assert keys(wal.current) == [(b"1", ms(1)), (b"1", ms(2)), (b"2", ms(2)), (b"1", ms(3))]


def test_a_failed_write_fails_its_futures_and_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Wal, records: list[bytes]) -> None:
        raise OSError(28, "No space left on device")

    async def scenario() -> Wal:
        wal = Wal(tmp_path / "wal")
        committer = asyncio.create_task(wal.committing(0.0))
        monkeypatch.setattr(Wal, "write", full_disk)
        with pytest.raises(OSError, match="No space"):
            await wal.append(rec(1, 1))
        assert wal.error is not None and "No space left" in wal.error
        monkeypatch.undo()
        await wal.append(rec(1, 2))
        assert wal.error is None  # a write that succeeds clears it
        committer.cancel()
        return wal

    wal = asyncio.run(scenario())
    wal.close()
    assert keys(wal.current) == [(b"1", ms(2))]  # the failed record was never written (nor acknowledged)


def test_rotate_returns_the_closed_segments_and_close_removes_an_empty_one(tmp_path: Path) -> None:
    async def scenario() -> tuple[Wal, list[Path], list[Path]]:
        wal = Wal(tmp_path / "wal")
        first = wal.current
        wal.append(rec(1, 1))  # pending: rotate commits it into the segment it closes
        closed = wal.rotate()
        assert closed == [first] and wal.current != first
        wal.append(rec(1, 2))
        closed_again = wal.rotate()
        return wal, closed, closed_again

    wal, closed, closed_again = asyncio.run(scenario())
    assert len(closed_again) == 2 and closed_again[0] == closed[0]  # not compacted: still there, oldest first
    assert [keys(p) for p in closed_again] == [[(b"1", ms(1))], [(b"1", ms(2))]]
    size, age = wal.backlog()
    assert size == 2 * RECORD.size and age >= 0
    empty = wal.current
    wal.close()
    assert not empty.exists() and wal.segments() == closed_again


def test_after_a_crash_reading_yields_exactly_the_whole_records_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    async def scenario() -> Wal:
        wal = Wal(tmp_path / "wal")
        committer = asyncio.create_task(wal.committing(0.0))
        for k in range(5):
            await wal.append(rec(7, k))  # acknowledged: each is on disk
        committer.cancel()
        return wal

    crashed = asyncio.run(scenario())
    crashed.fh.close()  # the process dies here: the system closes the file, the segment is left as it is
    segment = crashed.current
    with open(segment, "ab") as fh:  # and its last write was torn: 20 bytes of a sixth record
        fh.write(rec(7, 5)[:20])
    assert keys(segment) == [(b"7", ms(k)) for k in range(5)]
    restarted = Wal(tmp_path / "wal")
    assert [p for p in restarted.segments() if p != restarted.current] == [segment]
    restarted.close()


def test_segments_of_the_earlier_layout_are_read_with_text_vehicle_ids(tmp_path: Path) -> None:
    old = np.zeros(3, dtype=RECORD_V1_DTYPE)
    old["vid"], old["ts"], old["lon"], old["lat"], old["load"] = [7, 13912345678, 7], [1, 2, 3], 120.0, 30.0, -1
    path = tmp_path / "segment-00000000000000000001.log"
    path.write_bytes(old.tobytes() + b"\x00" * 10)  # and a torn tail
    got = read_segment(path)
    assert got["vid"].tolist() == [b"7", b"13912345678", b"7"] and got["ts"].tolist() == [1, 2, 3]
    assert (got["reason"] == 0).all() and (got["load"] == -1).all() and (got["lon"] == 120.0).all()
