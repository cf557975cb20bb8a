"""Replay: what was acknowledged is written, codes kept for the next replay, text ids exact, the commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.jt808.process import GatewayProcess
from truckcarbon.jt808.registry import known_vehicles, read_bindings
from truckcarbon.jt808.replay import ReplaySummary, _location, phone_for, read_codes, replay, replay_async, write_codes

from .gwkit import NOW, dataset_rows, ms, poll, running


def test_replay_writes_what_was_acknowledged_and_replays_again_with_its_codes(world: Path, tmp_path: Path) -> None:
    data = tmp_path / "gw"
    server = GatewayProcess(data, "--max-age-days", "0")
    try:
        first = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6,
                       acked_out=tmp_path / "acked.csv", codes_file=tmp_path / "codes.json")  # fmt: skip
        again = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6,
                       codes_file=tmp_path / "codes.json")  # fmt: skip
        without = replay(world / "pings", world / "vehicles.parquet", f"127.0.0.1:{server.port}", 6, reconnect_s=1)
    finally:
        server.stop()
    assert first.acked == first.sent > 0 and first.failed == 0
    lines = (tmp_path / "acked.csv").read_text().splitlines()
    assert lines[0] == "vehicle_id,ts_ms" and len(lines) == first.acked + 1
    assert again.acked == first.acked  # the codes kept let the terminals authenticate again
    assert (tmp_path / "codes.json").stat().st_mode & 0o077 == 0
    # Without the codes, every terminal is refused: it is bound already, and its code is never sent again.
    assert without.acked == without.sent == 0 and without.refused == first.sent
    assert phone_for(7) == "000000000007" and phone_for("013912345678") == "013912345678"
    assert phone_for("鲁A12345") == phone_for("鲁A12345") and len(phone_for("鲁A12345")) == 12


def test_replay_of_text_vehicle_ids_keeps_them_exactly(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = ["013912345678", "鲁A12345"]
    (tmp_path / "pings").mkdir()
    n = 5
    ts = pa.array([ms(NOW) + 60_000 * k for _ in ids for k in range(n)], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    pq.write_table(pa.table({
        "vehicle_id": pa.array([v for v in ids for _ in range(n)], pa.string()),
        "ts": ts, "lon": pa.array([114.3] * 2 * n), "lat": pa.array([30.5] * 2 * n),
        "speed_kmh": pa.array([40.0] * 2 * n, pa.float32()),
    }), tmp_path / "pings" / "part.parquet")  # fmt: skip
    vehicles = tmp_path / "vehicles.parquet"
    pq.write_table(pa.table({"vehicle_id": ids, "plate": ["鲁A12345", "鲁B54321"]}), vehicles)

    async def scenario() -> ReplaySummary:
        async with running(tmp_path / "gw", known_vehicles=known_vehicles(vehicles)) as (gw, port):
            summary = await replay_async(tmp_path / "pings", vehicles, "127.0.0.1", port, 2)
            assert gw.registry.get("013912345678") is not None  # a text id of digits is its own phone
            return summary

    summary = asyncio.run(scenario())
    assert summary.acked == summary.sent == 2 * n and summary.failed == 0
    rows = dataset_rows(tmp_path / "gw")
    assert sorted({r["vehicle_id"] for r in rows}) == sorted(ids) and len(rows) == 2 * n
    assert set(summary.acked_keys) == {(r["vehicle_id"], r["ts"]) for r in rows}


def test_the_commands_replay_and_gateway_terminals(world: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from truckcarbon.cli.main import app

    data = tmp_path / "gw"
    server = GatewayProcess(data, "--max-age-days", "0")
    runner = CliRunner()
    try:
        args = ["--pings", str(world / "pings"), "--vehicles", str(world / "vehicles.parquet")]
        args += ["--to", f"127.0.0.1:{server.port}", "--acked-out", str(tmp_path / "acked.csv")]
        got = runner.invoke(app, ["replay", *args])
        assert got.exit_code == 0, got.output
        assert "acknowledged" in got.output and "resent 0" in got.output and "given up 0" in got.output
        phone = read_bindings(data)[0]["phone"]
        listed = runner.invoke(app, ["gateway", "terminals", "list", "--data", str(data)])
        assert listed.exit_code == 0 and phone in listed.output and "terminals bound" in listed.output
        assert "auth" not in listed.output  # never a code, nor its digest
        released = runner.invoke(app, ["gateway", "terminals", "release", phone, "--data", str(data)])
        assert released.exit_code == 0 and "queued" in released.output, released.output
        bad = runner.invoke(app, ["gateway", "terminals", "release", "12ab", "--data", str(data)])
        assert bad.exit_code == 2

        async def gone() -> None:
            await poll(lambda: all(r["phone"] != phone for r in read_bindings(data)))

        asyncio.run(gone())  # applied by the running gateway
    finally:
        server.stop()
    assert len((tmp_path / "acked.csv").read_text().splitlines()) > 1


def test_a_row_becomes_a_report_with_its_load_bits_and_a_row_without_a_fix_none() -> None:
    when = dt.datetime(2022, 3, 1, 8, 0, 0, 250_000, tzinfo=dt.UTC)
    row = {"ts": when, "lon": 114.3, "lat": 30.5, "speed_kmh": 42.0, "load_state": "half", "odometer_km": float("nan"),
           "fuel_level_l": 88.5}  # fmt: skip
    loc = _location(row)
    assert loc is not None and loc.time == when.replace(microsecond=0) and loc.status == 0b10 | 0b01 << 8
    assert (loc.speed_kmh, loc.odometer_km, loc.fuel_l) == (42.0, None, 88.5)
    assert _location({**row, "load_state": None}).status == 0b10  # type: ignore[union-attr]
    assert _location({**row, "load_state": None, "acc_on": True}).status == 0b11  # type: ignore[union-attr]
    assert _location({**row, "load_state": None, "acc_on": False}).status == 0b10  # type: ignore[union-attr]
    assert _location({**row, "lat": 91.0}) is None and _location({**row, "lon": None}) is None


def test_codes_files_are_read_back_and_refused_when_not_written_by_replay(tmp_path: Path) -> None:
    path = tmp_path / "codes.json"
    assert read_codes(None) == {} and read_codes(path) == {}
    write_codes(path, {"000000000007": "abc"})
    assert read_codes(path) == {"000000000007": "abc"} and path.stat().st_mode & 0o777 == 0o600
    path.write_text(json.dumps({"000000000007": 7}), encoding="utf-8")
    with pytest.raises(InputError, match="phone -> code"):
        read_codes(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="not a codes file"):
        read_codes(path)
    with pytest.raises(InputError, match="HOST:PORT"):
        replay(tmp_path, tmp_path, "localhost")
