"""Geography: China's reference units, coordinate systems, ping-to-city location, segment splits."""
