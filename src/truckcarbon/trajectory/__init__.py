"""The per-vehicle trajectory kernel: clean fixes, then kilometres per vehicle, month and city.

Engine-agnostic: NumPy/Arrow arrays in, arrays out; engines partition by
vehicle, sort, and call :func:`truckcarbon.trajectory.kernel.run_kernel` (the
only place where per-ping logic lives). The rules and their thresholds are in
:mod:`~truckcarbon.trajectory.rules`, what the kernel returns in
:mod:`~truckcarbon.trajectory.schema`; the compiled passes are the private
modules ``_flag`` (rules 2-6), ``_robust`` (rule 7) and ``_attribute`` (segment
rules and attribution).
"""
