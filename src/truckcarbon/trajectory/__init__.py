"""The per-vehicle trajectory kernel: clean fixes, then kilometres per vehicle, month and city.

Engine-agnostic: NumPy/Arrow arrays in, arrays out; engines partition by
vehicle, sort, and call it (the only place where per-ping logic lives).
"""
