"""The synthetic China truck world: fleet, activity, routes, pings with defects, exact ground truth.

Nothing downstream of the simulator imports it; it uses :mod:`truckcarbon.geo`.
"""
