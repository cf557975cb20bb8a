"""Ingest: validate, quarantine and normalise input tables (pings, vehicles) at the boundary."""
