"""Compaction: log segments into the month-partitioned pings and the quarantine, once each, atomically."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.core.months import month_number
from truckcarbon.jt808.compactor import Compactor
from truckcarbon.jt808.location import Location
from truckcarbon.jt808.observe import Metrics
from truckcarbon.jt808.validation import QUARANTINE_REASONS
from truckcarbon.jt808.wal import record

from .gwkit import dataset_keys, dataset_rows


def write_segment(path: Path, rows: list[tuple[int, dt.datetime]]) -> Path:
    path = path.with_suffix(".v2.log")
    path.write_bytes(b"".join(record(v, Location(lat=30.0, lon=120.0, time=t)) for v, t in rows))
    return path


def test_compactor_keeps_keys_of_recent_months_only_and_writes_no_duplicate(tmp_path: Path) -> None:
    metrics = Metrics()
    compactor = Compactor(tmp_path, metrics, dedup_months=2)
    month_rows = {
        m: [(1, dt.datetime(2022, m, 10, h, tzinfo=dt.UTC)) for h in range(5)] for m in range(1, 13)
    }  # fmt: skip
    held = []
    for m, rows in month_rows.items():
        assert compactor.compact([write_segment(tmp_path / f"s{m}.log", rows + rows[:2])]) == 5
        held.append(len(compactor.seen))
    assert max(held) == 2 and set(compactor.seen) == {month_number(2022, 11), month_number(2022, 12)}
    assert metrics.duplicates == 12 * 2 and metrics.months_loaded == 12
    # Late reports for January, whose keys were evicted: the ones written are recognised from its files.
    late = [*month_rows[1], (1, dt.datetime(2022, 1, 20, tzinfo=dt.UTC))]
    assert compactor.compact([write_segment(tmp_path / "late.log", late)]) == 1
    assert metrics.duplicates == 12 * 2 + 5 and metrics.months_loaded == 13
    assert month_number(2022, 1) not in compactor.seen  # evicted again
    # A restart reads the keys of a month only when reports for it come.
    restarted = Compactor(tmp_path, Metrics())
    assert restarted.seen == {}
    assert restarted.compact([write_segment(tmp_path / "again.log", month_rows[12])]) == 0
    assert set(restarted.seen) == {month_number(2022, 12)}
    keys = dataset_keys(tmp_path)
    assert len(keys) == len(set(keys)) == 12 * 5 + 1


T = dt.datetime(2022, 3, 31, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 on 31 March in GMT+8


def test_records_go_to_their_local_month_or_to_the_quarantine_with_their_reason(tmp_path: Path) -> None:
    loc = Location(lat=30.0, lon=120.0, time=T, speed_kmh=40.0, fuel_l=80.0, status=0b11)  # ACC on, positioned
    later = Location(lat=30.0, lon=120.0, time=T + dt.timedelta(seconds=1))  # 00:00:00 on 1 April in GMT+8
    segment = tmp_path / "segment-1.v2.log"
    zero_fix = QUARANTINE_REASONS.index("zero_fix")
    segment.write_bytes(
        record(7, loc, load=2) + record(7, loc, load=0)  # the same key twice: written once
        + record(7, later) + record(8, later, reason=zero_fix, received_ms=5)
        + record("x" * 3, later)  # not an integer vehicle id: set aside
    )  # fmt: skip
    metrics = Metrics()
    assert Compactor(tmp_path, metrics).compact([segment]) == 2
    assert not segment.exists()  # deleted once its records are in the datasets
    assert sorted(p.name for p in (tmp_path / "pings").iterdir()) == ["month=2022-03", "month=2022-04"]
    rows = sorted(dataset_rows(tmp_path), key=lambda r: r["ts"])
    ms = int(T.timestamp() * 1000)
    assert [(r["vehicle_id"], r["ts"], r["load_state"], r["fuel_level_l"], r["acc_on"]) for r in rows] == [
        (7, ms, "full", 80.0, True), (7, ms + 1000, None, None, False),
    ]  # fmt: skip
    aside = sorted(dataset_rows(tmp_path, "quarantine"), key=lambda r: r["vehicle_id"])
    assert [(r["vehicle_id"], r["reason"]) for r in aside] == [("8", "zero_fix"), ("xxx", "bad_vehicle_id")]
    assert aside[0]["received_at"] is not None and aside[0]["status"] == 0
    assert (metrics.compacted, metrics.duplicates, metrics.quarantine_written) == (2, 1, 2)


def test_a_failed_write_keeps_the_segment_and_no_file_that_looks_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segment = write_segment(tmp_path / "segment-1", [(7, T), (7, T + dt.timedelta(seconds=1))])
    real = pq.write_table

    def torn(table: Any, where: Any, **kwargs: Any) -> None:
        real(table.slice(0, 1), where, **kwargs)  # part of the output written, then the disk fails
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("truckcarbon.jt808.compactor.pq.write_table", torn)
    compactor = Compactor(tmp_path, Metrics())
    with pytest.raises(OSError):
        compactor.compact([segment])
    assert segment.exists() and list((tmp_path / "pings").rglob("*")) == [tmp_path / "pings" / "month=2022-03"]
    assert dataset_rows(tmp_path) == []  # the temporary file was removed; none was renamed into place
    monkeypatch.undo()
    assert compactor.compact([segment]) == 2 and sorted(dataset_keys(tmp_path))[0] == (7, int(T.timestamp() * 1000))


def test_one_data_folder_holds_one_kind_of_vehicle_id(tmp_path: Path) -> None:
    Compactor(tmp_path, Metrics()).compact([write_segment(tmp_path / "s", [(7, T)])])
    assert Compactor(tmp_path, Metrics(), id_kind="int").id_kind == "int"
    with pytest.raises(InputError, match="one kind"):
        Compactor(tmp_path, Metrics(), id_kind="text")


def test_periodic_compaction_retries_at_the_capped_back_off_after_failures_and_resumes(tmp_path: Path) -> None:
    compactor = Compactor(tmp_path, Metrics())
    calls: list[float] = []
    seen_errors: list[str | None] = []  # the error each attempt finds (left by the one before)
    fail = [True, True, True, False, True]

    def rotate() -> list[Path]:
        calls.append(asyncio.get_running_loop().time())
        seen_errors.append(compactor.error)
        if fail[len(calls) - 1]:
            raise OSError(24, "Too many open files")
        return []

    async def scenario() -> None:
        task = asyncio.create_task(compactor.run(rotate, every_s=0.05, retry_max_s=0.4))
        while len(calls) < len(fail):
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    # After a failure: min(1 s, retry_max_s) = 0.4 s, doubling but capped at 0.4 s; after a success 0.05 s again.
    assert all(0.39 <= g < 0.8 for g in gaps[:3]) and 0.04 <= gaps[3] < 0.3, gaps
    error = "OSError: [Errno 24] Too many open files"
    assert seen_errors == [None, error, error, error, None]
    assert compactor.error == error and compactor.metrics.compaction_failures == 4
