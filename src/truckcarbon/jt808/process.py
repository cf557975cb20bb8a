"""A gateway in a child process (``python -m truckcarbon gateway``): for tests, benchmarks and fuzzing.

The child listens on a free loopback port (or the one given); its JSON log
lines go to a file, and :meth:`GatewayProcess.stop` returns the last metrics line.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _file_limit(n: int) -> Callable[[], None]:
    """A ``preexec_fn`` setting the child's open-file limit (RLIMIT_NOFILE) to ``n``."""

    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return limit


class GatewayProcess:
    """Start ``truckcarbon gateway --data DATA --port PORT [options]`` and wait until it listens."""

    def __init__(self, data: Path, *options: str, port: int | None = None, log: Path | None = None,
                 timeout_s: float = 60.0, max_open_files: int | None = None) -> None:  # fmt: skip
        """``max_open_files``: the child's file-descriptor limit (RLIMIT_NOFILE), to run it short of them."""
        self.data = data
        self.port = free_port() if port is None else port
        self.log = log if log is not None else data.parent / f"{data.name}-{time.time_ns()}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.log.open("w")
        command = [sys.executable, "-m", "truckcarbon", "gateway", "--data", str(data), "--port", str(self.port)]
        limit = None if max_open_files is None else _file_limit(max_open_files)
        self.proc = subprocess.Popen([*command, *options], stdout=self._out, stderr=subprocess.STDOUT, preexec_fn=limit)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as s:  # listening, and (with --workers) every worker is
                if s.connect_ex(("127.0.0.1", self.port)) == 0 and '"event": "listening"' in self.log.read_text():
                    return
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"the gateway did not start listening on port {self.port}:\n{self.log.read_text()}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        """The gateway's process and its children (the workers of ``--workers``; Linux ``/proc``)."""
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        try:
            return [pid, *(int(c) for c in children.read_text().split())]
        except OSError:
            return [pid]

    def peak_rss_mib(self) -> float:
        """The gateway's peak resident memory so far (Linux ``VmHWM``), MiB: summed over its workers, if any."""
        total = 0
        for p in self.pids():
            try:
                status = Path(f"/proc/{p}/status").read_text()
            except OSError:
                continue
            total += int(next((ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM")), "0"))
        return total / 1024

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 120.0) -> dict[str, Any]:
        """Send ``sig`` (SIGTERM: graceful, the log is compacted), wait, return the last JSON log line."""
        if self.alive:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout_s)
        self._out.close()
        return next((ln for ln in reversed(self.events()) if ln.get("event") in ("stopped", "metrics")), {})

    def events(self) -> list[dict[str, Any]]:
        """The JSON lines the child logged so far."""
        out = []
        for ln in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if ln.startswith("{"):
                try:
                    out.append(json.loads(ln))
                except ValueError:
                    out.append({"event": "torn_line", "line": ln})
        return out

    def tracebacks(self) -> int:
        """How many tracebacks the child wrote (none, ever, is the gateway's promise)."""
        return self.log.read_text(encoding="utf-8", errors="replace").count("Traceback (most recent call last)")
