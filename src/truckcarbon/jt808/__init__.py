"""JT/T 808: the protocol truck terminals report positions with (codec, gateway, terminal client, replay)."""
