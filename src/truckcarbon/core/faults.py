"""Test hook: kill the process at a named point, to test what a crash leaves behind.

``TRUCKCARBON_FAULT=<point>`` makes :func:`fault_point` ``(point)`` send SIGKILL
to its own process (no cleanup, no ``finally``, no flush: as an out-of-memory
kill or a power cut of the process would). Unset, a fault point costs one
environment lookup. Used by ``tests/pipeline/test_crash_safety.py``; the points
of a run are listed in :mod:`truckcarbon.core.rerun`.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "TRUCKCARBON_FAULT"


def fault_point(name: str) -> None:
    """SIGKILL this process when ``TRUCKCARBON_FAULT`` is ``name`` (a test hook; nothing otherwise)."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
