"""Process-wide locations: where truckcarbon caches derived artefacts.

The cache holds artefacts that are expensive to build and fully determined by
their inputs (for example the city-locator index, keyed by the boundary data
version); deleting it is always safe. Its location is, in order of precedence:

1. the ``TRUCKCARBON_CACHE_DIR`` environment variable;
2. ``$XDG_CACHE_HOME/truckcarbon``;
3. ``~/.cache/truckcarbon``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return the cache directory, creating it if needed."""
    env = os.environ.get("TRUCKCARBON_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "truckcarbon"
    path.mkdir(parents=True, exist_ok=True)
    return path
