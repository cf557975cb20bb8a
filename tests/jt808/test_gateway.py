"""The gateway end to end: replayed fleet lands once; SIGKILL loses no acknowledged report; bad input is survived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from truckcarbon.jt808.codec import (
    MSG_GENERAL_RESPONSE,
    MSG_LOCATION,
    MSG_REGISTER,
    MSG_REGISTER_RESPONSE,
    GeneralResponse,
    Header,
    Location,
    Registration,
    decode_frame,
    encode_frame,
    split_frames,
)
from truckcarbon.jt808.replay import ReplaySummary, replay_async
from truckcarbon.sim.run import SimConfig, simulate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gw") / "world"
    simulate(out, SimConfig(trucks=8, start_month="2022-03", end_month="2022-03", interval_s=300, seed=4))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.log = data.parent / f"{data.name}-{time.time_ns()}.log"
        self.out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "truckcarbon", "gateway", "--data", str(data), "--port", str(port),
             "--compact-s", "1"],
            stdout=self.out, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise AssertionError(self.log.read_text())

    def stop(self, sig: int = signal.SIGTERM) -> dict[str, object]:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.out.close()
        lines = [json.loads(ln) for ln in self.log.read_text().splitlines() if ln.startswith("{")]
        return lines[-1] if lines else {}


def dataset_keys(data: Path) -> list[tuple[int, int]]:
    if not (data / "pings").exists():
        return []
    t = ds.dataset(data / "pings", format="parquet", partitioning="hive").to_table(columns=["vehicle_id", "ts"])
    return list(zip(t["vehicle_id"].to_pylist(), pc.cast(t["ts"], "int64").to_pylist(), strict=True))


def test_replayed_fleet_lands_in_the_dataset_once(world: Path, tmp_path: Path) -> None:
    server = Server(tmp_path / "gw", free_port())
    summary = asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", server.port, 8))
    final = server.stop()
    assert summary.sent > 1000 and summary.acked == summary.sent and summary.failed == 0
    keys = dataset_keys(tmp_path / "gw")
    assert len(keys) == len(set(keys))  # deduplicated on (vehicle, time)
    assert set(keys) == set(summary.acked_keys)
    assert final["event"] == "stopped" and final["acked"] == summary.acked
    # The dataset is what `truckcarbon run` reads.
    t = ds.dataset(tmp_path / "gw" / "pings", format="parquet", partitioning="hive").to_table()
    assert {"vehicle_id", "ts", "lon", "lat", "speed_kmh", "load_state", "odometer_km"} <= set(t.column_names)


def test_sigkill_loses_no_acknowledged_report(world: Path, tmp_path: Path) -> None:
    data, port = tmp_path / "gw", free_port()
    server = Server(data, port)
    summary = ReplaySummary()

    def load() -> None:
        with contextlib.suppress(ConnectionError, OSError):
            asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", port, 8,
                                     summary=summary))  # fmt: skip

    thread = threading.Thread(target=load)
    thread.start()
    deadline = time.time() + 60
    while summary.acked < 300 and time.time() < deadline:
        time.sleep(0.02)
    server.proc.send_signal(signal.SIGKILL)  # in the middle of the load
    server.proc.wait(timeout=30)
    server.out.close()
    thread.join(timeout=60)
    acked = set(summary.acked_keys)
    assert len(acked) >= 300
    restarted = Server(data, port)  # recovers the log left by the kill
    restarted.stop()
    keys = dataset_keys(data)
    assert len(keys) == len(set(keys))
    missing = acked - set(keys)
    assert not missing, f"{len(missing)} acknowledged reports lost"


def test_malformed_input_is_counted_and_the_server_stays_up(tmp_path: Path) -> None:
    server = Server(tmp_path / "gw", free_port())
    phone = "000000000042"
    loc = Location(
        lat=39.9, lon=116.4, time=__import__("datetime").datetime(2022, 3, 1, tzinfo=__import__("datetime").UTC)
    )
    good = encode_frame(Header(MSG_LOCATION, phone, 7), loc.encode())
    bad_check = good[:-2] + bytes([good[-2] ^ 0x55]) + b"\x7e"
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(
            os.urandom(3000).replace(b"\x7e", b"\x00") + b"\x7e" + os.urandom(50).replace(b"\x7e", b"\x01") + b"\x7e"
        )
        s.sendall(bad_check)
        s.sendall(b"\x7e\x02\x00\x7d\x05\x7e")  # bad escape
        s.sendall(good)  # a report before registration and authentication
        buffer, reply = b"", None
        while reply is None:
            frames, buffer, _ = split_frames(buffer + s.recv(4096))
            for f in frames:
                header, body = decode_frame(f)
                if header.msg_id == MSG_GENERAL_RESPONSE:
                    reply = GeneralResponse.decode(body)
        assert reply.serial == 7 and reply.result == 1  # refused: not authenticated
        # The same connection still works: registration is answered.
        reg = Registration(0, 0, "TEST", "M", "42", 1, "京A00042")
        s.sendall(encode_frame(Header(MSG_REGISTER, phone, 8), reg.encode()))
        got = None
        while got is None:
            frames, buffer, _ = split_frames(buffer + s.recv(4096))
            got = next((f for f in frames if decode_frame(f)[0].msg_id == MSG_REGISTER_RESPONSE), None)
    final = server.stop()
    rejects = final["rejects"]
    assert isinstance(rejects, dict)
    assert rejects.get("bad_check_code", 0) >= 2 and rejects.get("not_authenticated") == 1
    assert rejects.get("bad_escape") == 1


def test_simulate_replay_gateway_run_gives_the_inventory_of_the_files(world: Path, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from truckcarbon.pipeline import run_pipeline

    server = Server(tmp_path / "gw", free_port())
    summary = asyncio.run(replay_async(world / "pings", world / "vehicles.parquet", "127.0.0.1", server.port, 8))
    server.stop()
    assert summary.failed == 0
    run_pipeline(tmp_path / "gw" / "pings", world / "vehicles.parquet", tmp_path / "via-gateway")
    run_pipeline(world / "pings", world / "vehicles.parquet", tmp_path / "direct")
    keys = [("month", "ascending"), ("view", "ascending"), ("city_adcode", "ascending"),
            ("emission_standard", "ascending"), ("method", "ascending")]  # fmt: skip
    a = pq.read_table(tmp_path / "via-gateway" / "inventory").sort_by(keys)
    b = pq.read_table(tmp_path / "direct" / "inventory").sort_by(keys)
    for col in ("month", "view", "city_adcode", "emission_standard", "method", "vehicles"):
        assert a[col].to_pylist() == b[col].to_pylist(), col
    # JT/T 808 carries coordinates to 1e-6 degree, speed to 0.1 km/h, fuel to 0.1 L: the same figures to 1e-4.
    for col in ("distance_km", "fuel_l", "co2_t"):
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-4)
