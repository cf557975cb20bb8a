"""The schema module is the one declaration of every table: what is written conforms to it."""

from __future__ import annotations

from truckcarbon.core.schemas import LOAD_STATES, PINGS, VEHICLES


def test_declarations_agree_with_their_users() -> None:
    from truckcarbon.emissions.factors import LoadState
    from truckcarbon.ingest.rules import REQUIRED
    from truckcarbon.jt808.validation import LAT, LON, SPEED
    from truckcarbon.sim.pingfile import PING_SCHEMA

    assert tuple(s.value for s in LoadState) == LOAD_STATES
    assert REQUIRED == ("vehicle_id", "ts", "lon", "lat") == PINGS.required
    assert tuple(PING_SCHEMA.names) == PINGS.names
    assert (LAT, LON, SPEED) == ((-90.0, 90.0), (-180.0, 180.0), (0.0, 250.0))  # the gateway's ranges
    assert VEHICLES.required == ("vehicle_id", "emission_standard")
    doc = PINGS.doc()
    assert "vehicle_id" in doc and "required" in doc and "[-180.0, 180.0]" in doc
