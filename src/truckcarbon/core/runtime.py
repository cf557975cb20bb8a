"""Process settings for long runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GC_THRESHOLD0 = 100_000  # allocations between the garbage collector's youngest collections during a run


@contextmanager
def fewer_collections(threshold0: int = GC_THRESHOLD0) -> Iterator[None]:
    """Run a block with the garbage collector's first threshold raised to ``threshold0`` (restored after).

    A run allocates many short-lived Python objects around its compiled kernels and
    Arrow calls; at the default threshold (700) the collector ran about 200 times
    in a 100-million-ping pipeline run and 100 times while the compiled kernels
    load, each time walking the objects of every imported module (0.1-0.2 s of a
    run on one core). Cycles are still collected, later.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(threshold0, old[0]), old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
