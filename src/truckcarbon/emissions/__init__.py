"""Emissions: fuel consumption and CO2 from distance, by emission standard and load state."""
