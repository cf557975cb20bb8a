"""What the gateway shows: counters, JSON log lines without tracebacks, the HTTP endpoints' answers."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from truckcarbon.jt808.observe import HttpEndpoints, JsonFormatter, Metrics, loop_exception_handler


def test_log_lines_are_json_and_carry_no_traceback() -> None:
    import logging

    from truckcarbon.jt808.observe import JsonFormatter

    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Task exception was never retrieved", None,
                                sys.exc_info())  # fmt: skip
    out = JsonFormatter().format(rec)
    assert "Traceback" not in out and "\n" not in out
    want = {"level": "error", "logger": "asyncio", "event": "log", "message": "Task exception was never retrieved"}
    assert json.loads(out) | {"ts": ""} == {"ts": "", **want, "error": "ValueError: bad"}


def test_counters_by_reason_and_their_log_line(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics()
    for reason in ("bad_check_code", "rate_limited", "bad_check_code"):
        m.reject(reason)
    m.quarantine("zero_fix")
    m.reports, m.acked = 5, 4
    with caplog.at_level(logging.INFO, logger="truckcarbon.gateway"):
        m.log("metrics")
    line = json.loads(caplog.records[-1].getMessage())
    assert line["event"] == "metrics" and (line["reports"], line["acked"]) == (5, 4)
    assert line["rejects"] == {"bad_check_code": 2, "rate_limited": 1} and line["quarantined"] == {"zero_fix": 1}


SNAPSHOT: dict[str, Any] = {
    "reports": 3, "acked": 2, "quarantined": 1, "compacted": 2, "duplicates": 0, "compaction_failures": 0,
    "internal_errors": 0, "connections_accepted": 1, "rejects": {"rate_limited": 1}, "quarantine_reasons": {},
    "connections": 1, "authenticated_connections": 1, "connection_cap": 10, "terminals_registered": 1,
    "wal_bytes": 90, "compaction_lag_seconds": 0.5, "subpackage_bytes": 0, "healthy": 1, "ready": 0,
    "problems": [],
}  # fmt: skip


def test_the_endpoints_answer_from_the_snapshot() -> None:
    endpoints = HttpEndpoints(lambda: SNAPSHOT)
    status, ctype, body = endpoints.route("/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    text = body.decode()
    assert "jt808_reports_total 3.0" in text and 'jt808_rejects_total{reason="rate_limited"} 1.0' in text
    assert "jt808_wal_bytes 90.0" in text
    status, _, body = endpoints.route("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, _, body = endpoints.route("/readyz")  # healthy, but not ready
    assert status == 503 and json.loads(body) == {"status": "failing", "healthy": 1, "ready": 0, "problems": []}
    assert endpoints.route("/other")[0] == 404


def test_the_loop_handler_counts_errors_but_not_cancellations(caplog: pytest.LogCaptureFixture) -> None:
    counted: list[int] = []
    handler = loop_exception_handler(lambda: counted.append(1))
    loop = asyncio.new_event_loop()
    try:
        handler(loop, {"message": "cancelled", "exception": asyncio.CancelledError()})
        with caplog.at_level(logging.ERROR, logger="truckcarbon.gateway"):
            handler(loop, {"message": "Task exception was never retrieved", "exception": KeyError("k")})
    finally:
        loop.close()
    assert counted == [1]
    line = json.loads(caplog.records[-1].getMessage())
    assert line == {"event": "loop_error", "message": "Task exception was never retrieved", "error": "KeyError: 'k'"}
    assert "Traceback" not in JsonFormatter().format(caplog.records[-1])
