"""JT/T 808: the protocol truck terminals report positions with (codec; the gateway is to come)."""
